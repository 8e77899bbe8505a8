"""Download and extract a dataset of the registry (chapter 1, "The data").

``download_dataset("mosmeddata-ct0-ct23", "data/mosmeddata")`` fetches the two archives of the
Keras-example subset of MosMedData and leaves the scans in ``data/mosmeddata/CT-0/`` and
``data/mosmeddata/CT-23/``. Everything it needs besides the scans lives in ``<dest>/.downloads/``::

    <dest>/.downloads/CT-0.zip.part        while downloading; a rerun resumes it (HTTP Range)
    <dest>/.downloads/CT-0.zip             the verified archive (never deleted by ctutils)
    <dest>/.downloads/CT-0.zip.sha256      its SHA-256, recorded after the first verified download
    <dest>/.downloads/CT-0.zip.extracted   marker: extraction finished; a rerun does nothing
    <dest>/.downloads/CT-0.zip.bad         a finished download that failed verification, kept for inspection

An archive may hold its scans under a folder named like the class (``CT-0/study_0001.nii.gz``,
the layout of the release archives), flat at its top level, or under one wrapper folder
(``MosMedData/CT-0/…``); in every case they end up directly in ``<dest>/CT-0/``.

Only the standard library (:mod:`urllib.request`) and tqdm (through :func:`ctutils.frontend.progress_bar`) are used.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import json
import os
import shutil
import socket
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ctutils.atomic import atomic_path
from ctutils.datasets import (
    DatasetSpec,
    RemoteFile,
    expected_layout,
    get_dataset,
    is_scan_file,
    scan_files,
)
from ctutils.frontend import progress_bar

__all__ = ["DownloadError", "download_dataset", "manual_instructions"]

_CHUNK_BYTES = 1 << 20
_RETRY_DELAY_S = 2.0  # multiplied by the attempt number; tests set it to 0
_USER_AGENT = "ctutils-download/0.1 (+https://github.com/; Python urllib)"
_SKIP_TOP_LEVEL = {"__MACOSX"}


class DownloadError(RuntimeError):
    """A download, verification or extraction failed; the message names the URL or file and what to do."""


class _RecordMismatch(DownloadError):
    """The SHA-256 differs from the value recorded after the first verified download."""


class _Transient(Exception):
    """An attempt failed in a way that a retry (resuming the .part file) may fix."""


# --------------------------------------------------------------------------- messages


def _fmt_bytes(n: int | None) -> str:
    if n is None:
        return "an unknown number of bytes"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # unreachable


def manual_instructions(spec: DatasetSpec, dest: str | os.PathLike[str]) -> str:
    """One or two sentences telling how to put ``spec`` under ``dest`` by hand (for error messages).

    Examples
    --------
    >>> from ctutils.datasets import get_dataset
    >>> text = manual_instructions(get_dataset("mosmeddata-ct0-ct23"), "data/mosmeddata")
    >>> "data/mosmeddata/CT-23/*.nii.gz" in text and "Colab" in text
    True
    """
    dest = Path(dest)
    preprocess = f"`python -m ctutils data preprocess --src {dest} --out CACHE`"
    if spec.kind == "synthetic":
        return (
            f"dataset {spec.name!r} is generated, not downloaded: run "
            f"`python -m ctutils data synth --out {dest} --normal 40 --abnormal 40 --seed 0 --size 256`"
        )
    layout = expected_layout(spec, dest)
    if spec.kind == "manual":
        source = f"from {spec.homepage}" if spec.homepage else "from its publisher"
        licence = f" (licence {spec.licence})" if spec.licence else ""
        folders = f"{spec.class_folders[0]} … {spec.class_folders[-1]}"
        return (
            f"dataset {spec.name!r} is not downloaded automatically. Get it {source}{licence} and "
            f"unpack it; then either pass the folder of the release that holds {folders} as --src, "
            f"or move those class folders into {dest} so that the scans are {layout}, and run {preprocess}"
        )
    names = " and ".join(f.filename for f in spec.files)
    urls = " ".join(f.url for f in spec.files)
    return (
        f"To place the files by hand, download {names} in a browser ({urls}) and unzip them inside "
        f"{dest} so that the scans are {layout} (on Colab: upload the archives or mount Google "
        f"Drive and unzip there), "
        f"or put the archives in {dest / '.downloads'} and run this command again to verify and "
        f"extract them; then run {preprocess}"
    )


# --------------------------------------------------------------------------- checksums


def _sha256(path: Path, *, progress: bool) -> str:
    digest = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as handle, progress_bar(
        total=size, unit="B", unit_scale=True, unit_divisor=1024,
        desc=f"sha256 {path.name.removesuffix('.part')}",
        disable=not progress, leave=False,
    ) as bar:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def _sha_file(downloads: Path, remote: RemoteFile) -> Path:
    return downloads / f"{remote.filename}.sha256"


def _recorded_sha(downloads: Path, remote: RemoteFile) -> str | None:
    path = _sha_file(downloads, remote)
    if not path.is_file():
        return None
    fields = path.read_text(encoding="utf-8").split()
    if not fields or len(fields[0]) != 64 or any(c not in "0123456789abcdef" for c in fields[0]):
        raise DownloadError(f"{path}: not a sha256 record (expected '<64 hex digits>  {remote.filename}')")
    return fields[0]


def _record_sha(downloads: Path, remote: RemoteFile, sha: str) -> None:
    with atomic_path(_sha_file(downloads, remote)) as tmp:
        tmp.write_text(f"{sha}  {remote.filename}\n", encoding="utf-8")


def _verify(path: Path, remote: RemoteFile, downloads: Path, *, expected_size: int | None,
            progress: bool, name: str | None = None) -> str:
    """Check size and SHA-256 of ``path``; return the digest or raise DownloadError (file untouched).

    ``name`` is what the message calls the file (default: its path).
    """
    name = str(path) if name is None else name
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        raise DownloadError(f"{name}: size {size} bytes, expected {expected_size} bytes")
    sha = _sha256(path, progress=progress)
    if remote.sha256 is not None and sha != remote.sha256:
        raise DownloadError(f"{name}: sha256 {sha} does not match {remote.sha256} from the registry")
    recorded = _recorded_sha(downloads, remote)
    if recorded is not None and sha != recorded:
        raise _RecordMismatch(
            f"{name}: sha256 {sha} does not match {recorded} recorded in "
            f"{_sha_file(downloads, remote)} after the first verified download"
        )
    return sha


# --------------------------------------------------------------------------- HTTP


def _is_offline(reason: object) -> bool:
    if isinstance(reason, (socket.gaierror, ConnectionRefusedError)):
        return True
    return isinstance(reason, OSError) and reason.errno in {
        errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN,
    }


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """Parse ``bytes START-END/TOTAL`` (or ``bytes */TOTAL``) into (START, TOTAL)."""
    if not value or not value.startswith("bytes "):
        return None, None
    span, _, total = value[6:].partition("/")
    start = span.partition("-")[0]
    return (
        int(start) if start.strip().isdigit() else None,
        int(total) if total.strip().isdigit() else None,
    )


def _attempt(remote: RemoteFile, part: Path, *, bar: Any, timeout_s: float,
             offline_hint: str) -> int | None:
    """One HTTP request that appends to (or restarts) ``part``; return the file's total size."""
    offset = part.stat().st_size if part.exists() else 0
    response = _request(remote, part, offset=offset, timeout_s=timeout_s, offline_hint=offline_hint)
    if response is None:
        return offset  # the .part file is already complete
    with response:
        length = response.length  # bytes in this response body, None if not announced
        offset, mode, total = _resume_point(response, remote, part, offset=offset, offline_hint=offline_hint)
        expected = _check_expected_size(remote, part, offset=offset, total=total)
        bar.reset(total=expected)
        bar.initial = bar.n = offset  # resumed bytes count as done but not in the rate
        bar.refresh()
        received = _stream(response, part, mode, bar=bar, url=remote.url, offset=offset, expected=expected)
    if length is not None and received < length:
        raise _Transient(f"connection closed after {received} of {length} bytes")
    if length is None and expected is not None and offset + received < expected:
        raise _Transient(f"connection closed after {offset + received} of {expected} bytes")
    return expected


