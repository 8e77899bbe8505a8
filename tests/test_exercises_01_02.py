"""Checks of chapters 01 (data) and 02 (preprocessing): a right answer passes, a wrong one gets a hint."""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pytest

from ctutils import exercises
from ctutils.orientation import display_slice, reorient_to_ras
from ctutils.resample import resample_to_spacing
from ctutils.splits import split_sizes

NOT_DONE = "❌ Exercise not done yet: implement `"


def stub(*args, **kwargs):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: write your code here, then run the check cell below")


def verdict(check, answer, capsys: pytest.CaptureFixture[str]) -> tuple[bool, str]:
    passed = check(answer)
    return passed, capsys.readouterr().out


# ============================================================================= 01_data
# ----------------------------------------------------------------------------- to_hu


def to_hu(raw, slope, intercept):
    hu = np.asarray(raw, dtype=np.float32)
    if np.isnan(slope) or slope == 0:
        return hu.copy()
    return hu * np.float32(slope) + np.float32(intercept)


def to_hu_in_place(raw, slope, intercept):
    raw *= 1
    return to_hu(raw, slope, intercept)


def test_to_hu_right(capsys: pytest.CaptureFixture[str]) -> None:
    passed, out = verdict(exercises.check_to_hu, to_hu, capsys)
    assert passed, out
    assert out.startswith("✅ Correct: HU = stored × scl_slope + scl_inter")


