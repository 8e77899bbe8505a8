"""Where the output goes: a live notebook page, a notebook run in batch, or a terminal (all chapters).

A widget (the slice viewer's slider, a tqdm progress bar) only works while a kernel is connected to
a page that renders it: JupyterLab, Jupyter Notebook 7, Colab. In a notebook executed in batch
(papermill, nbval) nothing renders it: a slider is dead, and a tqdm bar is saved as its first
state, "0%| | 0/120", frozen in the committed notebook. So the course asks where it runs instead of
asking the learner:

- :func:`widgets_live`: True in a kernel started by a Jupyter server (JupyterLab puts
  ``JPY_SESSION_NAME`` in the environment of the kernels it starts) or in Colab; False under
  papermill and nbval, which start their kernels themselves, and outside a kernel. The environment
  variable ``CTUTILS_WIDGETS`` (``1`` or ``0``) overrides the detection; the batch runner
  (:func:`ctutils.runner.run_course`) sets it to ``0``.
- :func:`progress_bar`: a tqdm widget in a live notebook, a text bar on stderr in a terminal, and
  no bar at all in a notebook run in batch.
- :func:`display_path`: a path as the course prints it, relative to the repository root, so that
  no output holds the folder of the machine that ran it.

This module imports neither ipywidgets nor tqdm at import time.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["WIDGETS_ENV", "display_path", "in_kernel", "progress_bar", "widgets_live"]

#: Environment variable that overrides :func:`widgets_live`: ``1`` (widgets) or ``0`` (static output).
WIDGETS_ENV = "CTUTILS_WIDGETS"


def in_kernel() -> bool:
    """True when this code runs in a Jupyter (IPython) kernel, live or in batch."""
    if "IPython" not in sys.modules:  # a kernel has imported it long before any chapter code runs
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def widgets_live() -> bool:
    """True when widgets shown now will be rendered and answered: a kernel behind a live notebook page.

    Returns
    -------
    bool
        ``CTUTILS_WIDGETS`` when it is set (``1`` or ``0``); otherwise True in a kernel that a
        Jupyter server started (``JPY_SESSION_NAME`` is set) or in Colab, with ipywidgets installed.

    Raises
    ------
    ValueError
        ``CTUTILS_WIDGETS`` is set to something other than ``0`` or ``1``.
    """
    forced = os.environ.get(WIDGETS_ENV, "").strip()
    if forced:
        if forced not in ("0", "1"):
            raise ValueError(f"environment variable {WIDGETS_ENV}={forced!r}: expected 1 (widgets) or 0 (static output)")
        return forced == "1"
    if importlib.util.find_spec("ipywidgets") is None or not in_kernel():
        return False
    return bool(os.environ.get("JPY_SESSION_NAME")) or "google.colab" in sys.modules


def progress_bar(iterable: Iterable[Any] | None = None, *, disable: bool = False, **kwargs: Any) -> Any:
    """A tqdm progress bar for where the code runs: a widget, a text bar on stderr, or none.

    Parameters
    ----------
    iterable : iterable, optional
        Passed to tqdm (wrap it, or call ``bar.update()`` with ``total=``).
    disable : bool
        No bar whatever the place (e.g. ``disable=not progress``).
    **kwargs
        tqdm's keyword arguments (``total``, ``desc``, ``unit``, ``leave``…).

    Returns
    -------
    tqdm.tqdm
        ``tqdm.notebook.tqdm`` (a widget) when :func:`widgets_live`; a disabled bar in any other
        kernel (a notebook run in batch keeps no frozen "0%" bar); ``tqdm.tqdm`` on stderr outside
        a kernel (terminal, scripts, tests).
    """
    if in_kernel():
        if widgets_live():
            from tqdm.notebook import tqdm
        else:
            from tqdm import tqdm

            disable = True
    else:
        from tqdm import tqdm
    return tqdm(iterable, disable=disable, **kwargs)


def display_path(path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None) -> str:
    """``path`` as the course prints it: relative to the repository root when it lies inside it.

    Parameters
    ----------
    path : path-like
        Absolute, or relative to the current folder.
    root : path-like, optional
        The repository root (default :func:`ctutils.course.find_root` from the current folder).

    Returns
    -------
    str
        POSIX-style path relative to ``root`` (``"data/cache/quick"``), or ``path`` as given when
        it lies outside the root.

    Examples
    --------
    >>> display_path("/course/data/cache/quick", root="/course")
    'data/cache/quick'
    >>> display_path("/elsewhere/scan.nii.gz", root="/course")
    '/elsewhere/scan.nii.gz'
    """
    if root is None:
        from ctutils.course import find_root

        root = find_root()
    try:
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        return os.fspath(path)
