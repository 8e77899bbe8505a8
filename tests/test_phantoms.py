"""Tests for ctutils.phantoms: geometry, HU ranges, lesions, determinism, dataset layout."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from ctutils import phantoms
from ctutils.baseline import body_mask
from ctutils.phantoms import generate_dataset, make_phantom, study_paths

# HU classes used for the realism check (same as docs/phantoms.md)
HU_CLASSES = {
    "air (< -900)": (-np.inf, -900),
    "aerated lung (-900..-700)": (-900, -700),
    "fat (-150..-30)": (-150, -30),
    "soft tissue (-30..150)": (-30, 150),
    "bone (>= 300)": (300, np.inf),
}


def _phantom(abnormal: bool, seed: int = 0, size: int = 64, n_slices: int | None = 10):
    return make_phantom(abnormal=abnormal, rng=np.random.default_rng(seed), size=size,
                        n_slices=n_slices)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _inner_air(data: np.ndarray, threshold_hu: float = -500.0) -> np.ndarray:
    """Air-like voxels not connected to the in-plane border: lungs and airways."""
    air = data < threshold_hu
    lab, _ = ndimage.label(air)
    border = np.unique(np.concatenate([lab[0].ravel(), lab[-1].ravel(),
                                       lab[:, 0].ravel(), lab[:, -1].ravel()]))
    return air & ~np.isin(lab, border)


# --------------------------------------------------------------------------- make_phantom


def test_shape_dtype_affine_and_orientation():
    data, affine, info = _phantom(False, size=64, n_slices=10)
    assert data.shape == (64, 64, 10)
    assert data.dtype == np.int16
    assert data.min() >= -1024 and data.max() <= 3071
    assert nib.aff2axcodes(affine) == ("L", "P", "S")
    dx, dy, dz = info["spacing_mm"]
    np.testing.assert_allclose(np.diag(affine)[:3], [-dx, -dy, dz])
    assert dx == dy and 310 <= dx * 64 <= 410  # field of view in mm
    assert info["n_slices"] == 10 and info["shape"] == (64, 64, 10)
    canonical = nib.as_closest_canonical(nib.Nifti1Image(data, affine))
    assert nib.aff2axcodes(canonical.affine) == ("R", "A", "S")


def test_voxel_size_scales_with_in_plane_size():
    _, _, small = _phantom(False, seed=3, size=64)
    _, _, large = _phantom(False, seed=3, size=128)
    assert small["fov_mm"] == large["fov_mm"]
    assert small["spacing_mm"][0] == pytest.approx(2 * large["spacing_mm"][0])


def test_default_slice_count_and_coverage():
    counts = []
    for seed in range(4):
        data, _, info = make_phantom(abnormal=False, rng=np.random.default_rng(seed), size=32)
        counts.append(data.shape[2])
        assert 30 <= data.shape[2] <= 70
        assert 200 <= info["slice_thickness_mm"] * data.shape[2] <= 320  # a whole chest
    assert len(set(counts)) > 1


def test_anatomy_is_in_plausible_hu_ranges():
    data, _, _ = _phantom(False, seed=1, size=96, n_slices=16)
    assert data[0, 0, 0] == -1024  # outside the reconstruction circle
    lungs = data[_inner_air(data)]
    assert lungs.size > 0.03 * data.size
    assert -900 <= np.median(lungs) <= -750
    assert np.mean((lungs >= -950) & (lungs <= -700)) > 0.6
    assert np.mean(data >= 300) > 0.002  # ribs, spine, sternum
    assert np.mean((data >= -150) & (data <= -50)) > 0.03  # fat
    assert np.mean((data >= 0) & (data <= 80)) > 0.05  # muscle, heart, liver
    assert np.mean(data < -900) > 0.2  # air around the body


def test_spine_is_posterior():
    data, _, _ = _phantom(False, seed=2, size=64, n_slices=10)
    _, ys, _ = np.nonzero(data[24:40] >= 300)  # bone near the midline: mostly the spine
    assert ys.mean() > 32  # the stored Y axis points to the patient's back


def test_abnormal_adds_ground_glass_to_the_same_anatomy():
    normal, aff_n, _ = _phantom(False, seed=5, size=96, n_slices=16)
    abnormal, aff_a, info = _phantom(True, seed=5, size=96, n_slices=16)
    np.testing.assert_array_equal(aff_n, aff_a)
    changed = normal != abnormal
    assert changed.any()
    lung = _inner_air(normal)
    near_lung = ndimage.binary_dilation(_inner_air(normal, -250.0), iterations=3)
    assert changed[~near_lung].sum() == 0  # lesions stay in the lungs

    def ggo(x):
        return int(np.count_nonzero((x >= -750) & (x <= -300) & lung))

    assert ggo(abnormal) > ggo(normal)
    assert info["abnormal"] and info["n_lesions"] >= 1 and info["lesion_fraction"] > 0
    assert info["severity"] in {"subtle", "moderate", "extensive"}


def test_normal_info_has_no_lesions():
    _, _, info = _phantom(False)
    assert info["severity"] == "none" and info["n_lesions"] == 0 and info["lesion_fraction"] == 0


def test_same_rng_state_same_phantom_and_different_seed_differs():
    a, aff_a, _ = _phantom(True, seed=7)
    b, aff_b, _ = _phantom(True, seed=7)
    c, _, _ = _phantom(True, seed=8)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(aff_a, aff_b)
    assert a.shape != c.shape or np.any(a != c)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"size": 16}, "size"),
        ({"size": 64.0}, "size"),
        ({"n_slices": 1}, "n_slices"),
        ({"rng": 0}, "rng"),
    ],
)
def test_make_phantom_rejects_bad_arguments(kwargs, match):
    args = {"abnormal": False, "rng": np.random.default_rng(0), "size": 64, "n_slices": 4}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        make_phantom(**args)


# --------------------------------------------------------------------------- generate_dataset


def test_layout_numbering_and_metadata(tmp_path):
    paths = generate_dataset(tmp_path, normal=2, abnormal=3, seed=0, size=32, workers=1,
                             progress=False)
    rel = [p.relative_to(tmp_path).as_posix() for p in paths]
    assert rel == ["CT-0/study_0001.nii.gz", "CT-0/study_0002.nii.gz",
                   "CT-23/study_0003.nii.gz", "CT-23/study_0004.nii.gz",
                   "CT-23/study_0005.nii.gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CT-0", "CT-23", "synthetic.json"]
    meta = json.loads((tmp_path / "synthetic.json").read_text())
    assert meta["complete"] is True
    assert (meta["seed"], meta["normal"], meta["abnormal"], meta["size"]) == (0, 2, 3, 32)
    assert [s["label"] for s in meta["studies"]] == [0, 0, 1, 1, 1]
    assert [s["severity"] == "none" for s in meta["studies"]] == [True, True, False, False, False]
    img = nib.load(paths[2])
    assert img.get_data_dtype() == np.int16
    assert nib.aff2axcodes(img.affine) == ("L", "P", "S")
    assert img.shape[:2] == (32, 32) and 30 <= img.shape[2] <= 70
    np.testing.assert_allclose(img.header.get_zooms(), meta["studies"][2]["spacing_mm"], rtol=1e-6)
    assert int(img.header["sform_code"]) == 1


def test_study_paths_widen_numbers_beyond_9999():
    rows = study_paths("d", normal=10000, abnormal=1)
    assert rows[0][0].name == "study_00001.nii.gz"
    assert rows[-1][0].as_posix() == "d/CT-23/study_10001.nii.gz" and rows[-1][1:] == (1, 1)


def test_same_seed_identical_bytes_other_seed_differs(tmp_path):
    first = generate_dataset(tmp_path / "a", normal=1, abnormal=1, seed=3, size=32, workers=1,
                             progress=False)
    again = generate_dataset(tmp_path / "b", normal=1, abnormal=1, seed=3, size=32, workers=1,
                             progress=False)
    other = generate_dataset(tmp_path / "c", normal=1, abnormal=1, seed=4, size=32, workers=1,
                             progress=False)
    assert [_sha(p) for p in first] == [_sha(p) for p in again]
    assert all(_sha(p) != _sha(q) for p, q in zip(first, other))


def test_output_does_not_depend_on_worker_count(tmp_path):
    one = generate_dataset(tmp_path / "one", normal=2, abnormal=1, seed=1, size=32, workers=1,
                           progress=False)
    two = generate_dataset(tmp_path / "two", normal=2, abnormal=1, seed=1, size=32, workers=2,
                           progress=False)
    assert [_sha(p) for p in one] == [_sha(p) for p in two]


def test_study_depends_only_on_seed_class_and_index(tmp_path):
    small = generate_dataset(tmp_path / "s", normal=1, abnormal=1, seed=2, size=32, workers=1,
                             progress=False)
    large = generate_dataset(tmp_path / "l", normal=2, abnormal=1, seed=2, size=32, workers=1,
                             progress=False)
    assert _sha(small[0]) == _sha(large[0])  # normal study 1
    assert _sha(small[1]) == _sha(large[2])  # abnormal study 1: study_0002 vs study_0003


def test_rerun_with_same_parameters_skips_existing_files(tmp_path, monkeypatch):
    paths = generate_dataset(tmp_path, normal=1, abnormal=1, seed=0, size=32, workers=1,
                             progress=False)
    stamps = [p.stat().st_mtime_ns for p in paths]
    studies = json.loads((tmp_path / "synthetic.json").read_text())["studies"]

    def fail(*args, **kwargs):
        raise AssertionError("a study was regenerated")

    monkeypatch.setattr(phantoms, "_write_study", fail)
    assert generate_dataset(tmp_path, normal=1, abnormal=1, seed=0, size=32, workers=1,
                            progress=False) == paths
    assert [p.stat().st_mtime_ns for p in paths] == stamps
    assert json.loads((tmp_path / "synthetic.json").read_text())["studies"] == studies


def test_rerun_completes_an_interrupted_dataset(tmp_path):
    paths = generate_dataset(tmp_path, normal=2, abnormal=1, seed=0, size=32, workers=1,
                             progress=False)
    digest = _sha(paths[1])
    paths[1].unlink()
    generate_dataset(tmp_path, normal=2, abnormal=1, seed=0, size=32, workers=1, progress=False)
    assert _sha(paths[1]) == digest


def test_interrupted_run_keeps_its_records_and_resumes(tmp_path, monkeypatch):
    real_write = phantoms._write_study
    calls = []

    def flaky(path, label, index, seed, size):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_write(path, label, index, seed, size)

    monkeypatch.setattr(phantoms, "_write_study", flaky)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(tmp_path, normal=2, abnormal=1, seed=0, size=32, workers=1,
                         progress=False)
    meta = json.loads((tmp_path / "synthetic.json").read_text())
    assert meta["complete"] is False
    assert [s["path"] for s in meta["studies"]] == ["CT-0/study_0001.nii.gz"]
    assert not (tmp_path / "CT-0/study_0002.nii.gz").exists()
    monkeypatch.setattr(phantoms, "_write_study", real_write)
    generate_dataset(tmp_path, normal=2, abnormal=1, seed=0, size=32, workers=1, progress=False)
    meta = json.loads((tmp_path / "synthetic.json").read_text())
    assert meta["complete"] is True and len(calls) == 2
    assert [s["n_slices"] > 0 for s in meta["studies"]] == [True, True, True]


def test_other_parameters_regenerate_and_remove_stale_studies(tmp_path):
    generate_dataset(tmp_path, normal=3, abnormal=1, seed=0, size=32, workers=1, progress=False)
    old = _sha(tmp_path / "CT-0/study_0001.nii.gz")
    paths = generate_dataset(tmp_path, normal=2, abnormal=1, seed=1, size=32, workers=1,
                             progress=False)
    on_disk = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("CT-*/*"))
    assert on_disk == ["CT-0/study_0001.nii.gz", "CT-0/study_0002.nii.gz",
                       "CT-23/study_0003.nii.gz"]
    assert _sha(paths[0]) != old
    assert json.loads((tmp_path / "synthetic.json").read_text())["seed"] == 1


def test_refuses_to_overwrite_data_it_did_not_write(tmp_path):
    (tmp_path / "CT-0").mkdir()
    real = tmp_path / "CT-0" / "study_0001.nii.gz"
    real.write_bytes(b"real scan")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        generate_dataset(tmp_path, normal=1, abnormal=1, seed=0, size=32, progress=False)
    assert real.read_bytes() == b"real scan"


def test_leaves_no_partial_files(tmp_path):
    generate_dataset(tmp_path, normal=1, abnormal=1, seed=0, size=32, workers=1, progress=False)
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".partial")]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"normal": -1}, "normal"),
        ({"abnormal": 1.5}, "abnormal"),
        ({"seed": -2}, "seed"),
        ({"size": 8}, "size"),
        ({"workers": 0}, "workers"),
    ],
)
def test_generate_dataset_rejects_bad_arguments(tmp_path, kwargs, match):
    args = {"normal": 1, "abnormal": 1, "seed": 0, "size": 32, "progress": False}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        generate_dataset(tmp_path, **args)
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- realism


def _fractions(data: np.ndarray) -> dict[str, float]:
    """Share of each HU class among the voxels inside the body (``ctutils.baseline.body_mask``)."""
    inside = data[body_mask(data)]
    return {k: float(np.mean((inside >= lo) & (inside < hi))) for k, (lo, hi) in HU_CLASSES.items()}


def test_hu_class_fractions_resemble_the_real_chest_ct(real_ct):
    # Inside the body, so that the field of view does not count: data/real-ct is cropped to the
    # body, which took its whole-volume air share from 47 % to 32 %, while its in-body shares moved
    # by at most 0.003 from the full-resolution scan's (air 5.6 %, aerated lung 17.8 %, fat 32.7 %,
    # soft tissue 31.1 %, bone 3.3 %). Air inside the body is lung and airway air, hence its tolerance.
    real = _fractions(np.asanyarray(nib.load(real_ct).dataobj))
    ours = [
        _fractions(make_phantom(abnormal=bool(i % 2), rng=np.random.default_rng([0, i % 2, i]),
                                size=128)[0])
        for i in range(4)
    ]
    mean = {k: float(np.mean([f[k] for f in ours])) for k in HU_CLASSES}
    tolerance = {"air (< -900)": 0.06, "aerated lung (-900..-700)": 0.06, "fat (-150..-30)": 0.10,
                 "soft tissue (-30..150)": 0.10, "bone (>= 300)": 0.015}
    for k in HU_CLASSES:
        assert abs(mean[k] - real[k]) <= tolerance[k], (k, mean[k], real[k])
