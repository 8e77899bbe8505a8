"""The checks of chapter 01_data (``notebooks/01_data.ipynb``).

* Exercise 01.1: stored voxel values to Hounsfield units with scl_slope / scl_inter.
* Exercise 01.2: the orientation codes of an affine, by hand.
* Exercise 01.3: show an axial slice in radiological convention, for any R/L, A/P storage.
* Exercise 01.4: the fraction of voxels in the aerated-lung range.

Imported, and every check re-exported, by :mod:`ctutils.exercises`: call them as ``exercises.check_…(…)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ctutils.exercises import NotYet, exercise, expect, expect_close

__all__ = [
    "check_axis_codes",
    "check_lung_fraction",
    "check_radiological_view",
    "check_to_hu",
]


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
