"""Tests for ctutils.baseline: lung mask, ground-glass fraction, one-feature threshold rule."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from ctutils.baseline import (
    body_mask,
    dataset_features,
    fit_threshold,
    ggo_fraction,
    holdout_accuracy,
    hu_from_windowed,
    lung_mask,
    predict_with_threshold,
)
from ctutils.phantoms import make_phantom
from ctutils.synthetic import generate_dataset


def _toy_chest() -> np.ndarray:
    """20 x 20 x 3: air border, soft-tissue body, one 8 x 8 lung with a 2 x 2 lesion inside and a
    2 x 2 lesion on its edge (touching the wall)."""
    vol = np.full((20, 20, 3), -1000.0, dtype=np.float32)
    vol[2:18, 2:18, :] = 40.0  # body
    vol[6:14, 6:14, :] = -850.0  # lung: 64 voxels per slice
    vol[9:11, 9:11, :] = -600.0  # ground glass surrounded by lung: 4 per slice
    vol[6:8, 12:14, :] = -200.0  # dense opacity at the lung's corner: 4 per slice
    return vol


# --------------------------------------------------------------------------- lung_mask


def test_lung_mask_excludes_outside_air_and_fills_enclosed_lesions():
    vol = _toy_chest()
    mask = lung_mask(vol, closing_iterations=0)
    assert mask.dtype == bool and mask.shape == vol.shape
    assert not mask[0].any() and not mask[:, :2].any()  # air around the body
    assert mask[9:11, 9:11].all()  # enclosed lesion filled
    assert not mask[6:8, 12:14].any()  # a dense corner lesion is not air, and not enclosed
    assert int(mask.sum()) == (64 - 4) * 3


def test_lung_mask_closing_recovers_a_dense_band_from_the_wall():
    vol = np.full((20, 20, 3), -1000.0, dtype=np.float32)
    vol[2:18, 2:18, :] = 40.0
    vol[6:14, 6:14, :] = -850.0
    vol[6:11, 9, :] = -200.0  # 5-voxel dense band running in from the chest wall
    assert int(lung_mask(vol, closing_iterations=0).sum()) == (64 - 5) * 3
    closed = lung_mask(vol, closing_iterations=1)
    assert closed[7:11, 9].all()  # recovered ...
    assert not closed[6, 9].any()  # ... except where it touches the wall: a flat border
    assert int(closed.sum()) == 63 * 3  # and nothing leaks into the wall


def test_lung_mask_default_closing_and_input_untouched():
    vol = _toy_chest()
    before = vol.copy()
    lung_mask(vol)
    np.testing.assert_array_equal(vol, before)


def test_lung_mask_keeps_slices_independent_at_the_z_ends():
    vol = _toy_chest()
    mask = lung_mask(vol, closing_iterations=0)
    assert mask[:, :, 0].sum() == mask[:, :, 2].sum() == 60  # first and last slice filled too


def test_lung_mask_rejects_non_3d():
    with pytest.raises(ValueError, match="3-D"):
        lung_mask(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="closing_iterations"):
        lung_mask(np.zeros((4, 4, 2)), closing_iterations=-1)


# --------------------------------------------------------------------------- body_mask


def test_body_mask_is_the_body_with_its_lungs_not_the_table():
    vol = _toy_chest()
    vol[:, 19, :] = 40.0  # a "table" along one border, separated from the body by air
    before = vol.copy()
    mask = body_mask(vol)
    np.testing.assert_array_equal(vol, before)
    assert mask.dtype == bool and mask.shape == vol.shape
    assert mask[2:18, 2:18].all()  # wall, lung (-850 HU) and lesions: 16 x 16 per slice
    assert int(mask.sum()) == 16 * 16 * 3  # nothing else: not the air, not the table
    assert mask[:, :, 0].sum() == mask[:, :, 2].sum() == 256  # first and last slice filled too


def test_body_mask_of_pure_air_is_empty_and_bad_input_is_named():
    assert not body_mask(np.full((4, 4, 2), -1000.0)).any()
    with pytest.raises(ValueError, match="3-D"):
        body_mask(np.zeros((4, 4)))


# --------------------------------------------------------------------------- ggo_fraction


def test_ggo_fraction_hand_computed_block():
    vol = np.full((10, 10, 4), -850.0)
    vol[:2, :5, :2] = -600.0  # 20 voxels in range
    vol[9, 9, :] = -200.0  # 4 voxels above the range
    vol[8, 9, :] = -900.0  # below the range
    assert ggo_fraction(vol, lung=np.ones(vol.shape, dtype=bool)) == pytest.approx(20 / 400)


def test_ggo_fraction_bounds_are_inclusive_and_mask_restricts():
    vol = np.array([-751.0, -750.0, -300.0, -299.0]).reshape(2, 2, 1)
    lung = np.ones(vol.shape, dtype=bool)
    assert ggo_fraction(vol, lung=lung) == 0.5
    lung[0, 0, 0] = False
    assert ggo_fraction(vol, lung=lung) == pytest.approx(2 / 3)
    assert ggo_fraction(vol, lung=lung, hu_low=-760, hu_high=-740) == pytest.approx(1 / 3)


def test_ggo_fraction_with_computed_mask():
    vol = _toy_chest()
    lung = lung_mask(vol, closing_iterations=0)
    assert ggo_fraction(vol, lung=lung) == pytest.approx(4 / 60)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lung": np.ones((2, 2, 2), dtype=bool)}, "does not match"),
        ({"lung": np.zeros((3, 3, 2), dtype=bool)}, "empty"),
        ({"hu_low": -300, "hu_high": -750}, "below"),
    ],
)
def test_ggo_fraction_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ggo_fraction(np.zeros((3, 3, 2)), **kwargs)


def test_ggo_fraction_higher_for_abnormal_phantom_of_same_anatomy():
    normal = make_phantom(grade=0, rng=np.random.default_rng(11), size=96, n_slices=16).data
    abnormal = make_phantom(grade=2, rng=np.random.default_rng(11), size=96, n_slices=16).data
    assert ggo_fraction(abnormal) > ggo_fraction(normal)


def test_ggo_fraction_of_the_real_ct_is_plausible(real_ct):
    # Every second voxel in-plane: 2.28 mm, as [::4, ::4] was on the 512 x 512 original.
    hu = np.asanyarray(nib.load(real_ct).dataobj)[::2, ::2, :].astype(np.float32)
    lung = lung_mask(hu)
    assert 0.08 < lung.mean() < 0.25  # 18 % of the body-cropped volume (14 % of the uncropped scan)
    assert 0.02 < ggo_fraction(hu, lung=lung) < 0.3


# --------------------------------------------------------------------------- windowing


def test_hu_from_windowed_inverts_the_course_window():
    x = np.array([[[0.0, 0.25, 1.0]]], dtype=np.float32)
    before = x.copy()
    out = hu_from_windowed(x)
    np.testing.assert_allclose(out, [[[-1000.0, -650.0, 400.0]]])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(hu_from_windowed(np.array([0.5]), hu_min=-1350, hu_max=150), [-600])


def test_hu_from_windowed_rejects_unwindowed_input():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        hu_from_windowed(np.array([-850.0]))
    with pytest.raises(ValueError, match="below"):
        hu_from_windowed(np.array([0.5]), hu_min=400, hu_max=-1000)


def test_ggo_fraction_on_windowed_volume_matches_hu():
    vol = np.full((10, 10, 4), -850.0)
    vol[:2, :5, :2] = -600.0
    x = (vol + 1000.0) / 1400.0
    lung = np.ones(vol.shape, dtype=bool)
    assert ggo_fraction(hu_from_windowed(x), lung=lung) == pytest.approx(0.05)


# --------------------------------------------------------------------------- threshold rule


def test_fit_threshold_separable():
    assert fit_threshold([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1]) == pytest.approx(0.25)
    shuffled = fit_threshold(np.array([0.4, 0.1, 0.3, 0.2]), np.array([1, 0, 1, 0]))
    assert shuffled == pytest.approx(0.25)


def test_fit_threshold_best_accuracy_with_overlap():
    # sorted: 0.1(0) 0.2(1) 0.3(0) 0.4(1) 0.5(1): thresholds 0.15 and 0.35 both make one error;
    # the smaller one wins
    assert fit_threshold([0.1, 0.3, 0.2, 0.4, 0.5], [0, 0, 1, 1, 1]) == pytest.approx(0.15)


def test_fit_threshold_extremes_and_ties():
    # everything abnormal is best: threshold just below the minimum
    thr = fit_threshold([0.5, 0.5, 0.7], [1, 1, 0])
    assert thr < 0.5 and np.all(predict_with_threshold([0.5, 0.7], threshold=thr) == 1)
    # tied feature values cannot be split
    assert fit_threshold([0.2, 0.2, 0.2, 0.9], [0, 1, 0, 1]) == pytest.approx(0.55)


def test_fit_threshold_youden_differs_from_accuracy_under_imbalance():
    features = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.65, 0.7]
    labels = [0, 0, 0, 0, 1, 0, 0, 1]
    # accuracy: 0.675 -> 7/8 right (J = 0.5); Youden: 0.45 -> sensitivity 1, specificity 4/6
    # (J = 0.67, accuracy 6/8)
    assert fit_threshold(features, labels) == pytest.approx(0.675)
    assert fit_threshold(features, labels, criterion="youden") == pytest.approx(0.45)


@pytest.mark.parametrize(
    "features, labels, kwargs, match",
    [
        ([0.1, 0.2], [0, 0], {}, "both classes"),
        ([0.1, 0.2], [0, 2], {}, "0 and 1"),
        ([0.1, 0.2, 0.3], [0, 1], {}, "does not match"),
        ([0.1, np.nan], [0, 1], {}, "NaN"),
        ([], [], {}, "non-empty"),
        ([0.1, 0.2], [0, 1], {"criterion": "f1"}, "criterion"),
    ],
)
def test_fit_threshold_rejects_bad_input(features, labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_threshold(features, labels, **kwargs)


def test_predict_with_threshold_is_strictly_greater():
    predicted = predict_with_threshold([0.1, 0.25, 0.3], threshold=0.25)
    np.testing.assert_array_equal(predicted, [0, 0, 1])


def test_holdout_accuracy_is_stratified_and_seeded():
    features = np.r_[np.linspace(0.0, 0.4, 10), np.linspace(0.3, 0.7, 10)]
    labels = np.r_[np.zeros(10, int), np.ones(10, int)]
    a = holdout_accuracy(features, labels, seed=1)
    assert a == holdout_accuracy(features, labels, seed=1)
    assert (a["n_train"], a["n_test"]) == (14, 6)
    assert 0.5 <= a["test_accuracy"] <= 1.0
    with pytest.raises(ValueError, match="test_fraction"):
        holdout_accuracy(features, labels, test_fraction=1.0)
    with pytest.raises(ValueError, match="at least 2"):
        holdout_accuracy([0.1, 0.2, 0.3], [0, 0, 1])


def test_dataset_features_on_a_tiny_generated_dataset(tmp_path):
    generate_dataset(tmp_path, normal=2, abnormal=2, seed=0, size=64, workers=1, progress=False)
    features, labels, paths = dataset_features(tmp_path, workers=1, progress=False)
    np.testing.assert_array_equal(labels, [0, 0, 1, 1])
    assert [p.parent.name for p in paths] == ["CT-0", "CT-0", "CT-23", "CT-23"]
    assert np.all((features > 0) & (features < 1))
    with pytest.raises(ValueError, match="CT-0"):
        dataset_features(tmp_path / "CT-0", workers=1, progress=False)



def test_dataset_features_lists_scans_as_datasets_does(tmp_path):
    """Hidden half-written files are skipped; a non-binary label mapping is refused."""
    generate_dataset(tmp_path, normal=2, abnormal=2, seed=0, size=64, workers=1, progress=False, layout="full")
    first = sorted((tmp_path / "CT-0").glob("*.nii.gz"))[0]
    (tmp_path / "CT-0" / f".partial-1-{first.name}").write_bytes(b"half a file")
    features, labels, paths = dataset_features(tmp_path, workers=1, progress=False)
    assert len(paths) == 4 and not any(p.name.startswith(".") for p in paths)
    assert labels.tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="binary label mapping"):
        dataset_features(tmp_path, workers=1, progress=False, mapping="severity")


def test_cli_baseline(tmp_path, capsys):
    from ctutils.cli import main

    generate_dataset(tmp_path, normal=4, abnormal=4, seed=0, size=64, workers=1, progress=False)
    assert main(["baseline", str(tmp_path), "--workers", "1", "--repeats", "3"]) == 0
    out = capsys.readouterr().out
    assert "class 0: n=4" in out and "class 1: n=4" in out
    assert "seed 0: threshold" in out and "3 random 70/30 splits" in out
    assert main(["baseline", str(tmp_path / "missing")]) == 2


def _toy_cache(root):
    """12 toy chests in a cache, 8 train + 4 test; abnormal ones have 2 + k // 2 GGO voxels per slice."""
    from ctutils.cache import write_cache
    from ctutils.intensity import window_hu
    from ctutils.preprocess import PreprocessConfig

    volumes, labels = [], []
    for k in range(12):
        vol = _toy_chest()
        vol[9:11, 9:11, :] = -850.0  # no ground glass in a normal lung
        abnormal = k % 2
        if abnormal:  # ground glass (-500 HU) in 2 + k // 2 voxels of the lung, per slice
            vol[8, 6 : 8 + k // 2, :] = -500.0
        volumes.append(window_hu(vol))
        labels.append(abnormal)
    splits = ["train"] * 8 + ["test"] * 4
    return write_cache(root, np.stack(volumes), labels, splits=splits, config=PreprocessConfig(shape=(20, 20, 3)))


def test_evaluate_baseline_on_a_cache_fits_on_train_and_scores_the_split(tmp_path):
    from ctutils.baseline import cache_features, evaluate_baseline

    cache = _toy_cache(tmp_path / "cache")
    features = cache_features(cache, "test")
    assert features.shape == (4,)
    # The features are the GGO fractions of the volumes mapped back to HU.
    expected = [ggo_fraction(hu_from_windowed(np.asarray(cache.volumes[i]))) for i in cache.indices("test")]
    np.testing.assert_allclose(features, expected)
    result = evaluate_baseline(tmp_path / "cache", split="test", n_boot=50)
    assert result["n"] == 4 and result["split"] == "test"
    # Normal toy chests have no GGO voxel, abnormal ones some: fitted on train, the rule is perfect.
    assert result["metrics"]["accuracy"]["value"] == 1.0
    assert result["metrics"]["roc_auc"]["value"] == 1.0
    assert 0.0 <= result["threshold"] < min(features[features > 0])
    # The per-scan scores come back in split order, for a paired comparison with a model.
    assert result["y_true"] == list(cache.labels("test"))
    np.testing.assert_allclose(result["scores"], features)


def _save_mean_model(run, cache, *, weight, bias):
    """A saved run whose model says P(abnormal) = sigmoid(weight · mean(volume) + bias)."""
    import json

    keras = pytest.importorskip("keras")
    inputs = keras.Input((20, 20, 3, 1))
    x = keras.layers.GlobalAveragePooling3D()(inputs)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="head")(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("head").set_weights([np.array([[weight]], np.float32), np.array([bias], np.float32)])
    run.mkdir()
    model.save(run / "model.keras")
    record = cache.config.to_dict() | {"class_names": ["normal", "abnormal"], "input_shape": [20, 20, 3, 1]}
    (run / "preprocess.json").write_text(json.dumps(record))
    return run / "model.keras"


def test_cli_evaluate_with_baseline_reports_the_paired_difference(tmp_path, capsys):
    """``evaluate --baseline`` pairs the model's and the baseline's scores scan by scan."""
    import json

    from ctutils.baseline import evaluate_baseline
    from ctutils.cli import main
    from ctutils.evaluation import compare_auc

    cache = _toy_cache(tmp_path / "cache")
    x = np.asarray(cache.volumes[cache.indices("test")], np.float64).mean(axis=(1, 2, 3))
    # A model that ranks the test scans *against* their mean intensity (more ground glass raises the
    # mean): its scores differ from scan to scan, so a pairing in the wrong order would change the result.
    model = _save_mean_model(tmp_path / "run", cache, weight=-400.0, bias=float(400.0 * x.mean()))
    args = ["evaluate", "--cache", str(cache.root), "--model", str(model), "--baseline", "--n-boot", "60"]
    assert main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # the two normal test chests are identical; the two abnormal ones differ
    assert len(set(np.round(result["y_prob"], 6))) == 3
    np.testing.assert_allclose(result["y_prob"], 1 / (1 + np.exp(400.0 * (x - x.mean()))), rtol=1e-4)
    base = evaluate_baseline(cache.root, split="test", n_boot=60)
    assert result["baseline"]["paths"] == result["paths"] == [str(p) for p in cache.paths("test")]
    expected = compare_auc(result["y_true"], result["y_prob"], base["scores"], n_boot=60, seed=0)
    assert result["comparison"] == pytest.approx(expected)
    # The baseline is perfect on the toy chests (AUC 1); the inverted model is perfectly wrong (AUC 0).
    assert (expected["auc_a"], expected["auc_b"], expected["diff"]) == (0.0, 1.0, -1.0)
    assert expected["p_not_better"] == 1.0
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "CNN - baseline ROC-AUC: -1.000" in text
    assert "does not beat the baseline in 100.0 % of resamples" in text


def test_cli_evaluate_refuses_to_pair_scans_in_different_orders(tmp_path, capsys, monkeypatch):
    import ctutils.baseline
    from ctutils.cli import main

    cache = _toy_cache(tmp_path / "cache")
    model = _save_mean_model(tmp_path / "run", cache, weight=1.0, bias=0.0)
    real = ctutils.baseline.evaluate_baseline

    def reversed_order(*args, **kwargs):
        out = real(*args, **kwargs)
        return out | {key: out[key][::-1] for key in ("y_true", "scores", "paths")}

    monkeypatch.setattr(ctutils.baseline, "evaluate_baseline", reversed_order)
    args = ["evaluate", "--cache", str(cache.root), "--model", str(model), "--baseline", "--n-boot", "20"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert str(cache.root) in err and "scans of split 'test' differ" in err
