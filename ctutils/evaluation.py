"""Evaluate a binary classifier: metrics with bootstrap intervals, thresholds, calibration, k-fold CV.

Chapter 06_evaluation (and the baseline comparison there). Labels are 0 = normal,
1 = abnormal; ``y_prob`` is the model's P(abnormal) (the sigmoid output). A scan is called
abnormal when ``y_prob >= threshold``.

The point estimates come from :mod:`sklearn.metrics`. The bootstrap recomputes the threshold
metrics from the confusion counts of each resample (the same formulas, vectorised, so 1000
resamples take about a second) and ROC-AUC / average precision with scikit-learn.

Temperature scaling (:func:`fit_temperature`, :func:`apply_temperature`) recalibrates the
sigmoid output without changing the ranking. The ``describe_*`` and :func:`conclude_comparisons`
helpers turn computed values into sentences, so that a notebook never types a direction
("higher", "beats") or a number that its run computes.

Nothing here imports TensorFlow at module level; only :func:`predict_cache` and
:func:`evaluate_model` (which run a Keras model) do.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.model_selection import StratifiedKFold

#: Metrics reported by :func:`binary_metrics` and :func:`metrics_with_ci`, in report order.
METRIC_NAMES: tuple[str, ...] = (
    "accuracy",
    "sensitivity",
    "specificity",
    "precision",
    "f1",
    "roc_auc",
    "average_precision",
)
_THRESHOLD_METRICS = ("accuracy", "sensitivity", "specificity", "precision", "f1")
_RANKING_METRICS = ("roc_auc", "average_precision")


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------
def check_labels_probs(y_true: Any, y_prob: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate labels and probabilities: ``(y_true int64 (N,), y_prob float64 (N,))``.

    Every metric here, and the plots of :mod:`ctutils.plotting`, check their input with it.

    Raises
    ------
    ValueError
        Not 1-D, different lengths, empty, labels other than 0 and 1, probabilities outside [0, 1]
        or not finite; the message names the problem.
    """
    yt = np.asarray(y_true)
    yp = np.asarray(y_prob, dtype=np.float64)
    if yt.ndim != 1 or yp.ndim != 1:
        raise ValueError(
            f"y_true and y_prob must be 1-D, got shapes {yt.shape} and {yp.shape}"
        )
    if yt.shape != yp.shape:
        raise ValueError(
            f"y_true and y_prob must have the same length, got {yt.shape[0]} and {yp.shape[0]}"
        )
    if yt.size == 0:
        raise ValueError("no samples: y_true and y_prob are empty")
    if not np.all(np.isin(yt, (0, 1))):
        bad = np.unique(yt[~np.isin(yt, (0, 1))])[:5]
        raise ValueError(f"y_true must contain only 0 (normal) and 1 (abnormal), found {bad.tolist()}")
    if not np.all(np.isfinite(yp)):
        raise ValueError("y_prob contains NaN or infinite values")
    if yp.min() < 0.0 or yp.max() > 1.0:
        raise ValueError(
            f"y_prob must be probabilities in [0, 1], got range [{yp.min():.4g}, {yp.max():.4g}]"
        )
    return yt.astype(np.int64), yp


