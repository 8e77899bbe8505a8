"""The checks of chapter 06_evaluation (``notebooks/06_evaluation.ipynb``).

* Exercise 06.1: sensitivity and specificity from a confusion matrix.
* Exercise 06.2: the highest threshold that reaches a target sensitivity.
* Exercise 06.3: the expected calibration error of a tiny example.
* Exercise 06.4: the threshold for a target sensitivity on validation, specificity with its CI on test.
* concept checks (:func:`ctutils.exercises.check_choice`): auc_small_test, temperature_scaling, gradcam_table, sensitivity_below_target

Imported, and every check re-exported, by :mod:`ctutils.exercises`: call them as ``exercises.check_…(…)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ctutils.exercises import NotYet, choice, exercise, expect

__all__ = [
    "check_ece",
    "check_sensitivity_specificity",
    "check_specificity_at_sensitivity",
    "check_threshold_for_sensitivity",
]


@exercise("06_evaluation")
def check_sensitivity_specificity(sensitivity_specificity: Callable[..., Any]) -> str:
    """Exercise 06.1: sensitivity and specificity from a confusion matrix."""
    cases = [
        ([[5, 1], [2, 4]], (4 / 6, 5 / 6)),
        (np.array([[50, 10], [5, 35]]), (35 / 40, 50 / 60)),
        ([[9, 0], [3, 3]], (3 / 6, 9 / 9)),
    ]
    for cm, (sens, spec) in cases:
        shown = np.asarray(cm).tolist()
        got = sensitivity_specificity(cm)
        try:
            pair = tuple(float(v) for v in got)
        except (TypeError, ValueError):
            raise NotYet(f"sensitivity_specificity({shown}) should return two numbers "
                         f"(sensitivity, specificity), got {got!r}") from None
        expect(len(pair) == 2, f"sensitivity_specificity({shown}) should return two numbers, got {len(pair)}")
        if np.allclose(pair, (sens, spec)):
            continue
        (tn, fp), (fn, tp) = np.asarray(cm, dtype=float)
        if np.allclose(pair, (spec, sens)):
            hint = "return (sensitivity, specificity), in that order"
        elif np.allclose(pair, (tp / (tp + fp), tn / (tn + fn))):
            hint = ("rows are the truth and columns the prediction ([[tn, fp], [fn, tp]]): sensitivity = tp / (tp + fn) "
                    "divides by a row, not a column (tp / (tp + fp) is the precision)")
        else:
            hint = "sensitivity = tp / (tp + fn) (abnormal scans found), specificity = tn / (tn + fp) (normal scans cleared)"
        raise NotYet(f"sensitivity_specificity({shown}) gave ({pair[0]:.3f}, {pair[1]:.3f}), "
                     f"expected ({sens:.3f}, {spec:.3f}): {hint}")
    return "sensitivity = tp / (tp + fn), specificity = tn / (tn + fp): each divides by a row of the matrix (the truth)"


#: Exercise 06.2's scores: 10 abnormal and 6 normal scans.
_SENS_SCORES_POS = [0.95, 0.90, 0.85, 0.80, 0.70, 0.60, 0.55, 0.40, 0.35, 0.20]
_SENS_SCORES_NEG = [0.75, 0.50, 0.45, 0.30, 0.10, 0.05]


@exercise("06_evaluation")
def check_threshold_for_sensitivity(threshold_for_sensitivity: Callable[..., Any]) -> str:
    """Exercise 06.2: the highest threshold that reaches a target sensitivity."""
    y_true = np.array([1] * len(_SENS_SCORES_POS) + [0] * len(_SENS_SCORES_NEG))
    scores = np.array(_SENS_SCORES_POS + _SENS_SCORES_NEG)
    order = np.random.default_rng(0).permutation(y_true.size)  # not sorted: sorting is part of the job
    y_true, scores = y_true[order], scores[order]
    positives = np.sort(scores[y_true == 1])[::-1]
    for target in (0.9, 1.0, 0.5, 0.75):
        expected = float(positives[int(np.ceil(target * positives.size - 1e-9)) - 1])
        got = threshold_for_sensitivity(y_true.copy(), scores.copy(), target=target)
        expect(isinstance(got, (int, float, np.number)) and not isinstance(got, bool),
               f"threshold_for_sensitivity(..., target={target}) should return a number, got {got!r}")
        got = float(got)
        if np.isclose(got, expected):
            continue
        sens = float(np.mean(scores[y_true == 1] >= got))
        spec = float(np.mean(scores[y_true == 0] < got))
        if sens < target:
            hint = (f"at threshold {got:.2f} only {sens:.0%} of the abnormal scans have a score >= it: "
                    f"below the target {target:.0%}")
        else:
            hint = (f"threshold {got:.2f} reaches the target (sensitivity {sens:.0%}) but a higher one also does and "
                    f"clears more normal scans (specificity here {spec:.0%}): take the highest")
        raise NotYet(f"threshold_for_sensitivity(..., target={target}) gave {got:.2f}, expected {expected:.2f}: {hint}")
    return ("for 90 % sensitivity the threshold is 0.35, the score of the 9th of 10 abnormal scans; "
            "ctutils.evaluation.choose_threshold(method='sensitivity') does the same on the ROC curve")


@exercise("06_evaluation")
def check_ece(ece: Callable[..., Any]) -> str:
    """Exercise 06.3: the expected calibration error of a tiny example."""
    cases = [
        ([0, 1, 1, 1], [0.2, 0.4, 0.8, 0.9], 2),
        ([0, 0, 1, 1, 1, 0], [0.05, 0.15, 0.72, 0.78, 0.95, 0.93], 10),
        ([0, 1], [0.0, 1.0], 10),
        ([1, 1, 0, 0], [0.62, 0.64, 0.66, 0.68], 5),
    ]
    for y_true, y_prob, n_bins in cases:
        shown = f"ece({y_true}, {y_prob}, n_bins={n_bins})"
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        yt, yp = np.array(y_true, dtype=float), np.array(y_prob, dtype=float)
        which = np.searchsorted(edges[1:-1], yp)
        gaps, signed, counts = [], [], []
        for b in range(n_bins):
            members = which == b
            if members.any():
                gaps.append(abs(yt[members].mean() - yp[members].mean()))
                signed.append(yt[members].mean() - yp[members].mean())
                counts.append(int(members.sum()))
        weights = np.array(counts) / yt.size
        expected = float(np.sum(weights * np.array(gaps)))
        got = ece(list(y_true), list(y_prob), n_bins=n_bins)
        expect(isinstance(got, (int, float, np.number)) and not isinstance(got, bool),
               f"{shown} should return a number, got {got!r}")
        got = float(got)
        if np.isclose(got, expected, atol=1e-9):
            continue
        if np.isclose(got, float(np.mean(gaps)), atol=1e-9):
            hint = "weight each bin's gap by its share of the scans, n_b / N (a mean over the bins ignores how full they are)"
        elif np.isclose(got, abs(float(np.sum(weights * np.array(signed)))), atol=1e-9) or np.isclose(
                got, float(np.sum(weights * np.array(signed))), atol=1e-9):
            hint = "take the absolute gap |fraction abnormal − mean probability| in each bin before adding"
        elif np.isclose(got, float(np.mean(np.abs(yt - yp))), atol=1e-9):
            hint = "compare per bin, not per scan: the mean probability of a bin against its fraction of abnormal scans"
        else:
            hint = ("ECE = Σ_b (n_b / N) · |fraction abnormal in bin b − mean probability in bin b|, "
                    "over n_bins equal-width bins of [0, 1]")
        raise NotYet(f"{shown} gave {got:.4f}, expected {expected:.4f}: {hint}")
    return "ECE = Σ_b (n_b / N) · |fraction abnormal − mean P| — 0.175 for the first example, 0 for a perfect one"


# ----------------------------------------------------------------------------- 06.4: evaluate at an operating point

#: Exercise 06.4's data: validation as in exercise 06.2; test with 6 abnormal and 8 normal scans.
_OP_TEST_POS = [0.90, 0.80, 0.60, 0.30, 0.25, 0.15]
_OP_TEST_NEG = [0.50, 0.40, 0.30, 0.22, 0.20, 0.10, 0.05, 0.02]


def _highest_threshold(y_true: np.ndarray, scores: np.ndarray, target: float) -> float:
    positives = np.sort(scores[y_true == 1])[::-1]
    return float(positives[int(np.ceil(target * positives.size - 1e-9)) - 1])


def _specificity_ci(normal_scores: np.ndarray, threshold: float, *, n_boot: int, seed: int) -> tuple[float, float]:
    """Exercise 06.4's documented bootstrap: resample the normal test scans, percentile 95 % interval."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, normal_scores.size, size=(n_boot, normal_scores.size))
    specificities = np.mean(normal_scores[rows] < threshold, axis=1)
    low, high = np.percentile(specificities, [2.5, 97.5])
    return float(low), float(high)


