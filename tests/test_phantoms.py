"""Tests for ctutils.phantoms: geometry, HU ranges, graded disease, masks, confounders, realism."""

from __future__ import annotations

import dataclasses

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from ctutils import phantoms
from ctutils.baseline import body_mask
from ctutils.phantoms import GRADE_RANGES, grade_of, make_phantom, sample_disease
from ctutils.realism import HU_CLASSES, body_hu_histogram, js_distance


def _phantom(grade: int = 0, seed: int = 0, size: int = 64, n_slices: int | None = 10):
    return make_phantom(grade=grade, rng=np.random.default_rng(seed), size=size, n_slices=n_slices)


def _inner_air(data: np.ndarray, threshold_hu: float = -500.0) -> np.ndarray:
    """Air-like voxels not connected to the in-plane border: lungs and airways."""
    air = data < threshold_hu
    lab, _ = ndimage.label(air)
    border = np.unique(np.concatenate([lab[0].ravel(), lab[-1].ravel(),
                                       lab[:, 0].ravel(), lab[:, -1].ravel()]))
    return air & ~np.isin(lab, border)


# --------------------------------------------------------------------------- geometry and anatomy


def test_shape_dtype_affine_and_orientation():
    p = _phantom(size=64, n_slices=10)
    data, affine, info = p.data, p.affine, p.info
    assert data.shape == (64, 64, info["n_slices"]) and info["shape"] == data.shape
    assert data.dtype == np.int16
    assert data.min() >= -1024 and data.max() <= 3071
    assert nib.aff2axcodes(affine) == ("L", "P", "S")
    dx, dy, dz = info["spacing_mm"]
    np.testing.assert_allclose(np.diag(affine)[:3], [-dx, -dy, dz])
    assert dx == dy and 310 <= dx * 64 <= 410  # field of view in mm
    canonical = nib.as_closest_canonical(nib.Nifti1Image(data, affine))
    assert nib.aff2axcodes(canonical.affine) == ("R", "A", "S")
    assert p.lesion_mask.shape == p.lung_mask.shape == data.shape


def test_voxel_size_scales_with_in_plane_size():
    small = _phantom(seed=3, size=64).info
    large = _phantom(seed=3, size=128).info
    assert small["fov_mm"] == large["fov_mm"]
    assert small["spacing_mm"][0] == pytest.approx(2 * large["spacing_mm"][0])


def test_default_slice_count_and_coverage():
    counts = []
    for seed in range(6):
        p = make_phantom(rng=np.random.default_rng(seed), size=32)
        acq = p.acquisition
        counts.append(acq.n_slices)
        assert 30 <= acq.n_slices <= 70
        # the painted slices cover the whole chest; a partial-coverage scan keeps fewer of them
        assert 195 <= acq.slice_thickness_mm * acq.n_slices <= 290
        k0, k1 = acq.kept_slices
        assert p.data.shape[2] == k1 - k0 and (acq.coverage == "full") == ((k0, k1) == (0, acq.n_slices))
    assert len(set(counts)) > 1


def _first_seed_with(coverage: str) -> int:
    """A seed whose phantom has this coverage (make_phantom samples anatomy, then acquisition)."""
    for seed in range(500):
        rng = np.random.default_rng(seed)
        if phantoms.sample_acquisition(rng, phantoms.sample_anatomy(rng)).coverage == coverage:
            return seed
    raise AssertionError(f"no seed below 500 gives coverage {coverage!r}")


@pytest.mark.parametrize("coverage", ["no-base", "no-apex"])
def test_partial_coverage_keeps_part_of_the_slices_and_moves_the_origin(coverage):
    p = make_phantom(rng=np.random.default_rng(_first_seed_with(coverage)), size=32)
    acq = p.acquisition
    assert acq.coverage == coverage
    k0, k1 = acq.kept_slices
    assert p.data.shape[2] == k1 - k0 < acq.n_slices
    assert (k0 > 0) == (coverage == "no-base") and (k1 < acq.n_slices) == (coverage == "no-apex")
    assert p.affine[2, 3] == pytest.approx(acq.z_origin_mm + k0 * acq.slice_thickness_mm)


def test_anatomy_is_in_plausible_hu_ranges():
    data = _phantom(seed=1, size=96, n_slices=16).data
    assert data[0, 0, 0] == -1024  # outside the reconstruction circle
    lungs = data[_inner_air(data)]
    assert lungs.size > 0.03 * data.size
    assert -900 <= np.median(lungs) <= -700
    assert np.mean(data >= 300) > 0.002  # ribs, spine, sternum
    assert np.mean((data >= -150) & (data <= -50)) > 0.03  # fat
    assert np.mean((data >= 0) & (data <= 80)) > 0.05  # muscle, heart, liver
    assert np.mean(data < -900) > 0.2  # air around the body


