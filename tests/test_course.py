"""ctutils.course: profiles and paths, metrics, student copies, and the papermill runner on tiny fake chapters."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from ctutils import course
from ctutils.course import CourseError, StudentCopyError

# ----------------------------------------------------------------------------- helpers


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


# ----------------------------------------------------------------------------- profiles and paths


def test_default_paths_of_each_profile_and_dataset(tmp_path: Path) -> None:
    root = fake_repo(tmp_path)
    quick = course.course_config("quick", "synthetic", root=root)
    assert quick.data_dir == root / "data" / "synthetic-quick"
    assert quick.cache_dir == root / "data" / "cache" / "synthetic-quick-64x64x32"
    assert quick.run_dir == root / "runs" / "quick-synthetic"
    assert quick.model_path == root / "runs" / "quick-synthetic" / "model.keras"
    full = course.course_config("full", "mosmeddata", root=root)
    assert full.data_dir == root / "data" / "mosmeddata"
    assert full.cache_dir == root / "data" / "cache" / "mosmeddata-128x128x64"
    assert full.run_dir == root / "runs" / "full-mosmeddata"
    assert full.registry_name == "mosmeddata-ct0-ct23"
    assert quick.preprocess.shape == (64, 64, 32)
    assert full.train_kwargs() == {"model": "cnn3d", "recipe": "reference", "epochs": 100, "batch_size": 2,
                                   "seed": 0, "model_kwargs": {}}


def test_profiles_print_as_plain_data() -> None:
    quick = course.PROFILES["quick"].to_dict()
    assert quick["shape"] == [64, 64, 32]
    assert (quick["n_normal"], quick["n_abnormal"], quick["size"], quick["epochs"]) == (100, 100, 256, 20)
    assert quick["model"] == "cnn3d-small"
    assert course.PROFILES["full"].to_dict()["shape"] == [128, 128, 64]
    assert json.loads(json.dumps(quick)) == quick


def test_paths_resolve_from_the_notebooks_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake_repo(tmp_path)
    monkeypatch.chdir(root / "notebooks")
    assert course.find_root() == root.resolve()
    cfg = course.course_config("quick", "synthetic", chapter="00_setup")
    assert cfg.root == root.resolve()
    assert cfg.data_dir == root.resolve() / "data" / "synthetic-quick"
    assert cfg.relative(cfg.cache_dir) == "data/cache/synthetic-quick-64x64x32"
    assert "data      data/synthetic-quick" in cfg.describe()


def test_without_a_checkout_the_current_folder_is_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    colab = tmp_path / "content"
    colab.mkdir()
    monkeypatch.chdir(colab)
    assert course.find_root() == colab.resolve()
    assert course.course_config().data_dir == colab.resolve() / "data" / "synthetic-quick"


def test_the_environment_can_name_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """nbgrader runs a chapter in autograded/<student>/<assignment>/ of its own folder: CT3D_COURSE_ROOT names the course."""
    root = fake_repo(tmp_path)
    grading = tmp_path / "grading" / "autograded" / "alice" / "00_setup"
    grading.mkdir(parents=True)
    monkeypatch.chdir(grading)
    assert course.find_root() == grading.resolve()  # no checkout above: the current folder
    monkeypatch.setenv(course.ROOT_ENV, str(root))
    assert course.find_root() == root.resolve()
    cfg = course.course_config("quick", "synthetic")
    assert cfg.data_dir == root.resolve() / "data" / "synthetic-quick"
    assert cfg.run_dir == root.resolve() / "runs" / "quick-synthetic"
    assert course.find_root(grading) == grading.resolve()  # an explicit start is not overridden
    monkeypatch.chdir(root / "notebooks")
    other = fake_repo(tmp_path / "elsewhere")
    monkeypatch.setenv(course.ROOT_ENV, str(other))
    assert course.find_root() == other.resolve()  # the variable wins over the checkout around the folder
    monkeypatch.setenv(course.ROOT_ENV, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=r"missing: the course root named by CT3D_COURSE_ROOT is not a folder"):
        course.course_config()


def test_one_rule_for_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Defaults resolve against the root; a folder passed as a parameter against the current folder."""
    root = fake_repo(tmp_path)
    notebooks = root / "notebooks"
    monkeypatch.chdir(notebooks)  # papermill … --cwd notebooks -p run_dir runs/x
    cfg = course.course_config("quick", "synthetic", run_dir="runs/x", cache_dir="../data/cache/mine")
    assert cfg.run_dir == notebooks.resolve() / "runs" / "x"
    assert cfg.cache_dir == root.resolve() / "data" / "cache" / "mine"
    assert cfg.data_dir == root.resolve() / "data" / "synthetic-quick"
    assert all(p.is_absolute() for p in (cfg.run_dir, cfg.cache_dir, cfg.data_dir))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert course.course_config(data_dir="~/scans").data_dir == (tmp_path / "home" / "scans").resolve()