def _operating_point(got: Any, shown: str) -> tuple[float, float, float, tuple[float, float]]:
    message = f"{shown} should return (threshold, sensitivity, specificity, (low, high)), got {got!r}"
    try:
        threshold, sens, spec, ci = got
        low, high = ci
        return float(threshold), float(sens), float(spec), (float(low), float(high))
    except (TypeError, ValueError):
        raise NotYet(message) from None


@exercise("06_evaluation")
def check_specificity_at_sensitivity(specificity_at_sensitivity: Callable[..., Any]) -> str:
    """Exercise 06.4: the threshold for a target sensitivity on validation, specificity with its CI on test."""
    y_val = np.array([1] * len(_SENS_SCORES_POS) + [0] * len(_SENS_SCORES_NEG))
    p_val = np.array(_SENS_SCORES_POS + _SENS_SCORES_NEG)
    small = (np.array([1] * len(_OP_TEST_POS) + [0] * len(_OP_TEST_NEG)), np.array(_OP_TEST_POS + _OP_TEST_NEG))
    # 40 normal scans: so many possible specificities that only the documented resampling and seed give the interval
    large = (np.array([1] * 30 + [0] * 40), np.concatenate([np.linspace(0.15, 0.95, 30), np.linspace(0.01, 0.79, 40)]))
    cases = [(small, 0.95, 1000, 0), (small, 0.9, 40, 3), (small, 0.5, 500, 1), (small, 0.95, 25, 7), (large, 0.95, 200, 7)]
    for (y_test, p_test), target, n_boot, seed in cases:
        mixed = np.random.default_rng(1).permutation(y_test.size)  # not sorted by class
        y_test, p_test = y_test[mixed], p_test[mixed]
        data = f"{y_test.size}-scan test set" if y_test.size > 14 else "y_test, p_test"
        shown = f"specificity_at_sensitivity(y_val, p_val, {data}, target={target}, n_boot={n_boot}, seed={seed})"
        args = (y_val.copy(), p_val.copy(), y_test.copy(), p_test.copy())
        got = _operating_point(specificity_at_sensitivity(*args, target=target, n_boot=n_boot, seed=seed), shown)
        threshold, sens, spec, (low, high) = got
        want_t = _highest_threshold(y_val, p_val, target)
        on_test = _highest_threshold(y_test, p_test, target)
        if not np.isclose(threshold, want_t):
            hint = ("that threshold was chosen on the test scans: choose it on validation and apply it unchanged "
                    "to test" if np.isclose(threshold, on_test) else
                    "the highest threshold t with mean(p_val[y_val == 1] >= t) >= target (exercise 06.2)")
            raise NotYet(f"{shown}: threshold {threshold:.2f}, expected {want_t:.2f}: {hint}")
        normal = p_test[y_test == 0]
        want_sens = float(np.mean(p_test[y_test == 1] >= want_t))
        want_spec = float(np.mean(normal < want_t))
        if not (np.isclose(sens, want_sens) and np.isclose(spec, want_spec)):
            strict = (float(np.mean(p_test[y_test == 1] > want_t)), float(np.mean(normal <= want_t)))
            hint = ("a scan with score == threshold is called abnormal: sensitivity counts p >= t, specificity p < t"
                    if np.allclose((sens, spec), strict) else
                    "return them in the order (threshold, sensitivity, specificity, ci)"
                    if np.allclose((sens, spec), (want_spec, want_sens)) else
                    "on test: sensitivity = mean(p_test[y_test == 1] >= t), specificity = mean(p_test[y_test == 0] < t)")
            raise NotYet(f"{shown}: test sensitivity {sens:.3f} and specificity {spec:.3f}, expected "
                         f"{want_sens:.3f} and {want_spec:.3f}: {hint}")
        want_ci = _specificity_ci(normal, want_t, n_boot=n_boot, seed=seed)
        if np.allclose((low, high), want_ci, atol=1e-9):
            continue
        expect(0.0 <= low <= spec <= high <= 1.0, f"{shown}: the interval ({low:.3f}, {high:.3f}) should lie in "
                                                  f"[0, 1] and contain the specificity {spec:.3f}")
        for _ in range(3):  # an unseeded generator can repeat an interval by chance, rarely three times
            again = _operating_point(specificity_at_sensitivity(*args, target=target, n_boot=n_boot, seed=seed), shown)
            expect(again[3] == (low, high), f"{shown} gave another interval when called again: draw from "
                                            "np.random.default_rng(seed), as the statement says")
        everything = np.random.default_rng(seed).integers(0, p_test.size, size=(n_boot, p_test.size))
        all_rows = [np.mean(p_test[r][y_test[r] == 0] < want_t) for r in everything]
        if np.allclose((low, high), np.nanpercentile(all_rows, [2.5, 97.5]), atol=1e-9):
            hint = "resample the normal test scans only (specificity is a fraction of them), not all test scans"
        elif np.allclose((low, high), _specificity_ci(normal, want_t, n_boot=n_boot, seed=seed + 1), atol=1e-9) \
                or not np.isclose(high - low, want_ci[1] - want_ci[0], atol=0.15):
            hint = ("follow the statement's scheme exactly: rng = np.random.default_rng(seed), one call "
                    "rng.integers(0, n_normal, size=(n_boot, n_normal)), np.percentile(..., [2.5, 97.5])")
        else:
            hint = ("close, but not the statement's scheme: one call rng.integers(0, n_normal, size=(n_boot, n_normal)) "
                    "indexes the normal scores, and np.percentile(specificities, [2.5, 97.5]) gives the interval")
        raise NotYet(f"{shown}: interval ({low:.3f}, {high:.3f}), expected ({want_ci[0]:.3f}, {want_ci[1]:.3f}): {hint}")
    ci = _specificity_ci(np.array(_OP_TEST_NEG), 0.2, n_boot=1000, seed=0)
    return (f"on the check's example data, the validation threshold for 95 % sensitivity is 0.20; on its test scans it "
            f"gives sensitivity 5/6 and specificity 3/8 = 0.375, 95 % CI {ci[0]:.3f}–{ci[1]:.3f}: eight normal scans "
            f"cannot pin a specificity down (now try it on this chapter's y_val, p_val, y_true, y_prob)")


