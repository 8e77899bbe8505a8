"""tf.data input pipeline over the preprocessed cache (chapter 03_augmentation).

The cache's ``volumes.npy`` stays memory-mapped: the dataset holds only row indices and labels,
and each element copies one row when it is needed. Steps::

    (index, label[, random key]) ─ shuffle(seed) ─ [repeat] ─ read row ─ [augment] ─ add channel
                                                                          ─ batch ─ prefetch

Reading uses ``tf.numpy_function`` for the I/O only (a memcpy from the memmap) and puts the
static shape back with ``tf.ensure_shape``, so Keras sees ``(None, X, Y, Z, 1)`` — the Keras
reference lost it there and ``model.fit`` failed with "as_list() is not defined on an unknown
TensorShape". Augmentation runs in TensorFlow ops (:mod:`ctutils.augment`) with one stateless
seed per element.

Determinism: for a given ``seed`` the shuffle order and every element's augmentation seed are
the same in every run, and both change from one pass (epoch) over the dataset to the next. They
come from ``Dataset.shuffle`` and ``Dataset.random`` seeded with ``seed``; TensorFlow combines an
op seed with the global seed, so a run that calls ``tf.random.set_seed``/
``keras.utils.set_random_seed`` must call it with the same value to get the same batches.
"""

from __future__ import annotations

import os

import numpy as np

from ctutils.augment import AugmentConfig, augment_volume
from ctutils.tfimport import tf

__all__ = ["make_dataset", "make_arrays_dataset", "class_weights"]

# The augmentation keys come from Dataset.random with a seed different from the shuffle's, so
# the two streams are not the same Philox sequence for the same ``seed``.
_AUGMENT_SEED_SALT = 0x5EED_A06


def class_weights(labels) -> dict[int, float]:
    """Balanced class weights ``n / (k * n_c)`` for ``model.fit(class_weight=...)``.

    ``n`` is the number of labels, ``k`` the number of distinct classes present and ``n_c`` the
    count of class ``c`` (the same as scikit-learn's ``compute_class_weight("balanced")``).
    The weighted classes then contribute equally to the loss.

    Parameters
    ----------
    labels : array-like of int, shape (n,)
        Class labels (0 = normal, 1 = abnormal), e.g. ``cache.labels("train")``.

    Returns
    -------
    dict of int to float
        Weight per class present in ``labels``.

    Raises
    ------
    ValueError
        If ``labels`` is empty, not 1-D, or holds negative / non-integer values.

    Examples
    --------
    >>> class_weights([0, 1, 1, 1])
    {0: 2.0, 1: 0.6666666666666666}
    """
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"class_weights: expected a non-empty 1-D array of labels, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)) or np.any(arr < 0):
        raise ValueError(f"class_weights: labels must be non-negative integers, got {np.unique(arr)}")
    classes, counts = np.unique(arr.astype(np.int64), return_counts=True)
    n, k = arr.size, classes.size
    return {int(c): float(n / (k * m)) for c, m in zip(classes, counts)}