def test_the_liver_is_on_the_patients_right():
    # the lowest slices cut the upper abdomen, where the liver (50-66 HU) fills the right side and
    # the spleen is small. Stored X runs towards the patient's left: the right is at small X.
    for seed in range(4):
        p = _phantom(seed=seed, size=64, n_slices=40)
        assert p.acquisition.coverage == "full"
        low = p.data[:, :, :4].astype(float)
        soft = (low > 45) & (low < 80)
        assert soft[:32].sum() > 1.3 * soft[32:].sum()
        ras = np.asanyarray(nib.as_closest_canonical(nib.Nifti1Image(p.data, p.affine)).dataobj)[:, :, :4]
        soft_ras = (ras > 45) & (ras < 80)
        assert soft_ras[32:].sum() > 1.3 * soft_ras[:32].sum()  # RAS: the right is at large X


def test_spine_is_posterior():
    data = _phantom(seed=2, size=64, n_slices=10).data
    _, ys, _ = np.nonzero(data[24:40] >= 300)  # bone near the midline: mostly the spine
    assert ys.mean() > 32  # the stored Y axis points to the patient's back


def test_parameters_are_frozen_dataclasses_with_units_in_their_names():
    p = _phantom(grade=2)
    for params in (p.anatomy, p.acquisition, p.disease):
        assert dataclasses.is_dataclass(params)
        with pytest.raises(dataclasses.FrozenInstanceError):
            params.grade = 3  # type: ignore[misc]
    unitless = {"expiratory", "contrast", "kernel", "table", "coverage", "kept_slices", "n_slices",
                "motion_slices", "grade", "pattern", "foci", "crazy_paving", "confluence",
                "opacity", "target_involvement", "consolidation_fraction", "nodules", "scars"}
    for field in dataclasses.fields(p.anatomy) + dataclasses.fields(p.acquisition) + \
            dataclasses.fields(p.disease):
        assert field.name in unitless or field.name.endswith(("_mm", "_hu", "_rad", "_rel")), field.name


# --------------------------------------------------------------------------- grades and masks


def test_grade_of_follows_mosmeddata():
    assert [grade_of(x) for x in (0.0, 1e-6, 0.2499, 0.25, 0.4999, 0.5, 0.7499, 0.75, 1.0)] == \
        [0, 1, 1, 2, 2, 3, 3, 4, 4]
    with pytest.raises(ValueError, match="involvement"):
        grade_of(1.5)


@pytest.mark.parametrize("grade", [1, 2, 3, 4])
def test_measured_involvement_lies_in_the_grades_range(grade):
    for seed in range(3):
        p = make_phantom(grade=grade, rng=np.random.default_rng([seed, grade]), size=48, n_slices=12)
        lo, hi = GRADE_RANGES[grade]
        measured = p.lesion_mask.sum() / p.lung_mask.sum()  # from the masks, not from info
        assert lo < measured < hi or (grade == 4 and lo <= measured <= hi)
        assert measured == pytest.approx(p.info["involvement"], abs=1e-9)
        assert measured == pytest.approx(p.disease.target_involvement, abs=2.0 / p.lung_mask.sum() * 4)
        assert not (p.lesion_mask & ~p.lung_mask).any()  # lesions only in the lungs
        assert p.info["grade"] == grade and p.info["n_lesions"] >= 1


def test_normal_study_has_no_lesion():
    p = _phantom(grade=0)
    assert p.disease is None and not p.lesion_mask.any()
    assert p.info["grade"] == 0 and p.info["involvement"] == 0 and p.info["n_lesions"] == 0
    assert p.info["pattern"] == "none"


def test_disease_raises_lung_density_only_inside_the_lungs_of_the_same_anatomy():
    normal = _phantom(grade=0, seed=5, size=96, n_slices=16)
    sick = _phantom(grade=3, seed=5, size=96, n_slices=16)
    np.testing.assert_array_equal(normal.affine, sick.affine)
    np.testing.assert_array_equal(normal.lung_mask, sick.lung_mask)
    changed = normal.data != sick.data
    near_lung = ndimage.binary_dilation(normal.lung_mask, iterations=3)
    assert changed.any() and not changed[~near_lung].any()
    inside = sick.lesion_mask
    # lesion voxels are much denser than the same voxels of the normal twin
    assert np.median(sick.data[inside].astype(float) - normal.data[inside]) > 100


