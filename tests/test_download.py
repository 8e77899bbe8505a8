"""Tests for ctutils.download: every byte comes from a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import socket
import stat
import sys
import tarfile
import urllib.error
import zipfile
from pathlib import Path

import pytest

from ctutils import download
from ctutils.datasets import DatasetError, list_scans
from ctutils.download import DownloadError, download_dataset

if str(Path(__file__).resolve().parent) not in sys.path:  # helper module beside this file
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from httpfake import FakeServer, closed_port  # noqa: E402

# --------------------------------------------------------------------------- helpers


def fake_scan(seed: int, n_bytes: int = 6000) -> bytes:
    """Incompressible stand-in for a .nii.gz study (the downloader never parses it)."""
    return random.Random(seed).randbytes(n_bytes)


def make_zip(members: dict[str, bytes], *, symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3  # Unix
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buffer.getvalue()


def class_zip(folder: str, first: int, n: int = 2) -> tuple[bytes, dict[str, bytes]]:
    members = {f"{folder}/study_{i:04d}.nii.gz": fake_scan(i) for i in range(first, first + n)}
    return make_zip(members), members


def write_registry(path: Path, files: list[dict], *, folders=("CT-0", "CT-23"), counts=None) -> Path:
    entry = {
        "name": "fake",
        "description": "fake archives served on 127.0.0.1",
        "kind": "download",
        "files": files,
        "class_folders": list(folders),
        "label_mappings": {"binary": {folders[0]: 0, folders[1]: 1}},
        "default_mapping": "binary",
        "class_names": {"binary": ["normal", "abnormal"]},
        "expected_counts": counts,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"registry_version": 1, "datasets": [entry]}), encoding="utf-8")
    return path


def file_entry(url: str, data: bytes, folder: str, *, size: int | None = None,
               sha256: str | None = None, filename: str | None = None) -> dict:
    return {
        "url": url,
        "filename": filename or url.rsplit("/", 1)[-1],
        "size": len(data) if size is None else size,
        "sha256": sha256,
        "folder": folder,
    }


@pytest.fixture(autouse=True)
def no_retry_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "_RETRY_DELAY_S", 0.0)


@pytest.fixture
def server():
    with FakeServer() as fake:
        yield fake


@pytest.fixture
def two_archives(server: FakeServer, tmp_path: Path):
    """The reference layout: CT-0.zip and CT-23.zip with members under CT-0/ and CT-23/."""
    zip0, members0 = class_zip("CT-0", 1)
    zip23, members23 = class_zip("CT-23", 101)
    url0 = server.add("/release/CT-0.zip", zip0)
    url23 = server.add("/release/CT-23.zip", zip23)
    registry = write_registry(
        tmp_path / "reg" / "registry.json",
        [file_entry(url0, zip0, "CT-0"), file_entry(url23, zip23, "CT-23")],
    )
    return registry, {"CT-0.zip": zip0, "CT-23.zip": zip23}, {**members0, **members23}


# --------------------------------------------------------------------------- success and reruns


def test_download_extracts_into_class_folders(server, two_archives, tmp_path):
    registry, archives, members = two_archives
    dest = tmp_path / "data" / "mosmeddata"

    assert download_dataset("fake", dest, registry=registry, progress=False) == dest

    for name, data in members.items():
        assert (dest / name).read_bytes() == data
    scans = list_scans(dest)
    assert [(s.folder, s.path.name, s.label) for s in scans] == [
        ("CT-0", "study_0001.nii.gz", 0), ("CT-0", "study_0002.nii.gz", 0),
        ("CT-23", "study_0101.nii.gz", 1), ("CT-23", "study_0102.nii.gz", 1),
    ]
    downloads = dest / ".downloads"
    for name, data in archives.items():
        assert (downloads / name).read_bytes() == data  # the verified archive is kept
        recorded = (downloads / f"{name}.sha256").read_text().split()
        assert recorded == [hashlib.sha256(data).hexdigest(), name]
        assert json.loads((downloads / f"{name}.extracted").read_text())["scans"] == 2
    assert sorted(p.name for p in dest.iterdir()) == [".downloads", "CT-0", "CT-23"]
    assert not list(downloads.glob("*.part"))
    assert len(server.requests) == 2
    assert all(r.range is None for r in server.requests)


def test_rerun_makes_no_request_and_extracts_nothing(server, two_archives, tmp_path):
    registry, _, _ = two_archives
    dest = tmp_path / "mosmed"
    download_dataset("fake", dest, registry=registry, progress=False)
    stamp = (dest / "CT-0" / "study_0001.nii.gz").stat().st_mtime_ns
    server.requests.clear()

    assert download_dataset("fake", dest, registry=registry, progress=False) == dest

    assert server.requests == []
    assert (dest / "CT-0" / "study_0001.nii.gz").stat().st_mtime_ns == stamp


def test_archive_without_class_folder_or_with_wrapper_folder(server, tmp_path):
    flat = make_zip({"study_0001.nii.gz": fake_scan(1), "__MACOSX/._study_0001.nii.gz": b"x"})
    wrapped = make_zip({"MosMedData/CT-23/study_0101.nii.gz": fake_scan(101)})
    registry = write_registry(tmp_path / "reg.json", [
        file_entry(server.add("/a/CT-0.zip", flat), flat, "CT-0"),
        file_entry(server.add("/a/CT-23.zip", wrapped), wrapped, "CT-23"),
    ])
    dest = tmp_path / "d"

    download_dataset("fake", dest, registry=registry, progress=False)

    assert sorted(p.name for p in (dest / "CT-0").iterdir()) == ["study_0001.nii.gz"]
    assert (dest / "CT-23" / "study_0101.nii.gz").read_bytes() == fake_scan(101)
    assert [p.name for p in dest.iterdir() if p.name.startswith(".extracting")] == []


def test_redirect_is_followed(server, tmp_path):
    data, members = class_zip("CT-0", 1)
    server.add("/objects/blob-0", data)
    server.redirects["/release/CT-0.zip"] = server.url("/objects/blob-0")
    data23, _ = class_zip("CT-23", 101)
    registry = write_registry(tmp_path / "reg.json", [
        file_entry(server.url("/release/CT-0.zip"), data, "CT-0"),
        file_entry(server.add("/release/CT-23.zip", data23), data23, "CT-23"),
    ])
    download_dataset("fake", tmp_path / "d", registry=registry, progress=False)
    assert (tmp_path / "d" / "CT-0" / "study_0001.nii.gz").read_bytes() == members["CT-0/study_0001.nii.gz"]


# --------------------------------------------------------------------------- interruptions


def test_dropped_connection_is_resumed_within_the_call(server, two_archives, tmp_path):
    registry, archives, _ = two_archives
    server.drop("/release/CT-0.zip", after_bytes=5000)

    download_dataset("fake", tmp_path / "d", registry=registry, progress=False)

    seen = server.requests_for("/release/CT-0.zip")
    assert [r.range for r in seen] == [None, "bytes=5000-"]
    assert (tmp_path / "d" / ".downloads" / "CT-0.zip").read_bytes() == archives["CT-0.zip"]


def test_interrupted_download_resumes_on_the_next_call(server, two_archives, tmp_path):
    registry, archives, _ = two_archives
    dest = tmp_path / "d"
    server.drop("/release/CT-0.zip", after_bytes=7000)

    with pytest.raises(DownloadError, match=r"CT-0\.zip: download failed after 1 attempt.*next run resumes"):
        download_dataset("fake", dest, registry=registry, progress=False, retries=0)
    part = dest / ".downloads" / "CT-0.zip.part"
    assert part.read_bytes() == archives["CT-0.zip"][:7000]
    assert not (dest / "CT-0").exists()

    download_dataset("fake", dest, registry=registry, progress=False, retries=0)

    assert [r.range for r in server.requests_for("/release/CT-0.zip")] == [None, "bytes=7000-"]
    assert (dest / ".downloads" / "CT-0.zip").read_bytes() == archives["CT-0.zip"]
    assert not part.exists()
    assert len(list_scans(dest)) == 4


def test_server_without_range_support_restarts_cleanly(server, two_archives, tmp_path):
    registry, archives, _ = two_archives
    server.support_range = False
    server.drop("/release/CT-23.zip", after_bytes=3000)

    download_dataset("fake", tmp_path / "d", registry=registry, progress=False)

    seen = server.requests_for("/release/CT-23.zip")
    assert [r.range for r in seen] == [None, "bytes=3000-"]  # asked to resume, got the whole file
    assert (tmp_path / "d" / ".downloads" / "CT-23.zip").read_bytes() == archives["CT-23.zip"]


def test_repeated_drops_fail_after_the_retries(server, two_archives, tmp_path):
    registry, _, _ = two_archives
    server.drop("/release/CT-0.zip", after_bytes=0, times=10)
    with pytest.raises(DownloadError, match=r"after 3 attempt\(s\).*by hand"):
        download_dataset("fake", tmp_path / "d", registry=registry, progress=False, retries=2)
    assert len(server.requests_for("/release/CT-0.zip")) == 3


# --------------------------------------------------------------------------- verification


def test_size_mismatch_is_a_clear_error(server, tmp_path):
    data, _ = class_zip("CT-0", 1)
    data23, _ = class_zip("CT-23", 101)
    url = server.add("/r/CT-0.zip", data)
    registry = write_registry(tmp_path / "reg.json", [
        file_entry(url, data, "CT-0", size=len(data) + 10),
        file_entry(server.add("/r/CT-23.zip", data23), data23, "CT-23"),
    ])
    dest = tmp_path / "d"
    expected = rf"{re.escape(url)}: the server reports {len(data)} bytes, the registry expects {len(data) + 10}"
    with pytest.raises(DownloadError, match=expected):
        download_dataset("fake", dest, registry=registry, progress=False)
    assert not (dest / ".downloads" / "CT-0.zip").exists()
    assert not (dest / "CT-0").exists()


def test_sha256_mismatch_with_registry_keeps_the_download_aside(server, tmp_path):
    data, _ = class_zip("CT-0", 1)
    data23, _ = class_zip("CT-23", 101)
    registry = write_registry(tmp_path / "reg.json", [
        file_entry(server.add("/r/CT-0.zip", data), data, "CT-0", sha256="0" * 64),
        file_entry(server.add("/r/CT-23.zip", data23), data23, "CT-23"),
    ])
    dest = tmp_path / "d"
    message = r"/r/CT-0\.zip \(downloaded\): sha256 [0-9a-f]{64} does not match 0{64} from the registry.*kept as"
    with pytest.raises(DownloadError, match=message):
        download_dataset("fake", dest, registry=registry, progress=False)
    assert (dest / ".downloads" / "CT-0.zip.bad").read_bytes() == data
    assert not (dest / ".downloads" / "CT-0.zip").exists()
    assert not (dest / "CT-0").exists()


def test_sha256_mismatch_with_recorded_value_keeps_the_archive(server, two_archives, tmp_path):
    registry, archives, _ = two_archives
    dest = tmp_path / "d"
    download_dataset("fake", dest, registry=registry, progress=False)
    archive = dest / ".downloads" / "CT-0.zip"
    # Same size, one byte changed; extraction must run again to look at it.
    corrupt = bytearray(archives["CT-0.zip"])
    corrupt[100] ^= 0xFF
    archive.write_bytes(bytes(corrupt))
    (dest / ".downloads" / "CT-0.zip.extracted").unlink()
    (dest / "CT-0" / "study_0001.nii.gz").unlink()
    (dest / "CT-0" / "study_0002.nii.gz").unlink()
    server.requests.clear()

    message = r"\.downloads/CT-0\.zip: sha256 .* recorded in .*CT-0\.zip\.sha256.*left in place"
    with pytest.raises(DownloadError, match=message):
        download_dataset("fake", dest, registry=registry, progress=False)

    assert archive.read_bytes() == bytes(corrupt)  # nothing deleted
    assert (dest / ".downloads" / "CT-0.zip.sha256").read_text().split()[0] == hashlib.sha256(
        archives["CT-0.zip"]).hexdigest()
    assert server.requests == []


def test_archive_placed_by_hand_is_verified_and_extracted(server, two_archives, tmp_path):
    registry, archives, members = two_archives
    dest = tmp_path / "d"
    (dest / ".downloads").mkdir(parents=True)
    for name, data in archives.items():
        (dest / ".downloads" / name).write_bytes(data)

    download_dataset("fake", dest, registry=registry, progress=False)

    assert server.requests == []
    assert (dest / "CT-23" / "study_0101.nii.gz").read_bytes() == members["CT-23/study_0101.nii.gz"]


def test_archive_placed_by_hand_with_wrong_size_is_left_in_place(two_archives, tmp_path):
    registry, archives, _ = two_archives
    dest = tmp_path / "d"
    (dest / ".downloads").mkdir(parents=True)
    (dest / ".downloads" / "CT-0.zip").write_bytes(archives["CT-0.zip"][:-1])
    with pytest.raises(DownloadError, match=r"CT-0\.zip: size \d+ bytes, expected \d+ bytes.*left in place"):
        download_dataset("fake", dest, registry=registry, progress=False)
    assert (dest / ".downloads" / "CT-0.zip").read_bytes() == archives["CT-0.zip"][:-1]


def test_corrupt_archive_leaves_no_partial_folder(server, tmp_path):
    data, _ = class_zip("CT-0", 1)
    corrupt = bytearray(data)
    corrupt[200] ^= 0xFF  # inside the first member's data: CRC error on extraction
    corrupt = bytes(corrupt)
    data23, _ = class_zip("CT-23", 101)
    registry = write_registry(tmp_path / "reg.json", [
        file_entry(server.add("/r/CT-0.zip", corrupt), corrupt, "CT-0"),
        file_entry(server.add("/r/CT-23.zip", data23), data23, "CT-23"),
    ])
    dest = tmp_path / "d"
    with pytest.raises(DownloadError, match=r"CT-0\.zip: extraction failed .*nothing was moved"):
        download_dataset("fake", dest, registry=registry, progress=False)
    assert sorted(p.name for p in dest.iterdir()) == [".downloads"]
    assert (dest / ".downloads" / "CT-0.zip").read_bytes() == corrupt


def test_not_enough_disk_space(server, two_archives, tmp_path, monkeypatch):
    registry, _, _ = two_archives
    monkeypatch.setattr(download.shutil, "disk_usage", lambda path: type("U", (), {"free": 10})())
    with pytest.raises(DownloadError, match=r"not enough free disk space for CT-0\.zip: need .* 10 B free"):
        download_dataset("fake", tmp_path / "d", registry=registry, progress=False)


# --------------------------------------------------------------------------- unsafe archives


@pytest.mark.parametrize(
    ("evil_member", "symlink"),
    [
        ("../evil.txt", False),
        ("CT-0/../../evil.txt", False),
        ("..\\evil.txt", False),
        ("/tmp/ctutils-test-evil.txt", False),
        ("C:/evil.txt", False),
        ("CT-0/evil-link", True),
    ],
)
def test_member_escaping_the_target_is_refused(server, tmp_path, evil_member, symlink):
    good = {"CT-0/study_0001.nii.gz": fake_scan(1)}
    if symlink:
        data = make_zip(good, symlinks={evil_member: "../../evil.txt"})
    else:
        data = make_zip({**good, evil_member: b"pwned"})
    data23, _ = class_zip("CT-23", 101)
    registry = write_registry(tmp_path / "reg" / "registry.json", [
        file_entry(server.add("/r/CT-0.zip", data), data, "CT-0"),
        file_entry(server.add("/r/CT-23.zip", data23), data23, "CT-23"),
    ])
    parent = tmp_path / "parent"
    dest = parent / "dest"
    parent.mkdir()

    message = r"CT-0\.zip: refusing to extract member .*evil.*nothing was extracted"
    with pytest.raises(DownloadError, match=message):
        download_dataset("fake", dest, registry=registry, progress=False)

    assert [p.name for p in parent.iterdir()] == ["dest"]
    assert sorted(p.name for p in dest.iterdir()) == [".downloads"]  # not even the good member
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parent", "reg"]
    assert not list(tmp_path.rglob("*evil*"))
    assert not Path("/tmp/ctutils-test-evil.txt").exists()


def test_tar_with_hard_link_is_refused(server, tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        scan = fake_scan(1)
        info = tarfile.TarInfo("CT-0/study_0001.nii.gz")
        info.size = len(scan)
        tf.addfile(info, io.BytesIO(scan))
        link = tarfile.TarInfo("CT-0/study_0002.nii.gz")
        link.type = tarfile.LNKTYPE
        link.linkname = "../../outside.txt"
        tf.addfile(link)
    data = buffer.getvalue()
    data23, _ = class_zip("CT-23", 101)
    registry = write_registry(tmp_path / "reg.json", [
        file_entry(server.add("/r/CT-0.tar.gz", data), data, "CT-0"),
        file_entry(server.add("/r/CT-23.zip", data23), data23, "CT-23"),
    ])
    dest = tmp_path / "d"
    with pytest.raises(DownloadError, match=r"CT-0\.tar\.gz: refusing .*study_0002.*hard link"):
        download_dataset("fake", dest, registry=registry, progress=False)
    assert sorted(p.name for p in dest.iterdir()) == [".downloads"]


# --------------------------------------------------------------------------- no network, HTTP errors


def test_no_network_names_the_url_and_the_manual_route(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/release/CT-0.zip"
    registry = write_registry(tmp_path / "reg.json", [
        file_entry(url, b"x" * 10, "CT-0"),
        file_entry(url.replace("CT-0", "CT-23"), b"x" * 10, "CT-23"),
    ])
    dest = tmp_path / "d"
    with pytest.raises(DownloadError) as info:
        download_dataset("fake", dest, registry=registry, progress=False)
    message = str(info.value)
    assert message.startswith(f"cannot reach {url} (")
    assert "\n" not in message
    for needed in ["offline", "CT-0.zip and CT-23.zip in a browser", f"{dest}/CT-0/*.nii.gz",
                   f"{dest}/CT-23/*.nii.gz", "Colab", "Google Drive",
                   f"python -m ctutils data preprocess --src {dest}"]:
        assert needed in message
    assert not list((dest / ".downloads").glob("*.part"))


def test_dns_failure_is_reported_as_offline(two_archives, tmp_path, monkeypatch):
    registry, _, _ = two_archives

    def no_dns(request, timeout):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(download.urllib.request, "urlopen", no_dns)
    with pytest.raises(DownloadError, match=r"cannot reach http://127\.0\.0\.1:\d+/release/CT-0\.zip "
                                            r"\(\[Errno -2\] Name or service not known\); are you offline"):
        download_dataset("fake", tmp_path / "d", registry=registry, progress=False)


def test_http_404_names_the_url(server, tmp_path):
    url = server.url("/missing/CT-0.zip")
    registry = write_registry(tmp_path / "reg.json", [
        file_entry(url, b"x" * 10, "CT-0"), file_entry(server.url("/missing/CT-23.zip"), b"x", "CT-23"),
    ])
    with pytest.raises(DownloadError, match=rf"{re.escape(url)}: HTTP 404"):
        download_dataset("fake", tmp_path / "d", registry=registry, progress=False)


# --------------------------------------------------------------------------- folders already there


def test_folder_placed_by_hand_is_never_overwritten(server, two_archives, tmp_path):
    registry, _, _ = two_archives
    dest = tmp_path / "d"
    (dest / "CT-0").mkdir(parents=True)
    (dest / "CT-0" / "mine.nii.gz").write_bytes(b"precious")
    with pytest.raises(DownloadError, match=r"CT-0: already exists with 1 scan\(s\) but was not extracted"):
        download_dataset("fake", dest, registry=registry, progress=False)
    assert (dest / "CT-0" / "mine.nii.gz").read_bytes() == b"precious"
    assert server.requests == []


def test_complete_folder_placed_by_hand_is_used_as_is(server, tmp_path):
    data, _ = class_zip("CT-0", 1)
    data23, _ = class_zip("CT-23", 101)
    registry = write_registry(tmp_path / "reg.json", [
        file_entry(server.add("/r/CT-0.zip", data), data, "CT-0"),
        file_entry(server.add("/r/CT-23.zip", data23), data23, "CT-23"),
    ], counts={"CT-0": 1, "CT-23": 2})
    dest = tmp_path / "d"
    (dest / "CT-0").mkdir(parents=True)
    (dest / "CT-0" / "mine.nii.gz").write_bytes(b"precious")

    download_dataset("fake", dest, registry=registry, progress=False)

    assert [r.path for r in server.requests] == ["/r/CT-23.zip"]
    assert sorted(p.name for p in (dest / "CT-0").iterdir()) == ["mine.nii.gz"]


# --------------------------------------------------------------------------- other kinds, registry


def test_manual_dataset_explains_where_to_get_it(tmp_path):
    dest = tmp_path / "full"
    with pytest.raises(DownloadError) as info:
        download_dataset("mosmeddata-full", dest, progress=False)
    message = str(info.value)
    for needed in ["not downloaded automatically", "https://mosmed.ai/datasets/covid19_1110",
                   "CC BY-NC-ND 3.0", f"{dest}/CT-0/*.nii.gz", f"{dest}/CT-4/*.nii.gz",
                   "python -m ctutils data preprocess"]:
        assert needed in message


def test_manual_dataset_already_in_place_is_accepted(tmp_path):
    for folder in ["CT-0", "CT-1", "CT-2", "CT-3", "CT-4"]:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "study_0001.nii.gz").write_bytes(b"x")
    assert download_dataset("mosmeddata-full", tmp_path, progress=False) == tmp_path


def test_synthetic_dataset_points_to_the_generator(tmp_path):
    with pytest.raises(DownloadError, match=r"generated, not downloaded: run `python -m ctutils data synth"):
        download_dataset("synthetic", tmp_path / "s", progress=False)


def test_unknown_dataset_and_bad_registry(tmp_path):
    with pytest.raises(DatasetError, match=r"unknown dataset 'nope' \(known: mosmeddata-ct0-ct23"):
        download_dataset("nope", tmp_path, progress=False)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(DatasetError, match=rf"{re.escape(str(bad))}: registry is not valid JSON"):
        download_dataset("fake", tmp_path / "d", registry=bad, progress=False)
