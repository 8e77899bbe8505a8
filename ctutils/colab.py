"""Google Colab: the chapters' "Open in Colab" badges and pointing them at a fork.

Each chapter opens with a badge (:func:`colab_badge`) and has a guarded set-up cell that clones
:data:`COLAB_REPO` and installs the course when it runs in Colab (it does nothing elsewhere).
A fork points both at itself with :func:`set_colab_repo`::

    python -c "from ctutils.colab import set_colab_repo; set_colab_repo('you/your-fork')"

This module imports nbformat only when it rewrites notebooks.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ctutils.atomic import write_notebook
from ctutils.course import list_chapters

__all__ = ["COLAB_REPO", "colab_badge", "colab_url", "set_colab_repo"]

#: GitHub ``owner/name`` that the "Open in Colab" badges and the Colab set-up cells point to.
#: A fork changes it in every notebook with :func:`set_colab_repo` (see notebooks/README.md).
COLAB_REPO = "ct3d-course/ct3d-course"


def colab_url(chapter: str, *, repo: str = COLAB_REPO, branch: str = "main") -> str:
    """The "Open in Colab" address of a chapter.

    Examples
    --------
    >>> colab_url("00_setup.ipynb")
    'https://colab.research.google.com/github/ct3d-course/ct3d-course/blob/main/notebooks/00_setup.ipynb'
    """
    return f"https://colab.research.google.com/github/{repo}/blob/{branch}/notebooks/{chapter}"


def colab_badge(chapter: str, *, repo: str = COLAB_REPO) -> str:
    """Markdown of the "Open in Colab" badge of a chapter."""
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(chapter, repo=repo)})"


def set_colab_repo(repo: str, *, source: str | os.PathLike[str] | None = None, old: str = COLAB_REPO) -> list[Path]:
    """Point every chapter's Colab badge and Colab set-up cell at another GitHub repository (a fork).

    Replaces ``github.com/<old>``, ``github/<old>/`` and the string ``"<old>"`` (the Colab cell's
    ``REPO``) in the cells of each chapter.

    Parameters
    ----------
    repo : str
        ``owner/name`` of the fork.
    source : path-like, optional
        Notebooks folder (default :func:`notebooks_dir`).
    old : str
        The repository the notebooks point to now (default :data:`COLAB_REPO`).

    Returns
    -------
    list of Path
        The notebooks that changed.
    """
    import nbformat

    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repo):
        raise ValueError(f"repository {repo!r}: expected 'owner/name'")
    changed = []
    for path in list_chapters(source):
        nb = nbformat.read(path, as_version=4)
        touched = False
        for cell in nb.cells:
            new = cell.source.replace(f"github.com/{old}", f"github.com/{repo}")
            new = new.replace(f"github/{old}/", f"github/{repo}/").replace(f'"{old}"', f'"{repo}"')
            if new != cell.source:
                cell.source, touched = new, True
        if touched:
            write_notebook(nb, path)
            changed.append(path)
    return changed
