"""Atomic file writes: a file appears under its final name only once it is complete (JSON files too)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "partial_name", "write_json", "write_notebook"]


_PARTIAL_PREFIX = ".partial-"


def partial_name(path: Path) -> Path:
    """Return a hidden temporary name beside ``path`` that keeps its suffixes.

    The name is ``.partial-<pid>-<8 hex digits>-<name>``: the writing process's id lets
    :func:`remove_stale_partials` tell a dead run's leftover from a live run's file.

    Examples
    --------
    >>> partial_name(Path("/d/model.keras")).suffix
    '.keras'
    """
    return path.with_name(f"{_PARTIAL_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{path.name}")


def _partial_pid(name: str) -> int | None:
    """The process id in a :func:`partial_name`, or None if ``name`` is not one."""
    if not name.startswith(_PARTIAL_PREFIX):
        return None
    pid, _, rest = name[len(_PARTIAL_PREFIX):].partition("-")
    token, _, final = rest.partition("-")
    hex_digits = len(token) == 8 and all(c in "0123456789abcdef" for c in token)
    return int(pid) if pid.isdigit() and hex_digits and final else None


def _is_running(pid: int) -> bool:
    """True unless no process ``pid`` runs on this machine (one we may not signal still counts)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process, or no valid pid: leave its file alone
    return True


def remove_stale_partials(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the partial files (:func:`partial_name`) in ``folder`` whose writing process is gone.

    A run killed with SIGKILL (or by a power cut) cannot clean up after itself, so its
    ``.partial-<pid>-…`` files stay; call this at the start of the next run. Files of processes
    that still run (a concurrent run on the same folder, this process) are kept. Process ids
    are those of this machine: a folder shared by runs on several machines (a network file
    system) could lose a live run's file, whose run then fails with a missing file rather than
    writing a wrong one.

    Parameters
    ----------
    folder : path-like
        The folder to clean (not its subfolders); a missing folder holds nothing.

    Returns
    -------
    list of Path
        The files removed, sorted.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> live = partial_name(folder / "a.npy"); _ = live.write_bytes(b"")
    >>> remove_stale_partials(folder), live.exists()
    ([], True)
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in sorted(folder.glob(f"{_PARTIAL_PREFIX}*")):
        pid = _partial_pid(path.name)
        if pid is None or _is_running(pid) or not path.is_file():
            continue
        with contextlib.suppress(FileNotFoundError):  # a concurrent run may have removed it first
            path.unlink()
            removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; move it onto ``path`` only if the block succeeds.

    The temporary file lives in the same folder (so :func:`os.replace` is atomic) and ends with
    the same name, so libraries that look at the suffix (``.nii.gz``, ``.keras``, ``.npy``) still
    work. On any exception the temporary file is removed and the final name is untouched.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_name(final)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{final}: nothing was written to the temporary file {tmp.name}")
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_json(path: str | os.PathLike[str], data: Any, *, indent: int = 2) -> Path:
    """Write ``data`` as standard JSON (UTF-8, a final newline) to ``path``, atomically.

    Every JSON file the course writes goes through here: ``info.json`` of a cache, ``state.json``,
    ``history.json`` and ``train_config.json`` of a run, ``metrics.json``, ``synthetic.json``.

    Parameters
    ----------
    path : path-like
        The file to write; its folder is created.
    data : JSON-ready value
        Dicts, lists, strings, numbers, booleans, None.
    indent : int
        Indentation of the JSON text.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        ``data`` holds NaN or an infinity (JSON has neither); nothing is written then.

    Examples
    --------
    >>> import json, tempfile
    >>> target = write_json(Path(tempfile.mkdtemp()) / "a.json", {"epochs": 3})
    >>> json.loads(target.read_text())
    {'epochs': 3}
    """
    text = json.dumps(data, indent=indent, ensure_ascii=False, allow_nan=False) + "\n"
    final = Path(path)
    with atomic_path(final) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return final


def write_notebook(nb: Any, path: str | os.PathLike[str]) -> Path:
    """Write a notebook (an ``nbformat`` node) to ``path`` atomically; nbformat is imported only here.

    Used by the batch runner's write-back, student copies, nbgrader course folders and
    :func:`ctutils.colab.set_colab_repo`.
    """
    import nbformat

    final = Path(path)
    with atomic_path(final) as tmp:
        nbformat.write(nb, tmp)
    return final
