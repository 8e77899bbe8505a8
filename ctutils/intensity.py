"""Intensity: Hounsfield-unit windowing (chapter 02)."""

from __future__ import annotations

import numpy as np

__all__ = ["window_hu", "HU_MIN", "HU_MAX"]

#: Default window of the course and of the Keras example: air (-1000 HU) to dense soft tissue (400 HU).
HU_MIN = -1000.0
HU_MAX = 400.0


def window_hu(data: np.ndarray, *, hu_min: float = HU_MIN, hu_max: float = HU_MAX) -> np.ndarray:
    """Clip a volume to ``[hu_min, hu_max]`` HU and scale it linearly to ``[0, 1]``.

    Parameters
    ----------
    data : np.ndarray
        Array in HU, any shape. It is not modified.
    hu_min, hu_max : float, keyword-only
        The window, in HU; ``hu_min`` maps to 0 and ``hu_max`` to 1.

    Returns
    -------
    np.ndarray
        A new float32 array of the same shape, in ``[0, 1]``.

    Examples
    --------
    >>> window_hu(np.array([-2000.0, -1000.0, -300.0, 400.0, 3000.0])).tolist()
    [0.0, 0.0, 0.5, 1.0, 1.0]
    """
    if not hu_max > hu_min:
        raise ValueError(f"hu_max ({hu_max}) must be greater than hu_min ({hu_min})")
    out = np.clip(np.asarray(data, dtype=np.float32), hu_min, hu_max)
    out -= np.float32(hu_min)
    out /= np.float32(hu_max - hu_min)
    return out