def _request(remote: RemoteFile, part: Path, *, offset: int, timeout_s: float,
             offline_hint: str) -> http.client.HTTPResponse | None:
    """Open the URL, asking for the bytes from ``offset`` on; None when ``part`` is already complete.

    Raises :class:`_Transient` for what a retry may fix (and removes ``part`` when the server
    cannot serve its range) and :class:`DownloadError` for what it cannot.
    """
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(remote.url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            _, total = _content_range(exc.headers.get("Content-Range"))
            if total == offset or (total is None and remote.size == offset):
                return None
            part.unlink()  # the server cannot serve our range: restart cleanly
            raise _Transient(f"server refused to resume at byte {offset}") from None
        if exc.code in (408, 425, 429) or exc.code >= 500:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
        raise DownloadError(f"{remote.url}: HTTP {exc.code} {exc.reason}. {offline_hint}") from None
    except urllib.error.URLError as exc:
        if _is_offline(exc.reason):
            raise DownloadError(
                f"cannot reach {remote.url} ({exc.reason}); are you offline? {offline_hint}"
            ) from None
        raise _Transient(str(exc.reason)) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from None


def _resume_point(response: Any, remote: RemoteFile, part: Path, *, offset: int,
                  offline_hint: str) -> tuple[int, str, int | None]:
    """Where this response's bytes go: (offset, file mode, total size if the server says it)."""
    if response.status == 206 and offset:
        start, total = _content_range(response.headers.get("Content-Range"))
        if start != offset:
            part.unlink()  # restart cleanly rather than append at the wrong place
            raise _Transient(f"server resumed at byte {start}, asked for {offset}")
        return offset, "ab", total
    if response.status == 200:
        return 0, "wb", response.length  # no resume (server ignored Range, or a fresh start)
    raise DownloadError(f"{remote.url}: unexpected HTTP status {response.status}. {offline_hint}")


def _check_expected_size(remote: RemoteFile, part: Path, *, offset: int, total: int | None) -> int | None:
    """The file's size (registry's, else the server's); check they agree and that the rest fits on disk."""
    if remote.size is not None and total is not None and total != remote.size:
        raise DownloadError(
            f"{remote.url}: the server reports {total} bytes, the registry expects {remote.size}; "
            f"the file may have changed upstream, so nothing was saved"
        )
    expected = remote.size if remote.size is not None else total
    free = shutil.disk_usage(part.parent).free
    if expected is not None and expected - offset > free:
        raise DownloadError(
            f"{part.parent}: not enough free disk space for {remote.filename}: "
            f"need {_fmt_bytes(expected - offset)}, {_fmt_bytes(free)} free"
        )
    return expected


def _stream(response: Any, part: Path, mode: str, *, bar: Any, url: str, offset: int,
            expected: int | None) -> int:
    """Copy the response body into ``part`` chunk by chunk; return the bytes received."""
    received = 0
    with open(part, mode) as out:
        while True:
            try:
                chunk = response.read(_CHUNK_BYTES)
            except (OSError, http.client.HTTPException) as exc:
                raise _Transient(f"{type(exc).__name__}: {exc}") from None
            if not chunk:
                break
            out.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
            if expected is not None and offset + received > expected:
                raise DownloadError(f"{url}: the server sent more than the expected {expected} bytes")
    return received


def _fetch(remote: RemoteFile, downloads: Path, *, progress: bool, timeout_s: float,
           retries: int, offline_hint: str) -> Path:
    """Make ``downloads/<filename>`` a verified archive, downloading (or resuming) if needed."""
    archive = downloads / remote.filename
    if archive.exists():
        try:
            sha = _verify(archive, remote, downloads, expected_size=remote.size, progress=progress)
        except DownloadError as exc:
            trust = (f", or delete {_sha_file(downloads, remote)} if you trust it"
                     if isinstance(exc, _RecordMismatch) else "")
            raise DownloadError(
                f"{exc}; the file was left in place: delete it to download it again{trust}"
            ) from None
        if _recorded_sha(downloads, remote) is None:
            _record_sha(downloads, remote, sha)
        return archive

    part = downloads / f"{remote.filename}.part"
    bad = downloads / f"{remote.filename}.bad"
    if remote.size is not None and part.exists() and part.stat().st_size > remote.size:
        os.replace(part, bad)  # longer than the file can be: keep it aside, start again
    expected = remote.size
    if not (expected is not None and part.exists() and part.stat().st_size == expected):
        with progress_bar(total=remote.size, unit="B", unit_scale=True, unit_divisor=1024,
                          desc=remote.filename, disable=not progress) as bar:
            failures = 0
            while True:
                try:
                    expected = _attempt(remote, part, bar=bar, timeout_s=timeout_s,
                                        offline_hint=offline_hint)
                    break
                except _Transient as exc:
                    failures += 1
                    if failures > retries:
                        have = part.stat().st_size if part.exists() else 0
                        kept = (f"; {have} bytes are kept in {part} and the next run resumes from there"
                                if have else "")
                        raise DownloadError(
                            f"{remote.url}: download failed after {failures} attempt(s) ({exc}){kept}. "
                            f"{offline_hint}"
                        ) from None
                    time.sleep(_RETRY_DELAY_S * failures)
                except DownloadError:
                    if part.exists() and expected is not None and part.stat().st_size > expected:
                        os.replace(part, bad)
                    raise
    try:
        sha = _verify(part, remote, downloads, expected_size=expected, progress=progress,
                      name=f"{remote.url} (downloaded)")
    except DownloadError as exc:
        os.replace(part, bad)
        raise DownloadError(f"{exc}; the download was kept as {bad} for inspection") from None
    os.replace(part, archive)
    _record_sha(downloads, remote, sha)
    return archive


# --------------------------------------------------------------------------- extraction


def _refuse(archive: Path, member: str, why: str) -> DownloadError:
    return DownloadError(
        f"{archive}: refusing to extract member {member!r}: {why}; nothing was extracted"
    )


def _check_member_name(archive: Path, name: str) -> None:
    norm = name.replace("\\", "/")
    if not norm or "\x00" in norm:
        raise _refuse(archive, name, "empty or invalid name")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":" and norm[0].isalpha()):
        raise _refuse(archive, name, "absolute path")
    if ".." in norm.split("/"):
        raise _refuse(archive, name, "'..' component escapes the target folder")
    base = os.path.abspath("/extract-root")
    resolved = os.path.normpath(os.path.join(base, norm))
    if os.path.commonpath([base, resolved]) != base:
        raise _refuse(archive, name, "resolves outside the target folder")


