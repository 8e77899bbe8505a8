"""Checks for the chapters' exercises: a clear verdict, never a traceback from inside ctutils.

The checks live in one module per chapter (``ch00_setup`` … ``ch06_evaluation``); this package holds
the machinery they share and re-exports every check, so a chapter calls ``exercises.check_…(…)``.

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
Add a function to your chapter's module (``ctutils/exercises/ch02_preprocessing.py`` …), decorated
with :func:`exercise`; list it in that module's ``__all__`` and import it at the end of this package.
It receives what the check cell passes (usually the learner's function), calls it on small inputs, raises
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
standard library at the top of these modules.

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
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CHOICES",
    "CheckFailed",
    "CheckResult",
    "Choice",
    "EXERCISES",
    "Exercise",
    "NBGRADER_ENV",
    "NotYet",
    "check",
    "check_choice",
    "choice",
    "exercise",
    "expect",
    "expect_close",
    "expect_equal",
    "list_exercises",
    "check_axis_codes",
    "check_balanced_weights",
    "check_best_epoch",
    "check_cache_size_mib",
    "check_conv3d_params",
    "check_count_scans",
    "check_ece",
    "check_expected_split_sizes",
    "check_flip_left_right",
    "check_lr_at_step",
    "check_lung_fraction",
    "check_output_size",
    "check_radiological_view",
    "check_resampled_shape",
    "check_rotated_position",
    "check_sensitivity_specificity",
    "check_specificity_at_sensitivity",
    "check_split_by_study",
    "check_three_block_cnn",
    "check_threshold_for_sensitivity",
    "check_tiny_cnn",
    "check_to_hu",
    "check_window",
]

_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # ctutils/: frames there are not the learner's

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


# The chapters' checks, registered in chapter order (their modules import the machinery above).
from ctutils.exercises.ch00_setup import check_cache_size_mib, check_count_scans  # noqa: E402
from ctutils.exercises.ch01_data import check_axis_codes, check_lung_fraction, check_radiological_view, check_to_hu  # noqa: E402
from ctutils.exercises.ch02_preprocessing import check_expected_split_sizes, check_resampled_shape, check_window  # noqa: E402
from ctutils.exercises.ch03_augmentation import check_balanced_weights, check_flip_left_right, check_rotated_position  # noqa: E402
from ctutils.exercises.ch04_model import check_conv3d_params, check_output_size, check_three_block_cnn  # noqa: E402
from ctutils.exercises.ch05_training import check_best_epoch, check_lr_at_step, check_split_by_study, check_tiny_cnn  # noqa: E402
from ctutils.exercises.ch06_evaluation import check_ece, check_sensitivity_specificity, check_specificity_at_sensitivity, check_threshold_for_sensitivity  # noqa: E402
