"""Checks for the chapters' exercises: a clear verdict, never a traceback from inside ctutils.

An exercise in a chapter is a function for the learner to complete; its body sits between
nbgrader's markers, so that ``python -m ctutils course student`` can replace it with a stub::

    def count_scans(root):
        \"\"\"Number of scans in each class folder of ``root``.\"\"\"
        ### BEGIN SOLUTION
        ...
        ### END SOLUTION

and the next cell checks it::

    exercises.check_count_scans(count_scans)

A check prints one line and returns a :class:`CheckResult`, true when the answer is right (Jupyter
shows nothing more for it; in code, ``if check(...)`` and ``result.passed`` work):

* ``✅ Correct: …`` when the answer is right;
* ``❌ Not yet: …`` with a hint when it is wrong, or with the error the learner's code raised
  and the line in the learner's code where it happened;
* ``❌ Exercise not done yet: implement `count_scans` above …`` when the function still raises
  ``NotImplementedError`` (the stub of a student copy).

Write exercises as functions (not top-level code) so that a student copy runs from top to bottom:
the stub raises only when the check calls it. Call checks as ``exercises.check_…(…)`` (or tag
the cell ``check``) so that student copies clear the check's output, which would give the answer away.

Under nbgrader
--------------
A check never raises in Jupyter, papermill or nbval runs. When nbgrader runs the notebook
(``nbgrader autograde`` and ``nbgrader validate`` set the environment variable ``NBGRADER_EXECUTION``,
:data:`NBGRADER_ENV`), a failed check prints the same line and then raises :class:`CheckFailed`
(an ``AssertionError``): nbgrader deducts a graded cell's points only when the cell raises. The
nbgrader metadata of the check cells (graded, locked, points) comes from :mod:`ctutils.classroom`.

Adding a check (chapter authors)
--------------------------------
Add a function below, in a section for your chapter, decorated with :func:`exercise`. It receives
what the check cell passes (usually the learner's function), calls it on small inputs, raises
:class:`NotYet` with a hint when something is wrong (:func:`expect`, :func:`expect_equal` and
:func:`expect_close` help), and returns a short sentence for the success message. The decorator
registers it in :data:`EXERCISES` and turns exceptions into the messages above::

    @exercise("02_preprocessing")
    def check_window(window):
        \"\"\"Exercise 02.1: HU windowing.\"\"\"
        got = window(np.array([-2000.0, -1000.0, 400.0, 1000.0]), hu_min=-1000, hu_max=400)
        expect_close(got, [0, 0, 1, 1], what="window([-2000, -1000, 400, 1000])")
        return "values below hu_min map to 0, above hu_max to 1"

Keep checks fast (well under a second; a check that trains a network, like 05.3's, a few seconds)
and independent of the dataset unless they take its folder as an argument; use only numpy and the
standard library at the top of this module.

Concept checks (multiple choice) are registered with :func:`choice` and run with
:func:`check_choice`; the learner's answer is a function returning a letter, so that a student
copy's stub raises only inside the check::

    def answer_05_1():
        ### BEGIN SOLUTION
        return "c"
        ### END SOLUTION

    exercises.check_choice("05_training/diverging_curves", answer_05_1)
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "EXERCISES",
    "NBGRADER_ENV",
    "CheckFailed",
    "CheckResult",
    "Exercise",
    "NotYet",
    "check",
    "check_cache_size_mib",
    "check_count_scans",
    "exercise",
    "expect",
    "expect_close",
    "expect_equal",
    "list_exercises",
]

_PACKAGE_DIR = Path(__file__).resolve().parent

#: Set by nbgrader while it executes a notebook (``autograde`` and ``validate``): failed checks raise then.
NBGRADER_ENV = "NBGRADER_EXECUTION"


class NotYet(Exception):
    """Raised by a check when the answer is wrong; the message is the hint shown to the learner."""


class CheckFailed(AssertionError):
    """Raised by a failed check only under nbgrader (:data:`NBGRADER_ENV` set), after its line is printed.

    The message is that line (the hint), so nbgrader's feedback shows it beside the lost points.
    """

    def _render_traceback_(self) -> list[str]:
        """What IPython shows instead of a traceback: one line, no frames from inside ctutils."""
        return [f"{type(self).__name__}: {self}"]


@dataclass(frozen=True)
class Exercise:
    """A registered check.

    Attributes
    ----------
    chapter : str
        The chapter's file stem, e.g. ``"00_setup"``.
    name : str
        The exercise's name in its chapter (the check's name without ``check_``).
    check : callable
        The wrapped check: prints a verdict, returns a :class:`CheckResult`; raises only under nbgrader.
    title : str
        First line of the check's docstring.
    """

    chapter: str
    name: str
    check: Callable[..., CheckResult]
    title: str


#: Every check, keyed ``"<chapter>/<name>"`` (e.g. ``"00_setup/count_scans"``).
EXERCISES: dict[str, Exercise] = {}


@dataclass(frozen=True)
class CheckResult:
    """What a check returns: true when the answer is right.

    Attributes
    ----------
    passed : bool
        The verdict.
    message : str
        The line the check printed.
    """

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def _ipython_display_(self) -> None:
        """Show nothing as the cell's result: the verdict is already printed."""


def expect(condition: Any, hint: str) -> None:
    """Raise :class:`NotYet` with ``hint`` unless ``condition`` is true."""
    if not condition:
        raise NotYet(hint)


def expect_equal(got: Any, expected: Any, *, what: str) -> None:
    """Raise :class:`NotYet` unless ``got == expected`` (``what`` names the value in the hint)."""
    if isinstance(got, np.ndarray) or isinstance(expected, np.ndarray):
        same = np.shape(got) == np.shape(expected) and bool(np.all(np.asarray(got) == np.asarray(expected)))
    else:
        same = got == expected
    expect(same, f"{what} should be {expected!r}, got {got!r}")


def expect_close(got: Any, expected: Any, *, what: str, rtol: float = 1e-6, atol: float = 0.0) -> None:
    """Raise :class:`NotYet` unless ``got`` is numerically close to ``expected`` (same shape)."""
    try:
        got_array = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise NotYet(f"{what} should be a number or an array of numbers, got {got!r}") from None
    want = np.asarray(expected, dtype=np.float64)
    expect(got_array.shape == want.shape, f"{what} should have shape {want.shape}, got {got_array.shape}")
    expect(bool(np.allclose(got_array, want, rtol=rtol, atol=atol)), f"{what} should be {expected!r}, got {got!r}")


def _is_ctutils(filename: str) -> bool:
    try:
        Path(filename).resolve().relative_to(_PACKAGE_DIR)
    except ValueError:
        return False
    return True


def _is_library(filename: str) -> bool:
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return "site-packages" in filename or any(filename.startswith(str(Path(p) / "lib")) for p in prefixes)


def _learner_frame(error: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of the traceback in the learner's code (not ctutils, not a library)."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not _is_ctutils(f.filename)]
    frames = [f for f in frames if not _is_library(f.filename)]
    return frames[-1] if frames else None


def _say(passed: bool, message: str) -> CheckResult:
    line = f"{'✅' if passed else '❌'} {message}"
    print(line)
    return CheckResult(passed=passed, message=line)


def _run(fn: Callable[..., Any], name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> CheckResult:
    target = args[0] if args else None
    label = getattr(target, "__name__", name)
    try:
        detail = fn(*args, **kwargs)
    except NotYet as miss:
        return _say(False, f"Not yet: {miss}")
    except Exception as error:  # noqa: BLE001 - a check reports, it never raises
        frame = _learner_frame(error)
        innermost = traceback.extract_tb(error.__traceback__)[-1]
        if isinstance(error, NotImplementedError) and frame is not None and (
            innermost.filename == frame.filename and innermost.lineno == frame.lineno
        ):
            return _say(False, f"Exercise not done yet: implement `{label}` above (replace the "
                               "`raise NotImplementedError` line with your code), run that cell, then run this check again.")
        text = f"{type(error).__name__}: {error}"
        if frame is None:
            return _say(False, f"Not yet: calling `{label}` raised {text}")
        where = f"line {frame.lineno}" + (f": `{frame.line.strip()}`" if frame.line else "")
        return _say(False, f"Not yet: your code raised {text} ({where})")
    return _say(True, f"Correct: {detail}" if detail else "Correct!")


def _grade(result: CheckResult) -> CheckResult:
    """Return ``result``, or raise :class:`CheckFailed` for a failed one while nbgrader runs the notebook."""
    if not result.passed and os.environ.get(NBGRADER_ENV):
        raise CheckFailed(result.message)
    return result


def exercise(chapter: str, *, name: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., CheckResult]]:
    """Register a check for a chapter; the decorated function prints a verdict and returns a :class:`CheckResult`.

    Under nbgrader (:data:`NBGRADER_ENV` set) a failed check raises :class:`CheckFailed` after printing.

    Parameters
    ----------
    chapter : str
        The chapter's file stem, e.g. ``"00_setup"``.
    name : str, optional
        The exercise's name (default: the function's name without ``check_``).

    Raises
    ------
    ValueError
        If the same ``chapter/name`` is registered twice.
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., CheckResult]:
        short = name or fn.__name__.removeprefix("check_")
        key = f"{chapter}/{short}"
        if key in EXERCISES:
            raise ValueError(f"exercise {key!r} is registered twice")

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> CheckResult:
            return _grade(_run(fn, short, args, kwargs))

        title = (fn.__doc__ or short).strip().splitlines()[0]
        EXERCISES[key] = Exercise(chapter=chapter, name=short, check=run, title=title)
        return run

    return decorate


def check(name: str, *args: Any, **kwargs: Any) -> CheckResult:
    """Run a registered check by name: ``"00_setup/count_scans"`` or just ``"count_scans"`` when unique.

    Raises
    ------
    KeyError
        Unknown or ambiguous name (the message lists the registered exercises).
    """
    if name in EXERCISES:
        return EXERCISES[name].check(*args, **kwargs)
    matches = [e for e in EXERCISES.values() if e.name == name]
    if len(matches) != 1:
        problem = "ambiguous" if matches else "unknown"
        raise KeyError(f"{problem} exercise {name!r}; registered: {', '.join(sorted(EXERCISES))}")
    return matches[0].check(*args, **kwargs)


def list_exercises(chapter: str | None = None) -> list[Exercise]:
    """The registered exercises, of one chapter or all, in registration order."""
    return [e for e in EXERCISES.values() if chapter is None or e.chapter == chapter]


# ============================================================================= 00_setup


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def _scan_counts(root: Path) -> dict[str, int]:
    from ctutils.datasets import is_scan_file

    return {
        folder.name: sum(1 for p in folder.iterdir() if is_scan_file(p))
        for folder in sorted(root.iterdir())
        if folder.is_dir() and not folder.name.startswith(".")
    }


@exercise("00_setup")
def check_count_scans(count_scans: Callable[[Path], Mapping[str, int]], data_dir: str | Path | None = None) -> str:
    """Exercise 00.1: count the scans in each class folder."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("CT-0/study_0001.nii.gz", "CT-0/study_0002.nii.gz", "CT-0/study_0003.nii",
                     "CT-0/.partial-123-study_0004.nii.gz", "CT-0/notes.txt",
                     "CT-23/study_0101.nii.gz", "CT-23/study_0102.nii.gz", "CT-23/._study_0101.nii.gz",
                     ".downloads/CT-0.zip", "README.md", "synthetic.json"):
            _touch(root / name)
        got = count_scans(root)
    expect(isinstance(got, Mapping), f"count_scans should return a dict {{folder name: number of scans}}, got {type(got).__name__}")
    got = dict(got)
    expected = {"CT-0": 3, "CT-23": 2}
    expect(".downloads" not in got, "skip hidden folders such as .downloads (download_dataset keeps its archives there)")
    extra = sorted(set(got) - set(expected))
    expect(not extra, f"only folders are class folders; {', '.join(map(repr, extra))} should not be in the result")
    missing = sorted(set(expected) - set(got))
    expect(not missing, f"the result lacks the class folder(s) {', '.join(map(repr, missing))}")
    if got != expected:
        wrong = "; ".join(f"{k}: expected {expected[k]}, got {got[k]!r}" for k in expected if got[k] != expected[k])
        raise NotYet(
            f"in a test folder ({wrong}). Count the files ending in .nii.gz or .nii, and skip hidden "
            "names starting with '.' (half-written .partial-… files, macOS ._ files) and other files"
        )
    if data_dir is None:
        return "count_scans handles hidden files, .nii and .nii.gz"
    data = Path(data_dir)
    real, want = count_scans(data), _scan_counts(data)
    expect(dict(real) == want, f"on {data.name}: expected {want}, got {dict(real)!r}")
    listing = ", ".join(f"{n} in {k}" for k, n in want.items())
    return f"count_scans finds {listing} in {data.name}"


