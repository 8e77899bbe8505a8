"""The checks of chapter 02_preprocessing (``notebooks/02_preprocessing.ipynb``).

* Exercise 02.1: HU windowing to [0, 1] without modifying the input.
* Exercise 02.2: how many scans of each class go to train, val and test.
* Exercise 02.3: the shape of a volume after resampling to another voxel size.

Imported, and every check re-exported, by :mod:`ctutils.exercises`: call them as ``exercises.check_…(…)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ctutils.exercises import NotYet, exercise, expect, expect_close

__all__ = [
    "check_expected_split_sizes",
    "check_resampled_shape",
    "check_window",
]


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
