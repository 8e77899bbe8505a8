"""The checks of chapter 05_training (``notebooks/05_training.ipynb``).

* Exercise 05.1: the learning rate of the reference's ExponentialDecay at an optimizer step.
* Exercise 05.2: pick the best epoch from a training history.
* Exercise 05.3: build a tiny 3-D CNN, count its parameters, and make it overfit 8 volumes.
* Exercise 05.4: fix the split that leaks test scans into training.
* concept checks (:func:`ctutils.exercises.check_choice`): diverging_curves, best_epoch_optimism, accuracy_vs_auc, shuffled_labels

Imported, and every check re-exported, by :mod:`ctutils.exercises`: call them as ``exercises.check_…(…)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ctutils.exercises import NotYet, choice, exercise, expect

__all__ = [
    "check_best_epoch",
    "check_lr_at_step",
    "check_split_by_study",
    "check_tiny_cnn",
]


@exercise("05_training")
def check_lr_at_step(lr_at_step: Callable[..., Any]) -> str:
    """Exercise 05.1: the learning rate of the reference's ExponentialDecay at an optimizer step."""
    cases = [
        (0, {}, 1e-4),
        (7_000, {}, 1e-4),
        (250_000, {}, 1e-4 * 0.96**2),
        (250_000, {"staircase": False}, 1e-4 * 0.96**2.5),
        (10, {"initial_lr": 0.1, "decay_steps": 4, "decay_rate": 0.5}, 0.1 * 0.5**2),
        (10, {"initial_lr": 0.1, "decay_steps": 4, "decay_rate": 0.5, "staircase": False}, 0.1 * 0.5**2.5),
    ]
    for step, kwargs, expected in cases:
        shown = ", ".join([repr(step), *(f"{k}={v!r}" for k, v in kwargs.items())])
        got = lr_at_step(step, **kwargs)
        expect(isinstance(got, (int, float, np.number)) and not isinstance(got, bool),
               f"lr_at_step({shown}) should return a number, got {got!r}")
        got = float(got)
        if np.isclose(got, expected, rtol=1e-9, atol=0.0):
            continue
        initial = kwargs.get("initial_lr", 1e-4)
        steps, rate = kwargs.get("decay_steps", 100_000), kwargs.get("decay_rate", 0.96)
        staircase = kwargs.get("staircase", True)
        slips = [
            (initial * rate ** (step / steps), "staircase=True counts whole decay periods only: the exponent is "
                                               "step // decay_steps (floor division)"),
            (initial * rate ** (step // steps), "with staircase=False the exponent is the fraction step / decay_steps"),
            (initial * rate * (step // steps if staircase else step / steps),
             "the rate is multiplied by decay_rate once per period: decay_rate ** periods, not decay_rate * periods"),
            (initial * (1 - rate) ** (step // steps if staircase else step / steps),
             "decay_rate is the factor kept per period (0.96 keeps 96 %), not the part removed"),
        ]
        for value, hint in slips:
            if np.isclose(got, value, rtol=1e-9, atol=0.0):
                raise NotYet(f"lr_at_step({shown}) gave {got:.6g}, expected {expected:.6g}: {hint}")
        raise NotYet(f"lr_at_step({shown}) gave {got:.6g}, expected {expected:.6g}: "
                     "lr = initial_lr * decay_rate ** (step / decay_steps), the exponent floored when staircase")
    return ("the reference trains 100 epochs × 70 steps = 7,000 steps, far from the first decay at step 100,000: "
            "its learning rate is 1e-4 throughout")


def _history_for_check() -> dict[str, list[Any]]:
    return {
        "epoch": [1, 2, 3, 4, 5],
        "val_auc": [0.55, 0.70, 0.82, 0.82, 0.78],
        "val_loss": [0.69, 0.64, 0.61, 0.58, 0.60],
        "val_acc": [0.50, None, 0.75, 0.70, 0.80],
    }


@exercise("05_training")
def check_best_epoch(best_epoch: Callable[..., Any]) -> str:
    """Exercise 05.2: pick the best epoch from a training history."""
    cases = [
        ({"monitor": "val_auc", "mode": "max"}, 3, "val_auc peaks at 0.82 in epochs 3 and 4"),
        ({"monitor": "val_loss", "mode": "min"}, 4, "val_loss is lowest (0.58) in epoch 4"),
        ({"monitor": "val_acc", "mode": "max"}, 5, "val_acc is missing (None) in epoch 2 and highest in epoch 5"),
    ]
    for kwargs, expected, why in cases:
        shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        history = _history_for_check()
        got = best_epoch(history, **kwargs)
        expect(history == _history_for_check(), "best_epoch must not change the history it is given")
        expect(isinstance(got, (int, np.integer)) and not isinstance(got, bool),
               f"best_epoch(history, {shown}) should return an epoch number (int), got {got!r}")
        got = int(got)
        if got == expected:
            continue
        if got == expected - 1:
            raise NotYet(f"best_epoch(history, {shown}) gave {got}, expected {expected}: epochs are numbered from 1 "
                         "(history['epoch']), list positions from 0")
        if kwargs["monitor"] == "val_auc" and got == 4:
            raise NotYet(f"best_epoch(history, {shown}) gave 4, expected 3: on a tie keep the first epoch "
                         "(a checkpoint is only replaced by a strictly better value)")
        if kwargs["mode"] == "min" and got == 1:
            raise NotYet(f"best_epoch(history, {shown}) gave 1, expected 4: mode='min' means smaller is better")
        raise NotYet(f"best_epoch(history, {shown}) gave {got}, expected {expected} ({why}); skip None values")
    return "ties keep the first epoch, None values are skipped, mode chooses the direction"


# ----------------------------------------------------------------------------- 05.3: modify a model

#: Exercise 05.3's network on a 16 × 16 × 8 × 1 input, by hand: conv 4 filters (27 · 1 + 1) · 4 = 112,
#: conv 8 filters (27 · 4 + 1) · 8 = 872, Dense(1) on 8 pooled features 8 + 1 = 9.
_TINY_CNN_PARAMS = 993
_TINY_INPUT = (16, 16, 8, 1)


def _blob_volumes(*, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Eight 16 × 16 × 8 × 1 volumes of noise around 0.2; the odd ones (label 1) hold a blob 0.6 brighter."""
    rng = np.random.default_rng(seed)
    shape = _TINY_INPUT[:3]
    x = rng.normal(0.2, 0.05, size=(8, *shape, 1)).astype(np.float32)
    y = np.arange(8) % 2
    grid = np.indices(shape)
    for i in np.flatnonzero(y):
        centre = rng.integers([4, 4, 2], [12, 12, 6])
        x[i, ..., 0] += 0.6 * (sum((g - c) ** 2 for g, c in zip(grid, centre)) <= 4)
    return x, y.astype(np.float32)


def _reinitialise(model: Any, *, seed: int) -> None:
    """Glorot-uniform kernels and zero biases from a seeded NumPy generator: the same start for every learner."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        shape = tuple(int(s) for s in weight.shape)
        if weight.name == "bias":
            weight.assign(np.zeros(shape, np.float32))
        elif len(shape) >= 2:
            receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
            limit = np.sqrt(6.0 / (receptive * (shape[-2] + shape[-1])))
            weight.assign(rng.uniform(-limit, limit, shape).astype(np.float32))


def _activation_after(model: Any, layer: Any) -> str:
    """Name of the activation that follows ``layer``: its own, or that of a separate Activation/ReLU layer."""
    name = getattr(getattr(layer, "activation", None), "__name__", "linear")
    layers = list(model.layers)
    following = layers[layers.index(layer) + 1] if layer is not layers[-1] else None
    if name == "linear" and following is not None:
        if type(following).__name__ == "ReLU":
            return "relu"
        if type(following).__name__ == "Activation":
            return getattr(following.activation, "__name__", "linear")
    return name


def _tiny_cnn_structure(model: Any) -> None:
    """Raise NotYet with a hint where the layers differ from exercise 05.3's statement."""
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv3D"]
    filters = tuple(int(layer.filters) for layer in convs)
    expect(filters == (4, 8), f"two Conv3D layers with 4 then 8 filters, got {len(convs)} with filters {filters}")
    kernels = [tuple(layer.kernel_size) for layer in convs]
    expect(all(k == (3, 3, 3) for k in kernels), f"kernel_size=3 in both convolutions, got {kernels}")
    paddings = [layer.padding for layer in convs]
    expect(paddings == ["same", "same"], f"padding='same' in both convolutions (got {paddings}): "
                                         "16 × 16 × 8 is too small to lose 2 voxels per axis in each")
    activations = [_activation_after(model, layer) for layer in convs]
    expect(activations == ["relu", "relu"], f"activation='relu' after each convolution, got {activations}: "
                                            "it is the nonlinearity that lets the second layer build on the first")
    kinds = [type(layer).__name__ for layer in model.layers]
    expect(kinds.count("MaxPooling3D") == 2, f"one MaxPool3D(2) after each convolution, got {kinds.count('MaxPooling3D')}")
    expect("Flatten" not in kinds and "GlobalAveragePooling3D" in kinds,
           "average the last feature maps with GlobalAveragePooling3D() (not Flatten) before the Dense layer")


def _trained_accuracy(model: Any) -> tuple[float, np.ndarray]:
    """Re-initialise the learner's model, train it on the 8 blob volumes; its training accuracy and predictions."""
    import warnings

    from ctutils.tfimport import keras

    x, y = _blob_volumes(seed=0)
    _reinitialise(model, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="binary_crossentropy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns about softmax on one unit: the check's hint says it
        model.fit(x, y, batch_size=8, epochs=40, shuffle=False, verbose=0)
        p = np.asarray(model(x, training=False), dtype=np.float64).ravel()
    return float(np.mean((p > 0.5) == (y > 0.5))), p


@exercise("05_training")
def check_tiny_cnn(build_tiny_cnn: Callable[[tuple[int, ...]], Any]) -> str:
    """Exercise 05.3: build a tiny 3-D CNN, count its parameters, and make it overfit 8 volumes."""
    try:
        model = build_tiny_cnn(_TINY_INPUT)
    except ValueError as error:
        if "zero or negative" not in str(error):
            raise
        raise NotYet(f"the model cannot be built for {_TINY_INPUT}: an axis shrinks to nothing (Keras: 'Computed output "
                     "size would be zero or negative'). Use padding='same', so that only the pooling halves the size "
                     "(16 × 16 × 8 → 8 × 8 × 4 → 4 × 4 × 2)") from None
    expect(model is not None and hasattr(model, "count_params") and hasattr(model, "layers"),
           f"build_tiny_cnn should return a keras.Model, got {type(model).__name__}")
    expect(tuple(model.input_shape) == (None, *_TINY_INPUT),
           f"build it for the input_shape it is given, {_TINY_INPUT}: keras.Input(input_shape); "
           f"its input is {model.input_shape}")
    expect(tuple(model.output_shape) == (None, 1),
           f"the output should be one probability per volume, shape (None, 1); got {model.output_shape}")
    _tiny_cnn_structure(model)
    n = int(model.count_params())
    expect(n == _TINY_CNN_PARAMS, f"{n:,} parameters, expected {_TINY_CNN_PARAMS:,} = (27·1 + 1)·4 + (27·4 + 1)·8 + "
                                  "(8 + 1): one Dense(1) unit after the pooling")
    accuracy, p = _trained_accuracy(model)
    if accuracy < 1.0:
        last = _activation_after(model, model.layers[-1])
        if np.ptp(p) < 1e-6:
            hint = (f"every prediction is {p[0]:.3f}: " + ("softmax over one unit is always 1; use "
                    "activation='sigmoid' for a single output" if last == "softmax" else
                    "the output does not depend on the input"))
        elif len(model.trainable_weights) < len(model.weights):
            hint = "some layers are frozen (trainable=False): the optimizer cannot change their weights"
        elif last != "sigmoid":
            hint = f"the last layer's activation is {last!r}; one output probability needs activation='sigmoid'"
        else:
            hint = "check the layers' order and activations against the statement"
        raise NotYet(f"after 40 full-batch Adam steps it classifies {accuracy:.0%} of its 8 training volumes "
                     f"correctly, not 100 %: a model that cannot overfit 8 volumes has a bug ({hint})")
    return (f"{_TINY_CNN_PARAMS} parameters, and 40 Adam steps fit the 8 training volumes (100 % training accuracy): "
            "run this 'overfit a few volumes' check before every long training")


# ----------------------------------------------------------------------------- 05.4: diagnose a leak


def _series_keys() -> tuple[list[str], list[int]]:
    """Exercise 05.4's scans: 20 studies (10 normal, 10 abnormal), 1 to 3 series each, as 'study_XXXX/sN'."""
    keys, labels = [], []
    for study in range(1, 21):
        for series in range(1, 2 + study % 3):  # 1, 2 or 3 series per study
            keys.append(f"study_{study:04d}/s{series}")
            labels.append(int(study > 10))
    return keys, labels


def _as_key_lists(got: Any, shown: str) -> tuple[list[str], list[str], list[str]]:
    try:
        parts = tuple(got)
    except TypeError:
        raise NotYet(f"{shown} should return three lists of keys (train, val, test), got {got!r}") from None
    expect(len(parts) == 3, f"{shown} should return three lists of keys (train, val, test), got {len(parts)} items")
    lists = []
    for name, part in zip(("train", "val", "test"), parts):
        expect(not isinstance(part, str) and hasattr(part, "__iter__"),
               f"{shown}: {name} should be a list of keys, got {part!r}")
        part = list(part)
        expect(all(isinstance(k, str) for k in part), f"{shown}: {name} should hold the keys (strings) themselves, "
                                                       f"got {part[:3]!r}…")
        lists.append(part)
    return lists[0], lists[1], lists[2]


def _study(key: str) -> str:
    return key.split("/")[0]


def _check_split(got: Any, keys: list[str], labels: list[int], shown: str) -> dict[str, set[str]]:
    from ctutils.splits import split_sizes

    train, val, test = _as_key_lists(got, shown)
    assigned = train + val + test
    missing = sorted(set(keys) - set(assigned))
    if missing:
        raise NotYet(f"{shown} leaves out {len(missing)} scan(s), e.g. {missing[0]!r}: every scan goes to one split")
    extra = sorted(set(assigned) - set(keys))
    if extra:
        raise NotYet(f"{shown} returns keys it was not given, e.g. {extra[0]!r}")
    twice = sorted({k for k in assigned if assigned.count(k) > 1})
    if twice:
        raise NotYet(f"{shown} puts {twice[0]!r} in two places: every scan goes to exactly one split")
    where = {name: {_study(k) for k in part} for name, part in zip(("train", "val", "test"), (train, val, test))}
    for a, b in (("train", "test"), ("train", "val"), ("val", "test")):
        shared = sorted(where[a] & where[b])
        if shared:
            raise NotYet(f"{shown}: {shared[0]} has scans in {a} and in {b} — the leak: its series are the same "
                         "patient, so the model is tested on what it trained on. Split the study ids, then give "
                         "each study all its scans")
    study_label = {_study(k): y for k, y in zip(keys, labels)}
    for label in sorted(set(labels)):
        n = sum(1 for y in study_label.values() if y == label)
        want = split_sizes(n)
        got_sizes = tuple(sum(1 for s in where[name] if study_label[s] == label) for name in ("train", "val", "test"))
        if got_sizes != want:
            n_scans = [sum(1 for k in part if labels[keys.index(k)] == label) for part in (train, val, test)]
            hint = ("count studies, not scans" if tuple(n_scans) == split_sizes(sum(n_scans)) else
                    "per class, split_sizes(number of studies of the class) gives the train, val and test counts")
            raise NotYet(f"{shown}: class {label} has {n} studies, split {got_sizes} (train, val, test), "
                         f"expected {want}: {hint}")
    return where


@exercise("05_training")
def check_split_by_study(split_by_study: Callable[..., Any]) -> str:
    """Exercise 05.4: fix the split that leaks test scans into training."""
    keys, labels = _series_keys()
    seen = []
    for seed in (0, 1, 2):
        shown = f"split_by_study(keys, labels, seed={seed})"
        first = _check_split(split_by_study(list(keys), list(labels), seed=seed), keys, labels, shown)
        again = _check_split(split_by_study(list(keys), list(labels), seed=seed), keys, labels, shown)
        expect(first == again, f"{shown} gave another split the second time: draw from "
                               "np.random.default_rng(seed), not from an unseeded generator")
        order = np.random.default_rng(seed + 10).permutation(len(keys))
        shuffled = _check_split(split_by_study([keys[i] for i in order], [labels[i] for i in order], seed=seed),
                                keys, labels, f"{shown} on the keys in another order")
        expect(shuffled == first, f"{shown} depends on the order of the keys: sort the study ids before shuffling "
                                  "(a split must not depend on the order the file system lists files in)")
        seen.append(first)
    expect(seen[0] != seen[1] or seen[0] != seen[2], "seeds 0, 1 and 2 give the same split: shuffle the study ids "
                                                     "with np.random.default_rng(seed)")
    return ("no study in two splits, every scan once, stratified by study, reproducible: "
            "split by patient or study, never by scan, slice or augmented copy")



# ----------------------------------------------------------------------------- concept checks

choice("05_training", "diverging_curves", answer="c", why_not={
    "a": "a learning rate that is too low slows both curves down; it does not make the validation loss rise.",
    "b": "underfitting means the training loss stays high too; here it keeps falling.",
    "d": "a leak makes validation look too good, not worse.",
}, lesson="Training loss falling while validation loss rises is overfitting: the network memorises its training "
          "scans. Keep the best epoch (restore_best_weights), augment, regularise, or get more scans.")

choice("05_training", "best_epoch_optimism", answer="b", why_not={
    "a": "the validation scans were never trained on, but they were used to choose the epoch.",
    "c": "choosing the maximum of noisy values biases it upwards, not downwards.",
    "d": "early stopping chooses the epoch on validation too: the same selection.",
}, lesson="The best of many noisy validation scores is optimistic (selection bias, the winner's curse): "
          "report the test split, which played no part in the choice.")

choice("05_training", "accuracy_vs_auc", answer="a", why_not={
    "b": "ROC-AUC only needs the scores to be ranked; a bug would not give 0.9 by chance on a balanced split.",
    "c": "a model that guesses has an AUC near 0.5, not 0.9.",
    "d": "shuffled labels give an AUC near 0.5 as well.",
}, lesson="AUC 0.9 says the scores rank abnormal above normal scans; accuracy 0.5 says they all fall on one side "
          "of the 0.5 threshold (e.g. batch-norm statistics after a short run). That is calibration and threshold, "
          "not ranking.")

choice("05_training", "shuffled_labels", answer="d", why_not={
    "a": "it is the cheapest control there is against a leak in the pipeline.",
    "b": "the same model reaches a high AUC with the true labels, so its size is not the problem.",
    "c": "with shuffled labels there is nothing to learn; that says nothing about the real model.",
}, lesson="A negative control: with labels shuffled nothing real can be learnt, so validation AUC ≈ 0.5 means "
          "no label information reaches the model by another road (file order, a split bug, a scanner tag). "
          "If it came out 0.9, look for the leak.")
