"""ctutils.classroom: the chapters' nbgrader metadata, the nbgrader course folder, and nbgrader itself on a chapter (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from ctutils import classroom, course, exercises
from ctutils.student import STUB_RAISE, is_check_cell
from ctutils.cli import main
from ctutils.classroom import PATH_NOTE, NbgraderMetadataError, nbgrader_metadata, nbgrader_problems

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CHAPTERS = course.list_chapters(NOTEBOOKS)

# ----------------------------------------------------------------------------- a small chapter


def code(source: str, *, tags: list[str] | None = None, nbgrader: dict | None = None):
    cell = new_code_cell(source)
    if tags:
        cell.metadata["tags"] = tags
    if nbgrader:
        cell.metadata["nbgrader"] = nbgrader
    return cell


def chapter() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell("# Chapter"),
        code("import sys  # Colab set-up"),
        code("from ctutils import course, exercises"),
        code('profile = "quick"\nrun_dir = None', tags=["parameters"]),
        new_markdown_cell("Folders:"),
        code("cfg = course.course_config(profile, run_dir=run_dir)"),
        code("x = 1"),
        code("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"),
        code("exercises.check_double(double);", tags=["nbval-check-output"]),
        code("def double(x):\n    ### BEGIN SOLUTION\n    return x + x\n    ### END SOLUTION"),
        code("exercises.check_double(double);"),
        new_markdown_cell("Why?\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"),
        code('exercises.check("00_setup/count_scans", count)'),
        code("ok = my_own_check()", tags=["check"]),
    ]
    return new_notebook(cells=cells)


def meta(nb, index: int) -> dict | None:
    return nb.cells[index].metadata.get("nbgrader")


def test_metadata_from_the_cells() -> None:
    original = chapter()
    nb = nbgrader_metadata(original, chapter="05_training.ipynb")
    assert all("nbgrader" not in c.metadata for c in original.cells)  # the input is left alone
    base = {"schema_version": 3, "task": False}
    locked = base | {"grade": False, "solution": False, "locked": True}
    assert meta(nb, 1) == locked | {"grade_id": "ch05_setup_1"}
    assert meta(nb, 2) == locked | {"grade_id": "ch05_setup_2"}
    assert meta(nb, 3) == locked | {"grade_id": "ch05_parameters"}
    assert meta(nb, 5) == locked | {"grade_id": "ch05_config"}
    assert meta(nb, 0) is meta(nb, 4) is meta(nb, 6) is None
    solution = base | {"grade": False, "solution": True, "locked": False}
    assert meta(nb, 7) == solution | {"grade_id": "ch05_double"}
    assert meta(nb, 9) == solution | {"grade_id": "ch05_double_2"}  # ids stay unique
    check = base | {"grade": True, "solution": False, "locked": True, "points": 1}
    assert meta(nb, 8) == check | {"grade_id": "ch05_check_double"}
    assert meta(nb, 10) == check | {"grade_id": "ch05_check_double_2"}
    assert meta(nb, 12) == check | {"grade_id": "ch05_check_count_scans"}
    assert meta(nb, 13) == check | {"grade_id": "ch05_check"}
    # nbgrader requires a markdown answer to be graded (by hand)
    assert meta(nb, 11) == base | {"grade": True, "solution": True, "locked": False, "points": 1,
                                   "grade_id": "ch05_answer"}
    assert nb.cells[3].source == f'{PATH_NOTE}\nprofile = "quick"\nrun_dir = None'
    assert nb.cells[8].metadata["tags"] == ["nbval-check-output"]  # other metadata kept
    assert nbgrader_problems(nb, chapter="05_training.ipynb") == []


def test_metadata_is_idempotent_and_follows_edits() -> None:
    nb = nbgrader_metadata(chapter(), chapter="05_training")
    assert nbgrader_metadata(nb, chapter="05_training") == nb
    nb.cells[8].metadata["nbgrader"]["points"] = 3  # an instructor's points are kept
    nb.cells[6].metadata["nbgrader"] = {"grade": True, "grade_id": "stale", "points": 1}
    del nb.cells[9:11]  # an exercise removed: the next ones keep their names
    nb.cells.insert(7, code("def triple(x):\n    ### BEGIN SOLUTION\n    return 3 * x\n    ### END SOLUTION"))
    again = nbgrader_metadata(nb, chapter="05_training")
    assert meta(again, 9)["points"] == 3
    assert meta(again, 6) is None  # stale metadata removed
    assert meta(again, 7)["grade_id"] == "ch05_triple"
    assert [meta(again, i)["grade_id"] for i in (10, 11)] == ["ch05_answer", "ch05_check_count_scans"]
    assert again.cells[3].source.count(PATH_NOTE) == 1
    assert nbgrader_metadata(again, chapter="05_training") == again


def test_nbgrader_accepts_the_metadata() -> None:
    from nbgrader.nbgraderformat import MetadataValidator

    MetadataValidator().validate_nb(nbgrader_metadata(chapter(), chapter="03_augmentation"))


def test_a_solution_inside_a_check_cell_is_refused() -> None:
    nb = chapter()
    nb.cells[8].source = "### BEGIN SOLUTION\nx = 2\n### END SOLUTION\nexercises.check_double(double)"
    with pytest.raises(NbgraderMetadataError, match=r"^01_data.ipynb, cell 9: a check cell holds a solution block"):
        nbgrader_metadata(nb, chapter="01_data.ipynb")


def test_missing_metadata_is_named_by_notebook_and_cell() -> None:
    """A new exercise added without rerunning the tag command fails the invariants test, naming it."""
    nb = nbgrader_metadata(chapter(), chapter="05_training")
    nb.cells.append(code("def half(x):\n    ### BEGIN SOLUTION\n    return x / 2\n    ### END SOLUTION"))
    nb.cells.append(code("exercises.check_half(half)"))
    nb.cells[3].metadata.pop("nbgrader")
    nb.cells[9].metadata["nbgrader"]["grade_id"] = "ch05_double"
    nb.cells[12].metadata["nbgrader"]["points"] = None
    problems = nbgrader_problems(nb, chapter="05_training.ipynb")
    fix = "; run `python -m ctutils course nbgrader-tag`"
    assert problems == [
        "05_training.ipynb, cell 4: the parameters cell is not locked" + fix,
        "05_training.ipynb, cell 10: grade_id 'ch05_double' already used by cell 8" + fix,
        "05_training.ipynb, cell 13: a check cell that is not a graded, locked nbgrader cell with points" + fix,
        "05_training.ipynb, cell 15: holds '### BEGIN SOLUTION' but is not an nbgrader solution cell" + fix,
        "05_training.ipynb, cell 16: a check cell that is not a graded, locked nbgrader cell with points" + fix,
    ]
    nb.cells[12].source = "print('no exercise any more')"
    assert "05_training.ipynb, cell 13: a graded nbgrader cell that is no check cell (a removed exercise?)" + fix \
        in nbgrader_problems(nb, chapter="05_training.ipynb")


# ----------------------------------------------------------------------------- the committed chapters


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_committed_chapters_carry_their_nbgrader_metadata(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    problems = nbgrader_problems(nb, chapter=path.name)
    assert not problems, "\n".join(problems)
    assert nbgrader_metadata(nb, chapter=path.name) == nb, (
        f"{path.name}: its nbgrader metadata is out of date; run `python -m ctutils course nbgrader-tag`")
    from nbgrader.nbgraderformat import MetadataValidator

    MetadataValidator().validate_nb(nb)


def test_grade_ids_are_unique_across_chapters_and_checks_are_worth_points() -> None:
    ids: list[str] = []
    checks = 0
    for path in CHAPTERS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            info = cell.metadata.get("nbgrader")
            if info:
                ids.append(info["grade_id"])
                checks += bool(info["grade"] and not info["solution"])
                assert info["grade_id"].startswith(classroom.grade_id_prefix(path.name) + "_")
    assert len(ids) == len(set(ids))
    assert checks == sum(is_check_cell(c) for p in CHAPTERS for c in nbformat.read(p, as_version=4).cells)


def test_tag_command_writes_once_then_has_nothing_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "notebooks"
    source.mkdir()
    nbformat.write(chapter(), source / "00_a.ipynb")
    before = (source / "00_a.ipynb").read_text()
    assert main(["course", "nbgrader-tag", "--check", "--source", str(source)]) == 1
    assert (source / "00_a.ipynb").read_text() == before
    assert main(["course", "nbgrader-tag", "--source", str(source)]) == 0
    assert nbgrader_problems(nbformat.read(source / "00_a.ipynb", as_version=4), chapter="00_a.ipynb") == []
    assert main(["course", "nbgrader-tag", "--check", "--source", str(source)]) == 0
    out = capsys.readouterr().out
    assert "out of date: 00_a.ipynb" in out and "updated in: 00_a.ipynb" in out and "out of date: none" in out


# ----------------------------------------------------------------------------- the course folder


def test_course_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "grading"
    assert main(["course", "nbgrader", "--out", str(out), "--chapters", "00", "05"]) == 0
    assert "2 chapter(s) in source/" in capsys.readouterr().out
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "README.md", "nbgrader_config.py", "source/00_setup/00_setup.ipynb", "source/05_training/05_training.ipynb"]
    nb = nbformat.read(out / "source" / "00_setup" / "00_setup.ipynb", as_version=4)
    assert nbgrader_problems(nb, chapter="00_setup") == []
    exercise_cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id", "").endswith(
        ("count_scans", "cache_size_mib"))]
    assert len(exercise_cells) == 4 and all(c.outputs == [] for c in exercise_cells)  # answers not shown
    assert any(c.outputs for c in nb.cells if c.cell_type == "code")  # the rest kept
    readme = (out / "README.md").read_text()
    for command in ("nbgrader generate_assignment", "nbgrader collect", "nbgrader autograde", "generate_feedback"):
        assert command in readme

    config = (out / "nbgrader_config.py").read_text()
    (out / "nbgrader_config.py").write_text(config + "# mine\n")
    main(["course", "nbgrader", "--out", str(out), "--chapters", "00"])
    assert (out / "nbgrader_config.py").read_text().endswith("# mine\n")  # kept
    assert "kept the existing nbgrader_config.py and README.md" in capsys.readouterr().out
    main(["course", "nbgrader", "--out", str(out), "--chapters", "00", "--force", "--timeout", "600"])
    assert "c.Execute.timeout = 600" in (out / "nbgrader_config.py").read_text()


def test_config_sets_what_nbgrader_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The option names are nbgrader 0.9's: load the file as nbgrader does and build its classes from it."""
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import ClearOutput, ClearSolutions, Execute
    from traitlets.config.loader import PyFileConfigLoader

    path = tmp_path / "nbgrader_config.py"
    path.write_text(classroom.nbgrader_config_text(root=ROOT, course_id="ct3d-2026", kernel="python3", timeout_s=1800))
    # the file sets CT3D_COURSE_ROOT in the process that reads it: here a copy of the environment
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if k != course.ROOT_ENV})
    config = PyFileConfigLoader(path.name, path=str(tmp_path)).load_config()
    assert os.environ[course.ROOT_ENV] == str(ROOT)  # what the chapters' kernels inherit
    assert CourseDirectory(config=config).course_id == "ct3d-2026"
    execute = Execute(config=config)
    assert (execute.timeout, execute.kernel_name) == (1800, "python3")
    assert ClearSolutions(config=config).code_stub["python"] == f"# YOUR CODE HERE\n{STUB_RAISE}"
    assert ClearOutput(config=config).enabled is False
    with pytest.raises(ValueError, match="course id 'my course'"):
        classroom.nbgrader_config_text(root=ROOT, course_id="my course")


