"""Tests for ctutils.evaluation: hand-computed metrics, bootstrap, thresholds, calibration, CV."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_auc_score

from ctutils.evaluation import (
    METRIC_NAMES,
    _threshold_metrics_from_counts,
    apply_temperature,
    binary_metrics,
    bootstrap_ci,
    calibration,
    choose_threshold,
    compare_auc,
    conclude_comparisons,
    cross_validate,
    describe_auc,
    describe_calibration,
    describe_difference,
    fit_temperature,
    format_cv,
    format_report,
    metrics_with_ci,
    most_confident_mistakes,
)

# Eight hand-made predictions (5 normal, 3 abnormal).
#   index      0    1    2    3    4    5    6    7
Y = np.array([0, 0, 0, 0, 0, 1, 1, 1])
P = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.4, 0.8, 0.9])
# At threshold 0.5 the calls are 0 0 0 1 1 | 0 1 1:
#   TN = 3 (0.1, 0.2, 0.3), FP = 2 (0.6, 0.7), FN = 1 (0.4), TP = 2 (0.8, 0.9)
#   accuracy = (3 + 2) / 8 = 0.625, sensitivity = 2 / 3, specificity = 3 / 5,
#   precision = 2 / (2 + 2) = 0.5, F1 = 2·2 / (2·2 + 2 + 1) = 4 / 7.
# ROC-AUC: of the 3 × 5 (positive, negative) pairs, 0.4 beats 3 negatives, 0.8 and 0.9 beat all
#   5 → 13 / 15.
# Average precision: ranked 0.9(+) 0.8(+) 0.7 0.6 0.4(+) …; recall steps of 1/3 at precisions
#   1, 1 and 3/5 → (1 + 1 + 3/5) / 3 = 13 / 15.
EXPECTED = {
    "accuracy": 0.625,
    "sensitivity": 2 / 3,
    "specificity": 0.6,
    "precision": 0.5,
    "f1": 4 / 7,
    "roc_auc": 13 / 15,
    "average_precision": 13 / 15,
}


def test_binary_metrics_hand_computed():
    m = binary_metrics(Y, P)
    for name, value in EXPECTED.items():
        assert m[name] == pytest.approx(value), name
    assert m["confusion_matrix"] == [[3, 2], [1, 2]]
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (3, 2, 1, 2)
    assert (m["n"], m["n_positive"], m["threshold"]) == (8, 3, 0.5)
    json.dumps(m)  # plain Python types


def test_threshold_is_inclusive_and_moves_the_calls():
    # y_prob == threshold counts as abnormal: at 0.4 index 5 (p = 0.4) turns from FN into TP;
    # the other calls do not change → TN 3, FP 2, FN 0, TP 3.
    m = binary_metrics(Y, P, threshold=0.4)
    assert m["confusion_matrix"] == [[3, 2], [0, 3]]
    assert m["sensitivity"] == 1.0
    # ranking metrics do not depend on the threshold
    assert m["roc_auc"] == pytest.approx(13 / 15)


def test_undefined_metrics_are_nan():
    m = binary_metrics([0, 0, 0], [0.1, 0.2, 0.3])  # no abnormal scan, no positive call
    assert m["specificity"] == 1.0 and m["accuracy"] == 1.0
    for name in ("sensitivity", "precision", "f1", "roc_auc", "average_precision"):
        assert math.isnan(m[name]), name


def test_count_formulas_match_sklearn():
    from_counts = _threshold_metrics_from_counts(3, 2, 1, 2)
    for name, value in from_counts.items():
        assert float(value) == pytest.approx(EXPECTED[name]), name


@pytest.mark.parametrize(
    ("y_true", "y_prob", "match"),
    [
        ([0, 1], [0.5], "same length"),
        ([], [], "empty"),
        ([0, 2], [0.1, 0.2], "only 0"),
        ([0, 1], [0.1, 1.5], r"\[0, 1\]"),
        ([0, 1], [0.1, float("nan")], "NaN"),
        ([[0, 1]], [[0.1, 0.2]], "1-D"),
    ],
)
def test_bad_inputs(y_true, y_prob, match):
    with pytest.raises(ValueError, match=match):
        binary_metrics(y_true, y_prob)


def test_bad_threshold():
    with pytest.raises(ValueError, match="threshold"):
        binary_metrics(Y, P, threshold=1.5)


# ------------------------------------------------------------------ bootstrap
def test_metrics_with_ci_contains_point_and_is_deterministic():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 30)
    p = np.clip(0.35 * y + rng.uniform(0, 0.65, size=60), 0, 1)
    ci = metrics_with_ci(y, p, n_boot=200, seed=3)
    assert set(ci) == set(METRIC_NAMES)
    point = binary_metrics(y, p)
    for name, (value, low, high) in ci.items():
        assert value == pytest.approx(point[name])
        assert low <= value <= high, name
        assert high - low > 0, name  # a real interval, not a point
    assert metrics_with_ci(y, p, n_boot=200, seed=3) == ci
    assert metrics_with_ci(y, p, n_boot=200, seed=4) != ci


def test_bootstrap_ci_named_and_callable_agree():
    # Same seed and stratification → same resamples → same ROC-AUC interval.
    named = bootstrap_ci(Y, P, metric="roc_auc", n_boot=200, seed=0)
    func = bootstrap_ci(Y, P, metric=roc_auc_score, n_boot=200, seed=0)
    assert named == pytest.approx(func)
    assert named[0] == pytest.approx(13 / 15)


def test_stratified_resamples_keep_class_counts_plain_ones_do_not():
    seen: dict[bool, list[int]] = {True: [], False: []}
    for stratified in (True, False):
        def record(y, p, stratified=stratified):
            seen[stratified].append(int(np.sum(y)))
            return float(np.mean(y))
        bootstrap_ci(Y, P, metric=record, n_boot=50, seed=0, stratified=stratified)
    assert set(seen[True][:-1]) == {3}  # last call is the point estimate
    assert len(set(seen[False])) > 1


def test_plain_bootstrap_skips_single_class_resamples():
    # 1 positive among 4: about (3/4)^4 ≈ 32 % of plain resamples have no positive, where
    # ROC-AUC is undefined; they are left out, the interval stays finite.
    y, p = [0, 0, 0, 1], [0.1, 0.2, 0.6, 0.7]
    value, low, high = bootstrap_ci(y, p, metric="roc_auc", n_boot=200, seed=0, stratified=False)
    assert value == 1.0
    assert np.isfinite(low) and np.isfinite(high) and low <= high <= 1.0
    value, low, high = bootstrap_ci(y, p, metric=roc_auc_score, n_boot=200, seed=0, stratified=False)
    assert np.isfinite(low)


def test_bootstrap_bad_arguments():
    with pytest.raises(ValueError, match="unknown metric"):
        metrics_with_ci(Y, P, metrics=("auc",))
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci(Y, P, metric="f1", n_boot=0)
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_ci(Y, P, metric="f1", alpha=1.0)


# ------------------------------------------------------------------ thresholds
# y      0    0    0    1    0    1    1
# p     .1   .2   .3   .4   .5   .6   .7
# threshold  TPR  FPR   J
#   .7       1/3   0   .333
#   .6       2/3   0   .667
#   .5       2/3  1/4  .417
#   .4        1   1/4  .750  ← Youden
#   .3        1   2/4  .500
Y_T = [0, 0, 0, 1, 0, 1, 1]
P_T = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]


def test_compare_auc_by_hand():
    y = [0, 0, 1, 1]
    # a ranks every abnormal above every normal (AUC 1); b gets 2 of the 4 pairs right (AUC 0.5).
    r = compare_auc(y, [0.1, 0.2, 0.8, 0.9], [0.3, 0.9, 0.2, 0.95], n_boot=300, seed=1)
    assert (r["auc_a"], r["auc_b"], r["diff"]) == (1.0, 0.5, 0.5)
    assert r["low"] <= r["diff"] <= r["high"] <= 1.0
    # a is never worse than b on a resample: each resample's AUC(a) is 1.
    assert r["low"] >= 0.0
    assert r == compare_auc(y, [0.1, 0.2, 0.8, 0.9], [0.3, 0.9, 0.2, 0.95], n_boot=300, seed=1)


def test_compare_auc_of_a_model_with_itself_is_zero_and_never_better():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    s = rng.random(40) + 0.3 * y
    r = compare_auc(y, s, s, n_boot=100)
    assert r["diff"] == r["low"] == r["high"] == 0.0
    assert r["p_not_better"] == 1.0


def test_compare_auc_clearly_better_antisymmetric_and_exact_on_ties():
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 30)
    good = y + rng.normal(0, 0.3, 60)  # separates the classes well
    noise = rng.normal(0, 1, 60)  # knows nothing
    ab = compare_auc(y, good, noise, n_boot=300, seed=2)
    assert ab["low"] > 0 and ab["p_not_better"] == 0.0
    ba = compare_auc(y, noise, good, n_boot=300, seed=2)
    # Same resamples (same seed), scores swapped: the differences change sign.
    assert (ba["diff"], ba["low"], ba["high"]) == pytest.approx((-ab["diff"], -ab["high"], -ab["low"]))
    assert ba["p_not_better"] == 1.0
    # Two different scores with the same ordering of every (abnormal, normal) pair tie exactly,
    # in every resample: a tie is "not better", never a rounding error either way.
    tie = compare_auc(y, good, 10 * good + 3, n_boot=200)
    assert tie["diff"] == tie["low"] == tie["high"] == 0.0 and tie["p_not_better"] == 1.0


def test_compare_auc_bad_alpha_and_n_boot():
    with pytest.raises(ValueError, match="alpha"):
        compare_auc([0, 1], [0.1, 0.2], [0.3, 0.4], alpha=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        compare_auc([0, 1], [0.1, 0.2], [0.3, 0.4], n_boot=0)


def test_compare_auc_takes_any_real_scores_and_rejects_bad_input():
    # only the order matters: a GGO fraction and a logit can be compared
    r = compare_auc([0, 1, 0, 1], [-3.0, 2.0, -1.0, 5.0], [0.2, 0.1, 0.3, 0.4], n_boot=50)
    assert r["auc_a"] == 1.0 and r["auc_b"] == 0.5
    with pytest.raises(ValueError, match="both classes"):
        compare_auc([1, 1], [0.1, 0.2], [0.3, 0.4])
    with pytest.raises(ValueError, match="one length"):
        compare_auc([0, 1], [0.1, 0.2], [0.3])
    with pytest.raises(ValueError, match="NaN"):
        compare_auc([0, 1], [0.1, np.nan], [0.3, 0.4])
    with pytest.raises(ValueError, match="only 0"):
        compare_auc([0, 2], [0.1, 0.2], [0.3, 0.4])


def test_youden_threshold_by_hand():
    assert choose_threshold(Y_T, P_T) == pytest.approx(0.4)


def test_youden_tie_takes_the_higher_threshold():
    # J = 2/3 at 0.8 (TPR 2/3, FPR 0) and at 0.35 (TPR 1, FPR 1/3)
    assert choose_threshold([0, 0, 1, 0, 1, 1], [0.1, 0.3, 0.35, 0.4, 0.8, 0.9]) == pytest.approx(0.8)


@pytest.mark.parametrize(("target", "expected"), [(0.6, 0.6), (0.9, 0.4), (1.0, 0.4), (0.3, 0.7)])
def test_sensitivity_threshold_by_hand(target, expected):
    assert choose_threshold(Y_T, P_T, method="sensitivity", target=target) == pytest.approx(expected)


def test_choose_threshold_errors():
    with pytest.raises(ValueError, match="both classes"):
        choose_threshold([0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="unknown threshold method"):
        choose_threshold(Y_T, P_T, method="f1")
    with pytest.raises(ValueError, match="target"):
        choose_threshold(Y_T, P_T, method="sensitivity", target=0.0)


# ------------------------------------------------------------------ calibration
def test_ece_by_hand():
    # 4 bins [0, .25] (.25, .5] (.5, .75] (.75, 1]
    #   bin 0: p .1 (y 0), .2 (y 1): mean .15, frac .5 → 2/5 · .35 = .14
    #   bin 1: p .3 (y 0):           mean .30, frac 0  → 1/5 · .30 = .06
    #   bin 2: empty
    #   bin 3: p .9, 1.0 (y 1, 1):   mean .95, frac 1  → 2/5 · .05 = .02      ECE = .22
    table, ece = calibration([0, 1, 0, 1, 1], [0.1, 0.2, 0.3, 0.9, 1.0], n_bins=4)
    assert ece == pytest.approx(0.22)
    assert table["count"].tolist() == [2, 1, 0, 2]
    assert table["mean_prob"][[0, 1, 3]] == pytest.approx([0.15, 0.3, 0.95])
    assert np.isnan(table["frac_positive"][2])
    assert table["bin_lower"].tolist() == [0.0, 0.25, 0.5, 0.75]
    # a probability on an edge belongs to the bin below it (scikit-learn's convention)
    assert calibration([1], [0.25], n_bins=4)[0]["count"].tolist() == [1, 0, 0, 0]


def test_calibration_bins_match_sklearn():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=200).round(2)  # values on bin edges included
    y = (rng.uniform(size=200) < p).astype(int)
    table, _ = calibration(y, p, n_bins=5)
    frac, mean = calibration_curve(y, p, n_bins=5, strategy="uniform")
    filled = table["count"] > 0
    assert table["frac_positive"][filled] == pytest.approx(frac)
    assert table["mean_prob"][filled] == pytest.approx(mean)


def test_perfectly_calibrated_bins_have_zero_ece():
    _, ece = calibration([0, 0, 1, 1], [0.0, 0.0, 1.0, 1.0], n_bins=10)
    assert ece == 0.0


# ------------------------------------------------------------------ mistakes
def test_most_confident_mistakes_order():
    # mistakes: 0 (FP, confidence .9), 1 (FP, .6), 2 (FN, confidence 1 - .05 = .95)
    y, p = [0, 0, 1, 1, 0], [0.9, 0.6, 0.05, 0.8, 0.1]
    assert most_confident_mistakes(y, p, k=6).tolist() == [2, 0, 1]
    assert most_confident_mistakes(y, p, k=2).tolist() == [2, 0]
    assert most_confident_mistakes([0, 1], [0.2, 0.9]).tolist() == []


# ------------------------------------------------------------------ cross-validation
def _threshold_baseline(x_train, y_train, x_test, *, seed):
    """A 1-feature classifier: cut half-way between the class means, logistic of the distance."""
    x_train, x_test = np.asarray(x_train, float), np.asarray(x_test, float)
    cut = (x_train[y_train == 0].mean() + x_train[y_train == 1].mean()) / 2
    return 1 / (1 + np.exp(-(x_test - cut)))


def test_cross_validate_separable_toy():
    x = np.arange(20.0)
    y = (x >= 10).astype(int)
    cv = cross_validate(x, y, fit_predict=_threshold_baseline, k=5, seeds=(0, 1))
    assert len(cv["folds"]) == 10
    assert cv["mean"]["accuracy"] == 1.0 and cv["std"]["accuracy"] == 0.0
    assert cv["mean"]["roc_auc"] == 1.0
    assert all(f["n_test"] == 4 and f["n_train"] == 16 for f in cv["folds"])
    json.dumps(cv)
    text = format_cv(cv)
    assert "5-fold" in text and "accuracy" in text and "1.000 ± 0.000" in text


def test_cross_validate_summary_and_folds():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 15)
    x = y * 1.0 + rng.normal(scale=0.8, size=30)
    seen_test: dict[int, list[int]] = {}

    def fit_predict(idx_train, y_train, idx_test, *, seed):  # receives row indices
        seen_test.setdefault(seed // 1000, []).extend(int(i) for i in idx_test)
        return _threshold_baseline(x[idx_train], y_train, x[idx_test], seed=seed)

    cv = cross_validate(lambda idx: idx, y, fit_predict=fit_predict, k=3, seeds=(0, 1, 2))
    for seed in (0, 1, 2):  # each sample is tested exactly once per seed
        assert sorted(seen_test[seed]) == list(range(30))
    acc = np.array([f["accuracy"] for f in cv["folds"]])
    assert cv["mean"]["accuracy"] == pytest.approx(acc.mean())
    assert cv["std"]["accuracy"] == pytest.approx(acc.std(ddof=1))
    assert cv["std"]["accuracy"] > 0
    assert len(cv["seed_means"]["accuracy"]) == 3
    # deterministic for the same seeds, a different split for other seeds
    again = cross_validate(x, y, fit_predict=_threshold_baseline, k=3, seeds=(0, 1, 2))
    assert again["mean"] == cv["mean"]
    other = cross_validate(x, y, fit_predict=_threshold_baseline, k=3, seeds=(5,))
    assert [f["accuracy"] for f in other["folds"]] != [f["accuracy"] for f in cv["folds"][:3]]


def test_cross_validate_errors():
    y = np.array([0, 0, 0, 1, 1])
    with pytest.raises(ValueError, match="smaller class"):
        cross_validate(np.arange(5), y, fit_predict=_threshold_baseline, k=3)
    with pytest.raises(ValueError, match="features have 4 samples"):
        cross_validate(np.arange(4), y, fit_predict=_threshold_baseline, k=2)
    with pytest.raises(ValueError, match="returned 1 probabilities"):
        cross_validate(np.arange(5), y, fit_predict=lambda a, b, c, *, seed: [0.5], k=2)


def test_format_report_lines():
    result = {
        "model": "run/model.keras", "split": "test", "n": 8, "n_positive": 3, "threshold": 0.5,
        "threshold_method": "fixed", "confidence_level": 0.95, "n_boot": 100,
        "class_names": ["normal", "abnormal"],
        "metrics": {"accuracy": {"value": 0.625, "low": 0.375, "high": 0.875},
                    "roc_auc": {"value": None, "low": None, "high": None}},
        "confusion_matrix": [[3, 2], [1, 2]], "calibration": {"ece": 0.123},
    }
    text = format_report(result)
    assert "run/model.keras on split 'test': 8 scans (3 abnormal)" in text
    assert "0.625   [0.375, 0.875]" in text
    assert "n/a" in text
    assert "expected calibration error: 0.123" in text


# ------------------------------------------------------------------ a model on a cache
CACHE_SHAPE = (8, 8, 4)


def _mean_model(shape, *, weight=10.0, bias=-4.5):
    """P(abnormal) = sigmoid(weight · mean(x) + bias)."""
    keras = pytest.importorskip("keras")
    inputs = keras.Input((*shape, 1))
    x = keras.layers.GlobalAveragePooling3D()(inputs)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="head")(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("head").set_weights([np.array([[weight]], np.float32), np.array([bias], np.float32)])
    return model


def _save_run(run, model, config):
    run.mkdir(parents=True, exist_ok=True)
    model.save(run / "model.keras")
    record = config.to_dict() | {"class_names": ["normal", "abnormal"], "input_shape": [*config.shape, 1]}
    (run / "preprocess.json").write_text(json.dumps(record))
    return run / "model.keras"


@pytest.fixture(scope="module")
def cache_and_model(tmp_path_factory):
    from ctutils.cache import write_cache
    from ctutils.preprocess import PreprocessConfig

    root = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 12)
    means = np.where(labels == 1, 0.6, 0.3) + rng.normal(0, 0.08, size=labels.size)
    volumes = means[:, None, None, None] + rng.uniform(-0.05, 0.05, size=(labels.size, *CACHE_SHAPE))
    splits = ["train"] * 8 + ["val"] * 8 + ["test"] * 8
    config = PreprocessConfig(shape=CACHE_SHAPE)
    cache = write_cache(root / "cache", volumes, labels, splits=splits, config=config,
                        paths=[f"scan_{i:02d}.nii.gz" for i in range(labels.size)])
    model_path = _save_run(root / "run", _mean_model(CACHE_SHAPE), config)
    return cache, model_path


def _expected_probs(cache, split):
    x = np.asarray(cache.volumes[cache.indices(split)], np.float64)
    return 1 / (1 + np.exp(-(10.0 * x.mean(axis=(1, 2, 3)) - 4.5)))


def test_predict_cache(cache_and_model):
    from ctutils.evaluation import predict_cache
    from ctutils.predict import load_model

    cache, model_path = cache_and_model
    y_true, y_prob = predict_cache(load_model(model_path), cache, "test", batch_size=3)
    assert y_true.tolist() == cache.labels("test").tolist()
    assert y_prob == pytest.approx(_expected_probs(cache, "test"), abs=1e-5)


def test_evaluate_model(cache_and_model):
    from ctutils.evaluation import evaluate_model

    cache, model_path = cache_and_model
    result = evaluate_model(cache.root, model_path, n_boot=50, seed=0)
    text = json.dumps(result, allow_nan=False)  # strictly JSON-serialisable
    assert json.loads(text)["split"] == "test"
    y = cache.labels("test")
    expected = binary_metrics(y, _expected_probs(cache, "test"))
    assert result["n"] == 8 and result["n_positive"] == int(y.sum())
    assert (result["threshold"], result["threshold_method"]) == (0.5, "fixed")
    for name in METRIC_NAMES:
        assert result["metrics"][name]["value"] == pytest.approx(expected[name], abs=1e-6)
        low, high = result["metrics"][name]["low"], result["metrics"][name]["high"]
        assert low <= result["metrics"][name]["value"] <= high
    assert result["confusion_matrix"] == expected["confusion_matrix"]
    assert result["paths"] == [str(p) for p in cache.paths("test")]
    assert len(result["calibration"]["count"]) == 10
    report = format_report(result)
    assert "on split 'test': 8 scans" in report and "roc_auc" in report


def test_evaluate_model_val_youden_threshold(cache_and_model):
    from ctutils.evaluation import evaluate_model

    cache, model_path = cache_and_model
    result = evaluate_model(cache.root, model_path, threshold="val-youden", n_boot=20)
    expected = choose_threshold(cache.labels("val"), _expected_probs(cache, "val"))
    assert result["threshold"] == pytest.approx(expected, abs=1e-6)
    assert result["threshold_method"] == "val-youden"
    with pytest.raises(ValueError, match="val-youden"):
        evaluate_model(cache.root, model_path, threshold="best", n_boot=20)


def test_evaluate_model_errors(cache_and_model, tmp_path):
    from ctutils.cache import write_cache
    from ctutils.evaluation import evaluate_model
    from ctutils.preprocess import PreprocessConfig

    cache, model_path = cache_and_model
    # a model trained for another input shape
    other = _save_run(tmp_path / "other", _mean_model((8, 8, 8)), PreprocessConfig(shape=(8, 8, 8)))
    with pytest.raises(ValueError, match="trained with preprocessing"):
        evaluate_model(cache.root, other, n_boot=10)
    (tmp_path / "other" / "preprocess.json").unlink()
    with pytest.raises(ValueError, match=r"model expects input 8 x 8 x 8 x 1 but the cache .* gives 8 x 8 x 4 x 1"):
        evaluate_model(cache.root, other, n_boot=10)
    # an empty split
    only_train = write_cache(tmp_path / "c2", np.zeros((2, *CACHE_SHAPE)), [0, 1], splits=["train"] * 2,
                             config=PreprocessConfig(shape=CACHE_SHAPE))
    with pytest.raises(ValueError, match="split 'test' is empty"):
        evaluate_model(only_train.root, model_path, n_boot=10)
    # a broken model file
    bad = tmp_path / "bad" / "model.keras"
    bad.parent.mkdir()
    bad.write_bytes(model_path.read_bytes()[:100])
    with pytest.raises(ValueError, match="model.keras"):
        evaluate_model(cache.root, bad, n_boot=10)



# --------------------------------------------------------------------------------------------
# temperature scaling
# --------------------------------------------------------------------------------------------
def _nll(y, p):
    y, p = np.asarray(y, float), np.clip(np.asarray(p, float), 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def test_temperature_of_an_over_confident_model_by_hand():
    # Every scan gets p = 0.9 (logit ln 9) and 3 of 4 are abnormal: the best constant is q = 0.75,
    # i.e. sigmoid(ln 9 / T) = 3/4 → ln 9 / T = ln 3 → T = 2 exactly.
    y, p = [1, 1, 1, 0], [0.9, 0.9, 0.9, 0.9]
    t = fit_temperature(y, p)
    assert t == pytest.approx(2.0, abs=1e-4)
    calibrated = apply_temperature(p, t)
    np.testing.assert_allclose(calibrated, 0.75, atol=1e-5)
    assert _nll(y, calibrated) < _nll(y, p)
    assert _nll(y, calibrated) == pytest.approx(-(3 * math.log(0.75) + math.log(0.25)) / 4, abs=1e-8)


def test_temperature_of_an_under_confident_model_by_hand():
    # p = 0.6 (logit ln 1.5) right 3 times of 4, p = 0.4 right 3 times of 4 → best q = 0.75:
    # ln 1.5 / T = ln 3 → T = ln 1.5 / ln 3 ≈ 0.369 < 1 (sharpened).
    y = [1, 1, 1, 0, 0, 0, 0, 1]
    p = [0.6, 0.6, 0.6, 0.6, 0.4, 0.4, 0.4, 0.4]
    t = fit_temperature(y, p)
    assert t == pytest.approx(math.log(1.5) / math.log(3.0), abs=1e-4)
    assert _nll(y, apply_temperature(p, t)) < _nll(y, p)


def test_temperature_keeps_the_ranking_and_t1_keeps_p():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    p = np.clip(0.5 + 0.45 * (2 * y - 1) * rng.uniform(0.2, 1, 40) + rng.normal(0, 0.2, 40), 0.0, 1.0)
    np.testing.assert_allclose(apply_temperature(p, 1.0), np.clip(p, 1e-7, 1 - 1e-7), rtol=0, atol=1e-12)
    for t in (0.3, 2.7, fit_temperature(y, p)):
        q = apply_temperature(p, t)
        assert roc_auc_score(y, q) == roc_auc_score(y, p)
        np.testing.assert_array_equal(np.argsort(q, kind="stable"), np.argsort(p, kind="stable"))
    original = p.copy()
    apply_temperature(p, 3.0)
    np.testing.assert_array_equal(p, original)  # the caller's array is untouched


def test_temperature_edge_cases_and_bad_inputs():
    assert fit_temperature([0, 1, 1], [0.5, 0.5, 0.5]) == 1.0  # all logits 0: nothing to scale
    assert fit_temperature([0, 1], [0.1, 0.9]) == pytest.approx(math.exp(-5), rel=1e-3)  # separated
    with pytest.raises(ValueError, match="only 0 .normal. and 1"):
        fit_temperature([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        fit_temperature([0, 1], [0.1, 1.5])
    with pytest.raises(ValueError, match="same length"):
        fit_temperature([0, 1, 1], [0.1, 0.2])
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            apply_temperature([0.2], bad)
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        apply_temperature([-0.1, 0.5], 2.0)
    with pytest.raises(ValueError, match="NaN"):
        apply_temperature([float("nan")], 2.0)


# --------------------------------------------------------------------------------------------
# sentences
# --------------------------------------------------------------------------------------------
def test_describe_difference_directions():
    up = describe_difference("the CNN", "the baseline", 0.07, 0.01, 0.15)
    assert up.startswith("On the test split, the CNN's ROC-AUC is higher than the baseline's by 0.07")
    assert "[+0.01, +0.15]" in up and up.endswith("the whole interval lies above 0.")
    down = describe_difference("the CNN", "the baseline", -0.2, -0.31, -0.1, what="accuracy",
                               where="the validation split")
    assert down.startswith("On the validation split, the CNN's accuracy is lower than the baseline's by 0.20")
    assert "[-0.31, -0.10]" in down and down.endswith("lies below 0.")
    # an interval that reaches 0 exactly contains it (README: "the paired intervals still reach zero")
    touch = describe_difference("A", "B", 0.071, 0.0, 0.178, digits=3)
    assert "higher than B's by 0.071" in touch and "[0.000, +0.178]" in touch
    assert "contains 0, so these scans cannot tell the two apart" in touch
    same = describe_difference("A", "B", -0.0004, -0.1, 0.1)
    assert "the same as B's to 2 decimals" in same and "-0.00" not in same
    with pytest.raises(ValueError, match="lower end above its upper end"):
        describe_difference("A", "B", 0.1, 0.2, 0.0)
    with pytest.raises(ValueError, match="finite"):
        describe_difference("A", "B", float("nan"), 0.0, 0.1)


def test_conclude_comparisons_states_only_what_all_agree_on():
    wins = {"validation": (0.12, 0.03, 0.28), "test": (0.07, 0.01, 0.18), "cross-validation": (0.05, 0.02, 0.08)}
    text = conclude_comparisons(wins, name_a="the CNN", name_b="the baseline")
    assert text.startswith("On every measure (validation, test and cross-validation)")
    assert "lies above 0: the CNN is better than the baseline on all of them." in text
    assert "Validation +0.12 [+0.03, +0.28]; test +0.07 [+0.01, +0.18]; cross-validation +0.05 [+0.02, +0.08]." in text
    loses = {k: (-d, -h, -lo) for k, (d, lo, h) in wins.items()}
    text = conclude_comparisons(loses, name_a="the CNN", name_b="the baseline")
    assert "lies below 0: the baseline is better than the CNN on all of them." in text
    unclear = {"validation": (0.116, 0.0, 0.28), "test": (0.071, 0.0, 0.178)}
    text = conclude_comparisons(unclear, name_a="the CNN", name_b="the baseline")
    assert "contains 0: these data cannot tell the CNN and the baseline apart." in text
    mixed = {"validation": (0.12, 0.03, 0.28), "test": (-0.07, -0.2, -0.01), "cross-validation": (0.02, -0.05, 0.09)}
    text = conclude_comparisons(mixed, name_a="the CNN", name_b="the baseline", what="accuracy")
    assert text.startswith("The measures disagree: the interval lies above 0 on validation, lies below 0 on test "
                           "and contains 0 on cross-validation, so no conclusion")
    assert "better than" not in text and "the better accuracy" in text
    with pytest.raises(ValueError, match="evidence is empty"):
        conclude_comparisons({}, name_a="A", name_b="B")
    with pytest.raises(ValueError, match=r"evidence\['test'\]: expected \(diff, low, high\)"):
        conclude_comparisons({"test": (0.1, 0.2)}, name_a="A", name_b="B")


def test_describe_calibration_and_auc():
    lowered = describe_calibration(0.210, 0.080, n_scans=200)
    assert lowered == "Temperature scaling lowered the expected calibration error from 0.210 to 0.080 (by 0.130)."
    raised = describe_calibration(0.05, 0.12, n_scans=30)
    assert "raised the expected calibration error from 0.050 to 0.120 (by 0.070)" in raised
    assert "With only 30 scans the ECE is noisy" in raised and "1/30 = 0.033" in raised
    same = describe_calibration(0.081, 0.0762, n_scans=100)  # |Δ| = 0.0048 < 0.005
    assert "unchanged (0.081 before, 0.076 after: no change)" in same and "noisy" not in same
    with pytest.raises(ValueError, match=r"ece_after must be an expected calibration error in \[0, 1\]"):
        describe_calibration(0.1, 1.2, n_scans=10)
    with pytest.raises(ValueError, match="n_scans must be an integer >= 1"):
        describe_calibration(0.1, 0.2, n_scans=0)

    above = describe_auc(0.889, 0.70, 1.0, n_scans=18, where="the test split")
    assert above.startswith("On the test split (18 scans), ROC-AUC is 0.889, 95 % interval [0.700, 1.000] "
                            "(half-width 0.150)")
    assert "lies above 0.5" in above and "better than chance" in above
    inside = describe_auc(0.62, 0.41, 0.83, n_scans=30, where="the validation split")
    assert "(half-width 0.210)" in inside and "contains 0.5, so these scans cannot tell the model from chance" in inside
    below = describe_auc(0.3, 0.1, 0.45, n_scans=30, where="the test split")
    assert "lies below 0.5" in below
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        describe_auc(0.9, 0.8, 1.1, n_scans=10, where="x")
    with pytest.raises(ValueError, match="finite"):
        describe_auc(float("nan"), 0.5, 0.6, n_scans=10, where="x")


def test_sentences_follow_the_numbers_of_two_contrasting_runs():
    """The same notebook code on two runs: one where the CNN wins everywhere, one where it does not."""
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    baseline = np.array([0.2, 0.3, 0.6, 0.4, 0.7, 0.5, 0.45, 0.55, 0.8, 0.35, 0.65, 0.9])
    good_cnn = np.array([0.1, 0.2, 0.1, 0.3, 0.2, 0.1, 0.9, 0.8, 0.9, 0.7, 0.95, 0.85])  # separates
    bad_cnn = good_cnn[::-1].copy()  # ranks every abnormal scan below every normal one

    def sentences(cnn):
        r = compare_auc(y, cnn, baseline, n_boot=300, seed=0)
        one = describe_difference("the CNN", "the baseline", r["diff"], r["low"], r["high"])
        return r, one, conclude_comparisons({"test": (r["diff"], r["low"], r["high"])},
                                            name_a="the CNN", name_b="the baseline")

    r_good, good, good_conclusion = sentences(good_cnn)
    r_bad, bad, bad_conclusion = sentences(bad_cnn)
    # baseline AUC by hand: the abnormal scores 0.45, 0.55, 0.8, 0.35, 0.65, 0.9 are above
    # 3, 4, 6, 2, 5, 6 of the six normal ones → 26 of 36 pairs in order → 26/36
    assert r_good["auc_b"] == pytest.approx(26 / 36)
    assert r_good["diff"] == pytest.approx(1 - 26 / 36) and r_bad["diff"] == pytest.approx(0 - 26 / 36)
    assert "higher than the baseline's by 0.28" in good  # 10/36
    assert "lower than the baseline's by 0.72" in bad  # 26/36
    assert "higher" not in bad and "lower" not in good
    assert good.endswith("lies above 0.") and bad.endswith("lies below 0.")
    assert "the CNN is better than the baseline" in good_conclusion
    assert "the baseline is better than the CNN" in bad_conclusion


def test_compare_with_baseline_pairs_scan_by_scan():
    from ctutils.evaluation import compare_auc, compare_with_baseline

    paths = [f"s{i}.nii.gz" for i in range(6)]
    model = {"y_true": [0, 0, 0, 1, 1, 1], "y_prob": [0.1, 0.4, 0.35, 0.8, 0.3, 0.9], "paths": paths,
             "split": "test", "cache": "data/cache/x"}
    base = {"y_true": [0, 0, 0, 1, 1, 1], "scores": [0.2, 0.1, 0.5, 0.4, 0.6, 0.3], "paths": paths}
    got = compare_with_baseline(model, base, n_boot=50, seed=3)
    assert got == compare_auc(model["y_true"], model["y_prob"], base["scores"], n_boot=50, seed=3)
    assert got["auc_a"] == pytest.approx(roc_auc_score(model["y_true"], model["y_prob"]))
    # one class only: nothing to compare
    one = {"y_true": [1] * 6}
    assert compare_with_baseline(model | one, base | one) is None
    # the same scans in another order cannot be paired
    with pytest.raises(ValueError, match=r"data/cache/x: the model's and the baseline's scans of split 'test' differ"):
        compare_with_baseline(model, base | {"paths": paths[::-1]})
    with pytest.raises(ValueError, match="labels differ"):
        compare_with_baseline(model, base | {"y_true": [0, 0, 1, 0, 1, 1]})
