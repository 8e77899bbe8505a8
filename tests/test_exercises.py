"""ctutils.exercises: verdicts and hints, never a traceback; the registry; chapter 00's checks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ctutils import exercises
from ctutils.exercises import NotYet, check, exercise, expect_close, expect_equal

# ----------------------------------------------------------------------------- learner answers


def count_scans(root):
    counts = {}
    for folder in sorted(Path(root).iterdir()):
        if folder.is_dir() and not folder.name.startswith("."):
            names = [p.name for p in folder.iterdir() if p.is_file()]
            counts[folder.name] = sum(not n.startswith(".") and n.endswith((".nii.gz", ".nii")) for n in names)
    return counts


def count_everything(root):
    return {f.name: len(list(f.iterdir())) for f in sorted(Path(root).iterdir()) if f.is_dir() and not f.name.startswith(".")}


def count_with_hidden_folders(root):
    return {f.name: 0 for f in Path(root).iterdir() if f.is_dir()}


def count_scans_stub(root):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: write your code here, then run the check cell below")


def count_scans_crashing(root):
    folders = sorted(Path(root).iterdir())
    return folders[99]


def cache_size_mib(n_volumes, shape, *, bytes_per_voxel=4):
    return n_volumes * math.prod(shape) * bytes_per_voxel / 2**20


def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for name in ("CT-0/study_0001.nii.gz", "CT-0/study_0002.nii.gz", "CT-23/study_0003.nii.gz", "synthetic.json"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    return root


# ----------------------------------------------------------------------------- count_scans


def test_count_scans_right(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert exercises.check_count_scans(count_scans).passed is True
    assert capsys.readouterr().out == "✅ Correct: count_scans handles hidden files, .nii and .nii.gz\n"
    assert exercises.check_count_scans(count_scans, data_dir=dataset(tmp_path)).passed is True
    assert capsys.readouterr().out == "✅ Correct: count_scans finds 2 in CT-0, 1 in CT-23 in data\n"


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (count_everything, "❌ Not yet: in a test folder (CT-0: expected 3, got 5; CT-23: expected 2, got 3). "
                           "Count the files ending in .nii.gz or .nii, and skip hidden names"),
        (count_with_hidden_folders, "❌ Not yet: skip hidden folders such as .downloads"),
        (lambda root: [3, 2], "❌ Not yet: count_scans should return a dict {folder name: number of scans}, got list"),
        (lambda root: {"CT-0": 3}, "❌ Not yet: the result lacks the class folder(s) 'CT-23'"),
        (lambda root: {"CT-0": 3, "CT-23": 2, "README.md": 0}, "❌ Not yet: only folders are class folders; 'README.md'"),
    ],
)
def test_count_scans_wrong_answers_get_a_hint(answer, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_count_scans(answer).passed is False
    assert capsys.readouterr().out.startswith(hint)


def test_count_scans_on_the_real_folder_must_match(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def right_on_test_folder_only(root):
        return {"CT-0": 3, "CT-23": 2}

    assert exercises.check_count_scans(right_on_test_folder_only, data_dir=dataset(tmp_path)).passed is False
    assert capsys.readouterr().out == (
        "❌ Not yet: on data: expected {'CT-0': 2, 'CT-23': 1}, got {'CT-0': 3, 'CT-23': 2}\n"
    )


def test_a_stub_says_the_exercise_is_not_done(capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_count_scans(count_scans_stub).passed is False
    out = capsys.readouterr().out
    assert out.startswith("❌ Exercise not done yet: implement `count_scans_stub` above")
    assert "Traceback" not in out


def test_an_error_in_the_learners_code_is_reported_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_count_scans(count_scans_crashing).passed is False
    out = capsys.readouterr().out
    assert out.startswith("❌ Not yet: your code raised IndexError: list index out of range (line ")
    assert out.rstrip().endswith(": `return folders[99]`)")
    assert out.count("\n") == 1 and "Traceback" not in out


def test_not_implemented_deeper_than_the_learners_code_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    def uses_an_abstract_library_method(root):
        return asyncio.AbstractEventLoop().time()

    assert exercises.check_count_scans(uses_an_abstract_library_method).passed is False
    out = capsys.readouterr().out
    assert out.startswith("❌ Not yet: your code raised NotImplementedError: ")
    assert "return asyncio.AbstractEventLoop().time()" in out


# ----------------------------------------------------------------------------- cache_size_mib


def test_cache_size_right(capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_cache_size_mib(cache_size_mib).passed is True
    # 200 × 64 × 64 × 32 × 4 bytes = 2**27 × 0.78125 bytes = 100 MiB; 200 × 128 × 128 × 64 × 4 bytes = 800 MiB
    assert capsys.readouterr().out.startswith(
        "✅ Correct: the quick profile's cache (200 × 64 × 64 × 32 float32) takes 100 MiB, "
        "the full profile's cache (200 × 128 × 128 × 64 float32) takes 800 MiB")


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda n, shape, bytes_per_voxel=4: n * math.prod(shape) * bytes_per_voxel / 1e6,
         "1 MiB is 1024 × 1024 = 2**20 bytes, not 10**6"),
        (lambda n, shape, bytes_per_voxel=4: n * math.prod(shape) / 2**20, "each float32 voxel takes bytes_per_voxel = 4 bytes"),
        (lambda n, shape, bytes_per_voxel=4: n * math.prod(shape) * 4 / 2**20, "use the bytes_per_voxel argument"),
        (lambda n, shape, bytes_per_voxel=4: n * math.prod(shape) * bytes_per_voxel / 1024, "divide by 1024 twice"),
        (lambda n, shape, bytes_per_voxel=4: n * math.prod(shape) * bytes_per_voxel, "convert bytes to MiB"),
        (lambda n, shape, bytes_per_voxel=4: 41.0, "cache_size_mib(80, (64, 64, 32)) should be 40.0, got 41.0"),
        (lambda n, shape, bytes_per_voxel=4: "40", "should return a number of MiB, got '40'"),
    ],
)
def test_cache_size_wrong_answers_get_a_hint(answer, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_cache_size_mib(answer).passed is False
    out = capsys.readouterr().out
    assert out.startswith("❌ Not yet: ") and hint in out


def test_a_missing_keyword_argument_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_cache_size_mib(lambda n, shape: n * math.prod(shape) * 4 / 2**20).passed is False
    out = capsys.readouterr().out
    assert out.startswith("❌ Not yet: calling `<lambda>` raised TypeError:") and "bytes_per_voxel" in out


# ----------------------------------------------------------------------------- registry and helpers


def test_a_check_result_is_true_when_passed_and_shows_nothing_more(capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = exercises.check_cache_size_mib(cache_size_mib), exercises.check_cache_size_mib(lambda *a, **k: 0.0)
    assert bool(good) and not bad
    assert good.message == capsys.readouterr().out.splitlines()[0]
    assert good._ipython_display_() is None  # Jupyter displays nothing for it: the line is printed already


def test_registry_holds_chapter_00() -> None:
    chapter = exercises.list_exercises("00_setup")
    assert [e.name for e in chapter] == ["count_scans", "cache_size_mib"]
    assert chapter[0].title == "Exercise 00.1: count the scans in each class folder."
    assert exercises.EXERCISES["00_setup/count_scans"].check is exercises.check_count_scans


def test_check_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert check("00_setup/cache_size_mib", cache_size_mib).passed is True
    assert check("count_scans", count_scans).passed is True
    with pytest.raises(KeyError, match="unknown exercise 'nope'; registered: "):
        check("nope", count_scans)


def test_new_checks_register_and_report(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(exercises, "EXERCISES", {})

    @exercise("99_demo")
    def check_square(square):
        """Exercise 99.1: squares."""
        expect_equal(square(3), 9, what="square(3)")
        return "squares"

    assert list(exercises.EXERCISES) == ["99_demo/square"]
    assert check_square(lambda x: x * x).passed is True
    assert check_square(lambda x: x + x).passed is False
    assert capsys.readouterr().out == "✅ Correct: squares\n❌ Not yet: square(3) should be 9, got 6\n"
    with pytest.raises(ValueError, match="exercise '99_demo/square' is registered twice"):
        exercise("99_demo")(check_square)


def test_expect_helpers() -> None:
    expect_close([0.1 + 0.2], [0.3], what="x")
    with pytest.raises(NotYet, match=r"x should have shape \(2,\), got \(3,\)"):
        expect_close([1, 2, 3], [1, 2], what="x")
    with pytest.raises(NotYet, match="x should be a number or an array of numbers, got 'a'"):
        expect_close("a", 1.0, what="x")
    with pytest.raises(NotYet, match=r"y should be \[1, 2\], got \[1, 3\]"):
        expect_equal([1, 3], [1, 2], what="y")


# ----------------------------------------------------------------------------- under nbgrader


def test_under_nbgrader_a_failed_check_prints_its_hint_then_raises(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """nbgrader deducts a graded cell's points only when it raises; autograde and validate set NBGRADER_EXECUTION."""
    monkeypatch.setenv(exercises.NBGRADER_ENV, "autograde")
    hint = "❌ Not yet: skip hidden folders such as .downloads (download_dataset keeps its archives there)"
    with pytest.raises(exercises.CheckFailed) as raised:
        exercises.check_count_scans(count_with_hidden_folders)
    assert isinstance(raised.value, AssertionError) and str(raised.value) == hint
    assert raised.value._render_traceback_() == [f"CheckFailed: {hint}"]  # IPython shows one line, no frames
    assert capsys.readouterr().out == hint + "\n"
    with pytest.raises(AssertionError, match="Exercise not done yet: implement `count_scans_stub` above"):
        exercises.check_count_scans(count_scans_stub)
    assert capsys.readouterr().out.startswith("❌ Exercise not done yet")
    with pytest.raises(AssertionError, match=r"your code raised IndexError"):
        check("00_setup/count_scans", count_scans_crashing)  # by name too
    capsys.readouterr()
    monkeypatch.setenv(exercises.NBGRADER_ENV, "validate")
    assert exercises.check_count_scans(count_scans).passed is True  # a right answer never raises
    assert capsys.readouterr().out.startswith("✅ Correct")


@pytest.mark.parametrize("value", [None, ""])
def test_elsewhere_a_failed_check_returns(value, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Jupyter, papermill and nbval runs: a failed check prints and returns, so 'Run all' goes on."""
    if value is None:
        monkeypatch.delenv(exercises.NBGRADER_ENV, raising=False)
    else:
        monkeypatch.setenv(exercises.NBGRADER_ENV, value)
    result = exercises.check_count_scans(count_scans_stub)
    assert result.passed is False and result.message.startswith("❌ Exercise not done yet")
    assert capsys.readouterr().out == result.message + "\n"