def test_overrides_and_empty_strings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake_repo(tmp_path)
    monkeypatch.chdir(tmp_path)
    cfg = course.course_config("quick", "synthetic", root=root, data_dir="mine", cache_dir="", run_dir=None, seed=3)
    assert cfg.data_dir == (tmp_path / "mine").resolve()
    assert cfg.cache_dir == root.resolve() / "data" / "cache" / "synthetic-quick-64x64x32"
    assert cfg.seed == 3 and cfg.train_kwargs()["seed"] == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"profile": "huge"}, "unknown profile 'huge'; choose one of quick, full"),
        ({"dataset": "lidc"}, "unknown dataset 'lidc'; choose one of synthetic, mosmeddata"),
        ({"seed": 1.5}, "seed must be an integer, got 1.5"),
    ],
)
def test_bad_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        course.course_config(**kwargs)


def test_record_metrics_merges_per_chapter_and_converts_numpy(tmp_path: Path) -> None:
    path = course.record_metrics(tmp_path, "00_setup", {"n": np.int64(80)})
    course.record_metrics(tmp_path, "05_training", {"val_auc": np.float32(0.75), "bad": float("nan")})
    course.record_metrics(tmp_path, "00_setup", {"m": [1, 2]})
    assert json.loads(path.read_text()) == {
        "00_setup": {"n": 80, "m": [1, 2]},
        "05_training": {"val_auc": 0.75, "bad": None},
    }
    with pytest.raises(ValueError, match="cannot be written as JSON"):
        course.record_metrics(tmp_path, "00_setup", {"x": object()})


def test_record_and_save_figure_need_a_chapter(tmp_path: Path) -> None:
    cfg = course.course_config(root=tmp_path, run_dir=tmp_path / "run")
    with pytest.raises(ValueError, match="pass chapter='NN_topic'"):
        cfg.record(n=1)
    named = course.course_config(root=tmp_path, run_dir=tmp_path / "run", chapter="01_data")
    with pytest.raises(ValueError, match="figure name 'a b'"):
        named.save_figure(object(), "a b")


def test_colab_url_and_fork(tmp_path: Path) -> None:
    assert course.colab_url("03_augmentation.ipynb", repo="me/fork") == (
        "https://colab.research.google.com/github/me/fork/blob/main/notebooks/03_augmentation.ipynb"
    )
    folder = tmp_path / "nb"
    folder.mkdir()
    badge = course.colab_badge("00_setup.ipynb")
    setup = f'REPO = "{course.COLAB_REPO}"\nprint(REPO)'
    write_nb(folder / "00_setup.ipynb", [new_markdown_cell(badge), code(setup), code("x = 1")])
    write_nb(folder / "01_data.ipynb", [code("y = 2")])
    assert course.set_colab_repo("me/fork", source=folder) == [folder / "00_setup.ipynb"]
    cells = nbformat.read(folder / "00_setup.ipynb", as_version=4).cells
    assert "github/me/fork/blob/main/notebooks/00_setup.ipynb" in cells[0].source
    assert 'REPO = "me/fork"' in cells[1].source
    with pytest.raises(ValueError, match="expected 'owner/name'"):
        course.set_colab_repo("not a repo", source=folder)


def test_list_chapters_ignores_other_files(tmp_path: Path) -> None:
    for name in ("01_data.ipynb", "00_setup.ipynb", "scratch.ipynb", "README.md", "1_bad.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in course.list_chapters(tmp_path)] == ["00_setup.ipynb", "01_data.ipynb"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no chapter notebooks"):
        course.list_chapters(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="notebooks folder not found"):
        course.list_chapters(tmp_path / "missing")