def make_dataset(
    cache,
    split: str,
    *,
    batch_size: int = 2,
    shuffle: bool | None = None,
    augment: AugmentConfig | None = None,
    seed: int = 0,
    repeat: bool = False,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batched ``(x, y)`` dataset of one split of a preprocessed cache.

    Parameters
    ----------
    cache : ctutils.cache.Cache or path
        An open cache, or its folder (opened with :func:`ctutils.cache.open_cache`).
    split : {"train", "val", "test"}
        Which rows of ``volumes.npy`` to read (``cache.indices(split)``, in that order when not
        shuffled).
    batch_size : int
        Volumes per batch.
    shuffle : bool or None
        Shuffle the whole split every pass; ``None`` means True for ``"train"`` only.
    augment : AugmentConfig or None
        Augmentation applied to every element (``None``: none, whatever the split; pass it for
        the training split only).
    seed : int
        Seeds the shuffle order and the augmentation (see the module docstring).
    repeat : bool
        Repeat forever (reshuffled and re-augmented each pass); otherwise one pass per iteration.
    drop_remainder : bool
        Drop a last, smaller batch (then the batch axis is static too).

    Returns
    -------
    tf.data.Dataset
        Elements ``(x, y)``: ``x`` float32 ``(B, X, Y, Z, 1)`` in ``[0, 1]``, ``y`` float32 ``(B,)``
        (0 = normal, 1 = abnormal); ``element_spec`` has static ``X, Y, Z``.

    Raises
    ------
    ValueError
        If the split is empty (the message names the cache folder and split), or on a bad
        ``batch_size``.

    Examples
    --------
    Not run as a doctest (it needs a cache and a model)::

        ds = make_dataset("data/cache", "train", augment=AugmentConfig(), seed=0)
        model.fit(ds, validation_data=make_dataset("data/cache", "val"))
    """
    if isinstance(cache, (str, os.PathLike)):
        from ctutils.cache import open_cache

        cache = open_cache(cache)
    indices = np.asarray(cache.indices(split), dtype=np.int64)
    labels = np.asarray(cache.labels(split))
    name = f"{getattr(cache, 'root', 'cache')}: split {split!r}"
    if indices.size == 0:
        raise ValueError(f"{name} has no scans; cannot build a dataset from an empty split")
    if shuffle is None:
        shuffle = split == "train"
    return _build(
        cache.volumes,
        indices,
        labels,
        name=name,
        batch_size=batch_size,
        shuffle=shuffle,
        augment=augment,
        seed=seed,
        repeat=repeat,
        drop_remainder=drop_remainder,
    )


def make_arrays_dataset(
    volumes,
    labels,
    *,
    batch_size: int = 2,
    shuffle: bool = False,
    augment: AugmentConfig | None = None,
    seed: int = 0,
    repeat: bool = False,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Same as :func:`make_dataset` for in-memory (or memmapped) arrays instead of a cache.

    Parameters
    ----------
    volumes : np.ndarray, shape (N, X, Y, Z), float32
        Windowed volumes; read row by row, never copied as a whole.
    labels : array-like, shape (N,)
        0/1 labels aligned with ``volumes``.
    batch_size, shuffle, augment, seed, repeat, drop_remainder
        As in :func:`make_dataset` (``shuffle`` defaults to False here).

    Returns
    -------
    tf.data.Dataset
        Elements ``(x (B, X, Y, Z, 1) float32, y (B,) float32)``.
    """
    if not hasattr(volumes, "shape") or len(volumes.shape) != 4:
        raise ValueError(
            f"arrays: expected volumes of shape (N, X, Y, Z), got {getattr(volumes, 'shape', type(volumes))}"
        )
    labels = np.asarray(labels)
    if labels.shape != (volumes.shape[0],):
        raise ValueError(f"arrays: {volumes.shape[0]} volumes but labels of shape {labels.shape}")
    if labels.size == 0:
        raise ValueError("arrays: no volumes; cannot build a dataset from nothing")
    return _build(
        volumes,
        np.arange(volumes.shape[0], dtype=np.int64),
        labels,
        name="arrays",
        batch_size=batch_size,
        shuffle=shuffle,
        augment=augment,
        seed=seed,
        repeat=repeat,
        drop_remainder=drop_remainder,
    )


def _build(
    volumes,
    indices: np.ndarray,
    labels: np.ndarray,
    *,
    name: str,
    batch_size: int,
    shuffle: bool,
    augment: AugmentConfig | None,
    seed: int,
    repeat: bool,
    drop_remainder: bool,
) -> tf.data.Dataset:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"{name}: batch_size must be a positive integer, got {batch_size!r}")
    if augment is not None and not isinstance(augment, AugmentConfig):
        raise ValueError(f"{name}: augment must be an AugmentConfig or None, got {type(augment).__name__}")
    if len(volumes.shape) != 4:
        raise ValueError(f"{name}: expected volumes of shape (N, X, Y, Z), got {volumes.shape}")
    if labels.shape != indices.shape:
        raise ValueError(f"{name}: {indices.size} indices but labels of shape {labels.shape}")
    if indices.min() < 0 or indices.max() >= volumes.shape[0]:
        raise ValueError(
            f"{name}: row indices {indices.min()}..{indices.max()} outside volumes.npy's "
            f"{volumes.shape[0]} rows"
        )
    shape = tuple(int(s) for s in volumes.shape[1:])

    def read_row(i: np.ndarray) -> np.ndarray:
        # A copy of one row (the memmap itself is never handed to TensorFlow).
        return np.array(volumes[int(i)], dtype=np.float32)

    def read(i: tf.Tensor) -> tf.Tensor:
        x = tf.numpy_function(read_row, [i], tf.float32, stateful=False, name="read_volume")
        return tf.ensure_shape(x, shape)

    ds = tf.data.Dataset.from_tensor_slices((indices, labels.astype(np.float32)))
    use_augment = augment is not None and not augment.is_identity()
    if use_augment:
        keys = tf.data.Dataset.random(
            seed=(int(seed) + _AUGMENT_SEED_SALT) % 2**31, rerandomize_each_iteration=True
        )
        ds = tf.data.Dataset.zip(ds, keys).map(lambda iy, key: (iy[0], iy[1], key))
    else:
        ds = ds.map(lambda i, y: (i, y, tf.constant(0, tf.int64)))
    if shuffle:
        ds = ds.shuffle(indices.size, seed=int(seed), reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.map(
        lambda i, y, key: (read(i), y, key), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    if use_augment:
        salt = tf.constant(int(seed), tf.int64)

        def aug(x, y, key):
            return augment_volume(x, seed=tf.stack([salt, key]), config=augment), y, key

        ds = ds.map(aug, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.map(lambda x, y, key: (x[..., tf.newaxis], y))
    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)
