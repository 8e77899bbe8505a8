"""How much a phantom's Hounsfield units look like a real chest CT's (chapter 01, ``docs/phantoms.md``).

The measure: the shares of the HU classes of :data:`HU_CLASSES` (air, aerated lung, ground glass,
transition, fat, soft tissue, dense soft tissue, bone) among the voxels inside the body
(:func:`ctutils.baseline.body_mask`: the air around the patient depends on the field of view, not on
the patient), and the Jensen-Shannon distance between two such histograms (:func:`js_distance`:
0 for identical histograms, 1 for disjoint ones; base 2).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import jensenshannon

from ctutils.baseline import body_mask

__all__ = ["HU_CLASSES", "body_hu_histogram", "js_distance"]

#: The HU classes of :func:`body_hu_histogram`: name and [low, high) in HU.
HU_CLASSES: dict[str, tuple[float, float]] = {
    "air": (-np.inf, -900.0),
    "aerated lung": (-900.0, -700.0),
    "ground glass, partial volume": (-700.0, -300.0),
    "transition": (-300.0, -150.0),
    "fat": (-150.0, -30.0),
    "soft tissue, blood": (-30.0, 150.0),
    "dense soft tissue, contrast": (150.0, 300.0),
    "bone": (300.0, np.inf),
}
_EDGES = np.array([lo for lo, _ in HU_CLASSES.values()] + [np.inf])


def body_hu_histogram(hu: np.ndarray) -> np.ndarray:
    """Shares (summing to 1) of the :data:`HU_CLASSES` among the voxels inside the body.

    Examples
    --------
    >>> hu = np.full((12, 12, 1), -1000.0); hu[2:10, 2:10] = 40.0; hu[4:8, 4:8] = -850.0
    >>> [round(float(x), 2) for x in body_hu_histogram(hu)]   # 16 of 64 body voxels are lung
    [0.0, 0.25, 0.0, 0.0, 0.0, 0.75, 0.0, 0.0]
    """
    hu = np.asarray(hu)
    values = hu[body_mask(hu)]
    if values.size == 0:
        raise ValueError("hu: no body found (no voxel at or above -500 HU)")
    counts, _ = np.histogram(values, bins=_EDGES)
    return counts / counts.sum()


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two histograms on the same bins.

    Examples
    --------
    >>> js_distance(np.array([1.0, 0.0]), np.array([1.0, 0.0]))
    0.0
    >>> js_distance(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    1.0
    """
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError(f"histograms of different lengths: {p.shape} and {q.shape}")
    return float(jensenshannon(p, q, base=2))
