"""Tests for ctutils.preprocess: config, course preset, keras-example fidelity, orientation independence."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import make_nifti
from scipy import ndimage

from ctutils.intensity import window_hu
from ctutils.io import Volume, VolumeError
from ctutils.preprocess import PRESETS, PreprocessConfig, preprocess_file, preprocess_volume
from ctutils.resample import resample_to_spacing, resize_volume

SMALL = (16, 16, 8)


def keras_example_reference(path: Path, shape=(128, 128, 64)) -> np.ndarray:
    """The Keras example's ``process_scan``, written out as the tutorial does it."""
    volume = nib.load(path).get_fdata()
    # normalize(): clip in place, scale, float32
    hu_min, hu_max = -1000, 400
    volume[volume < hu_min] = hu_min
    volume[volume > hu_max] = hu_max
    volume = (volume - hu_min) / (hu_max - hu_min)
    volume = volume.astype("float32")
    # resize_volume(): factors from the shape before rotating, rotate, zoom
    width, height, depth = volume.shape
    width_factor = 1 / (width / shape[0])
    height_factor = 1 / (height / shape[1])
    depth_factor = 1 / (depth / shape[2])
    volume = ndimage.rotate(volume, 90, reshape=False)
    return ndimage.zoom(volume, (width_factor, height_factor, depth_factor), order=1)


def random_hu(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-1500, 1500, size=shape).astype(np.int16)


def in_memory_volume(data: np.ndarray, spacing_mm=(1.0, 1.0, 1.0)) -> Volume:
    return Volume(
        data=data,
        affine=np.diag([*spacing_mm, 1.0]),
        spacing_mm=tuple(spacing_mm),
        path=Path("in-memory.nii.gz"),
        original_shape=data.shape,
        original_axcodes=("R", "A", "S"),
    )


# --- config ----------------------------------------------------------------------------------


def test_default_config():
    config = PreprocessConfig()
    assert config.shape == (128, 128, 64)
    assert (config.hu_min, config.hu_max) == (-1000.0, 400.0)
    assert config.spacing_mm is None
    assert config.preset == "course"
    assert PRESETS == ("course", "keras-example")


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PreprocessConfig().shape = (64, 64, 32)  # type: ignore[misc]


def test_to_dict_is_json_ready():
    assert PreprocessConfig().to_dict() == {
        "shape": [128, 128, 64], "hu_min": -1000.0, "hu_max": 400.0, "spacing_mm": None, "preset": "course",
    }
    config = PreprocessConfig(shape=(64, 64, 32), spacing_mm=(1, 1, 2.5))
    assert json.loads(json.dumps(config.to_dict()))["spacing_mm"] == [1.0, 1.0, 2.5]


@pytest.mark.parametrize(
    "config",
    [
        PreprocessConfig(),
        PreprocessConfig(shape=(64, 64, 32), hu_min=-1200, hu_max=600, spacing_mm=(1.5, 1.5, 2.5)),
        PreprocessConfig(preset="keras-example"),
    ],
)
def test_to_dict_from_dict_roundtrip_through_json(config):
    again = PreprocessConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert again.key() == config.key()


def test_from_dict_ignores_unknown_keys_and_fills_defaults():
    config = PreprocessConfig.from_dict({"shape": [32, 32, 16], "class_names": ["normal", "abnormal"]})
    assert config == PreprocessConfig(shape=(32, 32, 16))


def test_equal_configs_have_equal_keys():
    base = PreprocessConfig()
    assert PreprocessConfig(shape=[128, 128, 64], hu_min=-1000, hu_max=400).key() == base.key()
    assert base.replace(shape=(128.0, 128, 64)).key() == base.key()
    # the key is the hash of the sorted JSON of to_dict()
    text = json.dumps(base.to_dict(), sort_keys=True)
    assert base.key() == hashlib.sha256(text.encode()).hexdigest()[:16]


def test_key_is_pinned():
    # Caches on learners' disks are keyed by this: a change here makes every cache rebuild.
    assert PreprocessConfig().key() == "daea6fd6c6a83189"
    assert PreprocessConfig(preset="keras-example").key() == "9d32bff9e298d929"


