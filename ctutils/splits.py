"""Seeded, stratified train / validation / test splits (chapter 02).

The split depends only on the labels, a stable key per scan (its path relative to the dataset
root) and the seed — never on the order in which the file system lists files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["SPLITS", "split_sizes", "stratified_split"]

SPLITS = ("train", "val", "test")


def split_sizes(n: int, *, fractions: Sequence[float] = (0.7, 0.15, 0.15)) -> tuple[int, int, int]:
    """Number of items of one class that go to train, val and test.

    ``train = floor(n * f_train + 0.5)``, ``val = floor(n * f_val + 0.5)``, test takes the rest.

    Examples
    --------
    >>> split_sizes(100), split_sizes(40), split_sizes(10)
    ((70, 15, 15), (28, 6, 6), (7, 2, 1))
    """
    if len(fractions) != 3 or min(fractions) < 0 or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise ValueError(f"fractions must be 3 non-negative numbers summing to 1, got {tuple(fractions)}")
    n_train = min(n, math.floor(n * fractions[0] + 0.5))
    n_val = min(n - n_train, math.floor(n * fractions[1] + 0.5))
    return n_train, n_val, n - n_train - n_val


def stratified_split(
    labels: Sequence[int],
    *,
    keys: Sequence[str],
    seed: int = 0,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
) -> list[str]:
    """Assign each item to ``"train"``, ``"val"`` or ``"test"``, class by class.

    Within each class the items are sorted by ``keys`` and then shuffled with
    ``np.random.default_rng([seed, label])``, so the result is the same for any input order.

    Parameters
    ----------
    labels : sequence of int
        Class of each item.
    keys : sequence of str, keyword-only
        A unique, stable key per item (e.g. ``"CT-0/study_0001.nii.gz"``).
    seed : int, keyword-only
        Same seed, same split.
    fractions : 3 floats, keyword-only
        Train, validation and test fractions (see :func:`split_sizes` for rounding).

    Returns
    -------
    list of str
        The split of each item, aligned with ``labels``.

    Examples
    --------
    >>> splits = stratified_split([0] * 10 + [1] * 10, keys=[f"s{i:02d}" for i in range(20)])
    >>> [splits[:10].count(s) for s in ("train", "val", "test")]
    [7, 2, 1]
    """
    if len(labels) != len(keys):
        raise ValueError(f"got {len(labels)} labels but {len(keys)} keys")
    if len(set(keys)) != len(keys):
        raise ValueError("keys must be unique")
    if int(seed) < 0:
        raise ValueError(f"seed must be an integer ≥ 0, got {seed}")
    if any(int(y) < 0 for y in labels):
        raise ValueError(f"labels must be integers ≥ 0, got {sorted(set(int(y) for y in labels))}")
    result = [""] * len(labels)
    for label in sorted(set(int(x) for x in labels)):
        members = sorted((k, i) for i, (k, y) in enumerate(zip(keys, labels)) if int(y) == label)
        order = np.random.default_rng([seed, label]).permutation(len(members))
        n_train, n_val, _ = split_sizes(len(members), fractions=fractions)
        for rank, position in enumerate(order):
            split = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
            result[members[position][1]] = split
    return result
