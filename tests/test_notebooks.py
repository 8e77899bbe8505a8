"""The chapters: their structure (fast), and papermill runs of the solutions and a student copy (slow).

The slow tests execute every ``notebooks/NN_*.ipynb`` with the quick profile on the synthetic data
through :func:`ctutils.course.run_course`, into the repository's ``runs/quick-synthetic`` with the
repository's ``data/``, as ``make course`` does: dataset, cache and model are built once and reused.
nbval, which compares the committed outputs, runs separately (see notebooks/README.md).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from ctutils import course
from ctutils.course import BEGIN_SOLUTION, CourseError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CHAPTERS = course.list_chapters(NOTEBOOKS) if NOTEBOOKS.is_dir() else []
#: Chapters whose student copy is executed from top to bottom (the others are checked statically).
STUDENT_RUN = ["00"]
CHECK_CALL = re.compile(r"\bexercises\.\w+\(")
MAX_TOTAL_BYTES = 10 * 2**20


def read(path: Path):
    return nbformat.read(path, as_version=4)


def code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def is_check(cell) -> bool:
    return cell.cell_type == "code" and (CHECK_CALL.search(cell.source) or "check" in cell.metadata.get("tags", []))


def text_of(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}\n" + "\n".join(output.traceback))
        else:
            parts.append(str(output.get("data", {}).get("text/plain", "")))
    return "".join(parts)


# ----------------------------------------------------------------------------- structure (fast)


def test_there_are_chapters() -> None:
    assert [p.name for p in CHAPTERS][:1] == ["00_setup.ipynb"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_follows_the_course_conventions(path: Path) -> None:
    nb = read(path)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", "kernel metadata must name python3"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), "a title first"
    assert course.colab_url(path.name) in nb.cells[0].source, "the Open in Colab badge of this chapter"
    sources = [c.source for c in code_cells(nb)]
    assert sum('"google.colab" in sys.modules' in s for s in sources) == 1, "one guarded Colab set-up cell"
    tagged = [c for c in code_cells(nb) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert {"profile", "dataset", "run_dir"} <= set(re.findall(r"^(\w+)\s*=", tagged[0].source, re.M))
    solutions = sum(c.source.count(BEGIN_SOLUTION) for c in nb.cells)
    assert solutions >= 2, "at least two exercises with solutions"
    assert sum(bool(is_check(c)) for c in nb.cells) >= 2, "a check cell per exercise"
    for number, cell in enumerate(nb.cells, start=1):  # markers balanced
        course.strip_solutions(cell.source, where=f"{path.name}, cell {number}", markdown=cell.cell_type == "markdown")


def test_committed_notebooks_stay_small() -> None:
    total = sum(p.stat().st_size for p in CHAPTERS)
    assert total < MAX_TOTAL_BYTES, f"notebooks/ holds {total / 2**20:.1f} MiB of notebooks (limit 10 MiB)"


def test_student_stubs_sit_inside_functions(tmp_path: Path) -> None:
    """A student copy runs top to bottom: each stub raises only when the check calls the function."""
    for path in course.make_student_copies(tmp_path / "student", source=NOTEBOOKS):
        nb = read(path)
        assert BEGIN_SOLUTION not in path.read_text()
        for number, cell in enumerate(nb.cells, start=1):
            for line in cell.source.splitlines():
                if line.lstrip().startswith("raise NotImplementedError"):
                    assert line.startswith((" ", "\t")), f"{path.name}, cell {number}: a stub at top level stops 'Run all'"


# ----------------------------------------------------------------------------- execution (slow)


@pytest.fixture(scope="module")
def course_run() -> Path:
    # The repository's own run folder, as `make course` uses: the model trained here is then reused
    # (not trained again) when nbval executes the chapters after these tests.
    out = course.course_config("quick", "synthetic", root=ROOT).run_dir
    try:
        return course.run_course(profile="quick", dataset="synthetic", out=out)
    except CourseError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.mark.slow
@pytest.mark.notebooks
def test_every_chapter_runs_with_the_quick_profile(course_run: Path) -> None:
    summary = (course_run / "summary.md").read_text()
    for path in CHAPTERS:
        assert (course_run / "notebooks" / path.name).is_file()
        assert f"| [{path.stem}](notebooks/{path.name}) | ✅ passed |" in summary
    metrics = json.loads((course_run / "metrics.json").read_text())
    assert metrics["00_setup"] == {"n_studies": 120, "n_normal": 60, "n_abnormal": 60}
    # The repository's real CT (data/real-ct) is always there: chapter 01 compares, chapter 06 predicts.
    assert metrics["01_data"]["real_ct_compared"] is True
    assert (course_run / "figures" / "01_data-real-vs-phantom.png").is_file()
    chapter_06 = "".join(text_of(c) for c in read(course_run / "notebooks" / "06_evaluation.ipynb").cells)
    assert "data/real-ct/lung1.nii.gz (a lung-cancer patient, not pneumonia" in chapter_06


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_solutions_pass_their_checks(course_run: Path, path: Path) -> None:
    nb = read(course_run / "notebooks" / path.name)
    checks = [c for c in nb.cells if is_check(c)]
    assert checks, f"{path.name} has no check cell"
    for cell in checks:
        out = text_of(cell)
        assert "✅" in out and "❌" not in out, f"{path.name}: check cell {cell.source!r} printed {out!r}"


@pytest.mark.slow
@pytest.mark.notebooks
def test_student_copy_checks_give_help_not_tracebacks(tmp_path: Path) -> None:
    student = tmp_path / "student"
    course.make_student_copies(student, source=NOTEBOOKS)
    shared = course.course_config("quick", "synthetic", root=ROOT)  # the repository's data and cache
    out = tmp_path / "run"
    try:
        course.run_course(profile="quick", dataset="synthetic", out=out, source=student, chapters=STUDENT_RUN,
                          parameters={"data_dir": str(shared.data_dir), "cache_dir": str(shared.cache_dir)})
    except CourseError as error:
        pytest.fail(f"a student copy must run from top to bottom: {error}", pytrace=False)
    for name in STUDENT_RUN:
        [path] = [p for p in (out / "notebooks").glob(f"{name}_*.ipynb")]
        checks = [c for c in read(path).cells if is_check(c)]
        assert checks
        for cell in checks:
            out_text = text_of(cell)
            assert out_text.startswith("❌ Exercise not done yet: implement `"), out_text
            assert "Traceback" not in out_text