def test_course_folder_refuses_the_notebooks_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="that is the notebooks folder"):
        classroom.make_nbgrader_course(NOTEBOOKS, source=NOTEBOOKS)


# ----------------------------------------------------------------------------- nbgrader itself (slow)

#: The cheap chapter autograded end to end (about 10 s per submission on 2 cores once TensorFlow is cached).
GRADED = "00_setup"
WRONG_MIB = "return n_volumes * math.prod(shape) * bytes_per_voxel / 1e6  # MB, not MiB"


def nbgrader(folder: Path, *args: str) -> subprocess.CompletedProcess:
    # nbgrader runs `alembic` from PATH to set up its gradebook: the environment's bin/ first, as when it is active
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    command = [sys.executable, "-m", "nbgrader", *args]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=900, env=os.environ | {"PATH": path})
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def submit(release: Path, destination: Path, answers: dict[str, str]) -> None:
    """A student's copy of a released chapter with some stubs replaced (grade id → new body line)."""
    nb = nbformat.read(release, as_version=4)
    for cell in nb.cells:
        body = answers.get(cell.metadata.get("nbgrader", {}).get("grade_id"))
        if body is not None:
            stub = f"    # YOUR CODE HERE\n    {STUB_RAISE}"
            assert stub in cell.source
            cell.source = cell.source.replace(stub, f"    {body}")
    destination.parent.mkdir(parents=True)
    nbformat.write(nb, destination)


