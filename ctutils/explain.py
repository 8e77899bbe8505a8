"""Grad-CAM for 3-D CNNs: which part of the volume drove the prediction (chapter 06_evaluation).

Grad-CAM (Selvaraju et al., 2017) weights each channel ``k`` of a convolutional feature map
``A_k`` by the mean gradient of the model's output with respect to it,

    α_k = mean over (x, y, z) of ∂y/∂A_k(x, y, z),      cam = ReLU(Σ_k α_k · A_k),

then upsamples ``cam`` to the input grid. Here ``y`` is the sigmoid output, P(abnormal), so
the map shows the regions whose features pushed the model towards "abnormal". The map is
coarse (one value per feature-map voxel: 12 × 12 × 4 for the reference network's last conv
layer at 128 × 128 × 64) and shows where the evidence is, not what it is. An untrained or
saturated model often gives an all-zero map.

Where lesion masks exist (the synthetic phantoms, ``cache.masks``), the map can be scored:
:func:`lesion_heat_scores` measures how much of the heat falls on the lesions and whether its
maximum does (the pointing game, Zhang et al. 2016), and :func:`score_grad_cam` does it for many
scans with a bootstrap interval and the chance level.

TensorFlow is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = ["conv_layer_names", "grad_cam_3d", "lesion_heat_scores", "score_grad_cam", "summarize_heat_scores"]

#: A voxel of a fractional mask (float16 in [0, 1], as the cache stores it) counts when >= this.
MASK_THRESHOLD = 0.5


def conv_layer_names(model: Any) -> list[str]:
    """Names of the model's ``Conv3D`` layers, input to output.

    Examples
    --------
    >>> import keras
    >>> inputs = keras.Input((8, 8, 8, 1))
    >>> x = keras.layers.Conv3D(2, 3, name="c1")(inputs)
    >>> x = keras.layers.Conv3D(2, 3, name="c2")(x)
    >>> out = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling3D()(x))
    >>> conv_layer_names(keras.Model(inputs, out))
    ['c1', 'c2']
    """
    from ctutils.tfimport import keras

    return [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv3D)]


def grad_cam_3d(
    model: Any,
    volume: np.ndarray,
    *,
    layer_name: str | None = None,
    class_index: int = 0,
) -> np.ndarray:
    """Grad-CAM heatmap of one volume at input resolution.

    Parameters
    ----------
    model : keras.Model
        A functional 3-D CNN with input ``(B, X, Y, Z, 1)`` and a sigmoid output ``(B, n)``.
    volume : np.ndarray
        One preprocessed volume, ``(X, Y, Z)`` or ``(X, Y, Z, 1)``, as fed to the model.
        Not modified.
    layer_name : str, optional
        Convolutional layer to explain; default the last ``Conv3D`` (the coarsest map with the
        most semantic features).
    class_index : int
        Output unit to explain; 0 for the course's single sigmoid unit (P(abnormal)).

    Returns
    -------
    np.ndarray
        float32 ``(X, Y, Z)`` in [0, 1] (divided by its maximum). All zeros when no region
        has a positive contribution (e.g. the model is saturated at P = 0).

    Raises
    ------
    ValueError
        If the volume does not fit the model's input, the layer does not exist or is not 5-D,
        or ``class_index`` is out of range.
    """
    from ctutils.tfimport import keras, tf

    vol = np.asarray(volume, dtype=np.float32)
    if vol.ndim == 4 and vol.shape[-1] == 1:
        vol = vol[..., 0]
    if vol.ndim != 3:
        raise ValueError(f"expected one (X, Y, Z) volume, got shape {np.shape(volume)}")
    in_shape = tuple(model.input_shape[1:])
    if tuple(in_shape[:3]) != vol.shape or in_shape[3:] != (1,):
        raise ValueError(f"volume of shape {vol.shape} does not fit the model's input {in_shape}")

    if layer_name is None:
        names = conv_layer_names(model)
        if not names:
            raise ValueError(f"model {model.name!r} has no Conv3D layer; pass layer_name")
        layer_name = names[-1]
    try:
        layer = model.get_layer(layer_name)
    except ValueError as exc:
        raise ValueError(f"model {model.name!r} has no layer named {layer_name!r}") from exc
    if len(layer.output.shape) != 5:
        raise ValueError(
            f"layer {layer_name!r} outputs shape {tuple(layer.output.shape)}; Grad-CAM needs a "
            f"(B, X, Y, Z, C) feature map"
        )
    n_outputs = int(model.output.shape[-1])
    if not 0 <= int(class_index) < n_outputs:
        raise ValueError(f"class_index {class_index} out of range for a model with {n_outputs} output(s)")

    grad_model = keras.Model(model.inputs, [layer.output, model.output])
    x = tf.convert_to_tensor(vol[np.newaxis, ..., np.newaxis])
    with tf.GradientTape() as tape:
        features, output = grad_model(x, training=False)
        score = output[:, int(class_index)]
    grads = tape.gradient(score, features)
    if grads is None:
        raise ValueError(f"the output does not depend on layer {layer_name!r}; choose another layer")
    weights = tf.reduce_mean(grads, axis=(1, 2, 3))  # (1, C): mean gradient per channel
    cam = tf.nn.relu(tf.einsum("bxyzc,bc->bxyz", features, weights))[0]
    cam = np.asarray(cam, dtype=np.float64)

    factors = [n_in / n_feat for n_in, n_feat in zip(vol.shape, cam.shape)]
    # grid_mode=True: each feature voxel covers a block of input voxels (edges aligned), and the
    # output shape round(n_feat * n_in / n_feat) is exactly the input shape.
    heat = ndimage.zoom(cam, factors, order=1, mode="nearest", grid_mode=True)
    heat = np.clip(heat, 0.0, None)
    peak = heat.max()
    if peak > 0:
        heat = heat / peak
    return heat.astype(np.float32)


# --------------------------------------------------------------------------------------------
# Grad-CAM scored against lesion masks
# --------------------------------------------------------------------------------------------
def _binary_mask(mask: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """``mask >= 0.5`` as bool (a bool mask as it is), or ``ValueError`` naming the shapes."""
    arr = np.asarray(mask)
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, the heatmap {shape}; they must match")
    if arr.dtype == bool:
        return arr
    values = arr.astype(np.float32)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return values >= MASK_THRESHOLD


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else float("nan")


def lesion_heat_scores(
    heat: np.ndarray,
    lesion_mask: np.ndarray,
    lung_mask: np.ndarray,
    *,
    tolerance: int = 0,
) -> dict[str, Any]:
    """How well one heatmap points at the lesions of one volume.

    Masks given as fractions (the cache stores preprocessed, linearly interpolated masks as
    float16 in [0, 1]) count a voxel when its value is at least 0.5 (:data:`MASK_THRESHOLD`):
    at least half of it is lesion (or lung). Lesion voxels outside the lung mask do not count
    for the shares below (they do for the pointing game).

    Parameters
    ----------
    heat : np.ndarray
        ``(X, Y, Z)`` heatmap, values >= 0 (e.g. :func:`grad_cam_3d`). Not modified.
    lesion_mask, lung_mask : np.ndarray
        Same shape; bool, or fractions in [0, 1].
    tolerance : int
        The pointing game counts a hit when the maximum lies within this many voxels of a lesion
        (the lesion mask dilated ``tolerance`` times with a 6-connected cross,
        :func:`scipy.ndimage.binary_dilation`); 0: in the lesion itself.

    Returns
    -------
    dict
        ``heat_in_lesions``: Σ heat over lesion voxels in the lung / Σ heat over the lung;
        ``lesion_share``: lesion voxels in the lung / lung voxels; ``enrichment``:
        ``heat_in_lesions / lesion_share`` (1: heat spread evenly over the lung, > 1:
        concentrated on the lesions, < 1: avoiding them); ``heat_in_lungs``: Σ heat in the lung /
        Σ heat; ``pointing_hit``: True when at least half of the voxels of maximum heat lie in the
        (dilated) lesion mask (with a single maximum, as usual: whether it lies there);
        ``pointing_share``: the fraction of those voxels that do (the expected hit when a tie is
        broken at random); ``n_max``: how many voxels share the maximum; ``n_lung``,
        ``n_lesion`` (lesion voxels in the lung); ``note``: why a score is undefined, or None.

        Undefined scores are NaN (``pointing_hit`` None, ``n_max`` 0), and ``note`` says why:
        ``"no heat: …"`` for an all-zero map (it points nowhere: everything but
        ``lesion_share`` is undefined); ``"no lesion in the lung: …"`` for a normal scan (there
        is nothing to point at: ``heat_in_lesions``, ``enrichment`` and the pointing game are
        undefined, ``lesion_share`` is 0); ``"no heat in the lung"`` when all the heat lies
        outside it (``heat_in_lesions`` and ``enrichment`` undefined, the pointing game played).

    Raises
    ------
    ValueError
        If the shapes differ, the heatmap is not 3-D or has NaN or negative values, a mask has
        NaN values, the lung mask is empty or ``tolerance`` is negative.

    Examples
    --------
    >>> lung = np.zeros((10, 1, 1), bool); lung[:] = True          # a 10-voxel lung
    >>> lesion = np.zeros_like(lung); lesion[2:4] = True            # with a 2-voxel lesion
    >>> heat = lesion.astype(np.float32)                            # all heat on the lesion
    >>> s = lesion_heat_scores(heat, lesion, lung)
    >>> s["heat_in_lesions"], s["lesion_share"], s["enrichment"], s["pointing_hit"]
    (1.0, 0.2, 5.0, True)
    """
    h = np.asarray(heat, dtype=np.float64)
    if h.ndim != 3:
        raise ValueError(f"heat: expected one (X, Y, Z) heatmap, got shape {h.shape}")
    if not np.all(np.isfinite(h)) or h.min() < 0:
        raise ValueError("heat must be finite and >= 0 (a Grad-CAM map is in [0, 1])")
    if isinstance(tolerance, bool) or int(tolerance) != tolerance or tolerance < 0:
        raise ValueError(f"tolerance must be an integer >= 0 voxels, got {tolerance!r}")
    lesion = _binary_mask(lesion_mask, "lesion_mask", h.shape)
    lung = _binary_mask(lung_mask, "lung_mask", h.shape)
    n_lung = int(np.count_nonzero(lung))
    if n_lung == 0:
        raise ValueError("lung_mask is empty: the shares of the lung are undefined")
    in_lung = lesion & lung
    n_lesion = int(np.count_nonzero(in_lung))
    total, lung_heat = float(h.sum()), float(h[lung].sum())
    nan = float("nan")
    out: dict[str, Any] = {
        "heat_in_lesions": _ratio(float(h[in_lung].sum()), lung_heat) if n_lesion else nan,
        "lesion_share": n_lesion / n_lung,
        "enrichment": nan,
        "heat_in_lungs": _ratio(lung_heat, total),
        "pointing_hit": None,
        "pointing_share": nan,
        "n_max": 0,
        "n_lung": n_lung,
        "n_lesion": n_lesion,
        "note": None,
    }
    if n_lesion and math.isfinite(out["heat_in_lesions"]):
        out["enrichment"] = out["heat_in_lesions"] / out["lesion_share"]
    if total == 0:
        out["note"] = "no heat: an all-zero map points nowhere"
        return out
    if n_lesion == 0:
        out["note"] = "no lesion in the lung: nothing to point at"
        return out
    if lung_heat == 0:
        out["note"] = "no heat in the lung"
    target = ndimage.binary_dilation(lesion, iterations=int(tolerance)) if tolerance else lesion
    peak = h >= h.max()
    out["n_max"] = int(np.count_nonzero(peak))
    out["pointing_share"] = float(np.count_nonzero(peak & target)) / out["n_max"]
    out["pointing_hit"] = bool(out["pointing_share"] >= 0.5)
    return out


def _bootstrap_mean(values: np.ndarray, *, n_boot: int, seed: int, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile interval of the mean of ``values`` over ``n_boot`` resamples (with replacement)."""
    if values.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(int(n_boot), values.size))].mean(axis=1)
    low, high = np.percentile(means, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


def summarize_heat_scores(
    scores: Sequence[Mapping[str, Any]], *, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Aggregate the :func:`lesion_heat_scores` of many scans.

    Only the *scored* scans count: those with a lesion in the lung and some heat (where the
    pointing game is defined, ``pointing_hit`` not None); normal scans and all-zero maps are
    counted (``n_no_lesion``, ``n_no_heat``) but left out of the means.

    Parameters
    ----------
    scores : sequence of dict
        One :func:`lesion_heat_scores` result per scan.
    n_boot : int
        Bootstrap resamples of the scans for the hit rate's interval.
    seed : int
        Seed of the resampling.

    Returns
    -------
    dict
        ``heat_in_lesions``, ``lesion_share``: means over the scored scans (NaN values
        ignored); ``enrichment_median``: the median enrichment (a ratio whose denominator, the
        lesion share, can be small: one scan with 2 % involvement and heat on its lesion gives
        50 and would dominate a mean); ``pointing_hit_rate`` with ``pointing_low`` and
        ``pointing_high`` (95 % percentile bootstrap interval over scans); ``chance_hit_rate``:
        the mean lesion share, the hit rate of a map whose maximum falls uniformly at random in
        the lung (exact for ``tolerance=0``; a tolerance raises the real chance level);
        ``n_scans``, ``n_scored``, ``n_no_lesion``, ``n_no_heat``, ``n_boot``. All NaN when
        no scan is scored.

    Examples
    --------
    >>> hit = {"heat_in_lesions": 1.0, "lesion_share": 0.2, "enrichment": 5.0, "pointing_hit": True}
    >>> miss = {"heat_in_lesions": 0.0, "lesion_share": 0.4, "enrichment": 0.0, "pointing_hit": False}
    >>> s = summarize_heat_scores([hit, miss], n_boot=100)
    >>> s["pointing_hit_rate"], round(s["chance_hit_rate"], 3), s["enrichment_median"]
    (0.5, 0.3, 2.5)
    """
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    scored = [s for s in scores if s.get("pointing_hit") is not None]
    n_no_lesion = sum(1 for s in scores if str(s.get("note") or "").startswith("no lesion"))
    n_no_heat = sum(1 for s in scores if str(s.get("note") or "").startswith("no heat:"))

    def mean(key: str) -> float:
        v = np.array([float(s[key]) for s in scored], dtype=np.float64)
        return float(np.nanmean(v)) if np.any(np.isfinite(v)) else float("nan")

    enrich = np.array([float(s["enrichment"]) for s in scored], dtype=np.float64)
    hits = np.array([float(bool(s["pointing_hit"])) for s in scored], dtype=np.float64)
    low, high = _bootstrap_mean(hits, n_boot=int(n_boot), seed=seed)
    return {
        "heat_in_lesions": mean("heat_in_lesions"),
        "lesion_share": mean("lesion_share"),
        "enrichment_median": float(np.nanmedian(enrich)) if np.any(np.isfinite(enrich)) else float("nan"),
        "pointing_hit_rate": float(hits.mean()) if hits.size else float("nan"),
        "pointing_low": low,
        "pointing_high": high,
        "chance_hit_rate": mean("lesion_share"),
        "n_scans": len(scores),
        "n_scored": len(scored),
        "n_no_lesion": n_no_lesion,
        "n_no_heat": n_no_heat,
        "n_boot": int(n_boot),
    }


def score_grad_cam(
    model: Any,
    volumes: Sequence[np.ndarray] | np.ndarray,
    lesion_masks: Sequence[np.ndarray] | np.ndarray,
    lung_masks: Sequence[np.ndarray] | np.ndarray,
    *,
    layer_name: str | None = None,
    tolerance: int = 0,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Grad-CAM of every volume scored against its lesion mask, with the pointing game's chance level.

    Runs :func:`grad_cam_3d` on each volume (one at a time, so a memory map is read row by
    row), scores it with :func:`lesion_heat_scores` and aggregates with
    :func:`summarize_heat_scores`. A hit rate well above ``chance_hit_rate`` means the maps'
    maxima fall on the lesions more often than a map that ignores them would.

    Parameters
    ----------
    model : keras.Model
        As for :func:`grad_cam_3d`.
    volumes : array (N, X, Y, Z) or sequence of (X, Y, Z)
        Preprocessed volumes, e.g. ``cache.volumes[cache.indices("test")]``.
    lesion_masks : array (N, X, Y, Z) or sequence
        Aligned with ``volumes``, bool or fractions (``cache.masks`` rows, float16).
    lung_masks : array (N, X, Y, Z) or sequence
        Aligned with ``volumes``. The cache stores no lung masks; segment them from a windowed
        volume with ``ctutils.baseline.lung_mask(ctutils.baseline.hu_from_windowed(v))``.
    layer_name : str, optional
        Layer to explain; default the last ``Conv3D``.
    tolerance : int
        Pointing-game tolerance in voxels (see :func:`lesion_heat_scores`).
    n_boot, seed : int
        Bootstrap of the hit rate over scans.

    Returns
    -------
    dict
        The keys of :func:`summarize_heat_scores`, plus ``per_scan`` (one
        :func:`lesion_heat_scores` dict per volume, in order, with its ``index``),
        ``layer_name`` (the layer used) and ``tolerance``.

    Raises
    ------
    ValueError
        If the three inputs differ in length or are empty, or from :func:`grad_cam_3d` and
        :func:`lesion_heat_scores`.
    """
    n = len(volumes)
    if len(lesion_masks) != n or len(lung_masks) != n:
        raise ValueError(f"got {n} volumes, {len(lesion_masks)} lesion masks and {len(lung_masks)} "
                         "lung masks; they must be aligned one to one")
    if n == 0:
        raise ValueError("no volumes to score")
    if layer_name is None:
        names = conv_layer_names(model)
        if not names:
            raise ValueError(f"model {model.name!r} has no Conv3D layer; pass layer_name")
        layer_name = names[-1]
    per_scan = []
    for i in range(n):
        heat = grad_cam_3d(model, np.asarray(volumes[i]), layer_name=layer_name)
        scores = lesion_heat_scores(heat, lesion_masks[i], lung_masks[i], tolerance=tolerance)
        per_scan.append({"index": i, **scores})
    summary = summarize_heat_scores(per_scan, n_boot=n_boot, seed=seed)
    return {**summary, "per_scan": per_scan, "layer_name": layer_name, "tolerance": int(tolerance)}
