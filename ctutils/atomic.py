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


def partial_name(path: Path) -> Path:
    """Return a hidden temporary name beside ``path`` that keeps its suffixes.

    Examples
    --------
    >>> partial_name(Path("/d/model.keras")).suffix
    '.keras'
    """
    return path.with_name(f".partial-{os.getpid()}-{secrets.token_hex(4)}-{path.name}")


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