def test_key_does_not_depend_on_the_process():
    code = "from ctutils.preprocess import PreprocessConfig as P; print(P(spacing_mm=(1, 1, 2)).key())"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # another str-hash seed than this process's
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() == PreprocessConfig(spacing_mm=(1, 1, 2)).key()


@pytest.mark.parametrize(
    "change",
    [
        {"shape": (64, 64, 32)},
        {"hu_min": -1024.0},
        {"hu_max": 500.0},
        {"spacing_mm": (1.0, 1.0, 2.0)},
        {"preset": "keras-example"},
    ],
)
def test_any_change_changes_the_key(change):
    assert PreprocessConfig().replace(**change).key() != PreprocessConfig().key()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shape": (128, 128)}, "shape must be 3 integers"),
        ({"shape": (128, 128, 64, 1)}, "shape must be 3 integers"),
        ({"shape": (128, 1, 64)}, "shape must be 3 integers"),
        ({"preset": "fancy"}, "unknown preset 'fancy'; choose one of course, keras-example"),
        ({"hu_min": 400, "hu_max": 400}, r"hu_max \(400\) must be greater than hu_min \(400\)"),
        ({"hu_min": 500, "hu_max": -500}, "must be greater than hu_min"),
        ({"spacing_mm": (1.0, 1.0)}, "spacing_mm must be 3 positive numbers"),
        ({"spacing_mm": (1.0, 0.0, 1.0)}, "spacing_mm must be 3 positive numbers"),
        ({"preset": "keras-example", "spacing_mm": (1, 1, 1)}, "keras-example preset does not resample"),
    ],
)
def test_invalid_configs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PreprocessConfig(**kwargs)


def test_from_dict_validates_too():
    with pytest.raises(ValueError, match="unknown preset"):
        PreprocessConfig.from_dict({"preset": "nope"})


# --- course preset ---------------------------------------------------------------------------


def test_default_output_shape_dtype_and_range():
    data = random_hu((20, 20, 6)).astype(np.float32)
    data[0, 0, 0], data[-1, -1, -1] = -3000, 3000  # corners survive a corner-aligned resize
    out = preprocess_volume(in_memory_volume(data))
    assert out.shape == (128, 128, 64)
    assert out.dtype == np.float32
    assert out.min() == 0.0 and out.max() == 1.0


def test_course_preset_is_window_then_resize():
    data = random_hu((10, 12, 6)).astype(np.float32)
    config = PreprocessConfig(shape=SMALL, hu_min=-900, hu_max=300)
    expected = resize_volume(window_hu(data, hu_min=-900, hu_max=300), shape=SMALL, order=1)
    np.testing.assert_allclose(preprocess_volume(in_memory_volume(data), config=config), expected, atol=1e-7)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_never_modifies_the_volume(preset, dtype):
    data = random_hu((12, 12, 6)).astype(dtype)
    before = data.copy()
    volume = in_memory_volume(data)
    out = preprocess_volume(volume, config=PreprocessConfig(shape=SMALL, preset=preset))
    np.testing.assert_array_equal(volume.data, before)
    assert not np.shares_memory(out, volume.data)


def test_spacing_resamples_then_crops_or_pads_without_stretching():
    data = random_hu((20, 20, 4)).astype(np.float32)
    volume = in_memory_volume(data, spacing_mm=(0.5, 0.5, 5.0))
    config = PreprocessConfig(shape=(8, 12, 6), spacing_mm=(1.0, 1.0, 2.5))
    resampled = resample_to_spacing(window_hu(data), spacing_mm=(0.5, 0.5, 5.0), target_spacing_mm=(1.0, 1.0, 2.5))
    assert resampled.shape == (10, 10, 8)
    out = preprocess_volume(volume, config=config)
    assert out.shape == (8, 12, 6)
    # X: 10 -> 8 drops one voxel at each end; Y: 10 -> 12 pads one voxel of air (0) each side;
    # Z: 8 -> 6 drops one slice at each end. No interpolation beyond the resampling itself.
    np.testing.assert_allclose(out[:, 1:11, :], np.clip(resampled[1:9, :, 1:7], 0, 1), atol=1e-7)
    assert (out[:, 0, :] == 0).all() and (out[:, 11, :] == 0).all()
    # ... and it is a real step: a plain resize stretches the grid and differs.
    without = preprocess_volume(volume, config=config.replace(spacing_mm=None))
    assert np.abs(out - without).max() > 0.01