def test_to_hu_agrees_with_nibabel() -> None:
    raw = np.array([[[0, 1024], [1064, 4095]]], dtype=np.uint16)
    image = nib.Nifti1Image(raw, np.eye(4))
    image.header.set_slope_inter(1.0, -1024.0)
    reread = nib.Nifti1Image.from_bytes(image.to_bytes())
    np.testing.assert_allclose(to_hu(raw, 1.0, -1024.0), reread.get_fdata())


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda raw, slope, inter: np.asarray(raw, dtype=np.float64) if np.isnan(slope) or slope == 0
         else (raw * slope + inter).astype(raw.dtype).astype(np.float64), "uint16 values cannot become negative"),
        (lambda raw, slope, inter: np.asarray(raw, dtype=np.float64) if np.isnan(slope) or slope == 0
         else np.where(raw.dtype == np.uint16, raw * slope + inter, (raw * slope + inter).astype(raw.dtype)),
         "20000 × 2 overflows int16"),
        (lambda raw, slope, inter: np.asarray(raw, dtype=np.float64) * slope + inter,
         "a NaN slope means 'no scaling'"),
        (lambda raw, slope, inter: np.asarray(raw, dtype=np.float64) * slope + inter
         if not np.isnan(slope) else np.asarray(raw, dtype=np.float64), "a slope of 0 means 'no scaling'"),
        (lambda raw, slope, inter: (raw * slope + inter).tolist(), "should return a numpy array"),
        (lambda raw, slope, inter: np.asarray(raw) if np.isnan(slope) or slope == 0 else raw * slope + inter,
         "should return floats"),
    ],
)
def test_to_hu_wrong_answers_get_a_hint(answer, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    passed, out = verdict(exercises.check_to_hu, answer, capsys)
    assert not passed
    assert out.startswith("❌ Not yet:") and hint in out, out


def test_to_hu_that_modifies_its_input_is_caught(capsys: pytest.CaptureFixture[str]) -> None:
    def doubling(raw, slope, intercept):
        raw += raw  # in place
        return to_hu(raw, slope, intercept)

    passed, out = verdict(exercises.check_to_hu, doubling, capsys)
    assert not passed and "changed the array it was given" in out


# ----------------------------------------------------------------------------- axis_codes


def axis_codes(affine):
    rotation = np.asarray(affine)[:3, :3]
    codes = []
    for column in rotation.T:
        world = int(np.argmax(np.abs(column)))
        codes.append(("RAS" if column[world] > 0 else "LPI")[world])
    return tuple(codes)


def test_axis_codes_right(capsys: pytest.CaptureFixture[str]) -> None:
    passed, out = verdict(exercises.check_axis_codes, axis_codes, capsys)
    assert passed, out


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda a: tuple({"R": "L", "L": "R", "A": "P", "P": "A", "S": "I", "I": "S"}[c] for c in axis_codes(a)),
         "the signs are reversed"),
        (lambda a: axis_codes(np.asarray(a).T), "not row k"),
        (lambda a: ("R", "A", "S"), "for each column of affine[:3, :3]"),
        (lambda a: "LP", "should return 3 letters"),
        (lambda a: 7, "should return 3 letters such as"),
    ],
)
def test_axis_codes_wrong_answers_get_a_hint(answer, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    passed, out = verdict(exercises.check_axis_codes, answer, capsys)
    assert not passed
    assert out.startswith("❌ Not yet:") and hint in out, out


# ----------------------------------------------------------------------------- radiological_view


def radiological_view(slice_xy, codes):
    image = np.asarray(slice_xy).T
    if codes[1] == "A":
        image = image[::-1, :]
    if codes[0] == "R":
        image = image[:, ::-1]
    return image


def test_radiological_view_right(capsys: pytest.CaptureFixture[str]) -> None:
    passed, out = verdict(exercises.check_radiological_view, radiological_view, capsys)
    assert passed, out


def test_radiological_view_of_a_ras_slice_is_display_slice() -> None:
    volume = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4)
    ras, _ = reorient_to_ras(volume, np.eye(4))
    np.testing.assert_array_equal(radiological_view(ras[:, :, 1], ("R", "A")), display_slice(ras, 1))


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda s, c: np.asarray(s), "should have shape (Y, X)"),
        (lambda s, c: radiological_view(s, c)[:, ::-1], "check the column flip"),
        (lambda s, c: radiological_view(s, c)[::-1, :], "check the row flip"),
        (lambda s, c: radiological_view(s, c)[::-1, ::-1], "transpose to (Y, X), then flip rows"),
        (lambda s, c: radiological_view(s, c).tolist(), "should return a 2-D numpy array"),
    ],
)
def test_radiological_view_wrong_answers_get_a_hint(answer, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    passed, out = verdict(exercises.check_radiological_view, answer, capsys)
    assert not passed
    assert out.startswith("❌ Not yet:") and hint in out, out


# ----------------------------------------------------------------------------- lung_fraction


def lung_fraction(hu, *, hu_min=-900.0, hu_max=-700.0):
    hu = np.asarray(hu)
    return float(np.count_nonzero((hu >= hu_min) & (hu <= hu_max)) / hu.size)


def test_lung_fraction_right(capsys: pytest.CaptureFixture[str]) -> None:
    passed, out = verdict(exercises.check_lung_fraction, lung_fraction, capsys)
    assert passed, out


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda hu, hu_min=-900.0, hu_max=-700.0: float(((hu > hu_min) & (hu < hu_max)).mean()), "count both ends"),
        (lambda hu, hu_min=-900.0, hu_max=-700.0: 100 * lung_fraction(hu, hu_min=hu_min, hu_max=hu_max),
         "not a percentage"),
        (lambda hu, hu_min=-900.0, hu_max=-700.0: lung_fraction(hu), "use the hu_min and hu_max arguments"),
        (lambda hu, hu_min=-900.0, hu_max=-700.0: (hu >= hu_min) & (hu <= hu_max), "should return one number"),
    ],
)
def test_lung_fraction_wrong_answers_get_a_hint(answer, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    passed, out = verdict(exercises.check_lung_fraction, answer, capsys)
    assert not passed
    assert out.startswith("❌ Not yet:") and hint in out, out


def test_lung_fraction_that_clips_its_input_is_caught(capsys: pytest.CaptureFixture[str]) -> None:
    def clipping(hu, *, hu_min=-900.0, hu_max=-700.0):
        np.clip(hu, -1000, 0, out=hu)
        hu[0, 0, 0] = 5.0
        return lung_fraction(hu, hu_min=hu_min, hu_max=hu_max)

    passed, out = verdict(exercises.check_lung_fraction, clipping, capsys)
    assert not passed and "changed the array it was given" in out


# ============================================================================= 02_preprocessing
# ----------------------------------------------------------------------------- window


def window(volume, *, hu_min=-1000.0, hu_max=400.0):
    clipped = np.clip(np.asarray(volume, dtype=np.float32), hu_min, hu_max)
    return (clipped - np.float32(hu_min)) / np.float32(hu_max - hu_min)


def window_in_place(volume, *, hu_min=-1000.0, hu_max=400.0):
    """The Keras example's normalize: clips the caller's array."""
    volume[volume < hu_min] = hu_min
    volume[volume > hu_max] = hu_max
    return ((volume - hu_min) / (hu_max - hu_min)).astype("float32")


def test_window_right(capsys: pytest.CaptureFixture[str]) -> None:
    passed, out = verdict(exercises.check_window, window, capsys)
    assert passed, out


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (window_in_place, "changed its input"),
        (lambda v, hu_min, hu_max: np.clip(v, hu_min, hu_max) - hu_min, "divide by the window width"),
        (lambda v, hu_min, hu_max: np.clip(v, hu_min, hu_max).astype(float), "clipping is done"),
        (lambda v, hu_min, hu_max: ((np.asarray(v, float) - hu_min) / (hu_max - hu_min)), "should be"),
        (lambda v, hu_min, hu_max: window(v, hu_min=hu_min, hu_max=hu_max).ravel(), "should keep the shape"),
    ],
)
def test_window_wrong_answers_get_a_hint(answer, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    passed, out = verdict(exercises.check_window, answer, capsys)
    assert not passed
    assert out.startswith("❌ Not yet:") and hint in out, out


# ----------------------------------------------------------------------------- expected_split_sizes


def expected_split_sizes(class_counts, fractions=(0.7, 0.15, 0.15)):
    sizes = {}
    for name, n in class_counts.items():
        n_train = math.floor(n * fractions[0] + 0.5)
        n_val = math.floor(n * fractions[1] + 0.5)
        sizes[name] = (n_train, n_val, n - n_train - n_val)
    return sizes


def test_expected_split_sizes_right(capsys: pytest.CaptureFixture[str]) -> None:
    passed, out = verdict(exercises.check_expected_split_sizes, expected_split_sizes, capsys)
    assert passed, out


def test_expected_split_sizes_match_ctutils() -> None:
    for n in range(0, 60):
        assert expected_split_sizes({"x": n})["x"] == split_sizes(n)


def _with(rounding):
    def answer(class_counts, fractions=(0.7, 0.15, 0.15)):
        out = {}
        for name, n in class_counts.items():
            a, b = rounding(n * fractions[0]), rounding(n * fractions[1])
            out[name] = (a, b, n - a - b)
        return out

    return answer


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (_with(round), "rounds halves to even"),
        (_with(int), "int() truncates"),
        (lambda counts, fractions=(0.7, 0.15, 0.15): {k: tuple(round(n * f) for f in fractions) for k, n in counts.items()},
         "must add up to the"),
        (lambda counts, fractions=(0.7, 0.15, 0.15): [(28, 6, 6)], "should return a dict"),
        (lambda counts, fractions=(0.7, 0.15, 0.15): {"normal": (28, 6, 6)}, "should have the keys"),
        (lambda counts, fractions=(0.7, 0.15, 0.15): {k: n for k, n in counts.items()}, "should be 3 integers"),
    ],
)
def test_expected_split_sizes_wrong_answers_get_a_hint(answer, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    passed, out = verdict(exercises.check_expected_split_sizes, answer, capsys)
    assert not passed
    assert out.startswith("❌ Not yet:") and hint in out, out


# ----------------------------------------------------------------------------- resampled_shape


def resampled_shape(shape, spacing_mm, target_spacing_mm):
    return tuple(max(1, round(n * s / t)) for n, s, t in zip(shape, spacing_mm, target_spacing_mm))


def test_resampled_shape_right(capsys: pytest.CaptureFixture[str]) -> None:
    passed, out = verdict(exercises.check_resampled_shape, resampled_shape, capsys)
    assert passed, out


def test_resampled_shape_matches_resample_to_spacing() -> None:
    for shape, spacing, target in [((10, 10, 4), (0.5, 0.5, 5.0), (1.0, 1.0, 2.5)), ((7, 9, 3), (1.3, 0.9, 4.0), (2.0, 2.0, 1.7))]:
        assert resample_to_spacing(np.zeros(shape), spacing_mm=spacing, target_spacing_mm=target).shape == \
            resampled_shape(shape, spacing, target)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda shape, s, t: tuple(max(1, round(n * b / a)) for n, a, b in zip(shape, s, t)), "upside down"),
        (lambda shape, s, t: tuple(round(n * a / b) for n, a, b in zip(shape, s, t)), "keep at least 1 voxel"),
        (lambda shape, s, t: tuple(max(1, int(n * a / b)) for n, a, b in zip(shape, s, t)), "int() truncates"),
        (lambda shape, s, t: tuple(n * a / b for n, a, b in zip(shape, s, t)), "3 whole numbers of voxels"),
        (lambda shape, s, t: None, "should return 3 integers"),
    ],
)
def test_resampled_shape_wrong_answers_get_a_hint(answer, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    passed, out = verdict(exercises.check_resampled_shape, answer, capsys)
    assert not passed
    assert out.startswith("❌ Not yet:") and hint in out, out


# ----------------------------------------------------------------------------- every check


@pytest.mark.parametrize(
    "check",
    [exercises.check_to_hu, exercises.check_axis_codes, exercises.check_radiological_view,
     exercises.check_lung_fraction, exercises.check_window, exercises.check_expected_split_sizes,
     exercises.check_resampled_shape],
    ids=lambda c: c.__name__,
)
def test_a_stub_is_not_done_yet(check, capsys: pytest.CaptureFixture[str]) -> None:
    passed, out = verdict(check, stub, capsys)
    assert not passed
    assert out.startswith(NOT_DONE + "stub` above"), out
    assert "Traceback" not in out


def test_the_checks_are_registered_under_their_chapters() -> None:
    names = {e.name for e in exercises.list_exercises("01_data")}
    assert {"to_hu", "axis_codes", "radiological_view", "lung_fraction"} <= names
    names = {e.name for e in exercises.list_exercises("02_preprocessing")}
    assert {"window", "expected_split_sizes", "resampled_shape"} <= names