# ----------------------------------------------------------------------------- concept checks

choice("06_evaluation", "auc_small_test", answer="b", why_not={
    "a": "0.80 is the point estimate; on 18 scans its 95 % interval reaches down to about 0.6.",
    "c": "whether 0.80 is useful depends on the task and the operating point, and it is not even known to ±0.2.",
    "d": "a model without skill gives 0.5 only on average; on 9 + 9 scans it reaches 0.7 or more in about "
         "1 run in 12.",
}, lesson="On 9 + 9 scans the standard error of an AUC of 0.8 is about 0.11 (Hanley–McNeil), so the 95 % interval "
          "is roughly 0.6–1.0: report the interval, and judge a model on more scans.")

choice("06_evaluation", "temperature_scaling", answer="d", why_not={
    "a": "no rescaling of the scores that keeps their order can raise the AUC.",
    "b": "no rescaling of the scores that keeps their order can lower the AUC.",
    "c": "any T > 0 keeps the order of the scores.",
}, lesson="ROC-AUC depends only on the order of the scores, and dividing the logits by T > 0 keeps it: temperature "
          "scaling changes calibration (ECE, the probabilities a reader sees), never the ranking.")

choice("06_evaluation", "gradcam_table", answer="a", why_not={
    "b": "the table is not part of the patient; a finding there cannot be the disease.",
    "c": "a heat map that is consistent across most abnormal scans is a signal, not noise.",
    "d": "a high AUC says the scores separate these test scans, not why: a shortcut scores high too.",
}, lesson="A model can reach a high AUC through a shortcut that differs between the classes in this data (table, "
          "scanner, site, a text marker). Test it: mask the table, evaluate on scans from another scanner or site.")

choice("06_evaluation", "sensitivity_below_target", answer="c", why_not={
    "a": "a threshold reaches its target only on the scans it was chosen on; elsewhere it is an estimate.",
    "b": "choosing it on test makes the test sensitivity right by construction, and the estimate worthless.",
    "d": "it is defined, only uncertain: with 6 abnormal scans each miss costs 17 percentage points.",
}, lesson="The target holds on the validation scans the threshold was chosen on; on new scans sensitivity varies, "
          "the more so with few abnormal scans. Report the test value with its confidence interval.")
