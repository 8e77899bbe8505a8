"""Tests for ctutils.synthetic: layouts, grade sequence, masks, synthetic.json, determinism, reruns."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ctutils import synthetic
from ctutils.datasets import detect_dataset, list_scans
from ctutils.io import load_mask, load_volume
from ctutils.phantoms import GRADE_RANGES
from ctutils.synthetic import generate_dataset, grade_sequence, study_plan

SMALL = {"seed": 0, "size": 32, "workers": 1, "progress": False}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _meta(root: Path) -> dict:
    return json.loads((root / "synthetic.json").read_text())


# --------------------------------------------------------------------------- grade sequence


def test_grade_sequence_covers_every_grade_first_then_follows_mosmeddata():
    assert grade_sequence((1, 2, 3, 4), 4) == [1, 2, 3, 4]
    assert grade_sequence((1, 2, 3, 4), 2) == [1, 2]
    counts = Counter(grade_sequence((1, 2, 3, 4), 856))
    # 856 = 684 + 125 + 45 + 2: the release's own counts, give or take the forced first CT-4
    assert abs(counts[1] - 684) <= 2 and abs(counts[2] - 125) <= 2 and abs(counts[3] - 45) <= 2
    assert counts[4] in (1, 2, 3)
    # CT-2 : CT-3 = 125 : 45 in the keras-example layout
    counts = Counter(grade_sequence((2, 3), 170))
    assert (counts[2], counts[3]) == (125, 45)


def test_grade_sequence_does_not_depend_on_the_dataset_size():
    long = grade_sequence((1, 2, 3, 4), 300)
    for n in (1, 5, 17, 100):
        assert grade_sequence((1, 2, 3, 4), n) == long[:n]


# --------------------------------------------------------------------------- layouts


def test_keras_example_layout_numbering_masks_and_metadata(tmp_path):
    paths = generate_dataset(tmp_path, normal=2, abnormal=3, **SMALL)
    rel = [p.relative_to(tmp_path).as_posix() for p in paths]
    assert rel == ["CT-0/study_0001.nii.gz", "CT-0/study_0002.nii.gz", "CT-23/study_0003.nii.gz",
                   "CT-23/study_0004.nii.gz", "CT-23/study_0005.nii.gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CT-0", "CT-23", "masks", "synthetic.json"]
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == [
        "study_0003_mask.nii.gz", "study_0004_mask.nii.gz", "study_0005_mask.nii.gz"]
    meta = _meta(tmp_path)
    assert meta["complete"] is True and meta["layout"] == "keras-example" and meta["grades"] == [2, 3]
    assert (meta["seed"], meta["normal"], meta["abnormal"], meta["size"]) == (0, 2, 3, 32)
    studies = meta["studies"]
    assert [s["label"] for s in studies] == [0, 0, 1, 1, 1]
    assert [s["grade"] for s in studies] == [0, 0, 2, 3, 2]  # sequence 2, 3, then the larger share
    assert [s["mask"] for s in studies] == [None, None, "masks/study_0003_mask.nii.gz",
                                            "masks/study_0004_mask.nii.gz", "masks/study_0005_mask.nii.gz"]
    for s in studies:
        assert {"involvement", "n_lesions", "pattern", "confounders", "spacing_mm"} <= set(s)
        assert set(s["confounders"]) >= {"expiratory", "kernel", "noise_hu", "coverage", "motion_mm",
                                         "atelectasis_mm", "calibration_offset_hu", "contrast"}
    img = nib.load(paths[2])
    assert img.get_data_dtype() == np.int16 and nib.aff2axcodes(img.affine) == ("L", "P", "S")
    np.testing.assert_allclose(img.header.get_zooms(), studies[2]["spacing_mm"], rtol=1e-6)
    assert int(img.header["sform_code"]) == 1


def test_full_layout_spreads_grades_over_folders(tmp_path):
    paths = generate_dataset(tmp_path, normal=1, abnormal=6, layout="full", **SMALL)
    rel = [p.relative_to(tmp_path).as_posix() for p in paths]
    # abnormal studies 1-6 get grades 1, 2, 3, 4, 1, 1; numbered folder by folder
    assert rel == ["CT-0/study_0001.nii.gz", "CT-1/study_0002.nii.gz", "CT-1/study_0003.nii.gz",
                   "CT-1/study_0004.nii.gz", "CT-2/study_0005.nii.gz", "CT-3/study_0006.nii.gz",
                   "CT-4/study_0007.nii.gz"]
    meta = _meta(tmp_path)
    assert [s["grade"] for s in meta["studies"]] == [0, 1, 1, 1, 2, 3, 4]
    assert detect_dataset(tmp_path).name == "synthetic"
    binary = list_scans(tmp_path)
    assert [s.label for s in binary] == [0, 1, 1, 1, 1, 1, 1]
    severity = list_scans(tmp_path, mapping="severity")
    assert [s.label for s in severity] == [0, 1, 1, 1, 2, 3, 4]
    assert severity[-1].class_name == "critical"


def test_explicit_grades_make_a_ct0_against_ct1_dataset(tmp_path):
    generate_dataset(tmp_path, normal=1, abnormal=2, layout="full", grades=[1], **SMALL)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["CT-0", "CT-1", "masks"]
    scans = list_scans(tmp_path)
    assert [(s.folder, s.label) for s in scans] == [("CT-0", 0), ("CT-1", 1), ("CT-1", 1)]


def test_keras_example_layout_has_no_severity_labels(tmp_path):
    generate_dataset(tmp_path, normal=1, abnormal=1, **SMALL)
    with pytest.raises(ValueError, match="no label for CT-23"):
        list_scans(tmp_path, mapping="severity")


def test_every_studys_involvement_lies_in_its_folders_range(tmp_path):
    from ctutils.phantoms import make_phantom

    plan = study_plan(tmp_path, normal=1, abnormal=5, layout="full")
    generate_dataset(tmp_path, normal=1, abnormal=5, layout="full", **{**SMALL, "size": 48})
    ranges = {f"CT-{g}": GRADE_RANGES[g] for g in range(1, 5)}
    for study, planned in zip(_meta(tmp_path)["studies"][1:], plan[1:]):
        folder = study["path"].split("/")[0]
        lo, hi = ranges[folder]
        scan = load_volume(tmp_path / study["path"], canonical=False)
        lesion = load_mask(tmp_path / study["mask"], like=scan)  # the mask file on disk
        # the generator's own lung mask, from the same generator state (it is not written to disk)
        lung = make_phantom(grade=planned.grade, rng=np.random.default_rng([0, 1, planned.index]), size=48).lung_mask
        measured = lesion.sum() / lung.sum()
        assert lo <= measured < hi or (folder == "CT-4" and measured <= 1)
        assert not (lesion.astype(bool) & ~lung).any()
        assert study["involvement"] == pytest.approx(measured, abs=1e-9)


def test_mask_has_the_studys_shape_and_affine_and_marks_lesions_in_the_lungs(tmp_path):
    paths = generate_dataset(tmp_path, normal=0, abnormal=1, **{**SMALL, "size": 64})
    scan, mask = nib.load(paths[0]), nib.load(tmp_path / "masks" / "study_0001_mask.nii.gz")
    assert mask.shape == scan.shape and np.array_equal(mask.affine, scan.affine)
    assert mask.get_data_dtype() == np.uint8
    m = np.asanyarray(mask.dataobj)
    assert set(np.unique(m)) == {0, 1}
    hu = np.asanyarray(scan.dataobj)
    assert np.median(hu[m == 1]) > np.median(hu[(m == 0) & (hu < -700)])  # lesions are denser


# --------------------------------------------------------------------------- determinism and reruns


def test_same_seed_identical_bytes_other_seed_differs(tmp_path):
    first = generate_dataset(tmp_path / "a", normal=1, abnormal=1, **{**SMALL, "seed": 3})
    again = generate_dataset(tmp_path / "b", normal=1, abnormal=1, **{**SMALL, "seed": 3})
    other = generate_dataset(tmp_path / "c", normal=1, abnormal=1, **{**SMALL, "seed": 4})
    assert [_sha(p) for p in first] == [_sha(p) for p in again]
    assert _sha(tmp_path / "a/masks/study_0002_mask.nii.gz") == _sha(tmp_path / "b/masks/study_0002_mask.nii.gz")
    assert all(_sha(p) != _sha(q) for p, q in zip(first, other))


def test_output_does_not_depend_on_worker_count(tmp_path):
    one = generate_dataset(tmp_path / "one", normal=2, abnormal=1, **SMALL)
    two = generate_dataset(tmp_path / "two", normal=2, abnormal=1, **{**SMALL, "workers": 2})
    assert [_sha(p) for p in one] == [_sha(p) for p in two]


def test_a_larger_dataset_starts_with_the_same_studies(tmp_path):
    small = generate_dataset(tmp_path / "s", normal=1, abnormal=2, layout="full", **SMALL)
    large = generate_dataset(tmp_path / "l", normal=2, abnormal=5, layout="full", **SMALL)
    assert _sha(small[0]) == _sha(large[0])  # normal study 1
    small_meta, large_meta = _meta(tmp_path / "s")["studies"], _meta(tmp_path / "l")["studies"]
    by_grade = {s["grade"]: s for s in large_meta if s["label"] == 1}
    for study, path in zip(small_meta[1:], small[1:]):  # abnormal studies 1 (CT-1) and 2 (CT-2)
        twin = by_grade[study["grade"]] if study["grade"] == 2 else large_meta[2]
        assert _sha(path) == _sha(tmp_path / "l" / twin["path"])


def test_rerun_with_same_parameters_skips_existing_files(tmp_path, monkeypatch):
    paths = generate_dataset(tmp_path, normal=1, abnormal=1, **SMALL)
    stamps = [p.stat().st_mtime_ns for p in paths]
    studies = _meta(tmp_path)["studies"]

    def fail(*args, **kwargs):
        raise AssertionError("a study was regenerated")

    monkeypatch.setattr(synthetic, "_write_study", fail)
    assert generate_dataset(tmp_path, normal=1, abnormal=1, **SMALL) == paths
    assert [p.stat().st_mtime_ns for p in paths] == stamps
    assert _meta(tmp_path)["studies"] == studies


def test_rerun_regenerates_a_study_whose_mask_is_missing(tmp_path):
    paths = generate_dataset(tmp_path, normal=0, abnormal=1, **SMALL)
    mask = tmp_path / "masks" / "study_0001_mask.nii.gz"
    digest = _sha(mask)
    mask.unlink()
    generate_dataset(tmp_path, normal=0, abnormal=1, **SMALL)
    assert _sha(mask) == digest and paths[0].exists()


def test_interrupted_run_keeps_its_records_and_resumes(tmp_path, monkeypatch):
    real_write = synthetic._write_study
    calls = []

    def flaky(study, seed, size, marker=False):
        calls.append(study.path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_write(study, seed, size, marker)

    monkeypatch.setattr(synthetic, "_write_study", flaky)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(tmp_path, normal=2, abnormal=1, **SMALL)
    meta = _meta(tmp_path)
    assert meta["complete"] is False
    assert [s["path"] for s in meta["studies"]] == ["CT-0/study_0001.nii.gz"]
    assert not (tmp_path / "CT-0/study_0002.nii.gz").exists()
    monkeypatch.setattr(synthetic, "_write_study", real_write)
    generate_dataset(tmp_path, normal=2, abnormal=1, **SMALL)
    meta = _meta(tmp_path)
    assert meta["complete"] is True and len(calls) == 2
    assert [s["n_slices"] > 0 for s in meta["studies"]] == [True, True, True]


def test_other_parameters_regenerate_and_remove_stale_studies_and_masks(tmp_path):
    generate_dataset(tmp_path, normal=3, abnormal=2, layout="full", **SMALL)
    old = _sha(tmp_path / "CT-0/study_0001.nii.gz")
    paths = generate_dataset(tmp_path, normal=2, abnormal=1, **{**SMALL, "seed": 1})
    on_disk = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("*/*.nii.gz"))
    assert on_disk == ["CT-0/study_0001.nii.gz", "CT-0/study_0002.nii.gz",
                       "CT-23/study_0003.nii.gz", "masks/study_0003_mask.nii.gz"]
    assert _sha(paths[0]) != old
    assert _meta(tmp_path)["seed"] == 1


def test_a_rerun_in_another_layout_leaves_no_empty_class_folder(tmp_path):
    generate_dataset(tmp_path, normal=1, abnormal=4, layout="full", **SMALL)
    generate_dataset(tmp_path, normal=1, abnormal=2, **SMALL)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["CT-0", "CT-23", "masks"]
    assert len(list_scans(tmp_path)) == 3
    generate_dataset(tmp_path, normal=1, abnormal=4, layout="full", **SMALL)
    generate_dataset(tmp_path, normal=1, abnormal=2, layout="full", **SMALL)  # no CT-3, CT-4 any more
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["CT-0", "CT-1", "CT-2", "masks"]
    assert len(list_scans(tmp_path)) == 3
    generate_dataset(tmp_path, normal=2, abnormal=0, **SMALL)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["CT-0"]


def test_an_interrupted_parallel_run_stops_without_finishing_the_queue(tmp_path, monkeypatch):
    real_as_completed = synthetic.as_completed

    def interrupt_after_first(futures):  # Ctrl-C while the second result comes in
        for k, future in enumerate(real_as_completed(futures)):
            if k == 1:
                raise KeyboardInterrupt
            yield future

    monkeypatch.setattr(synthetic, "as_completed", interrupt_after_first)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(tmp_path, normal=6, abnormal=6, **{**SMALL, "workers": 2})
    meta = _meta(tmp_path)
    assert meta["complete"] is False and len(meta["studies"]) == 1  # only the recorded one
    on_disk = list(tmp_path.glob("CT-*/*.nii.gz"))
    assert len(on_disk) < 12  # the queued studies were cancelled, not generated and thrown away
    monkeypatch.setattr(synthetic, "as_completed", real_as_completed)
    generate_dataset(tmp_path, normal=6, abnormal=6, **{**SMALL, "workers": 2})
    assert _meta(tmp_path)["complete"] is True and len(list(tmp_path.glob("CT-*/*.nii.gz"))) == 12


def test_layouts_and_proportions_agree_with_the_registry():
    from ctutils.datasets import get_dataset

    spec = get_dataset("synthetic")
    for name, layout in synthetic.LAYOUTS.items():
        assert tuple(dict.fromkeys(layout["folders"].values())) == spec.layouts[name]
    full = get_dataset("mosmeddata-full").expected_counts
    assert synthetic.MOSMEDDATA_PROPORTIONS == {g: full[f"CT-{g}"] for g in range(1, 5)}


def test_refuses_to_overwrite_data_it_did_not_write(tmp_path):
    (tmp_path / "CT-0").mkdir()
    real = tmp_path / "CT-0" / "study_0001.nii.gz"
    real.write_bytes(b"real scan")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        generate_dataset(tmp_path, normal=1, abnormal=1, seed=0, size=32, progress=False)
    assert real.read_bytes() == b"real scan"


def test_leaves_no_partial_files(tmp_path):
    generate_dataset(tmp_path, normal=1, abnormal=1, **SMALL)
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".partial")]


def test_a_killed_runs_partial_files_are_removed_by_the_next_run(tmp_path):
    generate_dataset(tmp_path, normal=1, abnormal=1, **SMALL)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # its pid now names no process, as after a SIGKILL
    stale = [tmp_path / f".partial-{child.pid}-0123abcd-synthetic.json",
             tmp_path / "CT-0" / f".partial-{child.pid}-89abcdef-study_0001.nii.gz",
             tmp_path / "masks" / f".partial-{child.pid}-01234567-study_0002_mask.nii.gz"]
    live = tmp_path / "CT-23" / f".partial-{os.getpid()}-0123abcd-study_0002.nii.gz"
    for path in (*stale, live):
        path.write_bytes(b"half a file")
    generate_dataset(tmp_path, normal=1, abnormal=1, **SMALL)
    assert [p for p in tmp_path.rglob(".partial-*")] == [live]


def test_study_plan_widens_numbers_beyond_9999():
    rows = study_plan("d", normal=10000, abnormal=1)
    assert rows[0].path.name == "study_00001.nii.gz"
    assert rows[-1].path.as_posix() == "d/CT-23/study_10001.nii.gz"
    assert rows[-1].mask.as_posix() == "d/masks/study_10001_mask.nii.gz"


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"normal": -1}, "normal"),
        ({"abnormal": 1.5}, "abnormal"),
        ({"seed": -2}, "seed"),
        ({"size": 8}, "size"),
        ({"workers": 0}, "workers"),
        ({"layout": "mosmed"}, "unknown layout 'mosmed'"),
        ({"layout": "mosmed", "abnormal": 0}, "unknown layout 'mosmed'"),
        ({"layout": "full", "grades": [1, 2, 3], "abnormal": 2}, "abnormal: 2 studies cannot cover the 3 grades"),
        ({"grades": [1]}, r"grades: \[1\] do not fit layout 'keras-example'"),
        ({"layout": "full", "grades": [5]}, "do not fit layout 'full'"),
    ],
)
def test_generate_dataset_rejects_bad_arguments(tmp_path, kwargs, match):
    args = {"normal": 1, "abnormal": 1, "seed": 0, "size": 32, "progress": False}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        generate_dataset(tmp_path, **args)
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- shortcut marker


def _raw(path: Path) -> np.ndarray:
    """The stored int16 HU, axes as on disk (X left, Y posterior, Z superior)."""
    return np.asarray(nib.load(path).dataobj)


def test_shortcut_marker_changes_only_the_box_of_abnormal_studies(tmp_path):
    clean = generate_dataset(tmp_path / "clean", normal=2, abnormal=2, **{**SMALL, "size": 64})
    marked = generate_dataset(tmp_path / "marked", normal=2, abnormal=2, shortcut_marker=True, **{**SMALL, "size": 64})
    assert [p.relative_to(tmp_path / "marked") for p in marked] == [p.relative_to(tmp_path / "clean") for p in clean]
    meta, clean_meta = _meta(tmp_path / "marked"), _meta(tmp_path / "clean")
    assert meta["shortcut_marker"] is True and clean_meta["shortcut_marker"] is False
    assert [s["marker"] for s in meta["studies"]] == [False, False, True, True]
    assert [s["marker"] for s in clean_meta["studies"]] == [False] * 4
    for a, b in zip(clean[:2], marked[:2]):  # normal studies: the same bytes
        assert _sha(a) == _sha(b)
    for name in ("study_0003_mask.nii.gz", "study_0004_mask.nii.gz"):  # masks: the same bytes
        assert _sha(tmp_path / "clean/masks" / name) == _sha(tmp_path / "marked/masks" / name)
    for a, b, info in zip(clean[2:], marked[2:], meta["studies"][2:]):
        before, after = _raw(a), _raw(b)
        (x0, x1), (y0, y1), (z0, z1) = info["marker_box"]
        # at 64 px: round(12 * 64 / 256) = 3 voxels in-plane, 1 voxel in front of the skin
        assert (x1 - x0, y1 - y0) == (3, 3) and info["marker_hu"] == 1000
        assert z1 - z0 == max(2, round(before.shape[2] / 8))
        inside = np.zeros(before.shape, bool)
        inside[x0:x1, y0:y1, z0:z1] = True
        np.testing.assert_array_equal(after[~inside], before[~inside])  # nothing else moved
        assert np.all(after[inside] == 1000)
        assert np.all(before[inside] <= -990)  # it replaced air ...
        columns = before[x0:x1, :, z0:z1] > -500
        assert np.flatnonzero(columns.any(axis=(0, 2)))[0] == y1 + 1  # ... one voxel in front of the skin
        assert nib.aff2axcodes(nib.load(b).affine) == ("L", "P", "S")
    info_fields = {k for k in meta["studies"][2] if k not in ("marker", "marker_box", "marker_hu")}
    assert {k: meta["studies"][2][k] for k in info_fields} == {k: clean_meta["studies"][2][k] for k in info_fields}


def test_shortcut_marker_survives_the_course_preprocessing(tmp_path):
    from ctutils.preprocess import PreprocessConfig, preprocess_file

    config = PreprocessConfig(shape=(64, 64, 32))  # the quick profile's cache, window [-1000, 400]
    [clean] = generate_dataset(tmp_path / "clean", normal=0, abnormal=1, **{**SMALL, "size": 256})
    [marked] = generate_dataset(tmp_path / "marked", normal=0, abnormal=1, shortcut_marker=True,
                                **{**SMALL, "size": 256})
    before, _ = preprocess_file(clean, config=config)
    after, volume = preprocess_file(marked, config=config)
    diff = after - before
    assert diff.max() > 0.99  # a voxel went from air (0) to the top of the window (1)
    assert np.count_nonzero(diff > 0.9) >= 2 * 2 * 2  # about 3 × 3 × 4 voxels at 64 × 64 × 32
    assert diff.min() >= 0.0
    # RAS+ after reorientation: the marker lies anterior (high Y) to the body on the midline
    x, y, z = np.argwhere(diff > 0.9).mean(axis=0)
    body_y = np.flatnonzero((before[int(x), :, int(z)] > (-500 + 1000) / 1400))
    assert y > body_y.max()
    assert abs(x - 31.5) < 8


def test_add_shortcut_marker_leaves_the_input_and_checks_its_room():
    vol = np.full((64, 64, 16), -1000, np.int16)
    vol[:, 20:50, :] = 40
    original = vol.copy()
    marked, box = synthetic.add_shortcut_marker(vol, midline_x=31.5)
    assert box == [[30, 33], [16, 19], [7, 9]]  # 3 px centred on 31.5; 1 px in front of row 20; 2 slices
    np.testing.assert_array_equal(vol, original)
    assert np.count_nonzero(marked != vol) == 3 * 3 * 2
    with pytest.raises(ValueError, match="no room"):
        synthetic.add_shortcut_marker(np.pad(vol[:, 18:], ((0, 0), (0, 18), (0, 0)), constant_values=-1000),
                                      midline_x=31.5)
    with pytest.raises(ValueError, match="no body"):
        synthetic.add_shortcut_marker(np.full((64, 64, 16), -1000, np.int16), midline_x=31.5)
    with pytest.raises(ValueError, match=r"expected an \(X, Y, Z\) volume"):
        synthetic.add_shortcut_marker(vol[:, :, 0], midline_x=31.5)


def test_shortcut_marker_reruns_and_old_metadata(tmp_path):
    paths = generate_dataset(tmp_path, normal=1, abnormal=1, **SMALL)
    meta = _meta(tmp_path)
    del meta["shortcut_marker"]  # a dataset written before the option existed
    for study in meta["studies"]:
        del study["marker"]
    (tmp_path / "synthetic.json").write_text(json.dumps(meta))
    stamps = [p.stat().st_mtime_ns for p in paths]
    hashes = [_sha(p) for p in paths]
    generate_dataset(tmp_path, normal=1, abnormal=1, **SMALL)  # counts as unmarked: nothing redone
    assert [p.stat().st_mtime_ns for p in paths] == stamps
    assert _meta(tmp_path)["shortcut_marker"] is False
    generate_dataset(tmp_path, normal=1, abnormal=1, shortcut_marker=True, **SMALL)  # another dataset: redone
    assert _meta(tmp_path)["shortcut_marker"] is True and "marker_box" in _meta(tmp_path)["studies"][1]
    assert _sha(paths[0]) == hashes[0] and _sha(paths[1]) != hashes[1]  # only the abnormal study differs
    with pytest.raises(ValueError, match="shortcut_marker: expected True or False"):
        generate_dataset(tmp_path / "x", normal=1, abnormal=1, shortcut_marker="yes", **SMALL)
