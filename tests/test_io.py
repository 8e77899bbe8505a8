"""Tests for ctutils.io: HU scaling, reorientation with known affines, bad files, atomic saves."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import make_nifti
from nibabel.affines import apply_affine

import ctutils.io
from ctutils.io import Volume, VolumeError, load_volume, save_volume

LPS = np.array([[-0.7, 0, 0, 100.0], [0, -0.7, 0, 120.0], [0, 0, 2.5, -50.0], [0, 0, 0, 1]])
RAS = np.array([[0.7, 0, 0, -100.0], [0, 0.7, 0, -120.0], [0, 0, 2.5, -50.0], [0, 0, 0, 1]])
# Array axis 0 -> +A (1.5 mm), axis 1 -> -S (3 mm), axis 2 -> +R (2 mm): axcodes A, I, R.
PERMUTED = np.array([[0, 0, 2.0, 10.0], [1.5, 0, 0, 20.0], [0, -3.0, 0, 30.0], [0, 0, 0, 1]])


def ramp(shape, dtype=np.int16) -> np.ndarray:
    """Distinct values -500, -499, … so that every voxel can be traced."""
    return (np.arange(int(np.prod(shape))).reshape(shape) - 500).astype(dtype)


def error_naming(path: Path, cause: str) -> str:
    """A ``match`` pattern: the message starts with the file, then the cause."""
    return rf"^{re.escape(str(path))}: .*{cause}"


# --- reading in HU ---------------------------------------------------------------------------


def test_slope_and_intercept_give_hounsfield_units(tmp_path):
    raw = np.array([0, 100, 512, 1000, 7, 3, 2, 1], dtype=np.int16).reshape(2, 2, 2)
    path = make_nifti(tmp_path / "scaled.nii.gz", raw, np.eye(4), slope=2.0, inter=-1024.0)
    # The file really holds the raw integers and the scaling (the test would be vacuous otherwise).
    stored = nib.load(path)
    assert stored.get_data_dtype() == np.int16
    np.testing.assert_array_equal(np.asarray(stored.dataobj.get_unscaled()), raw)

    volume = load_volume(path)
    assert volume.data.dtype == np.float32
    expected = [[[-1024, -824], [0, 976]], [[-1010, -1018], [-1020, -1022]]]  # 2 * raw - 1024
    np.testing.assert_array_equal(volume.data, np.array(expected, dtype=np.float32))


def test_float64_on_request(tmp_path):
    path = make_nifti(tmp_path / "a.nii", ramp((2, 3, 4)))
    assert load_volume(path, dtype=np.float64).data.dtype == np.float64


def test_volume_metadata(tmp_path):
    path = make_nifti(tmp_path / "a.nii.gz", ramp((4, 3, 2)), LPS)
    volume = load_volume(str(path))
    assert isinstance(volume, Volume)
    assert volume.path == path
    assert volume.original_shape == (4, 3, 2)
    assert volume.original_axcodes == ("L", "P", "S")
    assert volume.axcodes == ("R", "A", "S")
    assert volume.canonical is True


# --- reorientation ---------------------------------------------------------------------------


def assert_same_mm_points(volume: Volume, file_affine: np.ndarray, source_index) -> None:
    """Every voxel of ``volume`` sits at the same mm point as the file voxel it came from."""
    for xyz in np.ndindex(volume.data.shape):
        ijk = source_index(*xyz)
        np.testing.assert_allclose(apply_affine(volume.affine, xyz), apply_affine(file_affine, ijk), atol=1e-9)


def test_lps_file_is_flipped_in_x_and_y(tmp_path):
    data = ramp((4, 3, 2))
    volume = load_volume(make_nifti(tmp_path / "lps.nii.gz", data, LPS))
    assert volume.data.shape == (4, 3, 2)
    assert volume.spacing_mm == pytest.approx((0.7, 0.7, 2.5))
    for x, y, z in np.ndindex(4, 3, 2):
        assert volume.data[x, y, z] == data[3 - x, 2 - y, z]
    # The file's first voxel (most Left, most Posterior) is now at the largest x and y.
    assert volume.data[3, 2, 0] == data[0, 0, 0]
    assert_same_mm_points(volume, LPS, lambda x, y, z: (3 - x, 2 - y, z))


def test_ras_file_is_kept_as_it_is(tmp_path):
    data = ramp((4, 3, 2))
    volume = load_volume(make_nifti(tmp_path / "ras.nii.gz", data, RAS))
    np.testing.assert_array_equal(volume.data, data)
    np.testing.assert_allclose(volume.affine, RAS)
    assert volume.original_axcodes == ("R", "A", "S")


def test_permuted_axes_are_reordered_to_ras(tmp_path):
    data = ramp((3, 4, 5))  # file axes (i, j, k) point to A, I, R
    volume = load_volume(make_nifti(tmp_path / "perm.nii.gz", data, PERMUTED))
    assert volume.original_axcodes == ("A", "I", "R")
    assert volume.axcodes == ("R", "A", "S")
    assert volume.data.shape == (5, 3, 4)  # (X, Y, Z) = (k, i, reversed j)
    assert volume.spacing_mm == pytest.approx((2.0, 1.5, 3.0))
    for x, y, z in np.ndindex(5, 3, 4):
        assert volume.data[x, y, z] == data[y, 3 - z, x]
    # A marker in the most Right (k=4), Posterior (i=0), Superior (j=0) file voxel ...
    assert volume.data[4, 0, 3] == data[0, 0, 4]  # ... lands at max X, min Y, max Z.
    assert_same_mm_points(volume, PERMUTED, lambda x, y, z: (y, 3 - z, x))


def test_canonical_false_keeps_the_file_array(tmp_path):
    data = ramp((3, 4, 5))
    volume = load_volume(make_nifti(tmp_path / "perm.nii.gz", data, PERMUTED), canonical=False)
    np.testing.assert_array_equal(volume.data, data)
    np.testing.assert_allclose(volume.affine, PERMUTED)
    assert volume.spacing_mm == pytest.approx((1.5, 3.0, 2.0))  # in file order
    assert volume.axcodes == ("A", "I", "R")
    assert volume.canonical is False


def test_4d_file_with_one_volume_is_squeezed(tmp_path):
    data = ramp((4, 5, 6, 1))
    volume = load_volume(make_nifti(tmp_path / "one.nii.gz", data, RAS))
    assert volume.data.shape == (4, 5, 6)
    assert volume.original_shape == (4, 5, 6, 1)
    np.testing.assert_array_equal(volume.data, data[..., 0])


# --- bad input -------------------------------------------------------------------------------


def test_missing_path(tmp_path):
    path = tmp_path / "nope.nii.gz"
    with pytest.raises(VolumeError, match=error_naming(path, "no such file")):
        load_volume(path)


def test_folder(tmp_path):
    with pytest.raises(VolumeError, match=error_naming(tmp_path, "is a folder")):
        load_volume(tmp_path)


# --- the fast inflate (ISA-L) and its standard-library fallback --------------------------------


def _without_isal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import isal.igzip`` fail, as on a machine without the package."""
    monkeypatch.setitem(sys.modules, "isal.igzip", None)