def _check_archive(archive: Path) -> int:
    """Check every member before anything is written; return the total uncompressed size."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                total = 0
                for info in zf.infolist():
                    _check_member_name(archive, info.filename)
                    mode = info.external_attr >> 16
                    if stat.S_ISLNK(mode):
                        raise _refuse(archive, info.filename, "symbolic link")
                    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
                        raise _refuse(archive, info.filename, "not a regular file or folder")
                    total += info.file_size
                return total
        if tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                total = 0
                for member in tf.getmembers():
                    _check_member_name(archive, member.name)
                    if member.issym() or member.islnk():
                        kind = "symbolic link" if member.issym() else "hard link"
                        raise _refuse(archive, member.name, f"{kind} to {member.linkname!r}")
                    if not (member.isfile() or member.isdir()):
                        raise _refuse(archive, member.name, "not a regular file or folder")
                    total += member.size
                return total
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise DownloadError(f"{archive}: cannot read the archive ({exc}); it was left in place") from None
    raise DownloadError(f"{archive}: not a zip or tar archive; it was left in place")


def _extract_all(archive: Path, into: Path) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(into)
        return
    with tarfile.open(archive) as tf:
        if hasattr(tarfile, "data_filter"):
            tf.extractall(into, filter="data")
        else:  # pragma: no cover - Python < 3.11.4; members were checked above
            tf.extractall(into)


def _locate_scans(archive: Path, root: Path, folder: str) -> Path:
    """Folder inside the extracted tree that holds the scans of ``folder``."""
    current = root
    for _ in range(3):
        if (current / folder).is_dir():
            return current / folder
        entries = [p for p in current.iterdir()
                   if not p.name.startswith(".") and p.name not in _SKIP_TOP_LEVEL]
        if any(is_scan_file(p) for p in entries):
            return current
        dirs = [p for p in entries if p.is_dir()]
        if len(dirs) != 1 or len(entries) != 1:
            break
        current = dirs[0]
    found = sorted(p.name for p in current.iterdir())[:5]
    raise DownloadError(
        f"{archive}: expected the scans under '{folder}/' or at the top of the archive, "
        f"found {found or 'nothing'}; nothing was extracted"
    )


def _marker(downloads: Path, remote: RemoteFile) -> Path:
    return downloads / f"{remote.filename}.extracted"


def _is_extracted(dest: Path, remote: RemoteFile) -> bool:
    return _marker(dest / ".downloads", remote).is_file() and (dest / remote.folder).is_dir()


def _extract(archive: Path, remote: RemoteFile, dest: Path, *, preprocess_hint: str) -> None:
    """Safely extract ``archive`` so that its scans end up in ``dest/<remote.folder>``."""
    target = dest / remote.folder
    if target.exists() and not (target.is_dir() and not any(target.iterdir())):
        raise DownloadError(
            f"{target}: already exists and is not empty, so {archive.name} was not extracted over "
            f"it; move it away and run the download again, or use it as it is: {preprocess_hint}"
        )
    needed = _check_archive(archive)
    free = shutil.disk_usage(dest).free
    if needed > free:
        raise DownloadError(
            f"{dest}: not enough free disk space to extract {archive.name}: "
            f"need {_fmt_bytes(needed)}, {_fmt_bytes(free)} free"
        )
    tmp = Path(tempfile.mkdtemp(prefix=f".extracting-{remote.folder}-", dir=dest))
    try:
        try:
            _extract_all(archive, tmp)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
            raise DownloadError(
                f"{archive}: extraction failed ({exc}); nothing was moved into {dest}"
            ) from None
        source = _locate_scans(archive, tmp, remote.folder)
        for junk in _SKIP_TOP_LEVEL:  # macOS resource forks, when the scans sat at the top
            if (source / junk).is_dir():
                shutil.rmtree(source / junk)
        n_scans = len(scan_files(source))
        if n_scans == 0:
            raise DownloadError(f"{archive}: holds no .nii or .nii.gz scan; nothing was extracted")
        if target.is_dir():
            target.rmdir()  # empty, checked above
        if source == tmp:
            os.chmod(tmp, 0o755)  # mkdtemp makes it private
        # The marker goes first: it only counts once the folder exists, so a crash between the
        # two steps just means the next run extracts again.
        marker = _marker(dest / ".downloads", remote)
        record = {"archive": archive.name, "folder": remote.folder, "scans": n_scans,
                  "url": remote.url, "size": archive.stat().st_size}
        with atomic_path(marker) as path:
            path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        try:
            os.replace(source, target)
        except OSError as exc:
            marker.unlink()
            raise DownloadError(f"{target}: cannot move the extracted scans into place ({exc})") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


# --------------------------------------------------------------------------- entry point


def _placed_by_hand(dest: Path, remote: RemoteFile, spec: DatasetSpec, preprocess_hint: str) -> bool:
    """True if ``dest/<folder>`` already holds the expected number of scans (placed by hand).

    An absent or empty folder gives False (download and extract); a folder with another content
    is never touched: DownloadError.
    """
    target = dest / remote.folder
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        return False
    n_scans = len(scan_files(target)) if target.is_dir() else 0
    expected = (spec.expected_counts or {}).get(remote.folder)
    if expected is not None and n_scans == expected:
        return True
    wanted = f", expected {expected}" if expected is not None else ""
    raise DownloadError(
        f"{target}: already exists with {n_scans} scan(s){wanted} but was not extracted by ctutils, "
        f"so {remote.filename} is neither downloaded nor extracted over it; move it away and run the "
        f"download again, or use it as it is: {preprocess_hint}"
    )


def _layout_complete(dest: Path, spec: DatasetSpec) -> bool:
    return all((dest / f).is_dir() and scan_files(dest / f) for f in spec.class_folders)


def download_dataset(
    name: str,
    dest: str | os.PathLike[str],
    *,
    registry: str | os.PathLike[str] | Mapping[str, DatasetSpec] | None = None,
    progress: bool = True,
    timeout_s: float = 30,
    retries: int = 3,
) -> Path:
    """Download, verify and extract a dataset so that ``dest/<class folder>/`` holds its scans.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"mosmeddata-ct0-ct23"`` (about 2.1 GB to download).
    dest : path-like
        Dataset root to fill; created if needed. Afterwards ``list_scans(dest)`` lists the scans.
    registry : path-like or mapping, optional
        Another registry JSON file (the CLI's ``--registry FILE``) or a loaded registry.
    progress : bool
        Show tqdm progress bars (download and checksum).
    timeout_s : float
        Seconds to wait for the server to connect or send more data.
    retries : int
        Failed attempts retried within this call, each resuming where the last one stopped.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    DownloadError
        No network (the message names the URL and how to place the files by hand), an HTTP error,
        a size or SHA-256 mismatch, an unsafe archive member, or a dataset that is placed by hand
        (kind ``"manual"``) or generated (kind ``"synthetic"``).
    ctutils.datasets.DatasetError
        Unknown dataset name or malformed registry.

    Notes
    -----
    - Archives are streamed to ``<dest>/.downloads/<file>.part``; an interrupted download is resumed
      with an HTTP ``Range`` request, by the next attempt or the next call. A server that answers
      a range request with the whole file (200) restarts it cleanly.
    - The size must match the registry. The SHA-256 must match the registry's value if it has one;
      otherwise it is recorded in ``<file>.sha256`` after the first verified download and checked on
      later runs. A download that fails verification is renamed ``<file>.bad``; a verified archive
      is never deleted.
    - Every member of an archive is checked before anything is extracted: absolute paths, ``..``,
      links and special files are refused. Extraction goes to a temporary folder in ``dest`` that is
      then renamed into place, and a marker ``<file>.extracted`` makes later calls return at once
      without any network request.
    - A class folder that already holds scans but was not extracted here (placed by hand) is
      used as is when it holds the registry's expected number of scans; otherwise it is an error.
      It is never written over. A manual dataset whose class folders all hold scans is accepted.

    Examples
    --------
    Not run as a doctest (it downloads 2 GB)::

        download_dataset("mosmeddata-ct0-ct23", "data/mosmeddata")
    PosixPath('data/mosmeddata')
    """
    spec = get_dataset(name, registry=registry)
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise DownloadError(f"{dest}: destination exists and is not a folder")
    if spec.kind == "synthetic":
        raise DownloadError(manual_instructions(spec, dest))
    if spec.kind == "manual":
        if dest.is_dir() and _layout_complete(dest, spec):
            return dest
        raise DownloadError(manual_instructions(spec, dest))

    preprocess_hint = f"`python -m ctutils data preprocess --src {dest} --out CACHE`"
    todo = [
        remote for remote in spec.files
        if not _is_extracted(dest, remote) and not _placed_by_hand(dest, remote, spec, preprocess_hint)
    ]
    if not todo:
        return dest
    downloads = dest / ".downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    hint = manual_instructions(spec, dest)
    for remote in todo:
        archive = _fetch(remote, downloads, progress=progress, timeout_s=timeout_s,
                         retries=retries, offline_hint=hint)
        _extract(archive, remote, dest, preprocess_hint=preprocess_hint)
    return dest