@exercise("00_setup")
def check_cache_size_mib(cache_size_mib: Callable[..., float]) -> str:
    """Exercise 00.2: the size of a cache of float32 volumes in MiB."""
    cases = [
        ((80, (64, 64, 32)), {}, 40.0),
        ((200, (128, 128, 64)), {}, 800.0),
        ((1, (2, 2, 2)), {"bytes_per_voxel": 2}, 16 / 2**20),
    ]
    for args, kwargs, expected in cases:
        shown = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
        got = cache_size_mib(*args, **kwargs)
        expect(isinstance(got, (int, float, np.number)) and not isinstance(got, bool),
               f"cache_size_mib({shown}) should return a number of MiB, got {got!r}")
        ratio = float(got) / expected  # what a common slip gives, as a multiple of the answer
        slips = {
            1 / 4: "each float32 voxel takes bytes_per_voxel = 4 bytes: multiply by it",
            2.0: "use the bytes_per_voxel argument rather than a fixed 4",
            4.0: "multiply by bytes_per_voxel once, not twice",
            1.0: None,
            2**20 / 1e6: "1 MiB is 1024 × 1024 = 2**20 bytes, not 10**6",
            1024.0: "divide by 1024 twice (bytes → KiB → MiB)",
            float(2**20): "convert bytes to MiB: divide by 2**20",
        }
        for factor, hint in slips.items():
            if hint and abs(ratio / factor - 1) < 1e-6:
                raise NotYet(f"cache_size_mib({shown}) gave {got!r}, expected {expected:g}: {hint}")
        expect_close(got, expected, what=f"cache_size_mib({shown})")
    from ctutils.course import PROFILES

    sizes = []
    for name, p in PROFILES.items():
        n = p.n_normal + p.n_abnormal
        mib = n * int(np.prod(p.shape)) * 4 / 2**20
        sizes.append(f"the {name} profile's cache ({n} × {' × '.join(map(str, p.shape))} float32) takes {mib:g} MiB")
    return ", ".join(sizes)


# --- chapter 01_data ---

__all__ += ["check_axis_codes", "check_lung_fraction", "check_radiological_view", "check_to_hu"]


def _not_modified(before: np.ndarray, after: np.ndarray, name: str) -> None:
    expect(np.array_equal(before, after), f"{name} changed the array it was given; work on a copy "
                                          "(e.g. `np.asarray(x, dtype=np.float32)` then new arrays, not in-place `x[...] = …`)")


@exercise("01_data")
def check_to_hu(to_hu: Callable[..., Any]) -> str:
    """Exercise 01.1: stored voxel values to Hounsfield units with scl_slope / scl_inter."""
    cases = [
        (np.array([[-1024, 0], [40, 3071]], dtype=np.int16), 1.0, 0.0, [[-1024, 0], [40, 3071]], None),
        (np.array([0, 1024, 1064, 4095], dtype=np.uint16), 1.0, -1024.0, [-1024, 0, 40, 3071],
         "uint16 values cannot become negative: convert to float before applying the intercept"),
        (np.array([100, 20000], dtype=np.int16), 2.0, -1024.0, [-824, 38976],
         "20000 × 2 overflows int16: convert to float before multiplying"),
        (np.array([-1000, 50], dtype=np.int16), float("nan"), float("nan"), [-1000, 50],
         "a NaN slope means 'no scaling' (NIfTI rule): return the values unchanged, as floats"),
        (np.array([-1000, 50], dtype=np.int16), 0.0, 0.0, [-1000, 50],
         "a slope of 0 means 'no scaling' (NIfTI rule): return the values unchanged, as floats"),
        (np.array([10, 20], dtype=np.int16), 0.5, 100.0, [105, 110], None),
    ]
    for raw, slope, inter, expected, hint in cases:
        shown = f"to_hu({raw.tolist()} as {raw.dtype}, {slope}, {inter})"
        before = raw.copy()
        got = to_hu(raw, slope, inter)
        _not_modified(before, raw, "to_hu")
        expect(isinstance(got, np.ndarray), f"{shown} should return a numpy array, got {type(got).__name__}")
        expect(got.shape == raw.shape, f"{shown} should keep the shape {raw.shape}, got {got.shape}")
        if hint and not np.allclose(np.asarray(got, dtype=np.float64), expected):
            raise NotYet(f"{shown} gave {got.tolist()}, expected {expected}: {hint}")
        expect(np.issubdtype(got.dtype, np.floating), f"{shown} should return floats (HU after scaling are not "
                                                       f"always integers), got dtype {got.dtype}")
        expect_close(got, np.asarray(expected, dtype=np.float64), what=shown)
    return "HU = stored × scl_slope + scl_inter, with NaN or 0 meaning no scaling, as nibabel's get_fdata does"


def _codes_of(affine: np.ndarray) -> tuple[str, ...]:
    import nibabel as nib

    return tuple(nib.aff2axcodes(affine))


@exercise("01_data")
def check_axis_codes(axis_codes: Callable[[np.ndarray], Any]) -> str:
    """Exercise 01.2: the orientation codes of an affine, by hand."""
    c, s = np.cos(np.deg2rad(10)), np.sin(np.deg2rad(10))
    affines = {
        "diag(-0.7, -0.7, 5)": np.diag([-0.7, -0.7, 5.0, 1.0]),
        "diag(1, 1, 1)": np.eye(4),
        "diag(0.8, -0.8, -2.5)": np.diag([0.8, -0.8, -2.5, 1.0]),
        "a permuted affine (slices first)": np.array(
            [[0, 0, -0.7, 100], [0, 0.7, 0, -90], [3.0, 0, 0, -50], [0, 0, 0, 1]], dtype=float),
        "a 10° oblique affine": np.array(
            [[-c, s, 0, 0], [s, c, 0, 0], [0, 0, 2.0, 0], [0, 0, 0, 1]], dtype=float),
    }
    for name, affine in affines.items():
        expected = _codes_of(affine)
        transposed = np.eye(4)
        transposed[:3, :3] = affine[:3, :3].T
        got = axis_codes(affine.copy())
        try:
            got = tuple(str(x) for x in got)
        except TypeError:
            raise NotYet(f"axis_codes should return 3 letters such as ('L', 'P', 'S'), got {got!r}") from None
        expect(len(got) == 3, f"axis_codes({name}) should return 3 letters, got {got!r}")
        if got != expected:
            opposite = {"R": "L", "L": "R", "A": "P", "P": "A", "S": "I", "I": "S"}
            if got == tuple(opposite.get(x, x) for x in expected):
                hint = "the signs are reversed: a negative entry means the axis points the other way (−x is Left)"
            elif got == _codes_of(transposed):
                hint = "array axis k is column k of affine[:3, :3] (where one voxel step along k moves), not row k"
            else:
                hint = ("for each column of affine[:3, :3], take the world axis (row) with the largest absolute "
                        "value: row 0 → R/L, 1 → A/P, 2 → S/I, and its sign: positive R, A, S; negative L, P, I")
            raise NotYet(f"axis_codes({name}) should be {expected}, got {got}: {hint}")
    return "same codes as nibabel.aff2axcodes, oblique and permuted affines included"


def _radiological_expected(slice_xy: np.ndarray, codes: tuple[str, str]) -> np.ndarray:
    """Ground truth: reorient a one-slice volume to RAS with nibabel, then ctutils.orientation.display_slice."""
    from ctutils.orientation import display_slice, reorient_to_ras

    signs = [1.0 if codes[0] == "R" else -1.0, 1.0 if codes[1] == "A" else -1.0, 1.0, 1.0]
    volume = np.stack([slice_xy, slice_xy], axis=2)
    ras, _ = reorient_to_ras(volume, np.diag(signs))
    return display_slice(ras, 0)