def test_spacing_keeps_one_mm_one_voxel_across_scans():
    """Two scans of the same object with different slice thickness give the same extent."""
    cube = np.full((20, 20, 20), -1000.0, np.float32)
    cube[5:15, 5:15, 5:15] = 0.0  # a 10 mm cube at 1 mm voxels
    thick = cube[:, :, ::2]       # the same cube at 2 mm slices (10 slices)
    config = PreprocessConfig(shape=(24, 24, 24), spacing_mm=(1.0, 1.0, 1.0))
    a = preprocess_volume(in_memory_volume(cube, (1.0, 1.0, 1.0)), config=config)
    b = preprocess_volume(in_memory_volume(thick, (1.0, 1.0, 2.0)), config=config)
    extent = lambda v: int((v[12, 12, :] > 0.5).sum())  # noqa: E731
    assert extent(a) == 10 and abs(extent(b) - 10) <= 1


def test_course_preset_is_independent_of_the_stored_orientation(tmp_path):
    """The same anatomy stored RAS, LPS or with permuted axes gives the same network input."""
    ras_data = random_hu((16, 12, 8))
    ras_affine = np.array([[0.8, 0, 0, -60.0], [0, 0.9, 0, -50.0], [0, 0, 2.5, 10.0], [0, 0, 0, 1]])
    # LPS by hand: flip X and Y; file voxel (0, 0, 0) is RAS voxel (15, 11, 0).
    lps_data = ras_data[::-1, ::-1, :]
    lps_affine = np.array([[-0.8, 0, 0, -60.0 + 15 * 0.8], [0, -0.9, 0, -50.0 + 11 * 0.9], [0, 0, 2.5, 10.0], [0, 0, 0, 1]])
    ras = make_nifti(tmp_path / "ras.nii.gz", ras_data, ras_affine)
    lps = make_nifti(tmp_path / "lps.nii.gz", lps_data, lps_affine)
    # Permuted storage made by nibabel (axes A, I, R).
    to_air = nib.orientations.ornt_transform(
        nib.orientations.axcodes2ornt("RAS"), nib.orientations.axcodes2ornt("AIR")
    )
    air_image = nib.Nifti1Image(ras_data, ras_affine).as_reoriented(to_air)
    assert nib.aff2axcodes(air_image.affine) == ("A", "I", "R")
    air = tmp_path / "air.nii.gz"
    nib.save(air_image, air)

    config = PreprocessConfig(shape=SMALL)
    expected, _ = preprocess_file(ras, config=config)
    for path in (lps, air):
        out, volume = preprocess_file(path, config=config)
        np.testing.assert_array_equal(out, expected)
        assert volume.canonical
    # The keras-example preset (a fixed rotation) is not: that is why it is not the default.
    keras = PreprocessConfig(shape=SMALL, preset="keras-example")
    assert np.abs(preprocess_file(ras, config=keras)[0] - preprocess_file(lps, config=keras)[0]).max() > 0.1


# --- keras-example preset --------------------------------------------------------------------


def test_keras_example_matches_the_reference_on_a_square_volume(tmp_path):
    path = make_nifti(tmp_path / "square.nii.gz", random_hu((96, 96, 20)), np.diag([-0.7, -0.7, 5.0, 1.0]))
    out, volume = preprocess_file(path, config=PreprocessConfig(preset="keras-example"))
    reference = keras_example_reference(path)
    assert out.shape == reference.shape == (128, 128, 64)
    assert out.dtype == np.float32
    assert np.abs(out - reference).max() <= 1e-5
    assert volume.canonical is False  # the example reads the array as stored