def check_threshold(threshold: float) -> float:
    """A decision threshold as a float in [0, 1], or ``ValueError`` naming it."""
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    return threshold


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------
def binary_metrics(y_true: Any, y_prob: Any, *, threshold: float = 0.5) -> dict[str, Any]:
    """Accuracy, sensitivity, specificity, precision, F1, ROC-AUC, AP and the confusion matrix.

    Parameters
    ----------
    y_true : array-like of int, shape (N,)
        0 = normal, 1 = abnormal.
    y_prob : array-like of float, shape (N,)
        P(abnormal) in [0, 1].
    threshold : float
        A sample is predicted abnormal when ``y_prob >= threshold``.

    Returns
    -------
    dict
        The keys of :data:`METRIC_NAMES` (floats; ``nan`` when undefined, e.g. ROC-AUC with a
        single class or precision with no positive prediction), ``"confusion_matrix"``
        ``[[tn, fp], [fn, tp]]`` (rows = truth, columns = prediction, as in scikit-learn),
        ``"tn" "fp" "fn" "tp"``, ``"n"``, ``"n_positive"`` and ``"threshold"``. Plain Python
        types, so the dict is JSON-serialisable (``nan`` is written as ``NaN``).

    Examples
    --------
    >>> m = binary_metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])
    >>> m["accuracy"], m["sensitivity"], m["roc_auc"]
    (0.5, 0.5, 0.75)
    >>> m["confusion_matrix"]
    [[1, 1], [1, 1]]
    """
    yt, yp = check_labels_probs(y_true, y_prob)
    threshold = check_threshold(threshold)
    y_pred = (yp >= threshold).astype(np.int64)
    cm = skm.confusion_matrix(yt, y_pred, labels=[0, 1])
    tn, fp, fn, tp = (int(v) for v in cm.ravel())
    nan = float("nan")
    both_classes = 0 < tp + fn < yt.size
    out: dict[str, Any] = {
        "accuracy": float(skm.accuracy_score(yt, y_pred)),
        "sensitivity": float(skm.recall_score(yt, y_pred, pos_label=1, zero_division=nan)),
        "specificity": float(skm.recall_score(yt, y_pred, pos_label=0, zero_division=nan)),
        "precision": float(skm.precision_score(yt, y_pred, pos_label=1, zero_division=nan)),
        "f1": float(skm.f1_score(yt, y_pred, pos_label=1, zero_division=nan)),
        "roc_auc": float(skm.roc_auc_score(yt, yp)) if both_classes else nan,
        "average_precision": float(skm.average_precision_score(yt, yp)) if tp + fn > 0 else nan,
        "confusion_matrix": cm.astype(int).tolist(),
        "tn": tn,
        "fp": fp,
        "fn": fn,
        "tp": tp,
        "n": int(yt.size),
        "n_positive": int(tp + fn),
        "threshold": threshold,
    }
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _threshold_metrics_from_counts(
    tn: np.ndarray, fp: np.ndarray, fn: np.ndarray, tp: np.ndarray
) -> dict[str, np.ndarray]:
    """Vectorised accuracy/sensitivity/specificity/precision/F1 from confusion counts."""
    tn, fp, fn, tp = (np.asarray(v, dtype=np.float64) for v in (tn, fp, fn, tp))
    return {
        "accuracy": _ratio(tp + tn, tp + tn + fp + fn),
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "precision": _ratio(tp, tp + fp),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def _ranking_metric(name: str, yt: np.ndarray, yp: np.ndarray) -> float:
    n_pos = int(yt.sum())
    if name == "roc_auc":
        return float(skm.roc_auc_score(yt, yp)) if 0 < n_pos < yt.size else float("nan")
    if name == "average_precision":
        return float(skm.average_precision_score(yt, yp)) if n_pos > 0 else float("nan")
    raise ValueError(f"unknown ranking metric {name!r}")


def _bootstrap_indices(
    yt: np.ndarray, *, n_boot: int, seed: int, stratified: bool
) -> np.ndarray:
    """Row indices of ``n_boot`` resamples, shape (n_boot, N).

    Stratified: positives are resampled among positives and negatives among negatives, so each
    resample keeps the class counts (and both classes whenever the data has both).
    """
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    n = yt.size
    if not stratified:
        return rng.integers(0, n, size=(n_boot, n))
    parts = []
    for cls in (0, 1):
        members = np.flatnonzero(yt == cls)
        if members.size:
            parts.append(members[rng.integers(0, members.size, size=(n_boot, members.size))])
    return np.concatenate(parts, axis=1)


def _percentile_interval(values: np.ndarray, alpha: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan"), float("nan")
    low, high = np.percentile(finite, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return alpha


def metrics_with_ci(
    y_true: Any,
    y_prob: Any,
    *,
    threshold: float = 0.5,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    stratified: bool = True,
    metrics: Sequence[str] = METRIC_NAMES,
) -> dict[str, tuple[float, float, float]]:
    """Every metric of :data:`METRIC_NAMES` with a percentile bootstrap confidence interval.

    All metrics share the same ``n_boot`` resamples of the N samples (drawn with replacement,
    per class when ``stratified``). A resample in which a metric is undefined (ROC-AUC of a
    plain resample with a single class, precision with no positive call) is left out of that
    metric's interval; if no resample defines it the interval is ``(nan, nan)``.

    Parameters
    ----------
    y_true, y_prob : array-like, shape (N,)
        Labels (0/1) and P(abnormal).
    threshold : float
        Decision threshold for the threshold metrics.
    n_boot : int
        Number of bootstrap resamples.
    seed : int
        Seed of the resampling; the same seed gives the same interval.
    alpha : float
        1 - confidence level (0.05 → 95 % interval).
    stratified : bool
        Resample within each class (keeps the prevalence) instead of over all samples.
    metrics : sequence of str
        Subset of :data:`METRIC_NAMES`.

    Returns
    -------
    dict
        ``name -> (value, low, high)``; ``value`` is the point estimate on all samples.

    Examples
    --------
    >>> ci = metrics_with_ci([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.7, 0.4, 0.8, 0.9], n_boot=200)
    >>> value, low, high = ci["accuracy"]
    >>> round(value, 3), low <= value <= high
    (0.667, True)
    """
    yt, yp = check_labels_probs(y_true, y_prob)
    threshold = check_threshold(threshold)
    alpha = _check_alpha(alpha)
    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {list(METRIC_NAMES)}")
    point = binary_metrics(yt, yp, threshold=threshold)
    idx = _bootstrap_indices(yt, n_boot=n_boot, seed=seed, stratified=stratified)
    yt_b = yt[idx]
    pred_b = (yp[idx] >= threshold).astype(np.int64)
    tp = np.sum((yt_b == 1) & (pred_b == 1), axis=1)
    tn = np.sum((yt_b == 0) & (pred_b == 0), axis=1)
    fp = np.sum((yt_b == 0) & (pred_b == 1), axis=1)
    fn = np.sum((yt_b == 1) & (pred_b == 0), axis=1)
    boot = _threshold_metrics_from_counts(tn, fp, fn, tp)
    for name in _RANKING_METRICS:
        if name in metrics:
            boot[name] = np.array(
                [_ranking_metric(name, yt_b[b], yp[idx[b]]) for b in range(idx.shape[0])]
            )
    out: dict[str, tuple[float, float, float]] = {}
    for name in metrics:
        low, high = _percentile_interval(boot[name], alpha)
        out[name] = (float(point[name]), low, high)
    return out


def bootstrap_ci(
    y_true: Any,
    y_prob: Any,
    *,
    metric: str | Callable[[np.ndarray, np.ndarray], float],
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    stratified: bool = True,
    threshold: float = 0.5,
) -> tuple[float, float, float]:
    """Point estimate and percentile bootstrap interval of one metric.

    Parameters
    ----------
    y_true, y_prob : array-like, shape (N,)
        Labels (0/1) and P(abnormal).
    metric : str or callable
        A name from :data:`METRIC_NAMES` (evaluated at ``threshold``) or a function
        ``metric(y_true, y_prob) -> float``; a function that raises ``ValueError`` or returns
        ``nan`` on a resample (e.g. a single class) leaves that resample out.
    n_boot, seed, alpha, stratified
        As in :func:`metrics_with_ci`.
    threshold : float
        Decision threshold for named threshold metrics.

    Returns
    -------
    tuple of float
        ``(value, low, high)``.

    Examples
    --------
    >>> from sklearn.metrics import roc_auc_score
    >>> v, lo, hi = bootstrap_ci([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], metric=roc_auc_score, n_boot=50)
    >>> v
    0.75
    """
    if isinstance(metric, str):
        return metrics_with_ci(
            y_true, y_prob, threshold=threshold, n_boot=n_boot, seed=seed, alpha=alpha,
            stratified=stratified, metrics=(metric,),
        )[metric]
    if not callable(metric):
        raise ValueError(f"metric must be a metric name or a callable, got {metric!r}")
    yt, yp = check_labels_probs(y_true, y_prob)
    alpha = _check_alpha(alpha)
    idx = _bootstrap_indices(yt, n_boot=n_boot, seed=seed, stratified=stratified)
    values = np.empty(idx.shape[0])
    with warnings.catch_warnings():
        # a resample with one class is expected in a plain bootstrap; it is left out below
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        for b in range(idx.shape[0]):
            try:
                values[b] = float(metric(yt[idx[b]], yp[idx[b]]))
            except ValueError:  # older scikit-learn raises for ROC-AUC with one class
                values[b] = np.nan
    low, high = _percentile_interval(values, alpha)
    return float(metric(yt, yp)), low, high


def _auc_counts(yt: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC times (number of positives × negatives): the Mann–Whitney count of correctly
    ordered (abnormal, normal) pairs, ties counting half. Exact in binary floating point (a
    multiple of 0.5), so equal AUCs of two models give a difference of exactly 0."""
    from scipy.stats import rankdata

    ranks = rankdata(score)  # average ranks for ties
    n_pos = int(yt.sum())
    return float(ranks[yt == 1].sum() - n_pos * (n_pos + 1) / 2)


def compare_auc(
    y_true: Any,
    score_a: Any,
    score_b: Any,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, float]:
    """Paired bootstrap of the ROC-AUC difference of two scores on the same scans.

    "Is the CNN better than the baseline?" cannot be read from two separate intervals: both are
    wide on a small split, and they overlap even when one model ranks almost every pair of scans
    better. Resampling the *scans* once and scoring both models on each resample keeps the
    pairing, so the interval is that of ``AUC(a) - AUC(b)`` itself (stratified resamples, as
    :func:`metrics_with_ci`).

    Parameters
    ----------
    y_true : array-like, shape (N,)
        Labels, 0 normal and 1 abnormal; both classes must be present.
    score_a, score_b : array-like, shape (N,)
        Scores of the two models (any real numbers: only their order matters).
    n_boot, seed, alpha
        Resamples, their seed, and 1 - the interval's coverage.

    Returns
    -------
    dict
        ``auc_a``, ``auc_b``, ``diff`` (``auc_a - auc_b``), ``low`` and ``high`` (percentile
        interval of the difference) and ``p_not_better``: the fraction of resamples in which
        ``a`` does not beat ``b`` (difference <= 0; exact ties count as not better), roughly a
        one-sided p-value for "a is better than b" — 0 means below ``1 / n_boot``, not zero.

    Raises
    ------
    ValueError
        For mismatched lengths, labels other than 0/1, non-finite scores or a single class.

    Notes
    -----
    The interval covers the resampling of *these scans* for *these two trained models*; it says
    nothing about another split or another training seed (see :func:`cross_validate`).

    Examples
    --------
    >>> r = compare_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], [0.3, 0.9, 0.2, 0.95], n_boot=200)
    >>> r["auc_a"], r["auc_b"], r["diff"]
    (1.0, 0.5, 0.5)
    """
    yt = np.asarray(y_true)
    sa = np.asarray(score_a, dtype=np.float64)
    sb = np.asarray(score_b, dtype=np.float64)
    if not (yt.ndim == sa.ndim == sb.ndim == 1) or not (yt.shape == sa.shape == sb.shape):
        raise ValueError(
            f"y_true, score_a and score_b must be 1-D of one length, got shapes "
            f"{yt.shape}, {sa.shape} and {sb.shape}"
        )
    if not np.all(np.isin(yt, (0, 1))):
        raise ValueError("y_true must contain only 0 (normal) and 1 (abnormal)")
    if not (np.all(np.isfinite(sa)) and np.all(np.isfinite(sb))):
        raise ValueError("the scores contain NaN or infinite values")
    yt = yt.astype(np.int64)
    if not 0 < yt.sum() < yt.size:
        raise ValueError("comparing ROC-AUCs needs both classes in y_true")
    alpha = _check_alpha(alpha)
    idx = _bootstrap_indices(yt, n_boot=n_boot, seed=seed, stratified=True)
    diffs = np.array([_auc_counts(yt[i], sa[i]) - _auc_counts(yt[i], sb[i]) for i in idx])
    n_pairs = float(yt.sum() * (yt.size - yt.sum()))  # the same in every stratified resample
    diffs = diffs / n_pairs
    auc_a = float(skm.roc_auc_score(yt, sa))
    auc_b = float(skm.roc_auc_score(yt, sb))
    low, high = _percentile_interval(diffs, alpha)
    return {
        "auc_a": auc_a,
        "auc_b": auc_b,
        "diff": auc_a - auc_b,
        "low": low,
        "high": high,
        "p_not_better": float(np.mean(diffs <= 0.0)),
    }


# --------------------------------------------------------------------------------------------
# thresholds, calibration, mistakes
# --------------------------------------------------------------------------------------------
def choose_threshold(
    y_true: Any, y_prob: Any, *, method: str = "youden", target: float = 0.9
) -> float:
    """Choose a decision threshold (on the validation split; then apply it to test).

    Parameters
    ----------
    y_true, y_prob : array-like, shape (N,)
        Labels (0/1, both classes present) and P(abnormal).
    method : {"youden", "sensitivity"}
        ``"youden"``: the threshold maximising Youden's J = sensitivity + specificity − 1
        (ties: the highest such threshold). ``"sensitivity"``: the highest threshold whose
        sensitivity is at least ``target`` (so specificity is as high as the target allows).
    target : float
        Target sensitivity for ``method="sensitivity"``, in (0, 1].

    Returns
    -------
    float
        A value of ``y_prob``; samples with ``y_prob >= threshold`` are called abnormal.

    Examples
    --------
    >>> choose_threshold([0, 0, 1, 0, 1, 1], [0.1, 0.3, 0.35, 0.4, 0.8, 0.9])  # J = 2/3 - 0
    0.8
    """
    yt, yp = check_labels_probs(y_true, y_prob)
    if yt.min() == yt.max():
        raise ValueError("choose_threshold needs both classes in y_true")
    fpr, tpr, thresholds = skm.roc_curve(yt, yp, drop_intermediate=False)
    finite = np.isfinite(thresholds)  # sklearn prepends +inf (nothing called positive)
    fpr, tpr, thresholds = fpr[finite], tpr[finite], thresholds[finite]
    if method == "youden":
        youden_j = tpr - fpr
        # first maximum = highest threshold; the tolerance makes 2/3 - 0 and 1 - 1/3 a tie
        best = int(np.flatnonzero(youden_j >= youden_j.max() - 1e-9)[0])
        return float(thresholds[best])
    if method == "sensitivity":
        target = float(target)
        if not 0.0 < target <= 1.0:
            raise ValueError(f"target sensitivity must be in (0, 1], got {target}")
        ok = np.flatnonzero(tpr >= target - 1e-12)
        return float(thresholds[ok[0]])
    raise ValueError(f"unknown threshold method {method!r}; use 'youden' or 'sensitivity'")


def compare_with_baseline(
    model: Mapping[str, Any],
    baseline: Mapping[str, Any],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, float] | None:
    """Pair a model's scores with the one-feature baseline's, scan by scan, and compare their ROC-AUCs.

    What ``python -m ctutils evaluate --baseline`` reports: the paired bootstrap of
    :func:`compare_auc` with the model as ``a`` and the baseline as ``b``, on the same scans.

    Parameters
    ----------
    model : mapping
        :func:`evaluate_model`'s result, or any mapping with ``"y_true"``, ``"y_prob"`` and
        ``"paths"`` (the scans, in the order of the scores), and optionally ``"split"`` and
        ``"cache"`` (named in the error message).
    baseline : mapping
        :func:`ctutils.baseline.evaluate_baseline`'s result on the same split: ``"y_true"``,
        ``"scores"``, ``"paths"``.
    n_boot, seed, alpha
        As :func:`compare_auc`.

    Returns
    -------
    dict or None
        :func:`compare_auc`'s ``auc_a`` (model), ``auc_b`` (baseline), ``diff``, ``low``, ``high``,
        ``p_not_better``; None when the split holds one class only (no ROC-AUC to compare).

    Raises
    ------
    ValueError
        The two results list different scans, or the same scans in another order (pairing them
        would compare one scan's model score with another scan's baseline score), or different labels.

    Examples
    --------
    >>> m = {"y_true": [0, 0, 1, 1], "y_prob": [0.1, 0.2, 0.8, 0.9], "paths": ["a", "b", "c", "d"]}
    >>> b = {"y_true": [0, 0, 1, 1], "scores": [0.3, 0.9, 0.2, 0.95], "paths": ["a", "b", "c", "d"]}
    >>> compare_with_baseline(m, b, n_boot=200)["diff"]
    0.5
    >>> compare_with_baseline(m | {"y_true": [1, 1, 1, 1]}, b | {"y_true": [1, 1, 1, 1]}) is None
    True
    """
    if list(model["paths"]) != list(baseline["paths"]):
        where = f"{model['cache']}: " if model.get("cache") else ""
        split = f" of split {model['split']!r}" if model.get("split") else ""
        raise ValueError(f"{where}the model's and the baseline's scans{split} differ")
    y_true = [int(v) for v in model["y_true"]]
    if y_true != [int(v) for v in baseline["y_true"]]:
        raise ValueError("the model's and the baseline's labels differ for the same scans")
    if not 0 < sum(y_true) < len(y_true):
        return None
    return compare_auc(y_true, model["y_prob"], baseline["scores"], n_boot=n_boot, seed=seed, alpha=alpha)


def calibration(
    y_true: Any, y_prob: Any, *, n_bins: int = 10
) -> tuple[dict[str, np.ndarray], float]:
    """Reliability table on ``n_bins`` equal-width bins of [0, 1] and expected calibration error.

    Bin ``b`` holds ``lower_b < p <= upper_b`` (the first bin also holds ``p == 0``), the binning
    of :func:`sklearn.calibration.calibration_curve` with ``strategy="uniform"``.
    ECE = Σ_b (n_b / N) · |fraction of positives_b − mean probability_b| over non-empty bins.

    Parameters
    ----------
    y_true, y_prob : array-like, shape (N,)
        Labels (0/1) and P(abnormal).
    n_bins : int
        Number of bins (>= 1).

    Returns
    -------
    table : dict of numpy arrays, each shape (n_bins,)
        ``"bin_lower"``, ``"bin_upper"``, ``"count"`` (int), ``"mean_prob"``,
        ``"frac_positive"`` (``nan`` for empty bins).
    ece : float
        Expected calibration error in [0, 1].

    Examples
    --------
    >>> table, ece = calibration([0, 1, 1, 1], [0.2, 0.4, 0.8, 0.9], n_bins=2)
    >>> table["count"].tolist(), round(ece, 4)  # 2/4 * |0.5 - 0.3| + 2/4 * |1 - 0.85|
    ([2, 2], 0.175)
    """
    yt, yp = check_labels_probs(y_true, y_prob)
    if int(n_bins) < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    n_bins = int(n_bins)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.searchsorted(edges[1:-1], yp)  # side="left", as calibration_curve
    count = np.bincount(which, minlength=n_bins)
    sum_prob = np.bincount(which, weights=yp, minlength=n_bins)
    sum_pos = np.bincount(which, weights=yt.astype(np.float64), minlength=n_bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_prob = np.where(count > 0, sum_prob / np.maximum(count, 1), np.nan)
        frac_pos = np.where(count > 0, sum_pos / np.maximum(count, 1), np.nan)
    nonempty = count > 0
    ece = float(
        np.sum(count[nonempty] / yt.size * np.abs(frac_pos[nonempty] - mean_prob[nonempty]))
    )
    table = {
        "bin_lower": edges[:-1].copy(),
        "bin_upper": edges[1:].copy(),
        "count": count.astype(np.int64),
        "mean_prob": mean_prob,
        "frac_positive": frac_pos,
    }
    return table, ece


#: Probabilities are clipped to [PROB_EPS, 1 - PROB_EPS] before taking logits (temperature scaling).
PROB_EPS = 1e-7


def _logits(yp: np.ndarray) -> np.ndarray:
    from scipy.special import logit

    return logit(np.clip(yp, PROB_EPS, 1.0 - PROB_EPS))


def _binary_nll(yt: np.ndarray, logits: np.ndarray) -> float:
    """Mean binary cross-entropy of ``sigmoid(logits)``, computed stably (log-sum-exp)."""
    # -log sigmoid(z) = log(1 + exp(-z)); -log(1 - sigmoid(z)) = log(1 + exp(z))
    return float(np.mean(np.where(yt == 1, np.logaddexp(0.0, -logits), np.logaddexp(0.0, logits))))


def fit_temperature(y_true: Any, y_prob: Any) -> float:
    """Temperature ``T`` that calibrates a sigmoid output best (temperature scaling, Guo et al. 2017).

    The logits ``z = logit(clip(p, 1e-7, 1 - 1e-7))`` are divided by one number ``T > 0``;
    ``T`` minimises the mean binary cross-entropy (negative log-likelihood) of
    ``sigmoid(z / T)`` on these scans (:func:`scipy.optimize.minimize_scalar` over ``log T`` in
    [-5, 5], so ``T`` lies in [0.0067, 148]). ``T > 1`` softens an over-confident model,
    ``T < 1`` sharpens an under-confident one. Dividing by a positive number keeps the order of
    the scores, so ROC-AUC and average precision do not change; accuracy at 0.5 does not
    either (``z = 0`` stays at ``p = 0.5``).

    Fit ``T`` on the validation split and apply it to the test split with
    :func:`apply_temperature`; fitted and scored on the same scans it flatters the result.

    Parameters
    ----------
    y_true : array-like of int, shape (N,)
        0 = normal, 1 = abnormal.
    y_prob : array-like of float, shape (N,)
        P(abnormal) in [0, 1].

    Returns
    -------
    float
        The temperature. 1.0 when every ``p`` is 0.5 (all logits 0: ``T`` changes nothing).
        When the scans are perfectly separated by the sign of the logits, the loss keeps
        falling as ``T`` shrinks and the fit stops at the bound, ``exp(-5)``.

    Raises
    ------
    ValueError
        For labels other than 0/1, probabilities outside [0, 1], NaN, empty or mismatched inputs.

    Examples
    --------
    >>> y = [0, 1, 0, 1, 0, 1, 0, 1]
    >>> p = [0.01, 0.99, 0.99, 0.01, 0.02, 0.98, 0.03, 0.97]  # confident, and wrong twice
    >>> fit_temperature(y, p) > 1
    True
    """
    from scipy.optimize import minimize_scalar

    yt, yp = check_labels_probs(y_true, y_prob)
    z = _logits(yp)
    if not np.any(z):
        return 1.0
    result = minimize_scalar(lambda log_t: _binary_nll(yt, z / math.exp(log_t)),
                             bounds=(-5.0, 5.0), method="bounded", options={"xatol": 1e-6})
    return float(math.exp(result.x))


def apply_temperature(y_prob: Any, temperature: float) -> np.ndarray:
    """Recalibrated probabilities ``sigmoid(logit(clip(p, 1e-7, 1 - 1e-7)) / temperature)``.

    Parameters
    ----------
    y_prob : array-like of float, any shape
        P(abnormal) in [0, 1]; not modified.
    temperature : float
        ``T > 0``, e.g. from :func:`fit_temperature`. ``T = 1`` returns ``p`` clipped to
        [1e-7, 1 - 1e-7] (unchanged inside that range).

    Returns
    -------
    numpy.ndarray
        float64, the shape of ``y_prob``, in the same order as ``y_prob`` (ranking unchanged).

    Raises
    ------
    ValueError
        If ``temperature`` is not a finite number > 0, or ``y_prob`` is not finite and in [0, 1].

    Examples
    --------
    >>> apply_temperature([0.5, 0.8, 0.2], 2.0).round(3)  # logit 0.8 = ln 4; sigmoid(ln 4 / 2) = 2/3
    array([0.5  , 0.667, 0.333])
    """
    from scipy.special import expit

    t = float(temperature)
    if not (math.isfinite(t) and t > 0.0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    yp = np.asarray(y_prob, dtype=np.float64)
    if not np.all(np.isfinite(yp)):
        raise ValueError("y_prob contains NaN or infinite values")
    if yp.size and (yp.min() < 0.0 or yp.max() > 1.0):
        raise ValueError(
            f"y_prob must be probabilities in [0, 1], got range [{yp.min():.4g}, {yp.max():.4g}]"
        )
    return expit(_logits(yp) / t)


def most_confident_mistakes(
    y_true: Any, y_prob: Any, *, k: int = 6, threshold: float = 0.5
) -> np.ndarray:
    """Indices of the ``k`` misclassified samples the model was most sure about.

    Confidence of a mistake = the probability the model gave to its (wrong) call:
    ``y_prob`` for a false positive, ``1 - y_prob`` for a false negative.

    Returns
    -------
    numpy.ndarray of int, shape (<= k,)
        Most confident first (ties: lower index first); empty when there is no mistake.

    Examples
    --------
    >>> most_confident_mistakes([0, 0, 1, 1], [0.9, 0.6, 0.05, 0.8], k=2).tolist()
    [2, 0]
    """
    yt, yp = check_labels_probs(y_true, y_prob)
    threshold = check_threshold(threshold)
    if int(k) < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    pred = (yp >= threshold).astype(np.int64)
    wrong = np.flatnonzero(pred != yt)
    confidence = np.where(pred[wrong] == 1, yp[wrong], 1.0 - yp[wrong])
    order = np.argsort(-confidence, kind="stable")
    return wrong[order][: int(k)].astype(np.int64)


# --------------------------------------------------------------------------------------------
# cross-validation
# --------------------------------------------------------------------------------------------
def cross_validate(
    features: Any,
    labels: Any,
    *,
    fit_predict: Callable[..., Any],
    k: int = 5,
    seeds: Sequence[int] = (0, 1, 2),
    threshold: float = 0.5,
) -> dict[str, Any]:
    """Repeated stratified k-fold cross-validation of any model, summarised as mean ± std.

    For each seed the N samples are split by :class:`sklearn.model_selection.StratifiedKFold`
    (``shuffle=True, random_state=seed``); for each fold ``fit_predict`` is trained on the other
    folds and returns P(abnormal) for the held-out fold, scored with :func:`binary_metrics`.

    Parameters
    ----------
    features : array-like (N, ...) or callable
        Indexed with integer arrays (``features[train_idx]``) — a feature matrix, a list, or the
        cache's ``volumes`` memmap; or a function ``features(indices) -> data`` (for example
        ``lambda idx: idx`` to hand a training callback the row indices themselves).
    labels : array-like of int, shape (N,)
        0 = normal, 1 = abnormal.
    fit_predict : callable
        ``fit_predict(x_train, y_train, x_test, *, seed) -> y_prob`` with ``y_prob`` of shape
        ``(len(x_test),)``; ``seed = 1000 * repetition_seed + fold`` so that every fit is
        seeded differently and reproducibly.
    k : int
        Number of folds (2 <= k <= size of the smaller class).
    seeds : sequence of int
        One repetition of the k-fold split per seed.
    threshold : float
        Decision threshold for the threshold metrics.

    Returns
    -------
    dict
        ``"folds"``: one dict per (seed, fold) with ``seed``, ``fold``, ``n_train``, ``n_test``
        and the metrics; ``"mean"`` / ``"std"``: per metric over all ``k × len(seeds)`` folds
        (std with ddof=1, ``nan`` ignored); ``"seed_means"``: per metric, the mean of each seed's
        folds (their spread shows how much the split alone moves the result); ``"k"``,
        ``"seeds"``, ``"n"``. JSON-serialisable.
    """
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {y.shape}")
    if not np.all(np.isin(y, (0, 1))):
        raise ValueError("labels must contain only 0 (normal) and 1 (abnormal)")
    y = y.astype(np.int64)
    k = int(k)
    smallest = int(min(np.sum(y == 0), np.sum(y == 1)))
    if k < 2 or k > smallest:
        raise ValueError(
            f"k must be between 2 and the size of the smaller class ({smallest}), got {k}"
        )
    if not callable(features):
        n_features = len(features)
        if n_features != y.size:
            raise ValueError(f"features have {n_features} samples but labels have {y.size}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must not be empty")

    def take(idx: np.ndarray) -> Any:
        if callable(features):
            return features(idx)
        if isinstance(features, (list, tuple)):
            return [features[i] for i in idx]
        return features[idx]  # numpy array or memmap: fancy indexing

    folds: list[dict[str, Any]] = []
    x_all = np.zeros(y.size)  # StratifiedKFold only needs the number of samples
    for seed in seeds:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        for fold, (train_idx, test_idx) in enumerate(splitter.split(x_all, y)):
            y_prob = np.asarray(
                fit_predict(take(train_idx), y[train_idx], take(test_idx), seed=seed * 1000 + fold),
                dtype=np.float64,
            ).reshape(-1)
            if y_prob.shape[0] != test_idx.size:
                raise ValueError(
                    f"fit_predict returned {y_prob.shape[0]} probabilities for {test_idx.size} test samples"
                )
            row = {"seed": seed, "fold": fold, "n_train": int(train_idx.size), "n_test": int(test_idx.size)}
            m = binary_metrics(y[test_idx], y_prob, threshold=threshold)
            row.update({name: m[name] for name in METRIC_NAMES})
            folds.append(row)

    def summary(rows: list[dict[str, Any]], fn: Callable[[np.ndarray], float]) -> dict[str, float]:
        return {name: fn(np.array([r[name] for r in rows], dtype=np.float64)) for name in METRIC_NAMES}

    def nanmean(v: np.ndarray) -> float:
        return float(np.nanmean(v)) if np.any(np.isfinite(v)) else float("nan")

    def nanstd(v: np.ndarray) -> float:
        return float(np.nanstd(v, ddof=1)) if np.sum(np.isfinite(v)) > 1 else float("nan")

    seed_means = {
        name: [nanmean(np.array([r[name] for r in folds if r["seed"] == s])) for s in seeds]
        for name in METRIC_NAMES
    }
    return {
        "k": k,
        "seeds": seeds,
        "n": int(y.size),
        "folds": folds,
        "mean": summary(folds, nanmean),
        "std": summary(folds, nanstd),
        "seed_means": seed_means,
    }


def format_cv(summary: Mapping[str, Any]) -> str:
    """One line per metric, ``"roc_auc            0.842 ± 0.061"``, from :func:`cross_validate`."""
    head = (
        f"{summary['k']}-fold cross-validation × {len(summary['seeds'])} seed(s), "
        f"{len(summary['folds'])} folds, N = {summary['n']}"
    )
    lines = [head]
    for name in METRIC_NAMES:
        lines.append(f"  {name:<18} {summary['mean'][name]:.3f} ± {summary['std'][name]:.3f}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# running a model on the cache
# --------------------------------------------------------------------------------------------
def predict_cache(
    model: Any, cache: Any, split: str | None, *, batch_size: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` on every volume of one split of a preprocessed cache.

    Parameters
    ----------
    model : keras.Model
        Input ``(B, X, Y, Z, 1)``, output ``(B, 1)`` sigmoid = P(abnormal).
    cache : ctutils.cache.Cache
        Opened with :func:`ctutils.cache.open_cache`.
    split : str or None
        ``"train"``, ``"val"``, ``"test"``, or None for all rows.
    batch_size : int
        Volumes per forward pass (read from the memmap batch by batch).

    Returns
    -------
    y_true : numpy.ndarray of int64, shape (N,)
    y_prob : numpy.ndarray of float64, shape (N,)
        In the order of ``cache.indices(split)``.
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    indices = np.asarray(cache.indices(split))
    y_true = np.asarray(cache.labels(split), dtype=np.int64)
    if indices.size == 0:
        raise ValueError(f"{cache.root}: split {split!r} is empty; nothing to evaluate")
    probs = []
    for start in range(0, indices.size, int(batch_size)):
        rows = indices[start : start + int(batch_size)]
        x = np.asarray(cache.volumes[rows], dtype=np.float32)[..., np.newaxis]
        out = np.asarray(model(x, training=False))
        if out.ndim != 2 or out.shape[1] != 1:
            raise ValueError(
                f"model output must have shape (batch, 1) (sigmoid P(abnormal)), got {out.shape}"
            )
        probs.append(out[:, 0])
    y_prob = np.concatenate(probs).astype(np.float64)
    return y_true, y_prob


def evaluate_model(
    cache_dir: str | os.PathLike[str],
    model_path: str | os.PathLike[str],
    *,
    split: str = "test",
    threshold: float | str | None = None,
    target_sensitivity: float = 0.9,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    n_bins: int = 10,
    batch_size: int = 4,
    k_mistakes: int = 6,
) -> dict[str, Any]:
    """Evaluate a saved model on one split of a cache: metrics with CIs, curves, calibration.

    Parameters
    ----------
    cache_dir : path
        Folder written by :func:`ctutils.cache.build_cache` / ``write_cache``.
    model_path : path
        ``RUN/model.keras`` (loaded with ``safe_mode=True``). Its input must match the
        cache's preprocessed shape.
    split : str
        Split to evaluate.
    threshold : None, float, "val-youden" or "val-sensitivity"
        None → 0.5. ``"val-youden"`` / ``"val-sensitivity"`` choose the threshold on the
        ``"val"`` split with :func:`choose_threshold` (Youden's J, or the highest threshold
        reaching ``target_sensitivity``) and apply it to ``split``.
    target_sensitivity : float
        Target for ``"val-sensitivity"``.
    n_boot, seed, alpha : int, int, float
        Bootstrap settings of :func:`metrics_with_ci` (stratified).
    n_bins : int
        Calibration bins.
    batch_size : int
        Volumes per forward pass.
    k_mistakes : int
        Number of most confident mistakes to list.

    Returns
    -------
    dict
        JSON-serialisable: ``model``, ``cache``, ``split``, ``n``, ``n_positive``,
        ``class_names``, ``threshold``, ``threshold_method``, ``metrics`` (name →
        ``{"value", "low", "high"}``), ``confidence_level``, ``n_boot``, ``confusion_matrix``,
        ``roc_curve`` (``fpr``, ``tpr``), ``pr_curve`` (``precision``, ``recall``),
        ``calibration`` (``ece`` and the bin table as lists), ``mistakes`` (index, path, label,
        probability), ``y_true``, ``y_prob``, ``paths``.
    """
    from ctutils.cache import open_cache
    from ctutils.predict import load_model, model_input_shape
    from ctutils.runs import PREPROCESS_FILE, check_model_input, read_preprocess_json

    cache = open_cache(cache_dir)
    json_path = Path(model_path).parent / PREPROCESS_FILE
    if json_path.is_file():
        trained_config, _, _ = read_preprocess_json(model_path)
        if trained_config != cache.config:
            raise ValueError(
                f"{json_path}: the model was trained with preprocessing {trained_config.to_dict()} "
                f"but the cache {cache_dir} was built with {cache.config.to_dict()}"
            )
    model = load_model(model_path)
    check_model_input(model_input_shape(model), cache.config.shape, model_path=model_path, source=f"the cache {cache_dir}",
                      advice="evaluate with a cache built with the model's preprocessing")

    thr, method = _resolve_threshold(
        threshold, model, cache, target_sensitivity=target_sensitivity, batch_size=batch_size
    )
    y_true, y_prob = predict_cache(model, cache, split, batch_size=batch_size)
    return _evaluation_result(
        y_true,
        y_prob,
        threshold=thr,
        threshold_method=method,
        model_path=model_path,
        cache_dir=cache_dir,
        split=split,
        class_names=cache.class_names,
        paths=[str(p) for p in cache.paths(split)],
        n_boot=n_boot,
        seed=seed,
        alpha=alpha,
        n_bins=n_bins,
        k_mistakes=k_mistakes,
    )


def _resolve_threshold(
    threshold: float | str | None, model: Any, cache: Any, *, target_sensitivity: float, batch_size: int
) -> tuple[float, str]:
    """The decision threshold of :func:`evaluate_model` and how it was chosen.

    None gives 0.5 (``"fixed"``); a number is checked and used as is; ``"val-youden"`` and
    ``"val-sensitivity"`` predict the ``"val"`` split and pick it with :func:`choose_threshold`.
    """
    if threshold is None:
        return 0.5, "fixed"
    if isinstance(threshold, str):
        choices = {"val-youden": "youden", "val-sensitivity": "sensitivity"}
        if threshold not in choices:
            raise ValueError(
                f"threshold must be a number, None, 'val-youden' or 'val-sensitivity', got {threshold!r}"
            )
        yv, pv = predict_cache(model, cache, "val", batch_size=batch_size)
        return choose_threshold(yv, pv, method=choices[threshold], target=target_sensitivity), threshold
    return check_threshold(threshold), "fixed"


def _json_number(v: float | None) -> float | None:
    """A float for JSON; None for None or NaN."""
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _curves(y_true: np.ndarray, y_prob: np.ndarray) -> dict[str, dict[str, list[float]]]:
    """ROC and precision-recall curves as lists; empty when only one class is present."""
    if 0 < int(y_true.sum()) < y_true.size:
        fpr, tpr, _ = skm.roc_curve(y_true, y_prob)
        prec, rec, _ = skm.precision_recall_curve(y_true, y_prob)
    else:
        fpr = tpr = prec = rec = np.array([])
    return {
        "roc_curve": {"fpr": fpr.tolist(), "tpr": tpr.tolist()},
        "pr_curve": {"precision": prec.tolist(), "recall": rec.tolist()},
    }


def _evaluation_result(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    *,
    threshold: float,
    threshold_method: str,
    model_path: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str],
    split: str,
    class_names: Sequence[str],
    paths: list[str],
    n_boot: int,
    seed: int,
    alpha: float,
    n_bins: int,
    k_mistakes: int,
) -> dict[str, Any]:
    """The JSON-ready dict that :func:`evaluate_model` returns (see its docstring for the keys)."""
    point = binary_metrics(y_true, y_prob, threshold=threshold)
    ci = metrics_with_ci(
        y_true, y_prob, threshold=threshold, n_boot=n_boot, seed=seed, alpha=alpha, stratified=True
    )
    table, ece = calibration(y_true, y_prob, n_bins=n_bins)
    mistakes = most_confident_mistakes(y_true, y_prob, k=k_mistakes, threshold=threshold)
    num = _json_number
    return {
        "model": str(model_path),
        "cache": str(cache_dir),
        "split": split,
        "n": point["n"],
        "n_positive": point["n_positive"],
        "class_names": list(class_names),
        "threshold": float(threshold),
        "threshold_method": threshold_method,
        "confidence_level": 1.0 - float(alpha),
        "n_boot": int(n_boot),
        "seed": int(seed),
        "metrics": {
            name: {"value": num(v), "low": num(lo), "high": num(hi)} for name, (v, lo, hi) in ci.items()
        },
        "confusion_matrix": point["confusion_matrix"],
        **_curves(y_true, y_prob),
        "calibration": {
            "ece": float(ece),
            "n_bins": int(n_bins),
            **{key: [num(float(v)) for v in val] for key, val in table.items()},
        },
        "mistakes": [
            {"index": int(i), "path": paths[i] if i < len(paths) else None,
             "label": int(y_true[i]), "probability": float(y_prob[i])}
            for i in mistakes
        ],
        "y_true": y_true.tolist(),
        "y_prob": y_prob.tolist(),
        "paths": paths,
    }


def format_report(result: Mapping[str, Any]) -> str:
    """Plain-text report of :func:`evaluate_model`'s result (what ``ctutils evaluate`` prints).

    Examples
    --------
    >>> r = {"model": "m.keras", "split": "test", "n": 4, "n_positive": 2, "threshold": 0.5,
    ...      "threshold_method": "fixed", "confidence_level": 0.95, "n_boot": 10,
    ...      "class_names": ["normal", "abnormal"],
    ...      "metrics": {"accuracy": {"value": 0.75, "low": 0.5, "high": 1.0}},
    ...      "confusion_matrix": [[2, 0], [1, 1]], "calibration": {"ece": 0.1}}
    >>> print(format_report(r))  # doctest: +NORMALIZE_WHITESPACE
    m.keras on split 'test': 4 scans (2 abnormal), threshold 0.500 (fixed)
      metric               value   95% CI (bootstrap, 10 resamples)
      accuracy             0.750   [0.500, 1.000]
    confusion matrix (rows = truth, columns = prediction)
                    normal  abnormal
      normal             2         0
      abnormal           1         1
    expected calibration error: 0.100
    """
    def fmt(v: float | None) -> str:
        return "  n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"

    names = list(result.get("class_names", ["normal", "abnormal"]))
    level = round(100 * float(result.get("confidence_level", 0.95)))
    lines = [
        f"{result['model']} on split {result['split']!r}: {result['n']} scans "
        f"({result['n_positive']} {names[1]}), threshold {result['threshold']:.3f} "
        f"({result['threshold_method']})",
        f"  {'metric':<20} value   {level}% CI (bootstrap, {result['n_boot']} resamples)",
    ]
    for name, m in result["metrics"].items():
        lines.append(f"  {name:<20} {fmt(m['value'])}   [{fmt(m['low'])}, {fmt(m['high'])}]")
    cm = result["confusion_matrix"]
    width = max(len(n) for n in names) + 2
    lines.append("confusion matrix (rows = truth, columns = prediction)")
    lines.append(" " * (width + 2) + "".join(f"{n:>10}" for n in names))
    for name, row in zip(names, cm):
        lines.append(f"  {name:<{width}}" + "".join(f"{v:>10d}" for v in row))
    lines.append(f"expected calibration error: {result['calibration']['ece']:.3f}")
    return "\n".join(lines)



# --------------------------------------------------------------------------------------------
# sentences built from the values (a notebook never types a conclusion its run computes)
# --------------------------------------------------------------------------------------------
#: A change of the expected calibration error smaller than this is reported as "no change".
ECE_NO_CHANGE = 0.005
#: Below this many scans :func:`describe_calibration` warns that the ECE is noisy.
ECE_FEW_SCANS = 100


def _num(x: float, digits: int, *, signed: bool = False) -> str:
    """``x`` rounded to ``digits`` decimals; a value that rounds to 0 is written ``0.00`` (no "-0.00")."""
    x = float(x)
    if round(x, digits) == 0:
        x = 0.0
    return f"{x:+.{digits}f}" if signed and x != 0.0 else f"{x:.{digits}f}"


def _check_interval(name: str, value: float, low: float, high: float) -> tuple[float, float, float]:
    value, low, high = float(value), float(low), float(high)
    if not all(math.isfinite(v) for v in (value, low, high)):
        raise ValueError(f"{name}: value and interval must be finite numbers, got ({value}, {low}, {high})")
    if low > high:
        raise ValueError(f"{name}: interval [{low}, {high}] has its lower end above its upper end")
    return value, low, high


def _side_of(low: float, high: float, reference: float) -> str:
    """``"above"``, ``"below"`` or ``"contains"``: where a closed interval lies relative to ``reference``.

    An interval that reaches the reference exactly (``low == reference``) contains it.
    """
    if low > reference:
        return "above"
    if high < reference:
        return "below"
    return "contains"


def _level_text(level: float) -> str:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95, got {level}")
    return f"{100 * level:g} %"


def _join(words: Sequence[str]) -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"``."""
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def describe_difference(
    name_a: str,
    name_b: str,
    diff: float,
    low: float,
    high: float,
    *,
    what: str = "ROC-AUC",
    where: str = "the test split",
    level: float = 0.95,
    digits: int = 2,
) -> str:
    """One sentence on a paired difference ``a − b`` and its interval, e.g. from :func:`compare_auc`.

    The direction ("higher", "lower", "the same") comes from ``diff`` and the verdict from where
    the interval lies: above 0, below 0, or containing 0 (an interval that reaches 0 exactly
    contains it).

    Parameters
    ----------
    name_a, name_b : str
        The two models, as they should read in the sentence ("the CNN", "the baseline"); "'s"
        is appended to form the possessive.
    diff, low, high : float
        ``a − b`` and its interval.
    what : str
        The measure.
    where : str
        The scans it was measured on, read after "On" ("the test split").
    level : float
        Coverage of the interval.
    digits : int
        Decimals of the numbers.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        For a non-finite value or an interval whose lower end is above its upper end.

    Examples
    --------
    >>> describe_difference("the CNN", "the baseline", 0.07, 0.01, 0.15)
    "On the test split, the CNN's ROC-AUC is higher than the baseline's by 0.07 (95 % interval of the difference [+0.01, +0.15]): the whole interval lies above 0."
    >>> describe_difference("the CNN", "the baseline", 0.04, -0.02, 0.1, where="the validation split")
    "On the validation split, the CNN's ROC-AUC is higher than the baseline's by 0.04 (95 % interval of the difference [-0.02, +0.10]): the interval contains 0, so these scans cannot tell the two apart."
    """
    diff, low, high = _check_interval("describe_difference", diff, low, high)
    if round(diff, digits) == 0:
        direction = f"the same as {name_b}'s to {digits} decimals"
    else:
        word = "higher" if diff > 0 else "lower"
        direction = f"{word} than {name_b}'s by {_num(abs(diff), digits)}"
    side = _side_of(low, high, 0.0)
    verdict = {
        "above": "the whole interval lies above 0.",
        "below": "the whole interval lies below 0.",
        "contains": "the interval contains 0, so these scans cannot tell the two apart.",
    }[side]
    interval = f"[{_num(low, digits, signed=True)}, {_num(high, digits, signed=True)}]"
    return (f"On {where}, {name_a}'s {what} is {direction} ({_level_text(level)} interval of the "
            f"difference {interval}): {verdict}")


def conclude_comparisons(
    evidence: Mapping[str, tuple[float, float, float]],
    *,
    name_a: str,
    name_b: str,
    what: str = "ROC-AUC",
    level: float = 0.95,
    digits: int = 2,
) -> str:
    """A conclusion that states only what every measure agrees on.

    Each measure is classified by where its interval of ``a − b`` lies: above 0, below 0, or
    containing 0. All above: ``a`` is better on every measure; all below: ``b`` is; all
    containing 0: the data cannot tell them apart; anything else: the sentence names which
    measures disagree and draws no conclusion.

    Parameters
    ----------
    evidence : mapping
        Label (``"validation"``, ``"test"``, ``"cross-validation"``) → ``(diff, low, high)``
        of ``a − b``, in the order they should be listed.
    name_a, name_b : str
        The two models, as they should read in the sentence.
    what, level, digits
        As in :func:`describe_difference`.

    Returns
    -------
    str
        The conclusion, followed by the numbers of each measure.

    Raises
    ------
    ValueError
        If ``evidence`` is empty, or a value is not finite or its interval is reversed.

    Examples
    --------
    >>> conclude_comparisons({"validation": (0.12, 0.03, 0.28), "test": (0.07, 0.01, 0.18)},
    ...                      name_a="the CNN", name_b="the baseline")
    'On every measure (validation and test) the 95 % interval of the ROC-AUC difference lies above 0: the CNN is better than the baseline on all of them. Validation +0.12 [+0.03, +0.28]; test +0.07 [+0.01, +0.18].'
    >>> conclude_comparisons({"validation": (0.12, 0.03, 0.28), "test": (0.07, 0.0, 0.18)},
    ...                      name_a="the CNN", name_b="the baseline")  # doctest: +ELLIPSIS
    'The measures disagree: the interval lies above 0 on validation and contains 0 on test, so no conclusion ...'
    """
    if not evidence:
        raise ValueError("evidence is empty: give at least one measure (label -> (diff, low, high))")
    sides: dict[str, str] = {}
    numbers = []
    for label, triple in evidence.items():
        if len(tuple(triple)) != 3:
            raise ValueError(f"evidence[{label!r}]: expected (diff, low, high), got {triple!r}")
        diff, low, high = _check_interval(f"evidence[{label!r}]", *triple)
        sides[label] = _side_of(low, high, 0.0)
        numbers.append(f"{label} {_num(diff, digits, signed=True)} "
                       f"[{_num(low, digits, signed=True)}, {_num(high, digits, signed=True)}]")
    labels = _join(list(sides))
    found = set(sides.values())
    interval = f"the {_level_text(level)} interval of the {what} difference"
    if found == {"above"}:
        head = (f"On every measure ({labels}) {interval} lies above 0: {name_a} is better than "
                f"{name_b} on all of them.")
    elif found == {"below"}:
        head = (f"On every measure ({labels}) {interval} lies below 0: {name_b} is better than "
                f"{name_a} on all of them.")
    elif found == {"contains"}:
        head = (f"On every measure ({labels}) {interval} contains 0: these data cannot tell "
                f"{name_a} and {name_b} apart.")
    else:
        phrase = {"above": "lies above 0", "below": "lies below 0", "contains": "contains 0"}
        groups = [f"{phrase[side]} on {_join([k for k, v in sides.items() if v == side])}"
                  for side in ("above", "below", "contains") if side in found]
        head = (f"The measures disagree: the interval {_join(groups)}, so no conclusion "
                f"about whether {name_a} or {name_b} has the better {what}.")
    tail = "; ".join(numbers)
    return f"{head} {tail[0].upper()}{tail[1:]}."


def describe_calibration(
    ece_before: float, ece_after: float, *, n_scans: int, digits: int = 3
) -> str:
    """One or two sentences on what temperature scaling did to the expected calibration error.

    A change smaller than :data:`ECE_NO_CHANGE` (0.005) in absolute value is reported as no
    change. With fewer than :data:`ECE_FEW_SCANS` (100) scans a second sentence says that the
    ECE is noisy: one scan moving to another bin changes it by up to ``1 / n_scans``.

    Parameters
    ----------
    ece_before, ece_after : float
        ECE (:func:`calibration`) before and after :func:`apply_temperature`, in [0, 1].
    n_scans : int
        Number of scans the ECE was measured on (>= 1).
    digits : int
        Decimals of the numbers.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If an ECE is not in [0, 1] or ``n_scans`` < 1.

    Examples
    --------
    >>> describe_calibration(0.210, 0.080, n_scans=200)
    'Temperature scaling lowered the expected calibration error from 0.210 to 0.080 (by 0.130).'
    >>> describe_calibration(0.081, 0.079, n_scans=18)  # doctest: +NORMALIZE_WHITESPACE
    'Temperature scaling left the expected calibration error unchanged (0.081 before, 0.079 after: no change).
    With only 18 scans the ECE is noisy (one scan moving to another bin changes it by up to 1/18 = 0.056), so read
    the change with caution.'
    """
    before, after = float(ece_before), float(ece_after)
    for name, v in (("ece_before", before), ("ece_after", after)):
        if not (math.isfinite(v) and 0.0 <= v <= 1.0):
            raise ValueError(f"{name} must be an expected calibration error in [0, 1], got {v}")
    if isinstance(n_scans, bool) or int(n_scans) != n_scans or n_scans < 1:
        raise ValueError(f"n_scans must be an integer >= 1, got {n_scans!r}")
    n = int(n_scans)
    change = after - before
    b, a = _num(before, digits), _num(after, digits)
    if abs(change) < ECE_NO_CHANGE:
        text = (f"Temperature scaling left the expected calibration error unchanged ({b} before, "
                f"{a} after: no change).")
    else:
        word = "lowered" if change < 0 else "raised"
        text = (f"Temperature scaling {word} the expected calibration error from {b} to {a} "
                f"(by {_num(abs(change), digits)}).")
    if n < ECE_FEW_SCANS:
        text += (f" With only {n} scans the ECE is noisy (one scan moving to another bin changes "
                 f"it by up to 1/{n} = {_num(1 / n, digits)}), so read the change with caution.")
    return text


def describe_auc(
    auc: float,
    low: float,
    high: float,
    *,
    n_scans: int,
    where: str,
    level: float = 0.95,
    digits: int = 3,
) -> str:
    """One sentence placing a ROC-AUC and its interval relative to chance (0.5).

    Parameters
    ----------
    auc, low, high : float
        ROC-AUC and its interval (e.g. from :func:`metrics_with_ci`), in [0, 1].
    n_scans : int
        Number of scans it was measured on.
    where : str
        The scans, read after "On" ("the test split").
    level, digits
        Coverage of the interval and decimals of the numbers.

    Returns
    -------
    str
        States the AUC, the interval and its half-width ``(high − low) / 2``, and whether the
        interval lies above 0.5, below it, or contains it (an interval reaching 0.5 exactly
        contains it).

    Raises
    ------
    ValueError
        If a value is NaN or outside [0, 1] (e.g. a split with one class), the interval is
        reversed, or ``n_scans`` < 1.

    Examples
    --------
    >>> describe_auc(0.889, 0.70, 1.0, n_scans=18, where="the test split")
    'On the test split (18 scans), ROC-AUC is 0.889, 95 % interval [0.700, 1.000] (half-width 0.150): the interval lies above 0.5, so the model ranks abnormal scans above normal ones better than chance.'
    """
    auc, low, high = _check_interval("describe_auc", auc, low, high)
    if not 0.0 <= low <= high <= 1.0 or not 0.0 <= auc <= 1.0:
        raise ValueError(f"describe_auc: ROC-AUC and its interval must lie in [0, 1], got "
                         f"{auc} [{low}, {high}]")
    if isinstance(n_scans, bool) or int(n_scans) != n_scans or n_scans < 1:
        raise ValueError(f"n_scans must be an integer >= 1, got {n_scans!r}")
    verdict = {
        "above": "the interval lies above 0.5, so the model ranks abnormal scans above normal ones "
                 "better than chance.",
        "below": "the interval lies below 0.5, so the model ranks abnormal scans below normal ones "
                 "more often than chance would (are the labels or the output unit swapped?).",
        "contains": "the interval contains 0.5, so these scans cannot tell the model from chance.",
    }[_side_of(low, high, 0.5)]
    return (f"On {where} ({int(n_scans)} scans), ROC-AUC is {_num(auc, digits)}, {_level_text(level)} "
            f"interval [{_num(low, digits)}, {_num(high, digits)}] (half-width "
            f"{_num((high - low) / 2, digits)}): {verdict}")