@exercise("01_data")
def check_radiological_view(radiological_view: Callable[..., Any]) -> str:
    """Exercise 01.3: show an axial slice in radiological convention, for any R/L, A/P storage."""
    slice_xy = np.arange(20, dtype=np.float32).reshape(5, 4)  # X = 5, Y = 4: not square on purpose
    for codes in (("R", "A"), ("L", "P"), ("L", "A"), ("R", "P")):
        before = slice_xy.copy()
        got = radiological_view(slice_xy, codes)
        _not_modified(before, slice_xy, "radiological_view")
        expected = _radiological_expected(slice_xy, codes)
        shown = f"radiological_view(slice, {codes})"
        expect(isinstance(got, np.ndarray), f"{shown} should return a 2-D numpy array, got {type(got).__name__}")
        expect(got.shape == expected.shape, f"{shown} should have shape (Y, X) = {expected.shape}: rows are the "
                                            f"Y (A/P) axis, columns the X (R/L) axis; got {got.shape}. Transpose first")
        if not np.array_equal(got, expected):
            if np.array_equal(got[:, ::-1], expected):
                hint = "the patient's right must be on the viewer's left: check the column flip"
            elif np.array_equal(got[::-1, :], expected):
                hint = "anterior must be at the top: check the row flip"
            else:
                hint = "transpose to (Y, X), then flip rows if Y increases towards A, columns if X increases towards R"
            raise NotYet(f"{shown} differs from the radiological view: {hint}")
    return ("stored L, P (DICOM's order) needs only the transpose; every R or A axis needs a flip — "
            "what display_slice does on RAS volumes")


@exercise("01_data")
def check_lung_fraction(lung_fraction: Callable[..., Any]) -> str:
    """Exercise 01.4: the fraction of voxels in the aerated-lung range."""
    hu = np.array([[[-1000.0, -900.0, -800.0], [-700.0, -600.0, 40.0]]])  # shape (1, 2, 3)
    before = hu.copy()
    cases = [
        ({}, 3 / 6, "count both ends: hu_min <= value <= hu_max (-900 and -700 are lung)"),
        ({"hu_min": -1000.0, "hu_max": -950.0}, 1 / 6, "use the hu_min and hu_max arguments"),
        ({"hu_min": -750.0, "hu_max": -300.0}, 2 / 6, "use the hu_min and hu_max arguments"),
    ]
    for kwargs, expected, hint in cases:
        shown = "lung_fraction(hu" + "".join(f", {k}={v:g}" for k, v in kwargs.items()) + ")"
        got = lung_fraction(hu, **kwargs)
        _not_modified(before, hu, "lung_fraction")
        expect(np.ndim(got) == 0, f"{shown} should return one number, got {got!r}")
        try:
            value = float(got)
        except (TypeError, ValueError):
            raise NotYet(f"{shown} should return a number, got {got!r}") from None
        if abs(value - expected * 100) < 1e-6:
            raise NotYet(f"{shown} gave {value:g}: return a fraction in [0, 1], not a percentage")
        if not np.isclose(value, expected):
            raise NotYet(f"{shown} gave {value:.4g}, expected {expected:.4g}: {hint}")
    return "a fraction of all voxels, both ends of the range included"


# --- chapter 02_preprocessing ---

__all__ += ["check_expected_split_sizes", "check_resampled_shape", "check_window"]


@exercise("02_preprocessing")
def check_window(window: Callable[..., Any]) -> str:
    """Exercise 02.1: HU windowing to [0, 1] without modifying the input."""
    cases = [
        (np.array([-2000.0, -1000.0, -300.0, 400.0, 1000.0]), -1000.0, 400.0, [0.0, 0.0, 0.5, 1.0, 1.0]),
        (np.array([-1350.0, -600.0, 150.0, 3000.0], dtype=np.float32), -1350.0, 150.0, [0.0, 0.5, 1.0, 1.0]),
        (np.array([[[-1024, -125]], [[50, 225]]], dtype=np.int16), -125.0, 225.0, [[[0.0, 0.0]], [[0.5, 1.0]]]),
    ]
    for volume, hu_min, hu_max, expected in cases:
        shown = f"window({volume.tolist()} as {volume.dtype}, hu_min={hu_min:g}, hu_max={hu_max:g})"
        before = volume.copy()
        got = window(volume, hu_min=hu_min, hu_max=hu_max)
        expect(np.array_equal(before, volume),
               f"{shown} changed its input (now {volume.tolist()}); clip a copy: `np.clip(volume, hu_min, hu_max)` "
               "returns a new array, `volume[volume < hu_min] = hu_min` (the Keras example's normalize) does not")
        expect(isinstance(got, np.ndarray), f"{shown} should return a numpy array, got {type(got).__name__}")
        expect(got is not volume, f"{shown} returned its input array; return a new one")
        expect(got.shape == volume.shape, f"{shown} should keep the shape {volume.shape}, got {got.shape}")
        expect(np.issubdtype(got.dtype, np.floating), f"{shown} should return floats in [0, 1], got dtype {got.dtype}")
        got64 = np.asarray(got, dtype=np.float64)
        want = np.asarray(expected, dtype=np.float64)
        if np.allclose(got64, want * (hu_max - hu_min)):
            raise NotYet(f"{shown} gave {got.tolist()}: divide by the window width hu_max - hu_min")
        if np.allclose(got64, want * (hu_max - hu_min) + hu_min):
            raise NotYet(f"{shown} gave {got.tolist()}: clipping is done; now scale to [0, 1] with "
                         "(v - hu_min) / (hu_max - hu_min)")
        expect_close(got64, want, what=shown, atol=1e-6)
    return "clipped and scaled to [0, 1], input untouched (window_hu in ctutils.intensity does the same)"


