"""A one-feature baseline: how much of the lung is ground glass, thresholded.

Before training a 3-D CNN (chapters 04–05) the course asks what a single hand-made number achieves:
the fraction of lung voxels in the ground-glass range (−750…−300 HU by default) with one threshold
fitted on the training split. On the embedded phantoms it stays well below the CNN's reach
(see ``docs/phantoms.md``); a model that does not beat it has learnt nothing useful.

Everything here is numpy + ``scipy.ndimage``; volumes are (X, Y, Z) arrays with Z the slice axis,
in Hounsfield units (use :func:`hu_from_windowed` for cache volumes scaled to [0, 1]).

Run ``python -m ctutils baseline DATASET_DIR`` for the held-out accuracy on a dataset folder
(its scans and binary labels as :func:`ctutils.datasets.list_scans` lists them: ``CT-0`` normal,
the other class folders abnormal).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = [
    "body_mask",
    "lung_mask",
    "ggo_fraction",
    "hu_from_windowed",
    "fit_threshold",
    "predict_with_threshold",
    "holdout_accuracy",
    "dataset_features",
    "cache_features",
    "evaluate_baseline",
]

# 3 x 3 x 1 cross: connectivity within an axial slice only
_INPLANE = np.zeros((3, 3, 3), dtype=bool)
_INPLANE[:, :, 1] = ndimage.generate_binary_structure(2, 1)


def _check_volume(hu: np.ndarray, name: str = "hu") -> np.ndarray:
    arr = np.asarray(hu)
    if arr.ndim != 3:
        raise ValueError(f"{name}: expected a 3-D (X, Y, Z) volume, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: the volume is empty (shape {arr.shape})")
    return arr


def lung_mask(
    hu: np.ndarray,
    *,
    threshold_hu: float = -400.0,
    closing_iterations: int | None = None,
) -> np.ndarray:
    """Segment the lungs of a chest CT with thresholds and morphology.

    1. air-like voxels: ``hu < threshold_hu``;
    2. drop the air connected (in 3-D) to the in-plane border of the volume — the air around the
       body; what remains is air inside the body: lungs, airways, bowel gas;
    3. close each axial slice (``closing_iterations`` dilations then erosions with a 3 × 3 cross)
       and fill its holes, so that vessels and ground-glass or consolidated areas surrounded by
       aerated lung belong to the mask. Lesions that touch the chest wall over a long stretch are
       only partly recovered: a threshold method cannot tell them from the wall.

    Parameters
    ----------
    hu : numpy.ndarray
        (X, Y, Z) volume in HU (any real dtype); not modified.
    threshold_hu : float, default -400
        Upper HU bound of aerated lung.
    closing_iterations : int or None
        Size of the in-plane closing, in voxels; None uses ``max(1, round(X / 64))`` (8 at
        512 × 512, 2 at 128 × 128: about 5–6 mm).

    Returns
    -------
    numpy.ndarray
        Boolean (X, Y, Z) mask.

    Raises
    ------
    ValueError
        If ``hu`` is not 3-D or ``closing_iterations`` < 0.

    Examples
    --------
    >>> vol = np.full((12, 12, 3), 40.0)      # soft tissue ...
    >>> vol[0, :, :] = -1000.0                # ... with air at one border (outside the body)
    >>> vol[3:9, 3:9, :] = -850.0             # and a 6 x 6 "lung" inside
    >>> vol[5, 5, :] = -500.0                 # containing a ground-glass voxel
    >>> m = lung_mask(vol, closing_iterations=0)
    >>> int(m.sum()), bool(m[5, 5, 0]), bool(m[0, 0, 0])
    (108, True, False)
    """
    arr = _check_volume(hu)
    if closing_iterations is None:
        closing_iterations = max(1, round(arr.shape[0] / 64))
    if closing_iterations < 0:
        raise ValueError(f"closing_iterations: expected >= 0, got {closing_iterations}")
    air = arr < threshold_hu
    labels, _ = ndimage.label(air)
    faces = np.concatenate([labels[0].ravel(), labels[-1].ravel(),
                            labels[:, 0].ravel(), labels[:, -1].ravel()])
    outside = np.isin(labels, np.unique(faces[faces > 0]))
    mask = air & ~outside
    if closing_iterations > 0 and mask.any():
        # pad in-plane so that the closing does not erode from the array border
        pad = closing_iterations + 1
        padded = np.pad(mask, ((pad, pad), (pad, pad), (0, 0)))
        padded = ndimage.binary_closing(padded, structure=_INPLANE, iterations=closing_iterations)
        mask = padded[pad:-pad, pad:-pad, :]
    return ndimage.binary_fill_holes(mask, structure=_INPLANE)


def body_mask(hu: np.ndarray, *, threshold_hu: float = -500.0) -> np.ndarray:
    """The body with everything it encloses (lungs, airways): a chest CT minus the air around it.

    1. the body: the largest 3-D connected component of ``hu >= threshold_hu`` (so a separate
       table, blanket or arm does not count, unless it touches the body);
    2. fill its holes in each axial slice: the lungs and airways, which are air, belong to it.

    Shares of HU bands inside this mask do not depend on the field of view, whereas shares of the
    whole volume mostly measure how much air surrounds the patient (chapter 01).

    Parameters
    ----------
    hu : numpy.ndarray
        (X, Y, Z) volume in HU (any real dtype); not modified.
    threshold_hu : float, default -500
        Lowest HU of the body wall: above lung and air, below fat.

    Returns
    -------
    numpy.ndarray
        Boolean (X, Y, Z) mask; all False when no voxel reaches ``threshold_hu``.

    Raises
    ------
    ValueError
        If ``hu`` is not 3-D or is empty.

    Examples
    --------
    >>> vol = np.full((12, 12, 2), -1000.0)   # air ...
    >>> vol[2:10, 2:10, :] = 40.0             # ... around an 8 x 8 body
    >>> vol[4:8, 4:8, :] = -850.0             # with a 4 x 4 lung inside
    >>> vol[0, 0, :] = 40.0                   # and a speck outside it
    >>> m = body_mask(vol)
    >>> int(m.sum()), bool(m[5, 5, 0]), bool(m[0, 0, 0])
    (128, True, False)
    """
    arr = _check_volume(hu)
    labels, n = ndimage.label(arr >= threshold_hu)
    if n == 0:
        return np.zeros(arr.shape, dtype=bool)
    body = labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
    return np.stack([ndimage.binary_fill_holes(body[:, :, z]) for z in range(arr.shape[2])], axis=2)


def ggo_fraction(
    hu: np.ndarray,
    *,
    lung: np.ndarray | None = None,
    hu_low: float = -750.0,
    hu_high: float = -300.0,
) -> float:
    """Fraction of lung voxels whose HU lies in the ground-glass range [``hu_low``, ``hu_high``].

    Parameters
    ----------
    hu : numpy.ndarray
        (X, Y, Z) volume in HU; not modified.
    lung : numpy.ndarray or None
        Boolean mask of the same shape; None computes :func:`lung_mask` (``hu``).
    hu_low, hu_high : float
        Inclusive HU range counted as ground glass (default −750…−300).

    Returns
    -------
    float
        Count of lung voxels in range divided by the count of lung voxels, in [0, 1].

    Raises
    ------
    ValueError
        If the shapes differ, ``hu_low >= hu_high`` or the lung mask is empty.

    Examples
    --------
    >>> vol = np.full((10, 10, 4), -850.0)
    >>> vol[:2, :5, :2] = -600.0              # 2 * 5 * 2 = 20 ground-glass voxels of 400
    >>> ggo_fraction(vol, lung=np.ones(vol.shape, dtype=bool))
    0.05
    """
    arr = _check_volume(hu)
    if hu_low >= hu_high:
        raise ValueError(f"hu_low ({hu_low}) must be below hu_high ({hu_high})")
    mask = lung_mask(arr) if lung is None else np.asarray(lung, dtype=bool)
    if mask.shape != arr.shape:
        raise ValueError(f"lung: mask shape {mask.shape} does not match volume shape {arr.shape}")
    n = int(np.count_nonzero(mask))
    if n == 0:
        raise ValueError("lung: the lung mask is empty, so the ground-glass fraction is undefined")
    values = arr[mask]
    return float(np.count_nonzero((values >= hu_low) & (values <= hu_high))) / n


def hu_from_windowed(
    x: np.ndarray, *, hu_min: float = -1000.0, hu_max: float = 400.0
) -> np.ndarray:
    """Undo the course's HU windowing: map [0, 1] back to [``hu_min``, ``hu_max``] HU.

    Values clipped by the window stay at its edges (air is −1000, bone 400 at most), which is
    enough for :func:`lung_mask` and :func:`ggo_fraction`.

    Parameters
    ----------
    x : numpy.ndarray
        Windowed volume (any shape) with values in [0, 1]; not modified.
    hu_min, hu_max : float
        The window used to make ``x`` (course default −1000…400).

    Returns
    -------
    numpy.ndarray
        float32 array of the same shape, in HU.

    Raises
    ------
    ValueError
        If ``hu_min >= hu_max`` or ``x`` has values outside [0, 1] (beyond 1e-4).

    Examples
    --------
    >>> hu_from_windowed(np.array([0.0, 0.5, 1.0]))
    array([-1000.,  -300.,   400.], dtype=float32)
    """
    if hu_min >= hu_max:
        raise ValueError(f"hu_min ({hu_min}) must be below hu_max ({hu_max})")
    arr = np.asarray(x, dtype=np.float32)
    if arr.size and (float(arr.min()) < -1e-4 or float(arr.max()) > 1 + 1e-4):
        raise ValueError(
            f"x: expected a windowed volume in [0, 1], got values in "
            f"[{float(arr.min()):.4g}, {float(arr.max()):.4g}]"
        )
    return (np.float32(hu_min) + arr * np.float32(hu_max - hu_min)).astype(np.float32)


def _check_features(features: Sequence[float] | np.ndarray, labels=None):
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 1 or f.size == 0:
        raise ValueError(f"features: expected a non-empty 1-D array, got shape {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError("features: contains NaN or infinite values")
    if labels is None:
        return f, None
    y = np.asarray(labels)
    if y.shape != f.shape:
        raise ValueError(f"labels: shape {y.shape} does not match features shape {f.shape}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError(f"labels: expected only 0 and 1, got {sorted(set(np.unique(y).tolist()))}")
    return f, y.astype(np.int64)


def fit_threshold(
    features: Sequence[float] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    *,
    criterion: str = "accuracy",
) -> float:
    """Fit the threshold of the rule "abnormal if feature > threshold" on training data.

    Candidates are the midpoints between consecutive distinct feature values, plus one below the
    smallest and the largest value itself (everything abnormal / everything normal). The first
    candidate (smallest threshold) with the best score wins.

    Parameters
    ----------
    features : array-like
        1-D feature values (e.g. :func:`ggo_fraction` per scan).
    labels : array-like
        1-D labels, 0 (normal) or 1 (abnormal); both classes must be present.
    criterion : {"accuracy", "youden"}
        Maximise accuracy, or Youden's J = sensitivity + specificity − 1 (insensitive to class
        imbalance).

    Returns
    -------
    float
        The threshold.

    Raises
    ------
    ValueError
        For mismatched or empty inputs, labels other than 0/1, a single class, or an unknown
        criterion.

    Examples
    --------
    >>> fit_threshold([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1])
    0.25
    >>> fit_threshold([0.1, 0.3, 0.2, 0.4, 0.5], [0, 0, 1, 1, 1])  # one error at best
    0.15000000000000002
    """
    f, y = _check_features(features, labels)
    if criterion not in ("accuracy", "youden"):
        raise ValueError(f"criterion: expected 'accuracy' or 'youden', got {criterion!r}")
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("labels: both classes (0 and 1) are needed to fit a threshold")
    order = np.argsort(f, kind="stable")
    fs, ys = f[order], y[order]
    last = np.r_[fs[1:] != fs[:-1], True]  # last index of each run of equal values
    values = fs[last]
    # scans at or below each distinct value
    neg_le = np.cumsum(1 - ys)[last]
    pos_le = np.cumsum(ys)[last]
    thresholds = np.r_[np.nextafter(values[0], -np.inf), (values[:-1] + values[1:]) / 2,
                       values[-1]]
    tn = np.r_[0, neg_le]  # predicted normal = at or below the threshold
    fn = np.r_[0, pos_le]
    tp = n_pos - fn
    if criterion == "accuracy":
        score = (tp + tn) / y.size
    else:
        score = tp / n_pos + tn / n_neg - 1.0
    return float(thresholds[int(np.argmax(score))])


def predict_with_threshold(
    features: Sequence[float] | np.ndarray, *, threshold: float
) -> np.ndarray:
    """Apply the rule "abnormal (1) if feature > threshold, else normal (0)".

    Examples
    --------
    >>> predict_with_threshold([0.1, 0.25, 0.3], threshold=0.25)
    array([0, 0, 1])
    """
    f, _ = _check_features(features)
    return (f > threshold).astype(np.int64)


def holdout_accuracy(
    features: Sequence[float] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    *,
    seed: int = 0,
    test_fraction: float = 0.3,
    criterion: str = "accuracy",
) -> dict[str, Any]:
    """Fit the threshold on a seeded stratified training split, score it on the held-out rest.

    Parameters
    ----------
    features, labels : array-like
        As for :func:`fit_threshold`.
    seed : int
        Seed of the split (``numpy.random.default_rng``).
    test_fraction : float, default 0.3
        Share of each class held out (rounded; at least one scan per class on each side).
    criterion : str
        Passed to :func:`fit_threshold`.

    Returns
    -------
    dict
        ``threshold``, ``train_accuracy``, ``test_accuracy``, ``n_train``, ``n_test``.

    Raises
    ------
    ValueError
        If ``test_fraction`` is not in (0, 1) or a class has fewer than 2 scans.

    Examples
    --------
    >>> r = holdout_accuracy([0.1, 0.2, 0.3, 0.6, 0.7, 0.8], [0, 0, 0, 1, 1, 1], seed=0,
    ...                      test_fraction=0.34)
    >>> r["test_accuracy"], r["n_test"]
    (1.0, 2)
    """
    f, y = _check_features(features, labels)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction: expected a value in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    test = np.zeros(y.size, dtype=bool)
    for c in (0, 1):
        idx = np.flatnonzero(y == c)
        if idx.size < 2:
            raise ValueError(f"labels: class {c} has {idx.size} scan(s); at least 2 are needed")
        k = min(max(1, round(test_fraction * idx.size)), idx.size - 1)
        test[rng.permutation(idx)[:k]] = True
    thr = fit_threshold(f[~test], y[~test], criterion=criterion)
    pred = predict_with_threshold(f, threshold=thr)
    return {
        "threshold": thr,
        "train_accuracy": float(np.mean(pred[~test] == y[~test])),
        "test_accuracy": float(np.mean(pred[test] == y[test])),
        "n_train": int((~test).sum()),
        "n_test": int(test.sum()),
    }


def _file_feature(path: str, max_inplane: int | None) -> float:
    import nibabel as nib

    img = nib.load(path)
    data = np.asarray(img.dataobj, dtype=np.float32)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"{path}: expected a 3-D volume, got shape {data.shape}")
    if max_inplane:
        step = max(1, -(-max(data.shape[:2]) // max_inplane))
        data = data[::step, ::step, :]
    return ggo_fraction(data)


def dataset_features(
    root: str | os.PathLike[str],
    *,
    max_inplane: int | None = 128,
    workers: int | None = None,
    progress: bool = True,
    mapping: str | None = None,
) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    """Ground-glass fraction of every scan of a dataset folder.

    The scans and their labels are :func:`ctutils.datasets.list_scans`'s (the dataset detected from
    its class folders, hidden and partial files skipped, in class-folder then name order); the label
    ``mapping`` must be binary (the datasets' default): ``CT-0`` normal (0), the others abnormal (1).
    Each volume is read as stored
    and, if ``max_inplane`` is set, subsampled in-plane by an integer stride to at most that many
    voxels (128 by default — the resolution the CNN sees — and 5–10 times faster than full size).

    Returns
    -------
    features : numpy.ndarray
        float64 (N,).
    labels : numpy.ndarray
        int64 (N,).
    paths : list of pathlib.Path

    Raises
    ------
    ValueError
        (:class:`ctutils.datasets.DatasetError`) ``root`` is not a dataset folder, or a class folder
        is missing or empty; a mapping with more than two labels; no normal or no abnormal scan.
    """
    from ctutils.datasets import list_scans

    base = Path(root)
    scans = list_scans(base, mapping=mapping)
    labels = np.array([s.label for s in scans], dtype=np.int64)
    if not set(labels.tolist()) <= {0, 1}:
        raise ValueError(f"{base}: the baseline needs a binary label mapping, got labels {sorted(set(labels.tolist()))}")
    if not (labels == 0).any() or not (labels == 1).any():
        raise ValueError(f"{base}: expected scans in CT-0 and in at least one other CT-* folder")
    paths = [s.path for s in scans]
    from ctutils.frontend import progress_bar

    if workers is None:
        from ctutils.machine import available_cores

        workers = available_cores()
    if workers <= 1:
        feats = [_file_feature(str(p), max_inplane) for p in progress_bar(paths, disable=not progress)]
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            feats = list(progress_bar(pool.map(_file_feature, map(str, paths), [max_inplane] * len(paths)),
                                      total=len(paths), disable=not progress))
    return np.array(feats, dtype=np.float64), labels, paths


def cache_features(cache: Any, split: str | None = None) -> np.ndarray:
    """The GGO fraction of every volume of a preprocessed cache split, in ``cache.indices(split)`` order.

    Parameters
    ----------
    cache : ctutils.cache.Cache
        An open cache; its window (``cache.config.hu_min`` / ``hu_max``) maps the volumes back to HU.
    split : str or None
        ``"train"``, ``"val"``, ``"test"`` or None for all kept volumes.

    Returns
    -------
    np.ndarray
        float64 features, aligned with ``cache.labels(split)``.
    """
    lo, hi = cache.config.hu_min, cache.config.hu_max
    return np.array(
        [ggo_fraction(hu_from_windowed(np.asarray(cache.volumes[i]), hu_min=lo, hu_max=hi)) for i in cache.indices(split)],
        dtype=np.float64,
    )


def evaluate_baseline(
    cache_dir: str | os.PathLike[str], *, split: str = "test", n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Evaluate the one-feature baseline on a cache split, as ``ctutils.evaluation`` evaluates a model.

    The threshold is fitted on the training split (best accuracy) and applied unchanged to
    ``split``; the GGO fraction itself is the score for ROC-AUC and average precision.

    Returns
    -------
    dict
        ``{"threshold": float, "split": str, "n": int, "metrics": {name: {"value", "low", "high"}},
        "y_true": [...], "scores": [...], "paths": [...]}`` (95 % bootstrap intervals from
        :func:`ctutils.evaluation.metrics_with_ci`; the per-scan labels, GGO fractions and source
        paths in ``cache.indices(split)`` order, the order of
        :func:`ctutils.evaluation.evaluate_model`).
    """
    from ctutils.cache import open_cache
    from ctutils.evaluation import metrics_with_ci

    cache = open_cache(cache_dir)
    if len(cache.indices("train")) == 0 or len(cache.indices(split)) == 0:
        raise ValueError(f"{cache.root}: the baseline needs a non-empty train split and {split!r} split")
    threshold = fit_threshold(cache_features(cache, "train"), cache.labels("train"))
    labels, scores = cache.labels(split), cache_features(cache, split)
    metrics = metrics_with_ci(labels, scores, threshold=threshold, n_boot=n_boot, seed=seed)
    return {
        "threshold": float(threshold),
        "split": split,
        "n": int(len(labels)),
        "metrics": {k: {"value": v[0], "low": v[1], "high": v[2]} for k, v in metrics.items()},
        "y_true": [int(v) for v in labels],
        "scores": [float(v) for v in scores],
        "paths": [str(p) for p in cache.paths(split)],
    }


if __name__ == "__main__":  # the old spelling, python -m ctutils.baseline DIR, runs the command below
    import sys

    from ctutils.cli import main

    raise SystemExit(main(["baseline", *sys.argv[1:]]))
