"""ctutils.runner: the papermill runner on tiny fake chapters."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell

from nbfake import code, fake_repo, write_nb
from ctutils import runner
from ctutils.runner import CourseError


RECORD_CELL = """
import json, os
from ctutils import course
cfg = course.course_config(profile, dataset, chapter="00_first", run_dir=run_dir)
seen = {"profile": profile, "dataset": dataset, "run_dir": run_dir, "extra": extra,
        "cwd": os.getcwd(), "data_dir": str(cfg.data_dir)}
with open(os.path.join(run_dir, "seen.json"), "w") as f:
    json.dump(seen, f)
cfg.record(n_things=3, score=0.5)
os.makedirs(cfg.figures_dir, exist_ok=True)
open(cfg.figures_dir / "00_first-plot.png", "wb").close()
print("recorded")
"""


def fake_chapters(root: Path, *, fail: bool) -> Path:
    folder = root / "notebooks"
    params = code('profile = "full"\ndataset = "mosmeddata"\nrun_dir = None\nextra = 0', tags=["parameters"])
    write_nb(folder / "00_first.ipynb", [new_markdown_cell("# First"), params, code(RECORD_CELL)])
    second = [new_markdown_cell("# Second"), code("run_dir = None", tags=["parameters"]),
              code("x = 1"),
              code("import os\nopen(os.path.join(run_dir, 'second-ran'), 'w').close()")]
    if fail:
        second.insert(3, code("# a comment first\nraise ValueError('boom in the second chapter')"))
    write_nb(folder / "01_second.ipynb", second)
    write_nb(folder / "02_third.ipynb", [code("run_dir = None", tags=["parameters"]),
                                         code("import os\nopen(os.path.join(run_dir, 'third-ran'), 'w').close()")])
    return folder


def test_runner_injects_parameters_and_writes_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = fake_repo(tmp_path)
    folder = fake_chapters(root, fail=False)
    out = runner.run_course(profile="quick", dataset="synthetic", out=tmp_path / "out", chapters=["00", "01_second"],
                            source=folder, parameters={"extra": 7}, write_back=True)
    assert out == (tmp_path / "out").resolve()
    seen = json.loads((out / "seen.json").read_text())
    assert seen == {"profile": "quick", "dataset": "synthetic", "run_dir": str(out), "extra": 7,
                    "cwd": str(folder.resolve()), "data_dir": str(root.resolve() / "data" / "synthetic-quick")}
    assert (out / "second-ran").exists() and not (out / "third-ran").exists()  # only the chosen chapters
    assert sorted(p.name for p in (out / "notebooks").glob("*.ipynb")) == ["00_first.ipynb", "01_second.ipynb"]
    summary = (out / "summary.md").read_text()
    assert "| [00_first](notebooks/00_first.ipynb) | ✅ passed |" in summary
    assert "n_things = 3, score = 0.5" in summary
    assert "![00_first-plot](figures/00_first-plot.png)" in summary
    printed = capsys.readouterr().out
    assert "[1/2] 00_first.ipynb done in" in printed and "[2/2] 01_second.ipynb done in" in printed

    # write-back: outputs in the source, without papermill's injected cell and metadata
    back = nbformat.read(folder / "00_first.ipynb", as_version=4)
    assert [c.source[:9] for c in back.cells if c.cell_type == "code"][:1] == ['profile =']
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in back.cells)
    assert "papermill" not in back.metadata and all("papermill" not in c.metadata for c in back.cells)
    assert back.cells[2].outputs[0].text == "recorded\n"


def test_runner_stops_at_the_first_failing_cell(tmp_path: Path) -> None:
    root = fake_repo(tmp_path)
    folder = fake_chapters(root, fail=True)
    out = tmp_path / "out"
    with pytest.raises(CourseError) as caught:
        runner.run_course(out=out, source=folder, progress=False)
    error = caught.value
    message = str(error)
    assert message.startswith("chapter 01_second.ipynb, cell 4 (execution count ")
    assert "ValueError: boom in the second chapter" in message
    assert "the cell: raise ValueError('boom in the second chapter')" in message
    assert str(out.resolve() / "notebooks" / "01_second.ipynb") in message
    assert (error.chapter, error.cell) == ("01_second.ipynb", 4)
    assert error.executed.is_file()
    assert not (out / "second-ran").exists() and not (out / "third-ran").exists()
    summary = (out / "summary.md").read_text()
    assert "✅ passed" in summary and "❌ failed" in summary and "| 02_third | ⏭ not run |" in summary
    assert "boom in the second chapter" in summary


def test_runner_rejects_unknown_chapters_and_names(tmp_path: Path) -> None:
    folder = fake_chapters(fake_repo(tmp_path), fail=False)
    with pytest.raises(ValueError, match="unknown chapter '07'; the chapters are 00_first, 01_second, 02_third"):
        runner.run_course(source=folder, chapters=["07"], out=tmp_path / "out")
    with pytest.raises(ValueError, match="unknown profile"):
        runner.run_course(source=folder, profile="tiny", out=tmp_path / "out")