def _split_sizes(n: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
    from ctutils.splits import split_sizes

    return split_sizes(n, fractions=fractions)


@exercise("02_preprocessing")
def check_expected_split_sizes(expected_split_sizes: Callable[..., Any]) -> str:
    """Exercise 02.2: how many scans of each class go to train, val and test."""
    cases = [
        ({"normal": 40, "abnormal": 40}, (0.7, 0.15, 0.15)),
        ({"normal": 254, "abnormal": 856}, (0.7, 0.15, 0.15)),
        ({"normal": 30, "abnormal": 7}, (0.7, 0.15, 0.15)),
        ({"normal": 100, "abnormal": 100}, (0.8, 0.1, 0.1)),
    ]
    for counts, fractions in cases:
        shown = f"expected_split_sizes({counts}, fractions={fractions})"
        got = expected_split_sizes(dict(counts), fractions=fractions)
        expect(isinstance(got, Mapping), f"{shown} should return a dict {{class name: (train, val, test)}}, "
                                         f"got {type(got).__name__}")
        expect(set(got) == set(counts), f"{shown} should have the keys {sorted(counts)}, got {sorted(got)}")
        for name, n in counts.items():
            want = _split_sizes(n, fractions)
            try:
                sizes = tuple(int(x) for x in got[name])
            except (TypeError, ValueError):
                raise NotYet(f"{shown}[{name!r}] should be 3 integers (train, val, test), got {got[name]!r}") from None
            expect(len(sizes) == 3, f"{shown}[{name!r}] should be 3 integers (train, val, test), got {got[name]!r}")
            if sizes == want:
                continue
            if sum(sizes) != n:
                hint = f"the three sizes must add up to the {n} scans of the class: test takes the rest"
            elif sizes[:2] == (round(n * fractions[0]), round(n * fractions[1])):
                hint = (f"Python's round() rounds halves to even (round({n * fractions[1]:g}) = "
                        f"{round(n * fractions[1])}); round halves up: math.floor(x + 0.5)")
            elif sizes[:2] == (int(n * fractions[0]), int(n * fractions[1])):
                hint = "int() truncates; round halves up instead: math.floor(x + 0.5)"
            else:
                hint = "train = floor(n × f_train + 0.5), val = floor(n × f_val + 0.5), test = the rest"
            raise NotYet(f"{shown}[{name!r}] should be {want}, got {sizes}: {hint}")
    return "the same sizes as ctutils.splits.split_sizes, class by class"


def _resampled(shape: tuple[int, ...], spacing: tuple[float, ...], target: tuple[float, ...]) -> tuple[int, ...]:
    """The rule of ctutils.resample.resample_to_spacing."""
    return tuple(max(1, int(round(n * s / t))) for n, s, t in zip(shape, spacing, target))


@exercise("02_preprocessing")
def check_resampled_shape(resampled_shape: Callable[..., Any]) -> str:
    """Exercise 02.3: the shape of a volume after resampling to another voxel size."""
    cases = [
        ((10, 10, 4), (0.5, 0.5, 5.0), (1.0, 1.0, 2.5)),
        ((256, 256, 39), (1.3405, 1.3405, 7.4697), (2.0, 2.0, 2.0)),
        ((512, 512, 48), (0.5703125, 0.5703125, 5.0), (1.5, 1.5, 1.5)),
        ((64, 64, 3), (1.0, 1.0, 1.0), (4.0, 4.0, 8.0)),
    ]
    for shape, spacing, target in cases:
        shown = f"resampled_shape({shape}, {spacing}, {target})"
        want = _resampled(shape, spacing, target)
        got = resampled_shape(shape, spacing, target)
        try:
            sizes = tuple(int(x) for x in got)
            exact = all(float(x) == int(x) for x in got)
        except (TypeError, ValueError):
            raise NotYet(f"{shown} should return 3 integers, got {got!r}") from None
        expect(exact and len(sizes) == 3, f"{shown} should return 3 whole numbers of voxels, got {got!r}")
        if sizes == want:
            continue
        extent = [n * s for n, s in zip(shape, spacing)]
        if sizes == tuple(max(1, int(round(n * t / s))) for n, s, t in zip(shape, spacing, target)):
            hint = "the ratio is upside down: bigger target voxels mean fewer of them (n × spacing / target)"
        elif min(sizes) < 1:
            hint = "keep at least 1 voxel per axis"
        elif sizes == tuple(int(e / t) for e, t in zip(extent, target)):
            hint = "int() truncates: round to the nearest whole number of voxels"
        else:
            hint = "new size = round(n × spacing / target) per axis (the extent in mm stays the same), at least 1"
        raise NotYet(f"{shown} should be {want}, got {sizes}: {hint}")
    return "the extent in mm is kept: n × spacing = new n × target, up to rounding"


# --- chapter 03_augmentation ---

__all__ += ["check_balanced_weights", "check_flip_left_right", "check_rotated_position"]


def _only(**settings: Any) -> Any:
    """An AugmentConfig with every operation off except ``settings`` (imports TensorFlow)."""
    from ctutils.augment import AugmentConfig

    off = {"rotation_p": 0.0, "flip_p": 0.0, "zoom_p": 0.0, "intensity_p": 0.0, "noise_p": 0.0}
    return AugmentConfig(**{**off, **settings})


@exercise("03_augmentation")
def check_flip_left_right(flip_left_right: Callable[[Any], Any]) -> str:
    """Exercise 03.1: a left-right flip with TensorFlow ops, compared with augment_volume."""
    from ctutils.augment import augment_volume
    from ctutils.tfimport import tf

    volume = np.random.default_rng(3).random((5, 4, 3), dtype=np.float32)
    expected = augment_volume(volume, seed=tf.constant([0, 0]), config=_only(flip_p=1.0)).numpy()
    got = flip_left_right(tf.constant(volume))
    expect(got is not None, "flip_left_right returned None: return the flipped volume")
    got = np.asarray(got)
    expect(got.shape == volume.shape, f"the flip should keep the shape (X, Y, Z) = {volume.shape}, got {got.shape}")
    if np.array_equal(got, volume):
        raise NotYet("the volume came back unchanged: reverse the order of its voxels along axis 0")
    wrong_axes = {1: "axis 1 (Y: anterior–posterior, up–down in the display)",
                  2: "axis 2 (Z: the slices, head–feet)"}
    for axis, name in wrong_axes.items():
        if np.array_equal(got, np.flip(volume, axis=axis)):
            raise NotYet(f"that flips {name}; left–right is axis 0 (X: the patient's right–left in RAS)")
    expect(np.allclose(got, expected), "the result differs from augment_volume's flip: reverse axis 0 only, "
                                       "and do not change the values")
    in_graph = tf.function(flip_left_right, input_signature=[tf.TensorSpec([None, None, None], tf.float32)])
    try:
        traced = np.asarray(in_graph(tf.constant(volume)))
    except Exception as error:  # noqa: BLE001 - NumPy on a symbolic tensor fails in many ways
        raise NotYet("it works eagerly but fails inside a tf.function graph, as tf.data runs it "
                     f"({type(error).__name__}): use TensorFlow ops such as tf.reverse, not NumPy") from None
    expect(np.allclose(traced, expected), "inside a tf.function graph it gives another result than eagerly")
    return "axis 0 reversed, the same as augment_volume's flip, eagerly and inside a tf.function graph"


def _rotated_by_helper(x: int, y: int, size: int) -> tuple[int, int]:
    """Where ``augment_volume`` puts a bright voxel at (x, y) of a size × size slice after +90°."""
    from ctutils.augment import augment_volume
    from ctutils.tfimport import tf

    volume = np.zeros((size, size, 1), np.float32)
    volume[x, y, 0] = 1.0
    config = _only(rotation_p=1.0, angles_deg=(90.0,))
    out = augment_volume(volume, seed=tf.constant([0, 0]), config=config).numpy()
    x_new, y_new, _ = np.unravel_index(int(np.argmax(out)), out.shape)
    return int(x_new), int(y_new)


@exercise("03_augmentation")
def check_rotated_position(rotated_position: Callable[[int, int, int], Any]) -> str:
    """Exercise 03.2: where a bright voxel goes after a +90° rotation."""
    for x, y, size in ((2, 1, 9), (0, 0, 3), (7, 2, 8), (0, 5, 6), (4, 4, 9)):
        want = _rotated_by_helper(x, y, size)
        shown = f"rotated_position({x}, {y}, {size})"
        got = rotated_position(x, y, size)
        try:
            pair = tuple(int(v) for v in got)
        except (TypeError, ValueError):
            raise NotYet(f"{shown} should return a pair of indices (x_new, y_new), got {got!r}") from None
        expect(len(pair) == 2, f"{shown} should return a pair of indices (x_new, y_new), got {got!r}")
        if pair == want:
            continue
        slips = {
            (size - 1 - y, x): "that is -90°, clockwise in the display; a positive angle turns counter-clockwise",
            (y, x): "that swaps x and y: a mirror across the diagonal, not a rotation",
            (size - 1 - x, size - 1 - y): "that is a 180° turn",
            (size - 1 - y, size - 1 - x): "that is a mirror across the other diagonal, not a rotation",
        }
        hint = slips.get(pair, "work through np.rot90(v, k=-1, axes=(0, 1)) on a 3 × 3 slice by hand")
        raise NotYet(f"{shown} should be {want}, got {pair}: {hint}")
    return "(x, y) → (y, size − 1 − x), the same as augment_volume puts the voxel"


@exercise("03_augmentation")
def check_balanced_weights(balanced_weights: Callable[[Mapping[int, int]], Mapping[int, float]]) -> str:
    """Exercise 03.3: balanced class weights n / (k · n_c) from class counts."""
    for counts in ({0: 254, 1: 856}, {0: 28, 1: 28}, {0: 1, 1: 3}, {0: 10, 1: 20, 2: 70}):
        shown = f"balanced_weights({counts})"
        got = balanced_weights(dict(counts))
        expect(isinstance(got, Mapping), f"{shown} should return a dict {{class: weight}}, got {type(got).__name__}")
        expect(set(got) == set(counts), f"{shown} should have one weight per class, keys {sorted(counts)}; "
                                        f"got keys {sorted(got, key=str)}")
        n, k = sum(counts.values()), len(counts)
        want = {c: n / (k * m) for c, m in counts.items()}
        try:
            values = {c: float(got[c]) for c in counts}
        except (TypeError, ValueError):
            raise NotYet(f"{shown}: the weights should be numbers, got {dict(got)!r}") from None
        inverse_sum = sum(1 / m for m in counts.values())
        slips = {
            "multiplied": ({c: m / n for c, m in counts.items()},
                           "the rarer class must weigh more: divide by n_c, do not multiply"),
            "no k": ({c: n / m for c, m in counts.items()},
                     "divide by the number of classes k too: then the average weight per volume is 1"),
            "sum 1": ({c: (1 / m) / inverse_sum for c, m in counts.items()},
                      "balanced weights are not normalised to sum to 1: use n / (k · n_c)"),
        }
        if all(np.isclose(values[c], want[c], rtol=1e-9) for c in counts):
            continue
        for slip, hint in slips.values():
            if all(np.isclose(values[c], slip[c], rtol=1e-9) for c in counts):
                raise NotYet(f"{shown} gave {values}: {hint}")
        raise NotYet(f"{shown} should be {want}, got {values}: weight of class c = n / (k · n_c)")
    return ("full MosMedData (254 normal, 856 abnormal): normal 2.185, abnormal 0.648; "
            "the average weight per training volume is 1, so the loss keeps its scale")


# --- chapter 04_model ---

__all__ += ["check_conv3d_params", "check_output_size", "check_three_block_cnn"]


def _keras_conv3d_params(kernel_size: int, c_in: int, c_out: int, *, use_bias: bool) -> int:
    """Parameters of a Keras Conv3D layer built on ``c_in`` input channels (imports Keras)."""
    from ctutils.tfimport import keras

    layer = keras.layers.Conv3D(c_out, kernel_size, use_bias=use_bias)
    layer.build((None, 8, 8, 8, c_in))
    return int(layer.count_params())


@exercise("04_model")
def check_conv3d_params(conv3d_params: Callable[..., Any]) -> str:
    """Exercise 04.1: the number of parameters of a Conv3D layer."""
    cases = [(3, 1, 64, True), (3, 64, 64, True), (3, 128, 256, True), (5, 2, 3, True),
             (3, 16, 32, False), (1, 16, 32, False)]
    for k, c_in, c_out, use_bias in cases:
        shown = f"conv3d_params({k}, {c_in}, {c_out}" + (")" if use_bias else ", use_bias=False)")
        got = conv3d_params(k, c_in, c_out) if use_bias else conv3d_params(k, c_in, c_out, use_bias=False)
        expect(isinstance(got, (int, np.integer)) and not isinstance(got, bool)
               or isinstance(got, (float, np.floating)) and float(got).is_integer(),
               f"{shown} should be a whole number of parameters, got {got!r}")
        want = _keras_conv3d_params(k, c_in, c_out, use_bias=use_bias)
        if int(got) == want:
            continue
        slips = {
            k**3 * c_in * c_out: "add the biases: one per output filter (+ c_out)",
            (k**2 * c_in + 1) * c_out: "a 3-D kernel has k × k × k = k³ weights per input channel, not k²",
            (k**3 + 1) * c_out: "each filter has k³ weights for every one of the c_in input channels",
            (k**3 * c_in + 1) * c_out: "with use_bias=False there are no biases (the ResNet's convolutions, "
                                       "followed by batch normalisation)",
        }
        slips.pop(want, None)
        hint = slips.get(int(got), "parameters = (k³ · c_in + 1) · c_out with a bias, k³ · c_in · c_out without")
        raise NotYet(f"{shown} should be {want:,} (as Keras counts), got {int(got):,}: {hint}")
    return "(k³ · c_in + 1) · c_out, as Keras counts: the reference's 4th convolution alone holds 884,992"


def _size_after_blocks(n: int, n_blocks: int, padding: str) -> int:
    for _ in range(n_blocks):
        n = n - 2 if padding == "valid" else n
        n = n // 2 if n >= 1 else 0
        if n < 1:
            return 0
    return n


@exercise("04_model")
def check_output_size(output_size: Callable[..., Any]) -> str:
    """Exercise 04.2: the size of an axis after n conv + pool blocks."""
    cases = [(128, 4, "valid"), (64, 4, "valid"), (46, 4, "valid"), (45, 4, "valid"), (32, 4, "valid"),
             (64, 3, "valid"), (1, 1, "valid"), (64, 4, "same"), (32, 4, "same"), (15, 4, "same")]
    for n, n_blocks, padding in cases:
        shown = f"output_size({n}, {n_blocks}, padding={padding!r})"
        got = output_size(n, n_blocks, padding=padding)
        want = _size_after_blocks(n, n_blocks, padding)
        expect(isinstance(got, (int, np.integer)) and not isinstance(got, bool)
               or isinstance(got, (float, np.floating)) and float(got).is_integer(),
               f"{shown} should be a whole number of voxels, got {got!r} (MaxPool3D(2) rounds down: use //)")
        if int(got) == want:
            continue
        if want == 0 and int(got) < 0:
            hint = "once no voxel is left, the model cannot be built: return 0, not a negative size"
        elif padding == "valid" and int(got) == n // 2**n_blocks:
            hint = "with valid padding each 3 × 3 × 3 convolution removes k − 1 = 2 voxels before the pooling halves"
        elif padding == "same" and int(got) == _size_after_blocks(n, n_blocks, "valid"):
            hint = "with same padding the convolution keeps the size; only the pooling halves it"
        else:
            hint = "per block: valid conv n → n − 2 (same: n), then pool n → n // 2; 0 once nothing is left"
        raise NotYet(f"{shown} should be {want}, got {got!r}: {hint}")
    return ("128 × 128 × 64 ends at 6 × 6 × 2 after the reference's 4 blocks; 45 voxels vanish, 46 leave one: "
            "minimum_input_size() = 46")


_THREE_BLOCK_PARAMS = 401_345  # (27+1)·64 + (27·64+1)·64 + (27·64+1)·128 + 4·(64+64+128) + (128+1)·512 + 513


@exercise("04_model")
def check_three_block_cnn(build_three_blocks: Callable[[tuple[int, ...]], Any]) -> str:
    """Exercise 04.3: the reference CNN with 3 blocks, at the quick profile's 64 × 64 × 32."""
    model = build_three_blocks((64, 64, 32, 1))
    expect(model is not None and hasattr(model, "count_params") and hasattr(model, "layers"),
           f"build_three_blocks should return a keras.Model, got {type(model).__name__}")
    expect(tuple(model.input_shape) == (None, 64, 64, 32, 1),
           f"build it for the input_shape it is given, (64, 64, 32, 1); its input is {model.input_shape}")
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv3D"]
    filters = tuple(int(layer.filters) for layer in convs)
    expect(filters == (64, 64, 128), f"the reference's first three blocks have 64, 64 and 128 filters; "
                                     f"yours have {filters}: build_cnn3d(..., filters=(64, 64, 128))")
    paddings = sorted({layer.padding for layer in convs})
    expect(paddings == ["valid"], f"keep the reference's valid padding (got {paddings}): "
                                  "3 blocks need only 22 voxels per axis, so 64 × 64 × 32 builds")
    expect(tuple(model.output_shape) == (None, 1), f"the output should be (None, 1), got {model.output_shape}")
    n = int(model.count_params())
    expect(n == _THREE_BLOCK_PARAMS, f"{n:,} parameters, expected {_THREE_BLOCK_PARAMS:,}: keep the reference's "
                                     "other settings (dense_units=512, dropout=0.3)")
    return (f"{_THREE_BLOCK_PARAMS:,} parameters vs 1,352,897 for 4 blocks (the 4th convolution alone holds "
            "884,992); the minimum input drops from 46 to 22 voxels per axis")


# --- chapter 05_training ---

__all__ += ["CHOICES", "Choice", "check_best_epoch", "check_choice", "check_lr_at_step", "check_split_by_study",
            "check_tiny_cnn", "choice"]


@exercise("05_training")
def check_lr_at_step(lr_at_step: Callable[..., Any]) -> str:
    """Exercise 05.1: the learning rate of the reference's ExponentialDecay at an optimizer step."""
    cases = [
        (0, {}, 1e-4),
        (7_000, {}, 1e-4),
        (250_000, {}, 1e-4 * 0.96**2),
        (250_000, {"staircase": False}, 1e-4 * 0.96**2.5),
        (10, {"initial_lr": 0.1, "decay_steps": 4, "decay_rate": 0.5}, 0.1 * 0.5**2),
        (10, {"initial_lr": 0.1, "decay_steps": 4, "decay_rate": 0.5, "staircase": False}, 0.1 * 0.5**2.5),
    ]
    for step, kwargs, expected in cases:
        shown = ", ".join([repr(step), *(f"{k}={v!r}" for k, v in kwargs.items())])
        got = lr_at_step(step, **kwargs)
        expect(isinstance(got, (int, float, np.number)) and not isinstance(got, bool),
               f"lr_at_step({shown}) should return a number, got {got!r}")
        got = float(got)
        if np.isclose(got, expected, rtol=1e-9, atol=0.0):
            continue
        initial = kwargs.get("initial_lr", 1e-4)
        steps, rate = kwargs.get("decay_steps", 100_000), kwargs.get("decay_rate", 0.96)
        staircase = kwargs.get("staircase", True)
        slips = [
            (initial * rate ** (step / steps), "staircase=True counts whole decay periods only: the exponent is "
                                               "step // decay_steps (floor division)"),
            (initial * rate ** (step // steps), "with staircase=False the exponent is the fraction step / decay_steps"),
            (initial * rate * (step // steps if staircase else step / steps),
             "the rate is multiplied by decay_rate once per period: decay_rate ** periods, not decay_rate * periods"),
            (initial * (1 - rate) ** (step // steps if staircase else step / steps),
             "decay_rate is the factor kept per period (0.96 keeps 96 %), not the part removed"),
        ]
        for value, hint in slips:
            if np.isclose(got, value, rtol=1e-9, atol=0.0):
                raise NotYet(f"lr_at_step({shown}) gave {got:.6g}, expected {expected:.6g}: {hint}")
        raise NotYet(f"lr_at_step({shown}) gave {got:.6g}, expected {expected:.6g}: "
                     "lr = initial_lr * decay_rate ** (step / decay_steps), the exponent floored when staircase")
    return ("the reference trains 100 epochs × 70 steps = 7,000 steps, far from the first decay at step 100,000: "
            "its learning rate is 1e-4 throughout")


def _history_for_check() -> dict[str, list[Any]]:
    return {
        "epoch": [1, 2, 3, 4, 5],
        "val_auc": [0.55, 0.70, 0.82, 0.82, 0.78],
        "val_loss": [0.69, 0.64, 0.61, 0.58, 0.60],
        "val_acc": [0.50, None, 0.75, 0.70, 0.80],
    }


@exercise("05_training")
def check_best_epoch(best_epoch: Callable[..., Any]) -> str:
    """Exercise 05.2: pick the best epoch from a training history."""
    cases = [
        ({"monitor": "val_auc", "mode": "max"}, 3, "val_auc peaks at 0.82 in epochs 3 and 4"),
        ({"monitor": "val_loss", "mode": "min"}, 4, "val_loss is lowest (0.58) in epoch 4"),
        ({"monitor": "val_acc", "mode": "max"}, 5, "val_acc is missing (None) in epoch 2 and highest in epoch 5"),
    ]
    for kwargs, expected, why in cases:
        shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        history = _history_for_check()
        got = best_epoch(history, **kwargs)
        expect(history == _history_for_check(), "best_epoch must not change the history it is given")
        expect(isinstance(got, (int, np.integer)) and not isinstance(got, bool),
               f"best_epoch(history, {shown}) should return an epoch number (int), got {got!r}")
        got = int(got)
        if got == expected:
            continue
        if got == expected - 1:
            raise NotYet(f"best_epoch(history, {shown}) gave {got}, expected {expected}: epochs are numbered from 1 "
                         "(history['epoch']), list positions from 0")
        if kwargs["monitor"] == "val_auc" and got == 4:
            raise NotYet(f"best_epoch(history, {shown}) gave 4, expected 3: on a tie keep the first epoch "
                         "(a checkpoint is only replaced by a strictly better value)")
        if kwargs["mode"] == "min" and got == 1:
            raise NotYet(f"best_epoch(history, {shown}) gave 1, expected 4: mode='min' means smaller is better")
        raise NotYet(f"best_epoch(history, {shown}) gave {got}, expected {expected} ({why}); skip None values")
    return "ties keep the first epoch, None values are skipped, mode chooses the direction"


# ----------------------------------------------------------------------------- 05.3: modify a model

#: Exercise 05.3's network on a 16 × 16 × 8 × 1 input, by hand: conv 4 filters (27 · 1 + 1) · 4 = 112,
#: conv 8 filters (27 · 4 + 1) · 8 = 872, Dense(1) on 8 pooled features 8 + 1 = 9.
_TINY_CNN_PARAMS = 993
_TINY_INPUT = (16, 16, 8, 1)


def _blob_volumes(*, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Eight 16 × 16 × 8 × 1 volumes of noise around 0.2; the odd ones (label 1) hold a blob 0.6 brighter."""
    rng = np.random.default_rng(seed)
    shape = _TINY_INPUT[:3]
    x = rng.normal(0.2, 0.05, size=(8, *shape, 1)).astype(np.float32)
    y = np.arange(8) % 2
    grid = np.indices(shape)
    for i in np.flatnonzero(y):
        centre = rng.integers([4, 4, 2], [12, 12, 6])
        x[i, ..., 0] += 0.6 * (sum((g - c) ** 2 for g, c in zip(grid, centre)) <= 4)
    return x, y.astype(np.float32)


def _reinitialise(model: Any, *, seed: int) -> None:
    """Glorot-uniform kernels and zero biases from a seeded NumPy generator: the same start for every learner."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        shape = tuple(int(s) for s in weight.shape)
        if weight.name == "bias":
            weight.assign(np.zeros(shape, np.float32))
        elif len(shape) >= 2:
            receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
            limit = np.sqrt(6.0 / (receptive * (shape[-2] + shape[-1])))
            weight.assign(rng.uniform(-limit, limit, shape).astype(np.float32))


def _activation_after(model: Any, layer: Any) -> str:
    """Name of the activation that follows ``layer``: its own, or that of a separate Activation/ReLU layer."""
    name = getattr(getattr(layer, "activation", None), "__name__", "linear")
    layers = list(model.layers)
    following = layers[layers.index(layer) + 1] if layer is not layers[-1] else None
    if name == "linear" and following is not None:
        if type(following).__name__ == "ReLU":
            return "relu"
        if type(following).__name__ == "Activation":
            return getattr(following.activation, "__name__", "linear")
    return name


def _tiny_cnn_structure(model: Any) -> None:
    """Raise NotYet with a hint where the layers differ from exercise 05.3's statement."""
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv3D"]
    filters = tuple(int(layer.filters) for layer in convs)
    expect(filters == (4, 8), f"two Conv3D layers with 4 then 8 filters, got {len(convs)} with filters {filters}")
    kernels = [tuple(layer.kernel_size) for layer in convs]
    expect(all(k == (3, 3, 3) for k in kernels), f"kernel_size=3 in both convolutions, got {kernels}")
    paddings = [layer.padding for layer in convs]
    expect(paddings == ["same", "same"], f"padding='same' in both convolutions (got {paddings}): "
                                         "16 × 16 × 8 is too small to lose 2 voxels per axis in each")
    activations = [_activation_after(model, layer) for layer in convs]
    expect(activations == ["relu", "relu"], f"activation='relu' after each convolution, got {activations}: "
                                            "it is the nonlinearity that lets the second layer build on the first")
    kinds = [type(layer).__name__ for layer in model.layers]
    expect(kinds.count("MaxPooling3D") == 2, f"one MaxPool3D(2) after each convolution, got {kinds.count('MaxPooling3D')}")
    expect("Flatten" not in kinds and "GlobalAveragePooling3D" in kinds,
           "average the last feature maps with GlobalAveragePooling3D() (not Flatten) before the Dense layer")


def _trained_accuracy(model: Any) -> tuple[float, np.ndarray]:
    """Re-initialise the learner's model, train it on the 8 blob volumes; its training accuracy and predictions."""
    import warnings

    from ctutils.tfimport import keras

    x, y = _blob_volumes(seed=0)
    _reinitialise(model, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="binary_crossentropy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns about softmax on one unit: the check's hint says it
        model.fit(x, y, batch_size=8, epochs=40, shuffle=False, verbose=0)
        p = np.asarray(model(x, training=False), dtype=np.float64).ravel()
    return float(np.mean((p > 0.5) == (y > 0.5))), p


@exercise("05_training")
def check_tiny_cnn(build_tiny_cnn: Callable[[tuple[int, ...]], Any]) -> str:
    """Exercise 05.3: build a tiny 3-D CNN, count its parameters, and make it overfit 8 volumes."""
    try:
        model = build_tiny_cnn(_TINY_INPUT)
    except ValueError as error:
        if "zero or negative" not in str(error):
            raise
        raise NotYet(f"the model cannot be built for {_TINY_INPUT}: an axis shrinks to nothing (Keras: 'Computed output "
                     "size would be zero or negative'). Use padding='same', so that only the pooling halves the size "
                     "(16 × 16 × 8 → 8 × 8 × 4 → 4 × 4 × 2)") from None
    expect(model is not None and hasattr(model, "count_params") and hasattr(model, "layers"),
           f"build_tiny_cnn should return a keras.Model, got {type(model).__name__}")
    expect(tuple(model.input_shape) == (None, *_TINY_INPUT),
           f"build it for the input_shape it is given, {_TINY_INPUT}: keras.Input(input_shape); "
           f"its input is {model.input_shape}")
    expect(tuple(model.output_shape) == (None, 1),
           f"the output should be one probability per volume, shape (None, 1); got {model.output_shape}")
    _tiny_cnn_structure(model)
    n = int(model.count_params())
    expect(n == _TINY_CNN_PARAMS, f"{n:,} parameters, expected {_TINY_CNN_PARAMS:,} = (27·1 + 1)·4 + (27·4 + 1)·8 + "
                                  "(8 + 1): one Dense(1) unit after the pooling")
    accuracy, p = _trained_accuracy(model)
    if accuracy < 1.0:
        last = _activation_after(model, model.layers[-1])
        if np.ptp(p) < 1e-6:
            hint = (f"every prediction is {p[0]:.3f}: " + ("softmax over one unit is always 1; use "
                    "activation='sigmoid' for a single output" if last == "softmax" else
                    "the output does not depend on the input"))
        elif len(model.trainable_weights) < len(model.weights):
            hint = "some layers are frozen (trainable=False): the optimizer cannot change their weights"
        elif last != "sigmoid":
            hint = f"the last layer's activation is {last!r}; one output probability needs activation='sigmoid'"
        else:
            hint = "check the layers' order and activations against the statement"
        raise NotYet(f"after 40 full-batch Adam steps it classifies {accuracy:.0%} of its 8 training volumes "
                     f"correctly, not 100 %: a model that cannot overfit 8 volumes has a bug ({hint})")
    return (f"{_TINY_CNN_PARAMS} parameters, and 40 Adam steps fit the 8 training volumes (100 % training accuracy): "
            "run this 'overfit a few volumes' check before every long training")


# ----------------------------------------------------------------------------- 05.4: diagnose a leak


def _series_keys() -> tuple[list[str], list[int]]:
    """Exercise 05.4's scans: 20 studies (10 normal, 10 abnormal), 1 to 3 series each, as 'study_XXXX/sN'."""
    keys, labels = [], []
    for study in range(1, 21):
        for series in range(1, 2 + study % 3):  # 1, 2 or 3 series per study
            keys.append(f"study_{study:04d}/s{series}")
            labels.append(int(study > 10))
    return keys, labels


def _as_key_lists(got: Any, shown: str) -> tuple[list[str], list[str], list[str]]:
    try:
        parts = tuple(got)
    except TypeError:
        raise NotYet(f"{shown} should return three lists of keys (train, val, test), got {got!r}") from None
    expect(len(parts) == 3, f"{shown} should return three lists of keys (train, val, test), got {len(parts)} items")
    lists = []
    for name, part in zip(("train", "val", "test"), parts):
        expect(not isinstance(part, str) and hasattr(part, "__iter__"),
               f"{shown}: {name} should be a list of keys, got {part!r}")
        part = list(part)
        expect(all(isinstance(k, str) for k in part), f"{shown}: {name} should hold the keys (strings) themselves, "
                                                       f"got {part[:3]!r}…")
        lists.append(part)
    return lists[0], lists[1], lists[2]


def _study(key: str) -> str:
    return key.split("/")[0]


def _check_split(got: Any, keys: list[str], labels: list[int], shown: str) -> dict[str, set[str]]:
    from ctutils.splits import split_sizes

    train, val, test = _as_key_lists(got, shown)
    assigned = train + val + test
    missing = sorted(set(keys) - set(assigned))
    if missing:
        raise NotYet(f"{shown} leaves out {len(missing)} scan(s), e.g. {missing[0]!r}: every scan goes to one split")
    extra = sorted(set(assigned) - set(keys))
    if extra:
        raise NotYet(f"{shown} returns keys it was not given, e.g. {extra[0]!r}")
    twice = sorted({k for k in assigned if assigned.count(k) > 1})
    if twice:
        raise NotYet(f"{shown} puts {twice[0]!r} in two places: every scan goes to exactly one split")
    where = {name: {_study(k) for k in part} for name, part in zip(("train", "val", "test"), (train, val, test))}
    for a, b in (("train", "test"), ("train", "val"), ("val", "test")):
        shared = sorted(where[a] & where[b])
        if shared:
            raise NotYet(f"{shown}: {shared[0]} has scans in {a} and in {b} — the leak: its series are the same "
                         "patient, so the model is tested on what it trained on. Split the study ids, then give "
                         "each study all its scans")
    study_label = {_study(k): y for k, y in zip(keys, labels)}
    for label in sorted(set(labels)):
        n = sum(1 for y in study_label.values() if y == label)
        want = split_sizes(n)
        got_sizes = tuple(sum(1 for s in where[name] if study_label[s] == label) for name in ("train", "val", "test"))
        if got_sizes != want:
            n_scans = [sum(1 for k in part if labels[keys.index(k)] == label) for part in (train, val, test)]
            hint = ("count studies, not scans" if tuple(n_scans) == split_sizes(sum(n_scans)) else
                    "per class, split_sizes(number of studies of the class) gives the train, val and test counts")
            raise NotYet(f"{shown}: class {label} has {n} studies, split {got_sizes} (train, val, test), "
                         f"expected {want}: {hint}")
    return where


@exercise("05_training")
def check_split_by_study(split_by_study: Callable[..., Any]) -> str:
    """Exercise 05.4: fix the split that leaks test scans into training."""
    keys, labels = _series_keys()
    seen = []
    for seed in (0, 1, 2):
        shown = f"split_by_study(keys, labels, seed={seed})"
        first = _check_split(split_by_study(list(keys), list(labels), seed=seed), keys, labels, shown)
        again = _check_split(split_by_study(list(keys), list(labels), seed=seed), keys, labels, shown)
        expect(first == again, f"{shown} gave another split the second time: draw from "
                               "np.random.default_rng(seed), not from an unseeded generator")
        order = np.random.default_rng(seed + 10).permutation(len(keys))
        shuffled = _check_split(split_by_study([keys[i] for i in order], [labels[i] for i in order], seed=seed),
                                keys, labels, f"{shown} on the keys in another order")
        expect(shuffled == first, f"{shown} depends on the order of the keys: sort the study ids before shuffling "
                                  "(a split must not depend on the order the file system lists files in)")
        seen.append(first)
    expect(seen[0] != seen[1] or seen[0] != seen[2], "seeds 0, 1 and 2 give the same split: shuffle the study ids "
                                                     "with np.random.default_rng(seed)")
    return ("no study in two splits, every scan once, stratified by study, reproducible: "
            "split by patient or study, never by scan, slice or augmented copy")


# ----------------------------------------------------------------------------- concept checks


@dataclass(frozen=True)
class Choice:
    """A multiple-choice concept check.

    Attributes
    ----------
    chapter, name : str
        Where it is registered (``"05_training/overfitting"``).
    answer : str
        The right option's letter.
    why_not : dict
        For each wrong option's letter, why it is wrong (shown after that answer).
    lesson : str
        The idea behind the question: shown after a wrong answer, and briefly after a right one.
    """

    chapter: str
    name: str
    answer: str
    why_not: Mapping[str, str]
    lesson: str


#: Every concept check, keyed ``"<chapter>/<name>"``.
CHOICES: dict[str, Choice] = {}


def _letter(answer: Any, options: list[str]) -> str:
    got = answer() if callable(answer) else answer
    shown = ", ".join(f'"{o}"' for o in options[:-1]) + f' or "{options[-1]}"'
    expect(got is not None, f"return your choice, one of {shown}")
    expect(isinstance(got, str), f"return one letter as a string, one of {shown}; got {got!r}")
    letter = got.strip().strip("().").strip().lower()
    expect(letter in options, f"return one of {shown}; got {got!r}")
    return letter


def choice(chapter: str, name: str, *, answer: str, why_not: Mapping[str, str], lesson: str) -> Choice:
    """Register a multiple-choice concept check as ``<chapter>/<name>``; run it with :func:`check_choice`."""
    item = Choice(chapter=chapter, name=name, answer=answer, why_not=dict(why_not), lesson=lesson)
    options = sorted([answer, *why_not])

    def check_one(answer_fn: Any) -> str:
        letter = _letter(answer_fn, options)
        if letter != item.answer:
            raise NotYet(f"({letter}) is not it: {item.why_not[letter]} The idea: {item.lesson}")
        return f"({letter}). {item.lesson}"

    check_one.__name__ = f"check_{name}"
    check_one.__doc__ = f"Concept check {chapter}/{name}."
    exercise(chapter, name=name)(check_one)
    CHOICES[f"{chapter}/{name}"] = item
    return item


def check_choice(question: str, answer: Any) -> CheckResult:
    """Check a multiple-choice answer: ``check_choice("05_training/overfitting", answer_05_1)``.

    ``answer`` is the learner's function returning a letter (``"b"``), or the letter itself. A wrong
    answer prints why that option is wrong and the idea behind the question; a right one a short
    confirmation. Like every check, it never raises for the learner's answer.

    Raises
    ------
    KeyError
        ``question`` is not a registered concept check (the message lists them).
    """
    if question not in CHOICES:
        raise KeyError(f"unknown concept check {question!r}; registered: {', '.join(sorted(CHOICES))}")
    return EXERCISES[question].check(answer)


choice("05_training", "diverging_curves", answer="c", why_not={
    "a": "a learning rate that is too low slows both curves down; it does not make the validation loss rise.",
    "b": "underfitting means the training loss stays high too; here it keeps falling.",
    "d": "a leak makes validation look too good, not worse.",
}, lesson="Training loss falling while validation loss rises is overfitting: the network memorises its training "
          "scans. Keep the best epoch (restore_best_weights), augment, regularise, or get more scans.")

choice("05_training", "best_epoch_optimism", answer="b", why_not={
    "a": "the validation scans were never trained on, but they were used to choose the epoch.",
    "c": "choosing the maximum of noisy values biases it upwards, not downwards.",
    "d": "early stopping chooses the epoch on validation too: the same selection.",
}, lesson="The best of many noisy validation scores is optimistic (selection bias, the winner's curse): "
          "report the test split, which played no part in the choice.")

choice("05_training", "accuracy_vs_auc", answer="a", why_not={
    "b": "ROC-AUC only needs the scores to be ranked; a bug would not give 0.9 by chance on a balanced split.",
    "c": "a model that guesses has an AUC near 0.5, not 0.9.",
    "d": "shuffled labels give an AUC near 0.5 as well.",
}, lesson="AUC 0.9 says the scores rank abnormal above normal scans; accuracy 0.5 says they all fall on one side "
          "of the 0.5 threshold (e.g. batch-norm statistics after a short run). That is calibration and threshold, "
          "not ranking.")

choice("05_training", "shuffled_labels", answer="d", why_not={
    "a": "it is the cheapest control there is against a leak in the pipeline.",
    "b": "the same model reaches a high AUC with the true labels, so its size is not the problem.",
    "c": "with shuffled labels there is nothing to learn; that says nothing about the real model.",
}, lesson="A negative control: with labels shuffled nothing real can be learnt, so validation AUC ≈ 0.5 means "
          "no label information reaches the model by another road (file order, a split bug, a scanner tag). "
          "If it came out 0.9, look for the leak.")


# --- chapter 06_evaluation ---

__all__ += ["check_ece", "check_sensitivity_specificity", "check_specificity_at_sensitivity",
            "check_threshold_for_sensitivity"]


@exercise("06_evaluation")
def check_sensitivity_specificity(sensitivity_specificity: Callable[..., Any]) -> str:
    """Exercise 06.1: sensitivity and specificity from a confusion matrix."""
    cases = [
        ([[5, 1], [2, 4]], (4 / 6, 5 / 6)),
        (np.array([[50, 10], [5, 35]]), (35 / 40, 50 / 60)),
        ([[9, 0], [3, 3]], (3 / 6, 9 / 9)),
    ]
    for cm, (sens, spec) in cases:
        shown = np.asarray(cm).tolist()
        got = sensitivity_specificity(cm)
        try:
            pair = tuple(float(v) for v in got)
        except (TypeError, ValueError):
            raise NotYet(f"sensitivity_specificity({shown}) should return two numbers "
                         f"(sensitivity, specificity), got {got!r}") from None
        expect(len(pair) == 2, f"sensitivity_specificity({shown}) should return two numbers, got {len(pair)}")
        if np.allclose(pair, (sens, spec)):
            continue
        (tn, fp), (fn, tp) = np.asarray(cm, dtype=float)
        if np.allclose(pair, (spec, sens)):
            hint = "return (sensitivity, specificity), in that order"
        elif np.allclose(pair, (tp / (tp + fp), tn / (tn + fn))):
            hint = ("rows are the truth and columns the prediction ([[tn, fp], [fn, tp]]): sensitivity = tp / (tp + fn) "
                    "divides by a row, not a column (tp / (tp + fp) is the precision)")
        else:
            hint = "sensitivity = tp / (tp + fn) (abnormal scans found), specificity = tn / (tn + fp) (normal scans cleared)"
        raise NotYet(f"sensitivity_specificity({shown}) gave ({pair[0]:.3f}, {pair[1]:.3f}), "
                     f"expected ({sens:.3f}, {spec:.3f}): {hint}")
    return "sensitivity = tp / (tp + fn), specificity = tn / (tn + fp): each divides by a row of the matrix (the truth)"


#: Exercise 06.2's scores: 10 abnormal and 6 normal scans.
_SENS_SCORES_POS = [0.95, 0.90, 0.85, 0.80, 0.70, 0.60, 0.55, 0.40, 0.35, 0.20]
_SENS_SCORES_NEG = [0.75, 0.50, 0.45, 0.30, 0.10, 0.05]


@exercise("06_evaluation")
def check_threshold_for_sensitivity(threshold_for_sensitivity: Callable[..., Any]) -> str:
    """Exercise 06.2: the highest threshold that reaches a target sensitivity."""
    y_true = np.array([1] * len(_SENS_SCORES_POS) + [0] * len(_SENS_SCORES_NEG))
    scores = np.array(_SENS_SCORES_POS + _SENS_SCORES_NEG)
    order = np.random.default_rng(0).permutation(y_true.size)  # not sorted: sorting is part of the job
    y_true, scores = y_true[order], scores[order]
    positives = np.sort(scores[y_true == 1])[::-1]
    for target in (0.9, 1.0, 0.5, 0.75):
        expected = float(positives[int(np.ceil(target * positives.size - 1e-9)) - 1])
        got = threshold_for_sensitivity(y_true.copy(), scores.copy(), target=target)
        expect(isinstance(got, (int, float, np.number)) and not isinstance(got, bool),
               f"threshold_for_sensitivity(..., target={target}) should return a number, got {got!r}")
        got = float(got)
        if np.isclose(got, expected):
            continue
        sens = float(np.mean(scores[y_true == 1] >= got))
        spec = float(np.mean(scores[y_true == 0] < got))
        if sens < target:
            hint = (f"at threshold {got:.2f} only {sens:.0%} of the abnormal scans have a score >= it: "
                    f"below the target {target:.0%}")
        else:
            hint = (f"threshold {got:.2f} reaches the target (sensitivity {sens:.0%}) but a higher one also does and "
                    f"clears more normal scans (specificity here {spec:.0%}): take the highest")
        raise NotYet(f"threshold_for_sensitivity(..., target={target}) gave {got:.2f}, expected {expected:.2f}: {hint}")
    return ("for 90 % sensitivity the threshold is 0.35, the score of the 9th of 10 abnormal scans; "
            "ctutils.evaluation.choose_threshold(method='sensitivity') does the same on the ROC curve")


@exercise("06_evaluation")
def check_ece(ece: Callable[..., Any]) -> str:
    """Exercise 06.3: the expected calibration error of a tiny example."""
    cases = [
        ([0, 1, 1, 1], [0.2, 0.4, 0.8, 0.9], 2),
        ([0, 0, 1, 1, 1, 0], [0.05, 0.15, 0.72, 0.78, 0.95, 0.93], 10),
        ([0, 1], [0.0, 1.0], 10),
        ([1, 1, 0, 0], [0.62, 0.64, 0.66, 0.68], 5),
    ]
    for y_true, y_prob, n_bins in cases:
        shown = f"ece({y_true}, {y_prob}, n_bins={n_bins})"
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        yt, yp = np.array(y_true, dtype=float), np.array(y_prob, dtype=float)
        which = np.searchsorted(edges[1:-1], yp)
        gaps, signed, counts = [], [], []
        for b in range(n_bins):
            members = which == b
            if members.any():
                gaps.append(abs(yt[members].mean() - yp[members].mean()))
                signed.append(yt[members].mean() - yp[members].mean())
                counts.append(int(members.sum()))
        weights = np.array(counts) / yt.size
        expected = float(np.sum(weights * np.array(gaps)))
        got = ece(list(y_true), list(y_prob), n_bins=n_bins)
        expect(isinstance(got, (int, float, np.number)) and not isinstance(got, bool),
               f"{shown} should return a number, got {got!r}")
        got = float(got)
        if np.isclose(got, expected, atol=1e-9):
            continue
        if np.isclose(got, float(np.mean(gaps)), atol=1e-9):
            hint = "weight each bin's gap by its share of the scans, n_b / N (a mean over the bins ignores how full they are)"
        elif np.isclose(got, abs(float(np.sum(weights * np.array(signed)))), atol=1e-9) or np.isclose(
                got, float(np.sum(weights * np.array(signed))), atol=1e-9):
            hint = "take the absolute gap |fraction abnormal − mean probability| in each bin before adding"
        elif np.isclose(got, float(np.mean(np.abs(yt - yp))), atol=1e-9):
            hint = "compare per bin, not per scan: the mean probability of a bin against its fraction of abnormal scans"
        else:
            hint = ("ECE = Σ_b (n_b / N) · |fraction abnormal in bin b − mean probability in bin b|, "
                    "over n_bins equal-width bins of [0, 1]")
        raise NotYet(f"{shown} gave {got:.4f}, expected {expected:.4f}: {hint}")
    return "ECE = Σ_b (n_b / N) · |fraction abnormal − mean P| — 0.175 for the first example, 0 for a perfect one"


# ----------------------------------------------------------------------------- 06.4: evaluate at an operating point

#: Exercise 06.4's data: validation as in exercise 06.2; test with 6 abnormal and 8 normal scans.
_OP_TEST_POS = [0.90, 0.80, 0.60, 0.30, 0.25, 0.15]
_OP_TEST_NEG = [0.50, 0.40, 0.30, 0.22, 0.20, 0.10, 0.05, 0.02]


def _highest_threshold(y_true: np.ndarray, scores: np.ndarray, target: float) -> float:
    positives = np.sort(scores[y_true == 1])[::-1]
    return float(positives[int(np.ceil(target * positives.size - 1e-9)) - 1])


def _specificity_ci(normal_scores: np.ndarray, threshold: float, *, n_boot: int, seed: int) -> tuple[float, float]:
    """Exercise 06.4's documented bootstrap: resample the normal test scans, percentile 95 % interval."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, normal_scores.size, size=(n_boot, normal_scores.size))
    specificities = np.mean(normal_scores[rows] < threshold, axis=1)
    low, high = np.percentile(specificities, [2.5, 97.5])
    return float(low), float(high)


def _operating_point(got: Any, shown: str) -> tuple[float, float, float, tuple[float, float]]:
    message = f"{shown} should return (threshold, sensitivity, specificity, (low, high)), got {got!r}"
    try:
        threshold, sens, spec, ci = got
        low, high = ci
        return float(threshold), float(sens), float(spec), (float(low), float(high))
    except (TypeError, ValueError):
        raise NotYet(message) from None


@exercise("06_evaluation")
def check_specificity_at_sensitivity(specificity_at_sensitivity: Callable[..., Any]) -> str:
    """Exercise 06.4: the threshold for a target sensitivity on validation, specificity with its CI on test."""
    y_val = np.array([1] * len(_SENS_SCORES_POS) + [0] * len(_SENS_SCORES_NEG))
    p_val = np.array(_SENS_SCORES_POS + _SENS_SCORES_NEG)
    small = (np.array([1] * len(_OP_TEST_POS) + [0] * len(_OP_TEST_NEG)), np.array(_OP_TEST_POS + _OP_TEST_NEG))
    # 40 normal scans: so many possible specificities that only the documented resampling and seed give the interval
    large = (np.array([1] * 30 + [0] * 40), np.concatenate([np.linspace(0.15, 0.95, 30), np.linspace(0.01, 0.79, 40)]))
    cases = [(small, 0.95, 1000, 0), (small, 0.9, 40, 3), (small, 0.5, 500, 1), (small, 0.95, 25, 7), (large, 0.95, 200, 7)]
    for (y_test, p_test), target, n_boot, seed in cases:
        mixed = np.random.default_rng(1).permutation(y_test.size)  # not sorted by class
        y_test, p_test = y_test[mixed], p_test[mixed]
        data = f"{y_test.size}-scan test set" if y_test.size > 14 else "y_test, p_test"
        shown = f"specificity_at_sensitivity(y_val, p_val, {data}, target={target}, n_boot={n_boot}, seed={seed})"
        args = (y_val.copy(), p_val.copy(), y_test.copy(), p_test.copy())
        got = _operating_point(specificity_at_sensitivity(*args, target=target, n_boot=n_boot, seed=seed), shown)
        threshold, sens, spec, (low, high) = got
        want_t = _highest_threshold(y_val, p_val, target)
        on_test = _highest_threshold(y_test, p_test, target)
        if not np.isclose(threshold, want_t):
            hint = ("that threshold was chosen on the test scans: choose it on validation and apply it unchanged "
                    "to test" if np.isclose(threshold, on_test) else
                    "the highest threshold t with mean(p_val[y_val == 1] >= t) >= target (exercise 06.2)")
            raise NotYet(f"{shown}: threshold {threshold:.2f}, expected {want_t:.2f}: {hint}")
        normal = p_test[y_test == 0]
        want_sens = float(np.mean(p_test[y_test == 1] >= want_t))
        want_spec = float(np.mean(normal < want_t))
        if not (np.isclose(sens, want_sens) and np.isclose(spec, want_spec)):
            strict = (float(np.mean(p_test[y_test == 1] > want_t)), float(np.mean(normal <= want_t)))
            hint = ("a scan with score == threshold is called abnormal: sensitivity counts p >= t, specificity p < t"
                    if np.allclose((sens, spec), strict) else
                    "return them in the order (threshold, sensitivity, specificity, ci)"
                    if np.allclose((sens, spec), (want_spec, want_sens)) else
                    "on test: sensitivity = mean(p_test[y_test == 1] >= t), specificity = mean(p_test[y_test == 0] < t)")
            raise NotYet(f"{shown}: test sensitivity {sens:.3f} and specificity {spec:.3f}, expected "
                         f"{want_sens:.3f} and {want_spec:.3f}: {hint}")
        want_ci = _specificity_ci(normal, want_t, n_boot=n_boot, seed=seed)
        if np.allclose((low, high), want_ci, atol=1e-9):
            continue
        expect(0.0 <= low <= spec <= high <= 1.0, f"{shown}: the interval ({low:.3f}, {high:.3f}) should lie in "
                                                  f"[0, 1] and contain the specificity {spec:.3f}")
        for _ in range(3):  # an unseeded generator can repeat an interval by chance, rarely three times
            again = _operating_point(specificity_at_sensitivity(*args, target=target, n_boot=n_boot, seed=seed), shown)
            expect(again[3] == (low, high), f"{shown} gave another interval when called again: draw from "
                                            "np.random.default_rng(seed), as the statement says")
        everything = np.random.default_rng(seed).integers(0, p_test.size, size=(n_boot, p_test.size))
        all_rows = [np.mean(p_test[r][y_test[r] == 0] < want_t) for r in everything]
        if np.allclose((low, high), np.nanpercentile(all_rows, [2.5, 97.5]), atol=1e-9):
            hint = "resample the normal test scans only (specificity is a fraction of them), not all test scans"
        elif np.allclose((low, high), _specificity_ci(normal, want_t, n_boot=n_boot, seed=seed + 1), atol=1e-9) \
                or not np.isclose(high - low, want_ci[1] - want_ci[0], atol=0.15):
            hint = ("follow the statement's scheme exactly: rng = np.random.default_rng(seed), one call "
                    "rng.integers(0, n_normal, size=(n_boot, n_normal)), np.percentile(..., [2.5, 97.5])")
        else:
            hint = ("close, but not the statement's scheme: one call rng.integers(0, n_normal, size=(n_boot, n_normal)) "
                    "indexes the normal scores, and np.percentile(specificities, [2.5, 97.5]) gives the interval")
        raise NotYet(f"{shown}: interval ({low:.3f}, {high:.3f}), expected ({want_ci[0]:.3f}, {want_ci[1]:.3f}): {hint}")
    ci = _specificity_ci(np.array(_OP_TEST_NEG), 0.2, n_boot=1000, seed=0)
    return (f"at 95 % sensitivity the validation threshold is 0.20; on test it gives sensitivity 5/6 and specificity "
            f"3/8 = 0.375, 95 % CI {ci[0]:.3f}–{ci[1]:.3f}: eight normal scans cannot pin a specificity down")


# ----------------------------------------------------------------------------- concept checks

choice("06_evaluation", "auc_small_test", answer="b", why_not={
    "a": "0.80 is the point estimate; on 18 scans its 95 % interval reaches down to about 0.6.",
    "c": "whether 0.80 is useful depends on the task and the operating point, and it is not even known to ±0.2.",
    "d": "a model without skill gives 0.5 only on average; on 9 + 9 scans it reaches 0.7 or more in about "
         "1 run in 12.",
}, lesson="On 9 + 9 scans the standard error of an AUC of 0.8 is about 0.11 (Hanley–McNeil), so the 95 % interval "
          "is roughly 0.6–1.0: report the interval, and judge a model on more scans.")

choice("06_evaluation", "temperature_scaling", answer="d", why_not={
    "a": "no rescaling of the scores that keeps their order can raise the AUC.",
    "b": "no rescaling of the scores that keeps their order can lower the AUC.",
    "c": "any T > 0 keeps the order of the scores.",
}, lesson="ROC-AUC depends only on the order of the scores, and dividing the logits by T > 0 keeps it: temperature "
          "scaling changes calibration (ECE, the probabilities a reader sees), never the ranking.")

choice("06_evaluation", "gradcam_table", answer="a", why_not={
    "b": "the table is not part of the patient; a finding there cannot be the disease.",
    "c": "a heat map that is consistent across most abnormal scans is a signal, not noise.",
    "d": "a high AUC says the scores separate these test scans, not why: a shortcut scores high too.",
}, lesson="A model can reach a high AUC through a shortcut that differs between the classes in this data (table, "
          "scanner, site, a text marker). Test it: mask the table, evaluate on scans from another scanner or site.")

choice("06_evaluation", "sensitivity_below_target", answer="c", why_not={
    "a": "a threshold reaches its target only on the scans it was chosen on; elsewhere it is an estimate.",
    "b": "choosing it on test makes the test sensitivity right by construction, and the estimate worthless.",
    "d": "it is defined, only uncertain: with 6 abnormal scans each miss costs 17 percentage points.",
}, lesson="The target holds on the validation scans the threshold was chosen on; on new scans sensitivity varies, "
          "the more so with few abnormal scans. Report the test value with its confidence interval.")
