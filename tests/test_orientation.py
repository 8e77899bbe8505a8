"""Tests for ctutils.orientation: axis codes, reorientation, radiological display (tiny + real CT)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_nifti
from nibabel.affines import apply_affine

from ctutils.io import load_volume
from ctutils.orientation import axcodes, display_slice, reorient_to_ras

# Array axis 0 -> +A (1.5 mm), axis 1 -> -S (3 mm), axis 2 -> +R (2 mm).
PERMUTED = np.array([[0, 0, 2.0, 10.0], [1.5, 0, 0, 20.0], [0, -3.0, 0, 30.0], [0, 0, 0, 1]])


@pytest.mark.parametrize(
    ("affine", "codes"),
    [
        (np.diag([1.0, 1.0, 1.0, 1.0]), ("R", "A", "S")),
        (np.diag([-0.7, -0.7, 5.0, 1.0]), ("L", "P", "S")),
        (PERMUTED, ("A", "I", "R")),
    ],
)
def test_axcodes(affine, codes):
    assert axcodes(affine) == codes


def test_reorient_lps_flips_x_and_y_and_keeps_mm_points():
    data = np.arange(24).reshape(4, 3, 2)
    affine = np.diag([-0.7, -0.7, 2.5, 1.0])
    affine[:3, 3] = (100, 120, -50)
    before = data.copy()
    out, new_affine = reorient_to_ras(data, affine)
    np.testing.assert_array_equal(out, data[::-1, ::-1, :])
    np.testing.assert_array_equal(data, before)  # input untouched
    assert axcodes(new_affine) == ("R", "A", "S")
    # Voxel (x, y, z) of the result is the same mm point as voxel (3 - x, 2 - y, z) of the input.
    for x, y, z in np.ndindex(out.shape):
        np.testing.assert_allclose(apply_affine(new_affine, (x, y, z)), apply_affine(affine, (3 - x, 2 - y, z)))


def test_reorient_permuted_axes():
    data = np.arange(60).reshape(3, 4, 5)
    out, new_affine = reorient_to_ras(data, PERMUTED)
    assert out.shape == (5, 3, 4)
    assert out.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(out, np.transpose(data, (2, 0, 1))[:, :, ::-1])
    np.testing.assert_allclose(np.abs(new_affine[:3, :3]), np.diag([2.0, 1.5, 3.0]))
    for x, y, z in np.ndindex(out.shape):
        np.testing.assert_allclose(apply_affine(new_affine, (x, y, z)), apply_affine(PERMUTED, (y, 3 - z, x)))


def test_reorient_ras_is_the_identity():
    data = np.arange(24).reshape(2, 3, 4)
    affine = np.diag([0.5, 0.6, 2.0, 1.0])
    out, new_affine = reorient_to_ras(data, affine)
    np.testing.assert_array_equal(out, data)
    np.testing.assert_allclose(new_affine, affine)


# --- radiological display --------------------------------------------------------------------


def marker(x: int, y: int, shape=(5, 4, 2)) -> np.ndarray:
    volume = np.zeros(shape)
    volume[x, y, 1] = 1
    return volume


@pytest.mark.parametrize(
    ("x", "y", "row", "col", "where"),
    [
        (4, 3, 0, 0, "right-anterior -> top-left"),
        (0, 3, 0, 4, "left-anterior -> top-right"),
        (4, 0, 3, 0, "right-posterior -> bottom-left"),
        (0, 0, 3, 4, "left-posterior -> bottom-right"),
        (3, 1, 2, 1, "one voxel in from the right, one up from the back"),
    ],
)
def test_display_slice_is_radiological(x, y, row, col, where):
    image = display_slice(marker(x, y), 1)
    assert image.shape == (4, 5)  # (Y, X): rows anterior -> posterior, columns right -> left
    assert np.argwhere(image == 1).tolist() == [[row, col]], where


def test_display_slice_picks_the_slice():
    volume = marker(4, 3)
    assert display_slice(volume, 0).max() == 0
    assert display_slice(volume, 1).max() == 1


def test_display_slice_rejects_a_2d_array():
    with pytest.raises(ValueError, match=r"expected a 3-D \(X, Y, Z\) volume, got shape \(4, 5\)"):
        display_slice(np.zeros((4, 5)), 0)


def test_tiny_lps_file_displays_radiologically(tmp_path):
    """End to end: a marker stored in the file's right-anterior corner appears top-left."""
    data = np.zeros((5, 4, 3), np.int16)
    data[0, 0, 1] = 1000  # stored L, P, S: index 0 is the most Right and most Anterior voxel
    path = make_nifti(tmp_path / "lps.nii.gz", data, np.diag([-1.0, -1.0, 2.0, 1.0]))
    image = display_slice(load_volume(path).data, 1)
    assert np.argwhere(image == 1000).tolist() == [[0, 0]]


# --- the real chest CT -----------------------------------------------------------------------


def midline_bone_rows(image: np.ndarray) -> np.ndarray:
    """Relative row (0 = top, 1 = bottom) of bone voxels (> 200 HU) in the middle fifth of columns."""
    n_rows, n_cols = image.shape
    middle = image[:, int(0.4 * n_cols) : int(0.6 * n_cols)]
    rows, _ = np.nonzero(middle > 200)
    return rows / n_rows


def test_real_ct_spine_is_at_the_bottom(real_ct_volume):
    volume = real_ct_volume
    assert volume.axcodes == ("R", "A", "S")
    pixel_mm2 = volume.spacing_mm[0] * volume.spacing_mm[1]
    for z in (volume.data.shape[2] // 4, volume.data.shape[2] // 2, 3 * volume.data.shape[2] // 4):
        rows = midline_bone_rows(display_slice(volume.data, z))
        # An area, not a voxel count, so that it holds at any pixel size: 150 mm^2 is about the
        # 500 voxels of 0.57 mm first used here; the scan has 727 mm^2 or more on these slices.
        assert rows.size * pixel_mm2 > 150, f"slice {z}: no spine found"
        assert np.median(rows) > 0.6, f"slice {z}: midline bone (spine) should be posterior = bottom"


def test_real_ct_larger_right_lung_is_on_the_viewers_left(real_ct_volume):
    # The right lung is the larger one (the heart sits on the left): summed over the scan, more
    # aerated lung (-950 … -600 HU) must appear in the left half of the display.
    data = real_ct_volume.data
    images = np.stack([display_slice(data, z) for z in range(data.shape[2])])
    lung = (images > -950) & (images < -600)
    half = images.shape[2] // 2
    assert lung[:, :, :half].sum() > 1.1 * lung[:, :, half:].sum()


def test_real_ct_without_reorientation_would_be_upside_down(real_ct):
    # The file is stored L, P, S: shown without the affine, the spine lands at the top. This
    # proves the check above can fail.
    volume = load_volume(real_ct, canonical=False)
    assert volume.original_axcodes == ("L", "P", "S")
    rows = midline_bone_rows(display_slice(volume.data, volume.data.shape[2] // 2))
    assert np.median(rows) < 0.4