def test_lesions_are_denser_than_the_lung_around_them_even_in_an_expiratory_scan():
    seed = next(s for s in range(300) if phantoms.sample_anatomy(np.random.default_rng(s)).expiratory)
    normal = make_phantom(grade=0, rng=np.random.default_rng(seed), size=64, n_slices=12)
    sick = make_phantom(grade=2, rng=np.random.default_rng(seed), size=64, n_slices=12)
    assert sick.anatomy.expiratory
    rise = sick.data[sick.lesion_mask].astype(float) - normal.data[sick.lesion_mask]
    assert np.median(rise) > 40


def test_patterns_by_grade():
    rng = np.random.default_rng(0)
    mild = [sample_disease(rng, 1) for _ in range(30)]
    severe = [sample_disease(rng, 4) for _ in range(30)]
    assert all(d.pattern == "focal ground glass" and d.consolidation_fraction == 0 for d in mild)
    assert all(1 <= len(d.foci) <= 5 for d in mild)
    assert all(d.pattern == "diffuse ground glass with consolidation" for d in severe)
    assert all(d.consolidation_fraction >= 0.2 and d.confluence >= 0.8 for d in severe)
    # CT-1 has subtle studies: a few per cent of the lung or less
    assert sum(d.target_involvement < 0.05 for d in mild) >= 5
    middle = [sample_disease(rng, g) for g in (2, 3) for _ in range(40)]
    assert any(d.crazy_paving for d in middle) and not all(d.crazy_paving for d in middle)
    with pytest.raises(ValueError, match="grade"):
        sample_disease(rng, 0)


def test_ct1_lesions_are_peripheral():
    # distance of lesion voxels to the lung border against that of all lung voxels
    closer = []
    for seed in range(8):
        p = make_phantom(grade=1, rng=np.random.default_rng([seed, 1]), size=128)
        depth = ndimage.distance_transform_edt(p.lung_mask, sampling=p.info["spacing_mm"])
        closer.append(np.median(depth[p.lesion_mask]) < np.median(depth[p.lung_mask]))
        assert 1 <= p.info["n_lesions"] <= 12  # a few focal opacities
    assert sum(closer) >= 6  # "often": one large lesion of a mild study reaches deeper


def test_same_rng_state_same_phantom_and_different_seed_differs():
    a, b, c = _phantom(2, seed=7), _phantom(2, seed=7), _phantom(2, seed=8)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.lesion_mask, b.lesion_mask)
    assert a.info == b.info
    assert a.data.shape != c.data.shape or np.any(a.data != c.data)


def test_confounders_are_recorded_and_vary():
    infos = [make_phantom(rng=np.random.default_rng(s), size=32, n_slices=8).info for s in range(60)]
    conf = [i["confounders"] for i in infos]
    assert {c["kernel"] for c in conf} == set(phantoms.KERNELS)
    assert any(c["expiratory"] for c in conf) and not all(c["expiratory"] for c in conf)
    assert any(c["atelectasis_mm"] > 0 for c in conf) and any(c["contrast"] for c in conf)
    assert any(c["motion_mm"] > 0 for c in conf)
    expiratory = [c["lung_hu"] for c in conf if c["expiratory"]]
    inspiratory = [c["lung_hu"] for c in conf if not c["expiratory"]]
    assert max(inspiratory) < min(expiratory)  # expiratory lungs are diffusely denser


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"size": 16}, "size"),
        ({"size": 64.0}, "size"),
        ({"n_slices": 1}, "n_slices"),
        ({"rng": 0}, "rng"),
        ({"grade": 5}, "grade"),
        ({"grade": True}, "grade"),
    ],
)
def test_make_phantom_rejects_bad_arguments(kwargs, match):
    args = {"grade": 0, "rng": np.random.default_rng(0), "size": 64, "n_slices": 4}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        make_phantom(**args)


# --------------------------------------------------------------------------- realism


def test_hu_class_shares_resemble_the_real_chest_ct(real_ct):
    # Inside the body, so that the field of view does not count (data/real-ct is cropped to the
    # body). The first 12 normal studies of the default dataset (seed 0), as docs/phantoms.md
    # measures 100 of them with docs/make_phantom_figure.py.
    real = body_hu_histogram(np.asanyarray(nib.load(real_ct).dataobj))
    ours = [body_hu_histogram(make_phantom(grade=0, rng=np.random.default_rng([0, 0, i]),
                                           size=256).data) for i in range(1, 13)]
    mean = np.mean(ours, axis=0)
    for name, r, m in zip(HU_CLASSES, real, mean):
        assert abs(r - m) <= 0.03, (name, r, m)
    assert np.mean([js_distance(real, h) for h in ours]) <= 0.10


def test_body_mask_of_a_phantom_encloses_its_lungs():
    p = _phantom(seed=4, size=96, n_slices=12)
    body = body_mask(p.data)
    assert body[p.lung_mask].all()
    assert not body[0, 0, :].any()