def _refuse_nib_load(*args, **kwargs):
    raise AssertionError("nib.load was called: the in-memory ISA-L path was not taken")


@pytest.mark.parametrize("affine", [LPS, PERMUTED], ids=["lps", "permuted"])
def test_fast_inflate_gives_the_same_volume_and_header_as_the_standard_library(tmp_path, monkeypatch, affine):
    pytest.importorskip("isal.igzip")
    path = make_nifti(tmp_path / "scan.nii.gz", ramp((40, 30, 20)), affine, slope=2.0, inter=-1024.0)

    with monkeypatch.context() as patched:
        patched.setattr(nib, "load", _refuse_nib_load)  # proves that the fast path read the file
        fast_header = ctutils.io._open_image(path).header
        fast = load_volume(path)
    _without_isal(monkeypatch)
    assert ctutils.io._isal() is None
    standard_header = ctutils.io._open_image(path).header
    standard = load_volume(path)

    assert fast_header.binaryblock == standard_header.binaryblock
    assert fast.data.dtype == standard.data.dtype == np.float32
    np.testing.assert_array_equal(fast.data, standard.data)
    np.testing.assert_array_equal(fast.affine, standard.affine)
    assert (fast.spacing_mm, fast.original_shape, fast.original_axcodes) == (
        standard.spacing_mm, standard.original_shape, standard.original_axcodes)


def test_without_isal_the_standard_library_reads_the_file(tmp_path, monkeypatch):
    _without_isal(monkeypatch)
    data = ramp((4, 3, 2))
    path = make_nifti(tmp_path / "scan.nii.gz", data, RAS)
    assert ctutils.io._isal() is None
    np.testing.assert_array_equal(load_volume(path).data, data.astype(np.float32))


