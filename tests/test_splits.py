"""Tests for ctutils.splits: sizes and stratification by hand, seeds, order independence, errors."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from ctutils.splits import SPLITS, split_sizes, stratified_split


def keys_for(labels) -> list[str]:
    return [f"CT-{'23' if y else '0'}/study_{i:04d}.nii.gz" for i, y in enumerate(labels)]


def counts(splits, labels, label) -> tuple[int, int, int]:
    c = Counter(s for s, y in zip(splits, labels) if y == label)
    return c["train"], c["val"], c["test"]


@pytest.mark.parametrize(
    ("n", "sizes"),
    [
        (100, (70, 15, 15)),
        (40, (28, 6, 6)),  # 28.0 / 6.0 / rest
        (10, (7, 2, 1)),  # 7.0 / 1.5 rounds up to 2 / rest
        (6, (4, 1, 1)),  # 4.2 -> 4, 0.9 -> 1
        (3, (2, 0, 1)),  # 2.1 -> 2, 0.45 -> 0
        (1, (1, 0, 0)),
        (0, (0, 0, 0)),
    ],
)
def test_split_sizes_by_hand(n, sizes):
    assert split_sizes(n) == sizes


def test_split_sizes_other_fractions():
    assert split_sizes(10, fractions=(0.5, 0.5, 0.0)) == (5, 5, 0)
    assert split_sizes(20, fractions=(0.6, 0.2, 0.2)) == (12, 4, 4)


@pytest.mark.parametrize("fractions", [(0.7, 0.3), (0.7, 0.2, 0.2), (1.2, -0.1, -0.1), (0.5, 0.5, 0.0, 0.0)])
def test_bad_fractions(fractions):
    with pytest.raises(ValueError, match="fractions must be 3 non-negative numbers summing to 1"):
        split_sizes(10, fractions=fractions)
    with pytest.raises(ValueError, match="fractions must be"):
        stratified_split([0, 1], keys=["a", "b"], fractions=fractions)


@pytest.mark.parametrize(("n_per_class", "sizes"), [(100, (70, 15, 15)), (40, (28, 6, 6))])
def test_stratified_counts_per_class(n_per_class, sizes):
    labels = [0] * n_per_class + [1] * n_per_class
    splits = stratified_split(labels, keys=keys_for(labels), seed=0)
    assert set(splits) == set(SPLITS)
    assert counts(splits, labels, 0) == sizes
    assert counts(splits, labels, 1) == sizes


def test_unbalanced_classes_are_stratified_separately():
    labels = [0] * 40 + [1] * 10
    splits = stratified_split(labels, keys=keys_for(labels), seed=3)
    assert counts(splits, labels, 0) == (28, 6, 6)
    assert counts(splits, labels, 1) == (7, 2, 1)


def test_more_than_two_classes():
    labels = [0] * 10 + [1] * 10 + [2] * 20
    splits = stratified_split(labels, keys=[f"s{i:03d}" for i in range(40)], seed=0)
    assert [counts(splits, labels, k) for k in (0, 1, 2)] == [(7, 2, 1), (7, 2, 1), (14, 3, 3)]


def test_same_seed_same_split_different_seed_different():
    labels = [0] * 40 + [1] * 40
    keys = keys_for(labels)
    first = stratified_split(labels, keys=keys, seed=7)
    assert stratified_split(list(labels), keys=list(keys), seed=7) == first
    assert stratified_split(labels, keys=keys, seed=8) != first


def test_independent_of_the_input_order():
    labels = [0] * 40 + [1] * 40
    keys = keys_for(labels)
    reference = dict(zip(keys, stratified_split(labels, keys=keys, seed=1)))
    order = list(range(len(labels)))
    random.Random(0).shuffle(order)  # a local generator: nothing global is seeded
    shuffled = stratified_split([labels[i] for i in order], keys=[keys[i] for i in order], seed=1)
    assert dict(zip([keys[i] for i in order], shuffled)) == reference


def test_a_class_split_does_not_depend_on_the_other_class():
    labels = [0] * 20 + [1] * 20
    keys = keys_for(labels)
    before = stratified_split(labels, keys=keys, seed=0)
    more = stratified_split(labels + [1, 1], keys=keys + ["CT-23/extra_1.nii.gz", "CT-23/extra_2.nii.gz"], seed=0)
    assert more[:20] == before[:20]


def test_accepts_numpy_labels():
    labels = np.array([0, 1] * 10)
    splits = stratified_split(labels, keys=[f"k{i}" for i in range(20)], seed=0)
    assert counts(splits, labels.tolist(), 0) == (7, 2, 1)


def test_mismatched_lengths():
    with pytest.raises(ValueError, match="got 3 labels but 2 keys"):
        stratified_split([0, 1, 1], keys=["a", "b"])


def test_duplicate_keys():
    with pytest.raises(ValueError, match="keys must be unique"):
        stratified_split([0, 1, 1], keys=["a", "b", "a"])


def test_empty_input():
    assert stratified_split([], keys=[]) == []


def test_negative_seed_is_named():
    # `python -m ctutils data preprocess --seed -1` prints only "error: expected non-negative integer".
    with pytest.raises(ValueError, match="seed"):
        stratified_split([0, 1], keys=["a", "b"], seed=-1)
