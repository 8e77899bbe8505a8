"""Checks of chapters 05 (training) and 06 (evaluation): right answers pass, wrong ones get a hint, stubs say "not done yet"."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ctutils import exercises

NOT_DONE = "❌ Exercise not done yet: implement `"


def stub(*args, **kwargs):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: write your code here, then run the check cell below")


# ----------------------------------------------------------------------------- 05_training answers


def lr_at_step(step, *, initial_lr=1e-4, decay_steps=100_000, decay_rate=0.96, staircase=True):
    periods = step // decay_steps if staircase else step / decay_steps
    return initial_lr * decay_rate**periods


def best_epoch(history, *, monitor="val_auc", mode="max"):
    best, best_value = None, None
    for epoch, value in zip(history["epoch"], history[monitor]):
        if value is None:
            continue
        if best_value is None or (value > best_value if mode == "max" else value < best_value):
            best, best_value = epoch, value
    return best


# ----------------------------------------------------------------------------- 06_evaluation answers


def sensitivity_specificity(cm):
    (tn, fp), (fn, tp) = cm
    return tp / (tp + fn), tn / (tn + fp)


def threshold_for_sensitivity(y_true, scores, *, target=0.9):
    positives = sorted((s for s, y in zip(scores, y_true) if y == 1), reverse=True)
    return positives[math.ceil(target * len(positives) - 1e-9) - 1]


def ece(y_true, y_prob, *, n_bins=10):
    y_true, y_prob = np.asarray(y_true, dtype=float), np.asarray(y_prob, dtype=float)
    which = np.clip(np.ceil(y_prob * n_bins).astype(int) - 1, 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        members = which == b
        if members.any():
            total += members.sum() / y_true.size * abs(y_true[members].mean() - y_prob[members].mean())
    return total


RIGHT = {
    "05_training/lr_at_step": lr_at_step,
    "05_training/best_epoch": best_epoch,
    "06_evaluation/sensitivity_specificity": sensitivity_specificity,
    "06_evaluation/threshold_for_sensitivity": threshold_for_sensitivity,
    "06_evaluation/ece": ece,
}


def test_every_check_of_the_two_chapters_is_tested() -> None:
    registered = {key for key in exercises.EXERCISES if key.startswith(("05_training/", "06_evaluation/"))}
    assert registered == set(RIGHT)


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_right_answers_pass(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check(name, RIGHT[name]).passed is True
    assert capsys.readouterr().out.startswith("✅ Correct: ")


def test_success_messages_state_the_lesson(capsys: pytest.CaptureFixture[str]) -> None:
    exercises.check_lr_at_step(lr_at_step)
    assert "its learning rate is 1e-4 throughout" in capsys.readouterr().out
    exercises.check_threshold_for_sensitivity(threshold_for_sensitivity)
    assert "for 90 % sensitivity the threshold is 0.35" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_stubs_say_not_done_yet(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check(name, stub).passed is False
    out = capsys.readouterr().out
    assert out.startswith(NOT_DONE + "stub` above"), out
    assert "Traceback" not in out


# ----------------------------------------------------------------------------- wrong answers get a hint


def lr_no_staircase(step, *, initial_lr=1e-4, decay_steps=100_000, decay_rate=0.96, staircase=True):
    return initial_lr * decay_rate ** (step / decay_steps)


def lr_always_staircase(step, *, initial_lr=1e-4, decay_steps=100_000, decay_rate=0.96, staircase=True):
    return initial_lr * decay_rate ** (step // decay_steps)


def lr_product(step, *, initial_lr=1e-4, decay_steps=100_000, decay_rate=0.96, staircase=True):
    return initial_lr * decay_rate * (step // decay_steps if staircase else step / decay_steps)


def best_epoch_zero_based(history, *, monitor="val_auc", mode="max"):
    return best_epoch(history, monitor=monitor, mode=mode) - 1


def best_epoch_last_tie(history, *, monitor="val_auc", mode="max"):
    best, best_value = None, None
    for epoch, value in zip(history["epoch"], history[monitor]):
        if value is not None and (best_value is None or (value >= best_value if mode == "max" else value <= best_value)):
            best, best_value = epoch, value
    return best


def best_epoch_always_max(history, *, monitor="val_auc", mode="max"):
    return best_epoch(history, monitor=monitor, mode="max")


def best_epoch_changes_history(history, *, monitor="val_auc", mode="max"):
    history[monitor] = [v for v in history[monitor] if v is not None]
    return best_epoch(history, monitor=monitor, mode=mode)


@pytest.mark.parametrize(
    ("name", "answer", "hint"),
    [
        ("05_training/lr_at_step", lr_no_staircase, "staircase=True counts whole decay periods only"),
        ("05_training/lr_at_step", lr_always_staircase, "with staircase=False the exponent is the fraction"),
        ("05_training/lr_at_step", lr_product, "decay_rate ** periods, not decay_rate * periods"),
        ("05_training/lr_at_step", lambda step, **kw: "1e-4", "should return a number, got '1e-4'"),
        ("05_training/best_epoch", best_epoch_zero_based, "epochs are numbered from 1"),
        ("05_training/best_epoch", best_epoch_last_tie, "on a tie keep the first epoch"),
        ("05_training/best_epoch", best_epoch_always_max, "mode='min' means smaller is better"),
        ("05_training/best_epoch", best_epoch_changes_history, "must not change the history"),
        ("05_training/best_epoch", lambda h, **kw: 3.0, "should return an epoch number (int)"),
        ("06_evaluation/sensitivity_specificity", lambda cm: sensitivity_specificity(cm)[::-1],
         "return (sensitivity, specificity), in that order"),
        ("06_evaluation/sensitivity_specificity", lambda cm: sensitivity_specificity(np.transpose(cm)),
         "rows are the truth and columns the prediction"),
        ("06_evaluation/sensitivity_specificity", lambda cm: 0.5, "should return two numbers"),
        ("06_evaluation/threshold_for_sensitivity", lambda y, s, target=0.9: 0.40,
         "at threshold 0.40 only 80% of the abnormal scans"),
        ("06_evaluation/threshold_for_sensitivity", lambda y, s, target=0.9: float(np.min(s)),
         "take the highest"),
        ("06_evaluation/ece", lambda y, p, n_bins=10: 0.15, "ece([0, 1, 1, 1], [0.2, 0.4, 0.8, 0.9], n_bins=2) gave 0.1500"),
        ("06_evaluation/ece", lambda y, p, n_bins=10: float(np.mean(np.abs(np.subtract(y, p)))),
         "compare per bin, not per scan"),
    ],
)
def test_wrong_answers_get_a_hint(name: str, answer, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check(name, answer).passed is False
    out = capsys.readouterr().out
    assert out.startswith("❌ Not yet: "), out
    assert hint in out, out


def ece_unweighted(y_true, y_prob, *, n_bins=10):
    y_true, y_prob = np.asarray(y_true, dtype=float), np.asarray(y_prob, dtype=float)
    which = np.clip(np.ceil(y_prob * n_bins).astype(int) - 1, 0, n_bins - 1)
    gaps = [abs(y_true[which == b].mean() - y_prob[which == b].mean()) for b in range(n_bins) if (which == b).any()]
    return float(np.mean(gaps))


def ece_signed(y_true, y_prob, *, n_bins=10):
    y_true, y_prob = np.asarray(y_true, dtype=float), np.asarray(y_prob, dtype=float)
    which = np.clip(np.ceil(y_prob * n_bins).astype(int) - 1, 0, n_bins - 1)
    return float(sum((which == b).sum() / y_true.size * (y_true[which == b].mean() - y_prob[which == b].mean())
                     for b in range(n_bins) if (which == b).any()))


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (ece_unweighted, "weight each bin's gap by its share of the scans"),
        (ece_signed, "take the absolute gap"),
    ],
)
def test_ece_slips_get_their_hint(answer, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_ece(answer).passed is False
    assert hint in capsys.readouterr().out


def test_a_crash_in_the_learners_code_names_the_line(capsys: pytest.CaptureFixture[str]) -> None:
    def best_epoch_crashing(history, *, monitor="val_auc", mode="max"):
        return max(history[monitor]) and 1  # None in val_acc: TypeError

    assert exercises.check_best_epoch(lambda h, **kw: best_epoch_crashing(h, monitor="val_acc")).passed is False
    out = capsys.readouterr().out
    assert out.startswith("❌ Not yet: your code raised TypeError"), out
    assert "(line " in out and "return max(history[monitor]) and 1" in out, out


def test_checks_agree_with_the_library() -> None:
    """The exercises' expected values are the ones ctutils computes."""
    keras = pytest.importorskip("keras")
    from ctutils.evaluation import calibration, choose_threshold

    schedule = keras.optimizers.schedules.ExponentialDecay(1e-4, decay_steps=100_000, decay_rate=0.96, staircase=True)
    for step in (0, 7_000, 250_000):
        assert float(schedule(step)) == pytest.approx(lr_at_step(step), rel=1e-6)
    y = [1] * len(exercises._SENS_SCORES_POS) + [0] * len(exercises._SENS_SCORES_NEG)
    s = exercises._SENS_SCORES_POS + exercises._SENS_SCORES_NEG
    for target in (0.5, 0.75, 0.9, 1.0):
        assert choose_threshold(y, s, method="sensitivity", target=target) == threshold_for_sensitivity(y, s, target=target)
    for yt, yp, bins in (([0, 1, 1, 1], [0.2, 0.4, 0.8, 0.9], 2), ([0, 0, 1, 1, 1, 0], [0.05, 0.15, 0.72, 0.78, 0.95, 0.93], 10)):
        assert calibration(yt, yp, n_bins=bins)[1] == pytest.approx(ece(yt, yp, n_bins=bins))