def outputs_text(cell) -> str:
    return "".join(o.get("text", "") + "\n".join(o.get("traceback", [])) for o in cell.get("outputs", []))


@pytest.mark.slow
def test_nbgrader_releases_every_chapter_and_autogrades_one(tmp_path: Path) -> None:
    out = tmp_path / "grading"  # outside the repository: the chapters find it through nbgrader_config.py
    classroom.make_nbgrader_course(out)
    for path in CHAPTERS:
        nbgrader(out, "generate_assignment", path.stem)
        released = (out / "release" / path.stem / path.name).read_text()
        assert "BEGIN SOLUTION" not in released and STUB_RAISE.replace('"', '\\"') in released

    name = f"{GRADED}.ipynb"
    release = out / "release" / GRADED / name
    # alice leaves count_scans blank and answers cache_size_mib wrongly; bob hands in the solutions
    submit(release, out / "submitted" / "alice" / GRADED / name, {"ch00_cache_size_mib": WRONG_MIB})
    (out / "submitted" / "bob" / GRADED).mkdir(parents=True)
    (out / "submitted" / "bob" / GRADED / name).write_text((out / "source" / GRADED / name).read_text())
    nbgrader(out, "autograde", GRADED)
    nbgrader(out, "generate_feedback", GRADED)

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gradebook:
        scores = {student: {g.name: g.score for g in gradebook.find_submission_notebook(GRADED, GRADED, student).grades}
                  for student in ("alice", "bob")}
    assert scores == {"alice": {"ch00_check_count_scans": 0, "ch00_check_cache_size_mib": 0},
                      "bob": {"ch00_check_count_scans": 1, "ch00_check_cache_size_mib": 1}}

    def wrong_mib(n_volumes, shape, *, bytes_per_voxel=4):
        return n_volumes * __import__("math").prod(shape) * bytes_per_voxel / 1e6

    hints = {"ch00_check_count_scans": "❌ Exercise not done yet: implement `count_scans` above",
             "ch00_check_cache_size_mib": exercises.check_cache_size_mib(wrong_mib).message}
    graded = nbformat.read(out / "autograded" / "alice" / GRADED / name, as_version=4)
    for cell in graded.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in hints:
            text = outputs_text(cell)
            assert hints[grade_id] in text and "CheckFailed" in text, text
            assert "ctutils/exercises" not in text  # one line, no traceback through ctutils
        assert "Traceback" not in outputs_text(cell) and "CellTimeoutError" not in outputs_text(cell)
    metrics = json.loads((ROOT / "runs" / "quick-synthetic" / "metrics.json").read_text())
    quick = course.PROFILES["quick"]
    assert metrics[GRADED]["n_studies"] == quick.n_normal + quick.n_abnormal  # the repository's data and run folder
    feedback = (out / "feedback" / "alice" / GRADED / f"{GRADED}.html").read_text()
    assert "Exercise not done yet" in feedback and "1 MiB is 1024 × 1024" in feedback