# ----------------------------------------------------------------------------- student copies


def test_strip_solutions_keeps_indentation_and_the_rest() -> None:
    source = (
        "def f(x):\n"
        "    '''Doc.'''\n"
        "    ### BEGIN SOLUTION\n"
        "    y = x + 1\n"
        "    return y\n"
        "    ### END SOLUTION\n"
        "\n"
        "### BEGIN SOLUTION\n"
        "answer = 42\n"
        "### END SOLUTION\n"
        "print('after')"
    )
    new, count = course.strip_solutions(source)
    assert count == 2
    message = 'raise NotImplementedError("Exercise: write your code here, then run the check cell below")'
    assert new == (
        "def f(x):\n"
        "    '''Doc.'''\n"
        "    # YOUR CODE HERE\n"
        f"    {message}\n"
        "\n"
        "# YOUR CODE HERE\n"
        f"{message}\n"
        "print('after')"
    )


def test_strip_solutions_in_markdown() -> None:
    new, count = course.strip_solutions("Answer:\n### BEGIN SOLUTION\nIt is 42.\n### END SOLUTION\n", markdown=True)
    assert (new, count) == ("Answer:\nYOUR ANSWER HERE\n", 1)


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ("a = 1\n### BEGIN SOLUTION\nb = 2\n", r"nb.ipynb, cell 4: line 2: '### BEGIN SOLUTION' has no '### END SOLUTION'"),
        ("a = 1\n### END SOLUTION\n", r"nb.ipynb, cell 4: line 2: '### END SOLUTION' without a '### BEGIN SOLUTION'"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n",
         r"nb.ipynb, cell 4: line 2: '### BEGIN SOLUTION' inside the block opened at line 1"),
    ],
)
def test_unbalanced_markers(source: str, match: str) -> None:
    with pytest.raises(StudentCopyError, match=match):
        course.strip_solutions(source, where="nb.ipynb, cell 4")


def _chapter_with_exercises(path: Path) -> Path:
    cells = [
        new_markdown_cell("# 00 · A chapter\nSome *text*."),
        code("import math\nprint(math.pi)", outputs=[stdout("3.14\n")], count=1, tags=["setup"]),
        code("profile = 'quick'", tags=["parameters"], count=2),
        new_markdown_cell("### Exercise 1\nWrite `double`."),
        code("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x  # SECRET-1\n    ### END SOLUTION",
             outputs=[stdout("defined\n")], count=3),
        code("exercises.check_double(double);", outputs=[stdout("✅ Correct: doubles\n")], count=4),
        new_markdown_cell("Why? \n### BEGIN SOLUTION\nBecause SECRET-2.\n### END SOLUTION"),
        code("print('kept')", outputs=[stdout("kept\n")], count=5),
        code("ok = my_check()", outputs=[stdout("✅ tagged\n")], count=6, tags=["check"]),
    ]
    return write_nb(path, cells)


def test_student_copies(tmp_path: Path) -> None:
    source = tmp_path / "notebooks"
    source.mkdir()
    _chapter_with_exercises(source / "00_a.ipynb")
    write_nb(source / "01_b.ipynb", [code("x = 1", outputs=[stdout("x\n")], count=1)])
    (source / "scratch.ipynb").write_text("not a chapter")
    written = course.make_student_copies(tmp_path / "student", source=source)
    assert written == [tmp_path / "student" / "00_a.ipynb", tmp_path / "student" / "01_b.ipynb"]

    original = nbformat.read(source / "00_a.ipynb", as_version=4)
    student = nbformat.read(written[0], as_version=4)
    raw = written[0].read_text()
    assert "SECRET" not in raw and "BEGIN SOLUTION" not in raw and "END SOLUTION" not in raw
    assert student.cells[4].source == (
        "def double(x):\n    # YOUR CODE HERE\n"
        '    raise NotImplementedError("Exercise: write your code here, then run the check cell below")\n'
    )
    assert student.cells[6].source == "Why? \nYOUR ANSWER HERE\n"
    for index in (4, 5, 8):  # solution cell and check cells: outputs cleared
        assert student.cells[index].outputs == [] and student.cells[index].execution_count is None
    for index in (0, 1, 2, 3, 7):  # everything else: identical
        assert json.dumps(student.cells[index], sort_keys=True) == json.dumps(original.cells[index], sort_keys=True)
    assert student.metadata == original.metadata
    assert written[1].read_text() == (source / "01_b.ipynb").read_text()


