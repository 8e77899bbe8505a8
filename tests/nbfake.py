"""Tiny notebooks for the tests of the course tools (course, runner, student copies, Colab)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output


def fake_repo(tmp_path: Path) -> Path:
    """A folder that looks like a checkout of the course: pyproject.toml, ctutils/, notebooks/."""
    root = tmp_path / "repo"
    (root / "ctutils").mkdir(parents=True)
    (root / "notebooks").mkdir()
    (root / "pyproject.toml").write_text("[project]\nname = 'ctutils'\n")
    return root


def write_nb(path: Path, cells: list) -> Path:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def code(source: str, *, outputs: list | None = None, tags: list[str] | None = None, count: int | None = None):
    cell = new_code_cell(source, execution_count=count)
    cell.outputs = outputs or []
    if tags:
        cell.metadata["tags"] = tags
    return cell


def stdout(text: str):
    return new_output("stream", name="stdout", text=text)
