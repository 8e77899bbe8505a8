"""The chapters: their structure (fast), and papermill runs of the solutions and a student copy (slow).

The slow tests execute every ``notebooks/NN_*.ipynb`` with the quick profile on the synthetic data
through :func:`ctutils.runner.run_course`, into the repository's ``runs/quick-synthetic`` with the
repository's ``data/``, as ``make course`` does: dataset, cache and model are built once and reused.
nbval, which compares the committed outputs, runs separately (see notebooks/README.md).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from ctutils import colab, course, runner
from ctutils.runner import CourseError
from ctutils.student import BEGIN_SOLUTION, make_student_copies, strip_solutions

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CHAPTERS = course.list_chapters(NOTEBOOKS) if NOTEBOOKS.is_dir() else []
#: Chapters whose student copy is executed from top to bottom (the others are checked statically).
STUDENT_RUN = ["00"]
CHECK_CALL = re.compile(r"\bexercises\.\w+\(")
MAX_TOTAL_BYTES = 10 * 2**20
#: An absolute path of some machine (Linux, macOS, Colab, temporary folders; Windows drives).
MACHINE_PATH = re.compile(r"(?:/work|/tmp|/home|/Users|/root|/content|/private|/var/folders|/opt|/usr|/mnt|/srv)"
                          r"(?:/[^\s'\"()\[\],:;]+)+|\b[A-Za-z]:\\[^\s'\"]+")
#: tqdm's text bar ("phantoms 256px:   0%|          | 0/120"), e.g. the text saved for a widget bar.
PROGRESS_BAR = re.compile(r"\d+%\|")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
NBVAL_TAGS = {"nbval-ignore-output", "nbval-check-output", "nbval-skip", "nbval-raises-exception"}


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
    assert colab.colab_url(path.name) in nb.cells[0].source, "the Open in Colab badge of this chapter"
    sources = [c.source for c in code_cells(nb)]
    assert sum('"google.colab" in sys.modules' in s for s in sources) == 1, "one guarded Colab set-up cell"
    tagged = [c for c in code_cells(nb) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert {"profile", "dataset", "run_dir"} <= set(re.findall(r"^(\w+)\s*=", tagged[0].source, re.M))
    solutions = sum(c.source.count(BEGIN_SOLUTION) for c in nb.cells)
    assert solutions >= 2, "at least two exercises with solutions"
    assert sum(bool(is_check(c)) for c in nb.cells) >= 2, "a check cell per exercise"
    for number, cell in enumerate(nb.cells, start=1):  # markers balanced
        strip_solutions(cell.source, where=f"{path.name}, cell {number}", markdown=cell.cell_type == "markdown")


def output_problems(nb) -> list[str]:
    """What a learner should not see in a notebook's saved outputs."""
    from ctutils.tfimport import LOG_LINE

    problems = [] if "widgets" not in nb.metadata else ["widget state in the notebook's metadata"]
    for number, cell in enumerate(nb.cells, start=1):
        for output in cell.get("outputs", []):
            texts = [output.get("text", "")] + [str(v) for k, v in output.get("data", {}).items() if k.startswith("text/")]
            text = "\n".join(texts)
            if output.output_type == "error":
                problems.append(f"cell {number}: an error output ({output.ename})")
            if output.get("name") == "stderr":
                problems.append(f"cell {number}: a stderr output {text[:80]!r}")
            if WIDGET_VIEW in output.get("data", {}):
                problems.append(f"cell {number}: a widget, dead without its kernel")
            for pattern, what in ((MACHINE_PATH, "an absolute path"), (PROGRESS_BAR, "a frozen progress bar"),
                                  (LOG_LINE, "a TensorFlow log line")):
                if found := pattern.search(text):
                    problems.append(f"cell {number}: {what} {found.group(0)!r}")
    return problems


