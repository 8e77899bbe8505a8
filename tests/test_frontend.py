"""ctutils.frontend: widgets where a live page renders them, nothing frozen in batch runs, relative paths."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import nbformat
import pytest
from tqdm import std
from tqdm import tqdm as text_tqdm

from ctutils import frontend
from ctutils.frontend import WIDGETS_ENV, display_path, progress_bar, widgets_live


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch):
    """Pretend to run in a Jupyter kernel; no Jupyter server, no override."""
    monkeypatch.setattr(frontend, "in_kernel", lambda: True)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.delenv(WIDGETS_ENV, raising=False)
    return monkeypatch


def test_outside_a_kernel_there_are_no_widgets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WIDGETS_ENV, raising=False)
    monkeypatch.setenv("JPY_SESSION_NAME", "notebooks/01_data.ipynb")
    assert frontend.in_kernel() is False  # pytest is not a kernel
    assert widgets_live() is False


def test_a_kernel_started_by_jupyterlab_has_live_widgets(kernel) -> None:
    assert widgets_live() is False  # papermill and nbval start kernels without JPY_SESSION_NAME
    kernel.setenv("JPY_SESSION_NAME", "/home/learner/course/notebooks/01_data.ipynb")
    assert widgets_live() is True


def test_colab_has_live_widgets(kernel) -> None:
    kernel.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert widgets_live() is True


def test_the_environment_variable_overrides_the_detection(kernel) -> None:
    kernel.setenv("JPY_SESSION_NAME", "notebooks/01_data.ipynb")
    kernel.setenv(WIDGETS_ENV, "0")
    assert widgets_live() is False
    kernel.delenv("JPY_SESSION_NAME")
    kernel.setenv(WIDGETS_ENV, "1")
    assert widgets_live() is True
    kernel.setenv(WIDGETS_ENV, "yes")
    with pytest.raises(ValueError, match=r"CTUTILS_WIDGETS='yes': expected 1 \(widgets\) or 0"):
        widgets_live()


def test_progress_bar_in_a_terminal_is_a_text_bar(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv(WIDGETS_ENV, raising=False)
    bar = progress_bar(total=3, desc="phantoms", unit="study", mininterval=0)
    assert type(bar) is text_tqdm and not bar.disable
    for _ in range(3):
        bar.update()
    bar.close()
    err = capsys.readouterr().err
    assert "phantoms: 100%" in err and "3/3" in err
    assert progress_bar(range(2), disable=True).disable


def test_progress_bar_in_a_batch_kernel_is_off(kernel, capsys: pytest.CaptureFixture) -> None:
    bar = progress_bar(total=120, desc="phantoms")
    assert isinstance(bar, std.tqdm) and bar.disable
    bar.update(120)
    bar.close()
    assert capsys.readouterr() == ("", "")  # nothing that could be saved as "0%| | 0/120"


def test_progress_bar_in_a_live_kernel_is_a_widget(kernel) -> None:
    pytest.importorskip("ipywidgets")
    from tqdm.notebook import tqdm as widget_tqdm

    kernel.setenv("JPY_SESSION_NAME", "notebooks/00_setup.ipynb")
    bar = progress_bar(total=2, desc="phantoms")
    assert isinstance(bar, widget_tqdm) and not bar.disable
    bar.update(2)
    bar.close()
    assert bar.container.children[1].value == 2  # the widget shows its final state, not 0 %


def test_display_path_is_relative_to_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "course"
    assert display_path(root / "data" / "cache" / "quick", root=root) == "data/cache/quick"
    assert display_path(root, root=root) == "."
    assert display_path("/elsewhere/scan.nii.gz", root=root) == "/elsewhere/scan.nii.gz"
    (root / "ctutils").mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    (root / "notebooks").mkdir()
    monkeypatch.chdir(root / "notebooks")  # as a chapter's kernel: the root is found above
    assert display_path("../runs/quick-synthetic") == "runs/quick-synthetic"
    assert display_path(root / "data") == "data"


@pytest.mark.slow
@pytest.mark.parametrize(("env", "expected"), [({}, "False"), ({"JPY_SESSION_NAME": "notebooks/01_data.ipynb"}, "True")],
                         ids=["papermill-or-nbval", "jupyterlab"])
def test_detection_in_a_real_kernel(env: dict[str, str], expected: str) -> None:
    from nbclient import NotebookClient

    environ = {k: v for k, v in os.environ.items() if k not in ("JPY_SESSION_NAME", WIDGETS_ENV)} | env
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from ctutils.frontend import widgets_live\nprint(widgets_live())")]
    NotebookClient(nb, kernel_name="python3", timeout=300).execute(env=environ)
    assert nb.cells[0].outputs[0].text == f"{expected}\n"