def test_keras_example_with_another_shape(tmp_path):
    path = make_nifti(tmp_path / "square.nii.gz", random_hu((40, 40, 12), seed=3))
    out, _ = preprocess_file(path, config=PreprocessConfig(shape=(32, 32, 16), preset="keras-example"))
    assert np.abs(out - keras_example_reference(path, shape=(32, 32, 16))).max() <= 1e-5


@pytest.mark.parametrize(
    "shape",
    [
        (40, 30, 10),
        (40, 31, 10),
    ],
)
def test_keras_example_matches_the_reference_on_a_non_square_volume(tmp_path, shape):
    # Not square: falls back to ndimage.rotate. With X + Y odd the rotation lands between voxels.
    path = make_nifti(tmp_path / "rect.nii.gz", random_hu(shape, seed=1))
    out, _ = preprocess_file(path, config=PreprocessConfig(preset="keras-example"))
    assert np.abs(out - keras_example_reference(path)).max() <= 1e-5


def test_keras_example_matches_the_reference_on_the_real_ct(real_ct, tmp_path):
    # The repository's copy is 256 x 199 (cropped to the body): the ndimage.rotate fallback. Its
    # central 199 x 199 columns are square: the exact np.rot90 path, as on a 512 x 512 scan.
    image = nib.load(real_ct)
    affine = image.affine.copy()
    affine[:, 3] = image.affine @ [28, 0, 0, 1]  # voxel 28 of X is the new voxel 0
    square = make_nifti(tmp_path / "square.nii.gz", np.asanyarray(image.dataobj)[28:227], affine)
    for path in (real_ct, square):
        out, _ = preprocess_file(path, config=PreprocessConfig(preset="keras-example"))
        assert np.abs(out - keras_example_reference(path)).max() <= 1e-5, path.name


# --- preprocess_file -------------------------------------------------------------------------


def test_preprocess_file_returns_array_and_volume(tmp_path):
    data = random_hu((10, 10, 4))
    path = make_nifti(tmp_path / "a.nii.gz", data, np.diag([-0.8, -0.8, 2.5, 1.0]))
    out, volume = preprocess_file(path, config=PreprocessConfig(shape=SMALL))
    assert out.shape == SMALL and out.dtype == np.float32
    assert volume.path == path and volume.axcodes == ("R", "A", "S")
    assert volume.data.dtype == np.float32
    np.testing.assert_array_equal(out, preprocess_volume(volume, config=PreprocessConfig(shape=SMALL)))


def test_preprocess_file_names_a_bad_file(tmp_path):
    path = tmp_path / "bad.nii.gz"
    path.write_text("not a scan")
    with pytest.raises(VolumeError, match="^" + re.escape(f"{path}: not a NIfTI file")):
        preprocess_file(path)


# --------------------------------------------------------------------------- masks


@pytest.mark.parametrize("preset", ["course", "keras-example"])
def test_preprocess_mask_follows_its_scans_geometry(tmp_path, preset):
    from conftest import make_nifti

    from ctutils.preprocess import preprocess_mask

    affine = np.diag([-0.8, -0.8, 2.5, 1.0])
    hu = np.full((8, 8, 4), -1000, dtype=np.int16)
    hu[:4, :4, :] = 400  # a bright block in the stored left-posterior quarter
    scan = make_nifti(tmp_path / "scan.nii.gz", hu, affine)
    mask = make_nifti(tmp_path / "mask.nii.gz", (hu > 0).astype(np.uint8), affine)
    config = PreprocessConfig(shape=(4, 4, 2), preset=preset)
    array, volume = preprocess_file(scan, config=config)
    out = preprocess_mask(mask, volume=volume, config=config)
    assert out.dtype == np.float16 and out.shape == (4, 4, 2)
    # wherever the scan is bright (400 HU -> 1.0), the mask is set, and nowhere else
    np.testing.assert_allclose(out.astype(np.float32), array, atol=1e-3)
