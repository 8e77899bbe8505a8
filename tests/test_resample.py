"""Tests for ctutils.resample: output shapes by hand, linear stays linear, spline order, errors."""

from __future__ import annotations

import numpy as np
import pytest

from ctutils.resample import resample_to_spacing, resize_volume


def linear_field(shape, coords=None) -> np.ndarray:
    """f(x, y, z) = 2x + 3y - z + 1 on the grid (or at the given per-axis coordinates)."""
    if coords is None:
        coords = [np.arange(n, dtype=np.float64) for n in shape]
    x, y, z = np.meshgrid(*coords, indexing="ij")
    return 2 * x + 3 * y - z + 1


@pytest.mark.parametrize(
    ("shape_in", "shape_out"),
    [((10, 12, 5), (4, 6, 9)), ((20, 20, 6), (128, 128, 64)), ((7, 3, 2), (7, 3, 2)), ((5, 5, 5), (1, 2, 1))],
)
def test_resize_gives_exactly_the_shape(shape_in, shape_out):
    data = np.random.default_rng(0).random(shape_in, dtype=np.float32)
    out = resize_volume(data, shape=shape_out)
    assert out.shape == shape_out
    assert out.dtype == np.float32


def test_resize_doc_example_by_hand():
    # Corner voxels aligned: 2 samples -> 4 samples at 0, 1/3, 2/3, 1 of the way.
    out = resize_volume(np.array([[[0.0, 3.0]]]), shape=(1, 1, 4))
    np.testing.assert_allclose(out, [[[0.0, 1.0, 2.0, 3.0]]], atol=1e-12)


def test_linear_ramp_stays_linear():
    shape_in, shape_out = (5, 4, 3), (9, 7, 5)
    out = resize_volume(linear_field(shape_in), shape=shape_out, order=1)
    # Output voxel i sits at input coordinate i * (n_in - 1) / (n_out - 1) (corners aligned).
    coords = [np.arange(m) * (n - 1) / (m - 1) for n, m in zip(shape_in, shape_out)]
    np.testing.assert_allclose(out, linear_field(shape_out, coords), atol=1e-10)
    assert out[0, 0, 0] == pytest.approx(1.0) and out[-1, -1, -1] == pytest.approx(2 * 4 + 3 * 3 - 2 + 1)


def test_order_zero_is_nearest_neighbour():
    out = resize_volume(np.array([[[0.0, 10.0]]]), shape=(1, 1, 4), order=0)
    np.testing.assert_array_equal(out, [[[0.0, 0.0, 10.0, 10.0]]])  # 0, 1/3 -> 0; 2/3, 1 -> 1


def test_order_changes_the_interpolation():
    data = np.zeros((5, 5, 5))
    data[2, 2, 2] = 1.0
    linear = resize_volume(data, shape=(9, 9, 9), order=1)
    cubic = resize_volume(data, shape=(9, 9, 9), order=3)
    assert linear.min() >= 0.0
    assert cubic.min() < 0.0  # cubic splines ring around a spike; linear never overshoots
    assert linear[4, 4, 4] == pytest.approx(1.0) and cubic[4, 4, 4] == pytest.approx(1.0)


def test_resize_leaves_the_input_alone():
    data = np.random.default_rng(1).random((6, 6, 4))
    before = data.copy()
    resize_volume(data, shape=(3, 3, 2))
    np.testing.assert_array_equal(data, before)


def test_resize_rejects_a_2d_array():
    with pytest.raises(ValueError, match=r"expected a 3-D \(X, Y, Z\) volume, got shape \(4, 4\)"):
        resize_volume(np.zeros((4, 4)), shape=(2, 2, 2))


@pytest.mark.parametrize("shape", [(4, 4), (4, 4, 0), (4, -1, 4), (2, 2, 2, 2)])
def test_resize_rejects_a_bad_shape(shape):
    with pytest.raises(ValueError, match="shape must be 3 positive integers"):
        resize_volume(np.zeros((4, 4, 4)), shape=shape)


