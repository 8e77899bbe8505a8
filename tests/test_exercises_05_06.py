"""Checks of chapters 05 (training) and 06 (evaluation): right answers pass, wrong ones get a hint, stubs say "not done yet"."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from ctutils import exercises
from ctutils.exercises import ch05_training, ch06_evaluation
from ctutils.splits import split_sizes

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


def build_tiny_cnn(input_shape):
    from ctutils.tfimport import keras

    return keras.Sequential([
        keras.Input(input_shape),
        keras.layers.Conv3D(4, 3, padding="same", activation="relu"),
        keras.layers.MaxPool3D(2),
        keras.layers.Conv3D(8, 3, padding="same", activation="relu"),
        keras.layers.MaxPool3D(2),
        keras.layers.GlobalAveragePooling3D(),
        keras.layers.Dense(1, activation="sigmoid"),
    ])


def split_by_study(keys, labels, *, seed):
    study_label = {key.split("/")[0]: y for key, y in zip(keys, labels)}
    rng = np.random.default_rng(seed)
    where = {}
    for label in sorted(set(study_label.values())):
        studies = sorted(s for s, y in study_label.items() if y == label)
        n_train, n_val, _ = split_sizes(len(studies))
        for rank, position in enumerate(rng.permutation(len(studies))):
            where[studies[position]] = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
    return tuple([key for key in keys if where[key.split("/")[0]] == split] for split in ("train", "val", "test"))


CHOICES_05 = {"diverging_curves": "c", "best_epoch_optimism": "b", "accuracy_vs_auc": "a", "shuffled_labels": "d"}


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


def specificity_at_sensitivity(y_val, p_val, y_test, p_test, *, target=0.95, n_boot=1000, seed=0):
    # The statement's bootstrap, written as a loop of rng.choice: the same draws as one rng.integers call.
    y_val, p_val, y_test, p_test = map(np.asarray, (y_val, p_val, y_test, p_test))
    t = threshold_for_sensitivity(y_val, p_val, target=target)
    normal = p_test[y_test == 0]
    rng = np.random.default_rng(seed)
    specs = [np.mean(rng.choice(normal, size=normal.size, replace=True) < t) for _ in range(n_boot)]
    low, high = np.percentile(specs, [2.5, 97.5])
    return t, np.mean(p_test[y_test == 1] >= t), np.mean(normal < t), (low, high)


CHOICES_06 = {"auc_small_test": "b", "temperature_scaling": "d", "gradcam_table": "a", "sensitivity_below_target": "c"}


RIGHT = {
    "05_training/lr_at_step": lr_at_step,
    "05_training/best_epoch": best_epoch,
    "05_training/tiny_cnn": build_tiny_cnn,
    "05_training/split_by_study": split_by_study,
    **{f"05_training/{name}": (lambda letter: lambda: letter)(letter) for name, letter in CHOICES_05.items()},
    "06_evaluation/sensitivity_specificity": sensitivity_specificity,
    "06_evaluation/threshold_for_sensitivity": threshold_for_sensitivity,
    "06_evaluation/ece": ece,
    "06_evaluation/specificity_at_sensitivity": specificity_at_sensitivity,
    **{f"06_evaluation/{name}": (lambda letter: lambda: letter)(letter) for name, letter in CHOICES_06.items()},
}


def test_every_check_of_the_two_chapters_is_tested() -> None:
    registered = {key for key in exercises.EXERCISES if key.startswith(("05_training/", "06_evaluation/"))}
    assert registered == set(RIGHT)


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_right_answers_pass(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    if name.endswith("tiny_cnn"):
        pytest.importorskip("tensorflow")
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
    y = [1] * len(ch06_evaluation._SENS_SCORES_POS) + [0] * len(ch06_evaluation._SENS_SCORES_NEG)
    s = ch06_evaluation._SENS_SCORES_POS + ch06_evaluation._SENS_SCORES_NEG
    for target in (0.5, 0.75, 0.9, 1.0):
        assert choose_threshold(y, s, method="sensitivity", target=target) == threshold_for_sensitivity(y, s, target=target)
    for yt, yp, bins in (([0, 1, 1, 1], [0.2, 0.4, 0.8, 0.9], 2), ([0, 0, 1, 1, 1, 0], [0.05, 0.15, 0.72, 0.78, 0.95, 0.93], 10)):
        assert calibration(yt, yp, n_bins=bins)[1] == pytest.approx(ece(yt, yp, n_bins=bins))


# ============================================================================= new exercises (issue 10)
# ----------------------------------------------------------------------------- 05.3 tiny_cnn


def tiny_cnn_variant(*, filters=(4, 8), padding="same", conv_activation="relu", head="gap", last="sigmoid",
                     units=1, frozen=False, fixed_shape=None):
    """The exercise's network with one thing changed, as a learner might get it wrong."""

    def build(input_shape):
        from ctutils.tfimport import keras

        layers = [keras.Input(fixed_shape or input_shape)]
        for f in filters:
            layers += [keras.layers.Conv3D(f, 3, padding=padding, activation=conv_activation), keras.layers.MaxPool3D(2)]
        layers += [keras.layers.GlobalAveragePooling3D() if head == "gap" else keras.layers.Flatten(),
                   keras.layers.Dense(units, activation=last)]
        model = keras.Sequential(layers)
        model.trainable = not frozen
        return model

    return build


