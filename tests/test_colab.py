"""ctutils.colab: the Open in Colab badges and pointing them at a fork."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell

from nbfake import code, write_nb
from ctutils import colab


def test_colab_url_and_fork(tmp_path: Path) -> None:
    assert colab.colab_url("03_augmentation.ipynb", repo="me/fork") == (
        "https://colab.research.google.com/github/me/fork/blob/main/notebooks/03_augmentation.ipynb"
    )
    folder = tmp_path / "nb"
    folder.mkdir()
    badge = colab.colab_badge("00_setup.ipynb")
    setup = f'REPO = "{colab.COLAB_REPO}"\nprint(REPO)'
    write_nb(folder / "00_setup.ipynb", [new_markdown_cell(badge), code(setup), code("x = 1")])
    write_nb(folder / "01_data.ipynb", [code("y = 2")])
    assert colab.set_colab_repo("me/fork", source=folder) == [folder / "00_setup.ipynb"]
    cells = nbformat.read(folder / "00_setup.ipynb", as_version=4).cells
    assert "github/me/fork/blob/main/notebooks/00_setup.ipynb" in cells[0].source
    assert 'REPO = "me/fork"' in cells[1].source
    with pytest.raises(ValueError, match="expected 'owner/name'"):
        colab.set_colab_repo("not a repo", source=folder)
