"""The checks of chapter 03_augmentation (``notebooks/03_augmentation.ipynb``).

* Exercise 03.1: a left-right flip with TensorFlow ops, compared with augment_volume.
* Exercise 03.2: where a bright voxel goes after a +90° rotation.
* Exercise 03.3: balanced class weights n / (k · n_c) from class counts.

Imported, and every check re-exported, by :mod:`ctutils.exercises`: call them as ``exercises.check_…(…)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ctutils.exercises import NotYet, exercise, expect

__all__ = [
    "check_balanced_weights",
    "check_flip_left_right",
    "check_rotated_position",
]


def _only(**settings: Any) -> Any:
    """An AugmentConfig with every operation off except ``settings`` (imports TensorFlow)."""
    from ctutils.augment import AugmentConfig

    off = {"rotation_p": 0.0, "flip_p": 0.0, "zoom_p": 0.0, "intensity_p": 0.0, "noise_p": 0.0}
    return AugmentConfig(**{**off, **settings})


@exercise("03_augmentation")
def check_flip_left_right(flip_left_right: Callable[[Any], Any]) -> str:
    """Exercise 03.1: a left-right flip with TensorFlow ops, compared with augment_volume."""
    from ctutils.augment import augment_volume
    from ctutils.tfimport import tf

    volume = np.random.default_rng(3).random((5, 4, 3), dtype=np.float32)
    expected = augment_volume(volume, seed=tf.constant([0, 0]), config=_only(flip_p=1.0)).numpy()
    got = flip_left_right(tf.constant(volume))
    expect(got is not None, "flip_left_right returned None: return the flipped volume")
    got = np.asarray(got)
    expect(got.shape == volume.shape, f"the flip should keep the shape (X, Y, Z) = {volume.shape}, got {got.shape}")
    if np.array_equal(got, volume):
        raise NotYet("the volume came back unchanged: reverse the order of its voxels along axis 0")
    wrong_axes = {1: "axis 1 (Y: anterior–posterior, up–down in the display)",
                  2: "axis 2 (Z: the slices, head–feet)"}
    for axis, name in wrong_axes.items():
        if np.array_equal(got, np.flip(volume, axis=axis)):
            raise NotYet(f"that flips {name}; left–right is axis 0 (X: the patient's right–left in RAS)")
    expect(np.allclose(got, expected), "the result differs from augment_volume's flip: reverse axis 0 only, "
                                       "and do not change the values")
    in_graph = tf.function(flip_left_right, input_signature=[tf.TensorSpec([None, None, None], tf.float32)])
    try:
        traced = np.asarray(in_graph(tf.constant(volume)))
    except Exception as error:  # noqa: BLE001 - NumPy on a symbolic tensor fails in many ways
        raise NotYet("it works eagerly but fails inside a tf.function graph, as tf.data runs it "
                     f"({type(error).__name__}): use TensorFlow ops such as tf.reverse, not NumPy") from None
    expect(np.allclose(traced, expected), "inside a tf.function graph it gives another result than eagerly")
    return "axis 0 reversed, the same as augment_volume's flip, eagerly and inside a tf.function graph"


def _rotated_by_helper(x: int, y: int, size: int) -> tuple[int, int]:
    """Where ``augment_volume`` puts a bright voxel at (x, y) of a size × size slice after +90°."""
    from ctutils.augment import augment_volume
    from ctutils.tfimport import tf

    volume = np.zeros((size, size, 1), np.float32)
    volume[x, y, 0] = 1.0
    config = _only(rotation_p=1.0, angles_deg=(90.0,))
    out = augment_volume(volume, seed=tf.constant([0, 0]), config=config).numpy()
    x_new, y_new, _ = np.unravel_index(int(np.argmax(out)), out.shape)
    return int(x_new), int(y_new)


@exercise("03_augmentation")
def check_rotated_position(rotated_position: Callable[[int, int, int], Any]) -> str:
    """Exercise 03.2: where a bright voxel goes after a +90° rotation."""
    for x, y, size in ((2, 1, 9), (0, 0, 3), (7, 2, 8), (0, 5, 6), (4, 4, 9)):
        want = _rotated_by_helper(x, y, size)
        shown = f"rotated_position({x}, {y}, {size})"
        got = rotated_position(x, y, size)
        try:
            pair = tuple(int(v) for v in got)
        except (TypeError, ValueError):
            raise NotYet(f"{shown} should return a pair of indices (x_new, y_new), got {got!r}") from None
        expect(len(pair) == 2, f"{shown} should return a pair of indices (x_new, y_new), got {got!r}")
        if pair == want:
            continue
        slips = {
            (size - 1 - y, x): "that is -90°, clockwise in the display; a positive angle turns counter-clockwise",
            (y, x): "that swaps x and y: a mirror across the diagonal, not a rotation",
            (size - 1 - x, size - 1 - y): "that is a 180° turn",
            (size - 1 - y, size - 1 - x): "that is a mirror across the other diagonal, not a rotation",
        }
        hint = slips.get(pair, "work through np.rot90(v, k=-1, axes=(0, 1)) on a 3 × 3 slice by hand")
        raise NotYet(f"{shown} should be {want}, got {pair}: {hint}")
    return "(x, y) → (y, size − 1 − x), the same as augment_volume puts the voxel"


@exercise("03_augmentation")
def check_balanced_weights(balanced_weights: Callable[[Mapping[int, int]], Mapping[int, float]]) -> str:
    """Exercise 03.3: balanced class weights n / (k · n_c) from class counts."""
    for counts in ({0: 254, 1: 856}, {0: 28, 1: 28}, {0: 1, 1: 3}, {0: 10, 1: 20, 2: 70}):
        shown = f"balanced_weights({counts})"
        got = balanced_weights(dict(counts))
        expect(isinstance(got, Mapping), f"{shown} should return a dict {{class: weight}}, got {type(got).__name__}")
        expect(set(got) == set(counts), f"{shown} should have one weight per class, keys {sorted(counts)}; "
                                        f"got keys {sorted(got, key=str)}")
        n, k = sum(counts.values()), len(counts)
        want = {c: n / (k * m) for c, m in counts.items()}
        try:
            values = {c: float(got[c]) for c in counts}
        except (TypeError, ValueError):
            raise NotYet(f"{shown}: the weights should be numbers, got {dict(got)!r}") from None
        inverse_sum = sum(1 / m for m in counts.values())
        slips = {
            "multiplied": ({c: m / n for c, m in counts.items()},
                           "the rarer class must weigh more: divide by n_c, do not multiply"),
            "no k": ({c: n / m for c, m in counts.items()},
                     "divide by the number of classes k too: then the average weight per volume is 1"),
            "sum 1": ({c: (1 / m) / inverse_sum for c, m in counts.items()},
                      "balanced weights are not normalised to sum to 1: use n / (k · n_c)"),
        }
        if all(np.isclose(values[c], want[c], rtol=1e-9) for c in counts):
            continue
        for slip, hint in slips.values():
            if all(np.isclose(values[c], slip[c], rtol=1e-9) for c in counts):
                raise NotYet(f"{shown} gave {values}: {hint}")
        raise NotYet(f"{shown} should be {want}, got {values}: weight of class c = n / (k · n_c)")
    return ("full MosMedData (254 normal, 856 abnormal): normal 2.185, abnormal 0.648; "
            "the average weight per training volume is 1, so the loss keeps its scale")