def test_student_copies_refuse_unbalanced_markers_and_write_nothing(tmp_path: Path) -> None:
    source = tmp_path / "notebooks"
    source.mkdir()
    _chapter_with_exercises(source / "00_a.ipynb")
    write_nb(source / "01_b.ipynb", [new_markdown_cell("# B"), code("x = 1"), code("### BEGIN SOLUTION\ny = 2")])
    with pytest.raises(StudentCopyError, match=r"01_b.ipynb, cell 3: line 1: '### BEGIN SOLUTION' has no"):
        course.make_student_copies(tmp_path / "student", source=source)
    assert not (tmp_path / "student").exists()


def test_student_copies_never_overwrite_the_solutions(tmp_path: Path) -> None:
    _chapter_with_exercises(tmp_path / "00_a.ipynb")
    with pytest.raises(ValueError, match="would overwrite the solutions"):
        course.make_student_copies(tmp_path, source=tmp_path)


# ----------------------------------------------------------------------------- the runner


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
    out = course.run_course(profile="quick", dataset="synthetic", out=tmp_path / "out", chapters=["00", "01_second"],
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
        course.run_course(out=out, source=folder, progress=False)
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
        course.run_course(source=folder, chapters=["07"], out=tmp_path / "out")
    with pytest.raises(ValueError, match="unknown profile"):
        course.run_course(source=folder, profile="tiny", out=tmp_path / "out")


def test_ensure_model_reuses_a_finished_run_and_resumes_an_unfinished_one(tmp_path, monkeypatch):
    import ctutils.training

    cfg = course.course_config("quick", "synthetic", root=tmp_path)
    cfg.run_dir.mkdir(parents=True)
    cfg.model_path.write_bytes(b"a model")
    calls = []
    monkeypatch.setattr(course, "ensure_cache", lambda cfg, **kw: None)
    monkeypatch.setattr(ctutils.training, "train", lambda *a, **kw: calls.append(kw) or type("R", (), {"model_path": cfg.model_path})())
    # Finished by its epoch count (e.g. chapter 05 run with epochs=5): used as it is.
    (cfg.run_dir / "state.json").write_text(json.dumps({"epochs_done": 5, "finished": False, "stop_reason": "epochs"}))
    assert course.ensure_model(cfg) == cfg.model_path and calls == []
    # Interrupted after 3 epochs: resumed, never used half-trained.
    (cfg.run_dir / "state.json").write_text(json.dumps({"epochs_done": 3, "finished": False, "stop_reason": None}))
    assert course.ensure_model(cfg) == cfg.model_path
    assert len(calls) == 1 and calls[0]["resume"] is True


def test_a_dataset_with_the_shortcut_marker_is_never_the_courses(tmp_path):
    from ctutils.phantoms import PHANTOM_VERSION

    cfg = course.course_config("quick", "synthetic", data_dir=tmp_path / "data")
    p = cfg.profile
    studies = []
    for i in range(p.n_normal + p.n_abnormal):
        path = f"CT-{'0' if i < p.n_normal else '23'}/study_{i + 1:04d}.nii.gz"
        (tmp_path / "data" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / path).touch()
        studies.append({"path": path})
    meta = {"complete": True, "version": PHANTOM_VERSION, "seed": p.data_seed, "normal": p.n_normal,
            "abnormal": p.n_abnormal, "size": p.size, "layout": "keras-example", "grades": [2, 3],
            "studies": studies}
    (tmp_path / "data" / "synthetic.json").write_text(json.dumps(meta))
    assert course._synthetic_complete(cfg)  # written before the option existed: unmarked
    (tmp_path / "data" / "synthetic.json").write_text(json.dumps({**meta, "shortcut_marker": False}))
    assert course._synthetic_complete(cfg)
    (tmp_path / "data" / "synthetic.json").write_text(json.dumps({**meta, "shortcut_marker": True}))
    assert not course._synthetic_complete(cfg)