def test_a_nifti2_file_is_left_to_nibabel(tmp_path):
    data = ramp((4, 3, 2))
    path = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti2Image(data, RAS), path)
    assert ctutils.io._load_nifti1_gz_in_memory(path) is None
    np.testing.assert_array_equal(load_volume(path).data, data.astype(np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("source", [np.int16, np.float64])
def test_c_order_copy_equals_astype_on_a_flipped_fortran_array(dtype, source):
    stored = np.asfortranarray(np.random.default_rng(0).normal(0, 500, (21, 19, 5))).astype(source, order="F")
    view = stored[::-1, ::-1]  # what ras_view gives for an LPS file: Fortran order, flipped X and Y
    got = ctutils.io._as_c_order(view, dtype=dtype)
    assert got.dtype == dtype and got.flags["C_CONTIGUOUS"] and not np.shares_memory(got, stored)
    np.testing.assert_array_equal(got, view.astype(dtype, order="C"))


def test_loaded_volume_is_c_contiguous(tmp_path):
    path = make_nifti(tmp_path / "scan.nii.gz", ramp((20, 17, 3)), LPS)
    assert load_volume(path).data.flags["C_CONTIGUOUS"]


def test_volume_error_is_a_value_error():
    assert issubclass(VolumeError, ValueError)


@pytest.mark.parametrize("name", ["text.nii.gz", "text.nii"])
def test_text_file_with_a_nifti_name(tmp_path, name):
    path = tmp_path / name
    path.write_text("patient 17, chest CT\n")
    with pytest.raises(VolumeError, match=error_naming(path, "not a NIfTI file")):
        load_volume(path)


def test_other_image_format(tmp_path):
    path = tmp_path / "scan.mgz"  # FreeSurfer MGH: nibabel reads it, but it is not NIfTI
    nib.save(nib.MGHImage(ramp((4, 4, 4)).astype(np.float32), np.eye(4)), path)
    with pytest.raises(VolumeError, match=error_naming(path, r"not a NIfTI file \(read as MGHImage\)")):
        load_volume(path)


def test_truncated_gzip(tmp_path):
    data = np.random.default_rng(0).integers(-1024, 1000, size=(40, 40, 30)).astype(np.int16)
    good = tmp_path / "good.nii.gz"
    save_volume(good, data, LPS)
    path = tmp_path / "truncated.nii.gz"
    content = good.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(VolumeError, match=error_naming(path, "truncated")):
        load_volume(path)


@pytest.mark.parametrize("keep_bytes", [40, 0])
def test_truncated_inside_the_header_or_empty(tmp_path, keep_bytes):
    good = tmp_path / "good.nii.gz"
    save_volume(good, ramp((4, 4, 4)), LPS)
    path = tmp_path / "stub.nii.gz"
    path.write_bytes(good.read_bytes()[:keep_bytes])
    with pytest.raises(VolumeError, match=error_naming(path, "not a NIfTI file")):
        load_volume(path)


@pytest.mark.parametrize("shape", [(8, 8), (8, 8, 1), (1, 8, 8)])
def test_2d_image(tmp_path, shape):
    path = make_nifti(tmp_path / "slice.nii.gz", ramp(shape))
    with pytest.raises(VolumeError, match=error_naming(path, re.escape(f"got shape {shape}"))):
        load_volume(path)


def test_4d_series_of_several_volumes(tmp_path):
    path = make_nifti(tmp_path / "series.nii.gz", ramp((6, 6, 4, 3)))
    with pytest.raises(VolumeError, match=error_naming(path, "4-D series of 3 volumes")):
        load_volume(path)


def test_nan_voxels(tmp_path):
    data = ramp((4, 4, 4), np.float32)
    data[1, 2, 3] = np.nan
    path = make_nifti(tmp_path / "nan.nii.gz", data)
    with pytest.raises(VolumeError, match=error_naming(path, "1 voxels are NaN or infinite")):
        load_volume(path)


def test_infinite_voxels(tmp_path):
    data = ramp((4, 4, 4), np.float32)
    data[0, 0, 0], data[3, 3, 3] = np.inf, -np.inf
    path = make_nifti(tmp_path / "inf.nii.gz", data)
    with pytest.raises(VolumeError, match=error_naming(path, "2 voxels are NaN or infinite")):
        load_volume(path)


def test_constant_volume(tmp_path):
    path = make_nifti(tmp_path / "flat.nii.gz", np.full((4, 4, 4), -1000, np.int16))
    with pytest.raises(VolumeError, match=error_naming(path, r"constant volume \(every voxel is -1000 HU\)")):
        load_volume(path)


# --- saving ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a.nii.gz", "a.nii"])
def test_save_roundtrip(tmp_path, name):
    data = ramp((4, 3, 2))
    path = tmp_path / "sub" / name
    save_volume(path, data, LPS)
    image = nib.load(path)
    assert image.get_data_dtype() == np.int16
    assert isinstance(image, nib.Nifti1Image)
    volume = load_volume(path, canonical=False)
    np.testing.assert_array_equal(volume.data, data)
    np.testing.assert_allclose(volume.affine, LPS)
    assert sorted(p.name for p in path.parent.iterdir()) == [name]


def test_save_rejects_a_2d_array_naming_the_file(tmp_path):
    path = tmp_path / "a.nii.gz"
    with pytest.raises(ValueError, match=error_naming(path, re.escape("got shape (4, 4)"))):
        save_volume(path, np.zeros((4, 4), np.int16), np.eye(4))
    assert not path.exists()


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "a.nii.gz"
    save_volume(path, ramp((4, 3, 2)), LPS)
    before = path.read_bytes()

    def failing_save(image, filename):
        Path(filename).write_bytes(b"\x1f\x8b half a file")
        raise OSError("disk full")

    monkeypatch.setattr(ctutils.io.nib, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_volume(path, ramp((5, 5, 5)), RAS)
    with pytest.raises(OSError, match="disk full"):
        save_volume(tmp_path / "b.nii.gz", ramp((5, 5, 5)), RAS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nii.gz"]  # no b, no partial file
    assert path.read_bytes() == before


# --------------------------------------------------------------------------- load_mask


def test_load_mask_is_reoriented_like_its_scan(tmp_path):
    affine = np.diag([-0.8, -0.8, 2.5, 1.0])  # stored L, P, S
    scan = make_nifti(tmp_path / "scan.nii.gz", np.arange(4 * 3 * 2, dtype=np.int16).reshape(4, 3, 2), affine)
    stored = np.zeros((4, 3, 2), dtype=np.uint8)
    stored[0, 0, 1] = 1  # the patient's most left, most posterior voxel of the upper slice
    mask_file = make_nifti(tmp_path / "mask.nii.gz", stored, affine)
    volume = load_volume(scan)
    mask = ctutils.io.load_mask(mask_file, like=volume)
    assert mask.dtype == np.float32 and mask.shape == volume.data.shape
    assert np.argwhere(mask).tolist() == [[3, 2, 1]]  # RAS: X and Y flipped, as the scan's voxel
    assert volume.data[3, 2, 1] == 0 * 6 + 0 * 2 + 1  # the scan's stored voxel [0, 0, 1]
    as_stored = ctutils.io.load_mask(mask_file, like=load_volume(scan, canonical=False))
    assert np.argwhere(as_stored).tolist() == [[0, 0, 1]]


def test_load_mask_rejects_another_shape_or_affine(tmp_path):
    affine = np.diag([-0.8, -0.8, 2.5, 1.0])
    volume = load_volume(make_nifti(tmp_path / "scan.nii.gz", np.arange(24, dtype=np.int16).reshape(4, 3, 2), affine))
    small = make_nifti(tmp_path / "small.nii.gz", np.zeros((4, 3, 3), dtype=np.uint8), affine)
    with pytest.raises(VolumeError, match=re.escape(f"{small}: mask shape (4, 3, 3) differs from its scan's (4, 3, 2)")):
        ctutils.io.load_mask(small, like=volume)
    moved = make_nifti(tmp_path / "moved.nii.gz", np.zeros((4, 3, 2), dtype=np.uint8), np.diag([-0.8, -0.8, 5.0, 1.0]))
    with pytest.raises(VolumeError, match=re.escape(f"{moved}: mask affine differs from its scan's")):
        ctutils.io.load_mask(moved, like=volume)
    with pytest.raises(VolumeError, match="no such file"):
        ctutils.io.load_mask(tmp_path / "none.nii.gz", like=volume)


def test_an_empty_mask_is_a_mask(tmp_path):
    affine = np.diag([-0.8, -0.8, 2.5, 1.0])
    volume = load_volume(make_nifti(tmp_path / "scan.nii.gz", np.arange(24, dtype=np.int16).reshape(4, 3, 2), affine))
    empty = make_nifti(tmp_path / "empty.nii.gz", np.zeros((4, 3, 2), dtype=np.uint8), affine)
    assert not ctutils.io.load_mask(empty, like=volume).any()  # a constant mask is fine (a scan is not)