def test_output_problems_finds_each_kind() -> None:
    nb = nbformat.v4.new_notebook(metadata={"widgets": {}})
    nb.cells = [nbformat.v4.new_code_cell("x", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="cache /home/ann/course/data/cache ready\n"),
        nbformat.v4.new_output("stream", name="stderr", text="phantoms 256px:   0%|          | 0/120\n"),
        nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {"model_id": "1"}, "text/plain": "HBox()"}),
        nbformat.v4.new_output("stream", name="stdout",
                               text="E0000 00:00:1795764590.398184    3807 cuda_platform.cc:52] failed call to cuInit\n"),
        nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=[]),
        nbformat.v4.new_output("stream", name="stdout", text="data/cache/quick: 120 volumes; C:\\Users\\ann\\x.nii\n"),
    ])]
    assert output_problems(nb) == [
        "widget state in the notebook's metadata",
        "cell 1: an absolute path '/home/ann/course/data/cache'",
        "cell 1: a stderr output 'phantoms 256px:   0%|          | 0/120\\n'",
        "cell 1: a frozen progress bar '0%|'",
        "cell 1: a widget, dead without its kernel",
        "cell 1: a TensorFlow log line 'E0000 00:00:1795764590.398184    3807 cuda_platform.cc:52]'",
        "cell 1: an error output (ValueError)",
        "cell 1: an absolute path 'C:\\\\Users\\\\ann\\\\x.nii'",
    ]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_committed_outputs_show_nothing_a_learner_should_not_see(path: Path) -> None:
    """No absolute path, frozen progress bar, dead widget, stderr, error or TensorFlow log line."""
    assert output_problems(read(path)) == []


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_nbval_markers_are_cell_tags(path: Path) -> None:
    for number, cell in enumerate(code_cells(read(path)), start=1):
        assert not re.search(r"(?m)^\s*#\s*(NBVAL|PYTEST_VALIDATE)_", cell.source), \
            f"{path.name}, code cell {number}: an nbval comment line; use the cell tags {sorted(NBVAL_TAGS)}"
        tags = set(cell.metadata.get("tags", []))
        assert len(tags & {"nbval-ignore-output", "nbval-check-output"}) <= 1, f"{path.name}, code cell {number}"


def test_committed_notebooks_stay_small() -> None:
    total = sum(p.stat().st_size for p in CHAPTERS)
    assert total < MAX_TOTAL_BYTES, f"notebooks/ holds {total / 2**20:.1f} MiB of notebooks (limit 10 MiB)"


def test_student_stubs_sit_inside_functions(tmp_path: Path) -> None:
    """A student copy runs top to bottom: each stub raises only when the check calls the function."""
    for path in make_student_copies(tmp_path / "student", source=NOTEBOOKS):
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
        return runner.run_course(profile="quick", dataset="synthetic", out=out)
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
    profile = course.PROFILES["quick"]
    assert metrics["00_setup"] == {"n_studies": profile.n_normal + profile.n_abnormal, "n_normal": profile.n_normal,
                                   "n_abnormal": profile.n_abnormal}
    # The course's central result (issue 10): the quick profile's CNN learns, visibly, in the default run.
    training = metrics["05_training"]
    assert training["best_val_loss"] <= 0.45, f"chapter 05 did not learn: {training}"
    assert training["best_val_auc"] >= 0.85, f"chapter 05 did not learn: {training}"
    evaluation = metrics["06_evaluation"]
    assert evaluation["test_n"] >= 30 and evaluation["test_auc_high"] - evaluation["test_auc_low"] <= 0.3
    assert evaluation["cnn_seeds"] == 3  # the seeds study: same recipe and epochs as the main model
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
    make_student_copies(student, source=NOTEBOOKS)
    shared = course.course_config("quick", "synthetic", root=ROOT)  # the repository's data and cache
    out = tmp_path / "run"
    try:
        runner.run_course(profile="quick", dataset="synthetic", out=out, source=student, chapters=STUDENT_RUN,
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
