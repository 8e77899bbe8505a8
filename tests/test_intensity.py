"""Tests for ctutils.intensity: HU windowing by hand, input untouched, dtype, bad windows."""

from __future__ import annotations

import numpy as np
import pytest

from ctutils.intensity import HU_MAX, HU_MIN, window_hu


def test_default_window_is_the_course_and_keras_example_window():
    assert (HU_MIN, HU_MAX) == (-1000.0, 400.0)


def test_default_window_by_hand():
    hu = np.array([-3024.0, -1000.0, -650.0, -300.0, 50.0, 400.0, 3071.0])
    # (hu - (-1000)) / 1400, clipped: -650 -> 350/1400, 50 -> 1050/1400
    np.testing.assert_array_equal(window_hu(hu), np.array([0, 0, 0.25, 0.5, 0.75, 1, 1], np.float32))


def test_custom_window_by_hand():
    hu = np.array([[-200, -100], [0, 50], [100, 900]], dtype=np.int16)
    out = window_hu(hu, hu_min=-100, hu_max=100)
    np.testing.assert_array_equal(out, np.array([[0, 0], [0.5, 0.75], [1, 1]], np.float32))


@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.float64])
def test_input_unchanged_new_float32_array_same_shape(dtype):
    hu = np.random.default_rng(0).integers(-1500, 1500, size=(4, 5, 3)).astype(dtype)
    before = hu.copy()
    out = window_hu(hu)
    np.testing.assert_array_equal(hu, before)
    assert out.dtype == np.float32
    assert out.shape == hu.shape
    assert not np.shares_memory(out, hu)
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_accepts_nested_lists():
    assert window_hu([[-1000, 400]]).tolist() == [[0.0, 1.0]]


@pytest.mark.parametrize(("hu_min", "hu_max"), [(400, 400), (400, -1000), (-1000, float("nan"))])
def test_bad_window(hu_min, hu_max):
    with pytest.raises(ValueError, match=r"hu_max \(.*\) must be greater than hu_min"):
        window_hu(np.zeros(3), hu_min=hu_min, hu_max=hu_max)


def test_window_arguments_are_keyword_only():
    with pytest.raises(TypeError):
        window_hu(np.zeros(3), -1000, 400)  # type: ignore[misc]