def test_tiny_cnn_parameters_by_hand() -> None:
    pytest.importorskip("tensorflow")
    conv1 = (3 * 3 * 3 * 1 + 1) * 4  # 112: 27 weights per input channel and a bias, per filter
    conv2 = (3 * 3 * 3 * 4 + 1) * 8  # 872
    dense = 8 * 1 + 1  # 9: global average pooling leaves 8 features
    assert conv1 + conv2 + dense == 993 == ch05_training._TINY_CNN_PARAMS
    assert build_tiny_cnn((16, 16, 8, 1)).count_params() == 993
    x, y = ch05_training._blob_volumes(seed=0)
    assert x.shape == (8, 16, 16, 8, 1) and y.tolist() == [0, 1, 0, 1, 0, 1, 0, 1]
    assert x[1::2].max() > x[0::2].max() + 0.3  # the blobs are bright


def test_tiny_cnn_right(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tensorflow")
    assert exercises.check_tiny_cnn(build_tiny_cnn).passed is True
    assert capsys.readouterr().out.startswith("✅ Correct: 993 parameters, and 40 Adam steps fit the 8 training volumes")


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda shape: None, "build_tiny_cnn should return a keras.Model, got NoneType"),
        (tiny_cnn_variant(fixed_shape=(64, 64, 32, 1)), "build it for the input_shape it is given, (16, 16, 8, 1)"),
        (tiny_cnn_variant(units=2, last="softmax"), "the output should be one probability per volume, shape (None, 1)"),
        (tiny_cnn_variant(filters=(8, 4)), "two Conv3D layers with 4 then 8 filters, got 2 with filters (8, 4)"),
        (tiny_cnn_variant(padding="valid"), "an axis shrinks to nothing (Keras: 'Computed output size would be zero or negative')"),
        (tiny_cnn_variant(padding="valid", fixed_shape=(32, 32, 32, 1)), "build it for the input_shape it is given"),
        (tiny_cnn_variant(conv_activation=None), "activation='relu' after each convolution, got ['linear', 'linear']"),
        (tiny_cnn_variant(head="flatten"), "with GlobalAveragePooling3D() (not Flatten)"),
        (tiny_cnn_variant(last="softmax"), "every prediction is 1.000: softmax over one unit is always 1"),
        (tiny_cnn_variant(frozen=True), "some layers are frozen (trainable=False)"),
    ],
)
def test_tiny_cnn_wrong_answers_get_a_hint(answer, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tensorflow")
    assert exercises.check_tiny_cnn(answer).passed is False
    out = capsys.readouterr().out
    assert out.startswith("❌ Not yet: ") and hint in out, out


# ----------------------------------------------------------------------------- 05.4 split_by_study


def test_split_by_study_data_by_hand() -> None:
    keys, labels = ch05_training._series_keys()
    studies = {k.split("/")[0] for k in keys}
    assert len(studies) == 20 and len(keys) == 6 * 1 + 7 * 2 + 7 * 3  # studies 3, 6, … have 1 series; 1, 4, … 2; 2, 5, … 3
    assert keys[:4] == ["study_0001/s1", "study_0001/s2", "study_0002/s1", "study_0002/s2"]
    assert sum(labels) == 3 + 1 + 2 + 3 + 1 + 2 + 3 + 1 + 2 + 3  # the scans of abnormal studies 11 to 20
    assert split_sizes(10) == (7, 2, 1)  # per class: 10 studies → 7, 2, 1
    train, val, test = split_by_study(keys, labels, seed=0)
    assert len({k.split("/")[0] for k in test}) == 2  # 1 normal + 1 abnormal study


def split_scans(keys, labels, *, seed):
    """The leaky split of the statement: scans shuffled, not studies."""
    order = np.random.default_rng(seed).permutation(len(keys))
    n_train, n_val, _ = split_sizes(len(keys))
    return ([keys[i] for i in order[:n_train]], [keys[i] for i in order[n_train:n_train + n_val]],
            [keys[i] for i in order[n_train + n_val:]])


def split_not_stratified(keys, labels, *, seed):
    studies = sorted({k.split("/")[0] for k in keys})
    order = np.random.default_rng(seed).permutation(len(studies))
    n_train, n_val, _ = split_sizes(len(studies))
    where = {studies[p]: 0 if r < n_train else 1 if r < n_train + n_val else 2 for r, p in enumerate(order)}
    return tuple([k for k in keys if where[k.split("/")[0]] == i] for i in range(3))


#: Stands for an unseeded generator (new draws on every call), deterministically.
FRESH_SEEDS = itertools.count(100)


def split_unseeded(keys, labels, *, seed):
    return split_by_study(keys, labels, seed=next(FRESH_SEEDS))


def split_order_dependent(keys, labels, *, seed):
    study_label = {k.split("/")[0]: y for k, y in zip(keys, labels)}  # first-seen order, not sorted
    rng = np.random.default_rng(seed)
    where = {}
    for label in (0, 1):
        studies = [s for s, y in study_label.items() if y == label]
        n_train, n_val, _ = split_sizes(len(studies))
        for rank, p in enumerate(rng.permutation(len(studies))):
            where[studies[p]] = 0 if rank < n_train else 1 if rank < n_train + n_val else 2
    return tuple([k for k in keys if where[k.split("/")[0]] == i] for i in range(3))


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (split_scans, "has scans in train and in test — the leak"),
        (split_not_stratified, "class 0 has 10 studies, split"),
        (split_unseeded, "gave another split the second time"),
        (lambda keys, labels, *, seed: split_by_study(keys, labels, seed=0), "seeds 0, 1 and 2 give the same split"),
        (split_order_dependent, "depends on the order of the keys"),
        (lambda keys, labels, *, seed: split_by_study(keys, labels, seed=seed)[:2], "should return three lists"),
        (lambda keys, labels, *, seed: [sorted({k.split("/")[0] for k in part})
                                        for part in split_by_study(keys, labels, seed=seed)], "leaves out 41 scan(s)"),
        (lambda keys, labels, *, seed: [keys, [], []], "class 0 has 10 studies, split (10, 0, 0)"),
        (lambda keys, labels, *, seed: [keys, keys[:1], []], "puts 'study_0001/s1' in two places"),
    ],
)
def test_split_by_study_wrong_answers_get_a_hint(answer, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_split_by_study(answer).passed is False
    out = capsys.readouterr().out
    assert out.startswith("❌ Not yet: ") and hint in out, out


# ----------------------------------------------------------------------------- 06.4 specificity_at_sensitivity


def test_specificity_at_sensitivity_by_hand() -> None:
    y_val = [1] * 10 + [0] * 6
    p_val = ch06_evaluation._SENS_SCORES_POS + ch06_evaluation._SENS_SCORES_NEG
    y_test = [1] * 6 + [0] * 8
    p_test = ch06_evaluation._OP_TEST_POS + ch06_evaluation._OP_TEST_NEG
    # 95 %: all 10 abnormal validation scans → t = 0.20, the lowest; on test 0.15 is missed (5/6), and of the normal
    # scans 0.10, 0.05, 0.02 are below 0.20 (0.20 itself is called abnormal): 3/8.
    t, sens, spec, _ = specificity_at_sensitivity(y_val, p_val, y_test, p_test, target=0.95)
    assert (t, sens, spec) == (0.20, 5 / 6, 3 / 8)
    # 90 %: 9 of 10 → t = 0.35; test 0.90, 0.80, 0.60 reach it (3/6); 0.30 … 0.02 are below (6/8).
    t, sens, spec, _ = specificity_at_sensitivity(y_val, p_val, y_test, p_test, target=0.9)
    assert (t, sens, spec) == (0.35, 3 / 6, 6 / 8)
    # 50 %: 5 of 10 → t = 0.70; every normal test scan is below, so every bootstrap sample gives 1: CI (1, 1).
    assert specificity_at_sensitivity(y_val, p_val, y_test, p_test, target=0.5) == (0.70, 2 / 6, 1.0, (1.0, 1.0))
    # The check's reference (one rng.integers call) agrees with the loop of rng.choice above.
    _, _, _, ci = specificity_at_sensitivity(y_val, p_val, y_test, p_test, target=0.95, n_boot=300, seed=4)
    assert ch06_evaluation._specificity_ci(np.array(ch06_evaluation._OP_TEST_NEG), 0.20, n_boot=300, seed=4) == pytest.approx(ci)


def spec_threshold_on_test(y_val, p_val, y_test, p_test, *, target=0.95, n_boot=1000, seed=0):
    return specificity_at_sensitivity(y_test, p_test, y_test, p_test, target=target, n_boot=n_boot, seed=seed)


def spec_strict(y_val, p_val, y_test, p_test, *, target=0.95, n_boot=1000, seed=0):
    t, _, _, ci = specificity_at_sensitivity(y_val, p_val, y_test, p_test, target=target, n_boot=n_boot, seed=seed)
    y_test, p_test = np.asarray(y_test), np.asarray(p_test)
    return t, np.mean(p_test[y_test == 1] > t), np.mean(p_test[y_test == 0] <= t), ci


def spec_all_scans_resampled(y_val, p_val, y_test, p_test, *, target=0.95, n_boot=1000, seed=0):
    t, sens, spec, _ = specificity_at_sensitivity(y_val, p_val, y_test, p_test, target=target, n_boot=n_boot, seed=seed)
    y_test, p_test = np.asarray(y_test), np.asarray(p_test)
    rows = np.random.default_rng(seed).integers(0, y_test.size, size=(n_boot, y_test.size))
    specs = [np.mean(p_test[r][y_test[r] == 0] < t) for r in rows]
    return t, sens, spec, tuple(np.nanpercentile(specs, [2.5, 97.5]))


def spec_unseeded(y_val, p_val, y_test, p_test, *, target=0.95, n_boot=1000, seed=0):
    return specificity_at_sensitivity(y_val, p_val, y_test, p_test, target=target, n_boot=n_boot,
                                      seed=next(FRESH_SEEDS))


def spec_90_percent_interval(y_val, p_val, y_test, p_test, *, target=0.95, n_boot=1000, seed=0):
    t, sens, spec, _ = specificity_at_sensitivity(y_val, p_val, y_test, p_test, target=target, n_boot=n_boot, seed=seed)
    normal = np.asarray(p_test)[np.asarray(y_test) == 0]
    rows = np.random.default_rng(seed).integers(0, normal.size, size=(n_boot, normal.size))
    return t, sens, spec, tuple(np.percentile(np.mean(normal[rows] < t, axis=1), [5, 95]))


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (spec_threshold_on_test, "threshold 0.15, expected 0.20: that threshold was chosen on the test scans"),
        (spec_strict, "a scan with score == threshold is called abnormal"),
        (lambda *a, **k: specificity_at_sensitivity(*a, **k)[:3], "should return (threshold, sensitivity, specificity, (low, high))"),
        (lambda *a, **k: (*specificity_at_sensitivity(*a, **k)[:3], (0.0, 0.1)), "should lie in [0, 1] and contain the specificity 0.375"),
        (spec_all_scans_resampled, "resample the normal test scans only"),
        (spec_unseeded, "gave another interval when called again"),
        (spec_90_percent_interval, "not the statement's scheme"),
    ],
)
def test_specificity_at_sensitivity_wrong_answers_get_a_hint(answer, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_specificity_at_sensitivity(answer).passed is False
    out = capsys.readouterr().out
    assert out.startswith("❌ Not yet: ") and hint in out, out


def test_specificity_at_sensitivity_success_message(capsys: pytest.CaptureFixture[str]) -> None:
    exercises.check_specificity_at_sensitivity(specificity_at_sensitivity)
    assert "sensitivity 5/6 and specificity 3/8 = 0.375, 95 % CI" in capsys.readouterr().out


# ----------------------------------------------------------------------------- concept checks

ALL_CHOICES = {**{f"05_training/{q}": a for q, a in CHOICES_05.items()},
               **{f"06_evaluation/{q}": a for q, a in CHOICES_06.items()}}


def test_concept_checks_are_registered_with_four_options() -> None:
    assert set(exercises.CHOICES) == set(ALL_CHOICES)
    for key, item in exercises.CHOICES.items():
        assert item.answer == ALL_CHOICES[key]
        assert sorted([item.answer, *item.why_not]) == ["a", "b", "c", "d"], key


@pytest.mark.parametrize("question", sorted(ALL_CHOICES))
def test_concept_check_right_answer_confirms(question: str, capsys: pytest.CaptureFixture[str]) -> None:
    letter = ALL_CHOICES[question]
    for answer in (lambda: letter, letter, f" ({letter.upper()}) "):
        assert exercises.check_choice(question, answer).passed is True
        out = capsys.readouterr().out
        assert out == f"✅ Correct: ({letter}). {exercises.CHOICES[question].lesson}\n", out


@pytest.mark.parametrize("question", sorted(ALL_CHOICES))
def test_concept_check_wrong_answers_explain(question: str, capsys: pytest.CaptureFixture[str]) -> None:
    item = exercises.CHOICES[question]
    for letter, why in item.why_not.items():
        assert exercises.check_choice(question, lambda: letter).passed is False
        out = capsys.readouterr().out
        assert out.startswith(f"❌ Not yet: ({letter}) is not it: {why}"), out
        assert out.rstrip("\n").endswith(f"The idea: {item.lesson}"), out


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda: None, 'return your choice, one of "a", "b", "c" or "d"'),
        (lambda: 2, 'return one letter as a string, one of "a", "b", "c" or "d"; got 2'),
        (lambda: "e", 'return one of "a", "b", "c" or "d"; got \'e\''),
        (lambda: "overfitting", "got 'overfitting'"),
        (stub, "❌ Exercise not done yet: implement `stub` above"),
    ],
)
def test_concept_check_odd_answers(answer, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_choice("05_training/diverging_curves", answer).passed is False
    assert hint in capsys.readouterr().out


def test_concept_check_unknown_question() -> None:
    with pytest.raises(KeyError, match="unknown concept check '05_training/nope'; registered: 05_training/acc"):
        exercises.check_choice("05_training/nope", "a")