# --- spacing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape_in", "spacing", "target", "shape_out"),
    [
        ((10, 10, 4), (0.5, 0.5, 5.0), (1.0, 1.0, 2.5), (5, 5, 8)),  # 10*0.5/1 = 5, 4*5/2.5 = 8
        ((20, 16, 10), (0.7, 0.7, 5.0), (1.4, 1.4, 2.5), (10, 8, 20)),
        ((512, 512, 48), (0.5703125, 0.5703125, 5.0), (1.5, 1.5, 5.0), (195, 195, 48)),  # 194.67 -> 195
        ((3, 3, 3), (1.0, 1.0, 1.0), (10.0, 10.0, 10.0), (1, 1, 1)),  # never below 1 voxel
    ],
)
def test_resample_shape_by_hand(shape_in, spacing, target, shape_out):
    data = np.zeros(shape_in, np.float32)
    data[0, 0, 0] = 1.0
    out = resample_to_spacing(data, spacing_mm=spacing, target_spacing_mm=target)
    assert out.shape == shape_out


def test_resample_to_the_same_spacing_is_the_identity():
    data = np.random.default_rng(2).random((6, 5, 4))
    out = resample_to_spacing(data, spacing_mm=(0.8, 0.8, 2.5), target_spacing_mm=(0.8, 0.8, 2.5))
    np.testing.assert_allclose(out, data, atol=1e-12)


def test_resample_linear_ramp_stays_linear():
    data = linear_field((5, 5, 3))
    out = resample_to_spacing(data, spacing_mm=(1.0, 1.0, 4.0), target_spacing_mm=(1.0, 1.0, 2.0))
    assert out.shape == (5, 5, 6)
    # Voxels are cells: 3 slices of 4 mm span 12 mm, 6 new slices of 2 mm span the same 12 mm.
    # New slice j has its centre at input index (j + 0.5) * 3 / 6 - 0.5 = j / 2 - 0.25; the two
    # outermost centres (-0.25 and 2.25) lie beyond the first/last input centre and take its value.
    coords = [np.arange(5.0), np.arange(5.0), np.clip(np.arange(6) / 2 - 0.25, 0, 2)]
    np.testing.assert_allclose(out, linear_field((5, 5, 6), coords), atol=1e-10)


@pytest.mark.parametrize(
    ("spacing", "target", "message"),
    [
        ((1.0, 1.0), (1.0, 1.0, 1.0), "need 3 values"),
        ((1.0, 1.0, 1.0), (1.0, 1.0, 1.0, 1.0), "need 3 values"),
        ((1.0, 0.0, 1.0), (1.0, 1.0, 1.0), "voxel sizes must be positive"),
        ((1.0, 1.0, 1.0), (1.0, 1.0, -2.0), "voxel sizes must be positive"),
    ],
)
def test_resample_rejects_bad_spacings(spacing, target, message):
    with pytest.raises(ValueError, match=message):
        resample_to_spacing(np.zeros((4, 4, 4)), spacing_mm=spacing, target_spacing_mm=target)


def test_resample_rejects_a_2d_array():
    with pytest.raises(ValueError, match="expected a 3-D"):
        resample_to_spacing(np.zeros((4, 4)), spacing_mm=(1, 1, 1), target_spacing_mm=(1, 1, 1))


def test_crop_or_pad_centres_and_never_interpolates():
    from ctutils.resample import crop_or_pad

    data = np.arange(4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3)
    out = crop_or_pad(data, shape=(2, 7, 3), fill=-1.0)
    # X: 4 -> 2 keeps rows 1..2; Y: 5 -> 7 pads one column each side; Z unchanged.
    np.testing.assert_array_equal(out[:, 1:6, :], data[1:3])
    assert (out[:, 0, :] == -1).all() and (out[:, 6, :] == -1).all()
    assert out.dtype == data.dtype and data.shape == (4, 5, 3)
    with pytest.raises(ValueError, match="3-D"):
        crop_or_pad(np.zeros((3, 3)), shape=(2, 2, 2))
