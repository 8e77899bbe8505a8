"""Resizing to a fixed shape and resampling to a voxel spacing in mm (chapter 02).

Resizing (:func:`resize_volume`) maps a volume onto a fixed grid, whatever its voxel size: what
a CNN needs, but a voxel then means a different distance in each scan and anatomy is stretched
differently. Resampling (:func:`resample_to_spacing`) makes voxels a given size in mm, so that
one voxel means the same distance in every scan; a centred :func:`crop_or_pad` then gives the
fixed shape without stretching anything (the field of view becomes ``shape × spacing_mm``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

__all__ = ["resize_volume", "resample_to_spacing", "crop_or_pad"]


def _check_3d(data: np.ndarray) -> None:
    if data.ndim != 3:
        raise ValueError(f"expected a 3-D (X, Y, Z) volume, got shape {data.shape}")


def resize_volume(data: np.ndarray, *, shape: Sequence[int], order: int = 1) -> np.ndarray:
    """Resize a volume to ``shape`` by spline interpolation (``scipy.ndimage.zoom``).

    The corner voxels of input and output are aligned (``grid_mode=False``), as in the Keras
    example, so ``order=1`` gives the same values as its ``resize_volume``.

    Parameters
    ----------
    data : np.ndarray
        (X, Y, Z) array; not modified.
    shape : sequence of 3 int, keyword-only
        Output shape, e.g. ``(128, 128, 64)``.
    order : int, keyword-only
        Spline order: 0 nearest, 1 linear (default), 3 cubic.

    Returns
    -------
    np.ndarray
        A new array of exactly ``shape``, same dtype as ``data``.

    Examples
    --------
    >>> resize_volume(np.array([[[0.0, 3.0]]]), shape=(1, 1, 4)).round(6).tolist()
    [[[0.0, 1.0, 2.0, 3.0]]]
    """
    _check_3d(data)
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be 3 positive integers, got {shape}")
    factors = [new / old for new, old in zip(shape, data.shape)]
    out = ndimage.zoom(data, factors, order=order)
    if out.shape != shape:  # zoom rounds out * in / in; guard against a float rounding surprise
        raise RuntimeError(f"zoom produced {out.shape}, expected {shape}")
    return out


def resample_to_spacing(
    data: np.ndarray,
    *,
    spacing_mm: Sequence[float],
    target_spacing_mm: Sequence[float],
    order: int = 1,
) -> np.ndarray:
    """Resample a volume from ``spacing_mm`` to ``target_spacing_mm`` voxels.

    Parameters
    ----------
    data : np.ndarray
        (X, Y, Z) array; not modified.
    spacing_mm, target_spacing_mm : sequence of 3 float, keyword-only
        Current and wanted voxel sizes in mm.
    order : int, keyword-only
        Spline order (1 = linear).

    Returns
    -------
    np.ndarray
        New array of shape ``round(shape * spacing_mm / target_spacing_mm)`` (at least 1 per axis);
        its voxels are ``shape * spacing_mm / new_shape`` mm, the target up to rounding.

    Examples
    --------
    >>> resample_to_spacing(np.zeros((10, 10, 4)), spacing_mm=(0.5, 0.5, 5), target_spacing_mm=(1, 1, 2.5)).shape
    (5, 5, 8)
    """
    _check_3d(data)
    if len(spacing_mm) != 3 or len(target_spacing_mm) != 3:
        raise ValueError("spacing_mm and target_spacing_mm need 3 values (X, Y, Z)")
    if min(spacing_mm) <= 0 or min(target_spacing_mm) <= 0:
        raise ValueError(
            f"voxel sizes must be positive, got {tuple(spacing_mm)} and {tuple(target_spacing_mm)}"
        )
    shape = tuple(max(1, int(round(n * s / t))) for n, s, t in zip(data.shape, spacing_mm, target_spacing_mm))
    # grid_mode: a voxel is a cell of size spacing_mm, so the new cells are exactly n * s / m mm
    # (aligning corner voxel centres instead would make them (n - 1) * s / (m - 1)).
    factors = [new / old for new, old in zip(shape, data.shape)]
    out = ndimage.zoom(data, factors, order=order, grid_mode=True, mode="nearest")
    if out.shape != shape:
        raise RuntimeError(f"zoom produced {out.shape}, expected {shape}")
    return out


def crop_or_pad(data: np.ndarray, *, shape: Sequence[int], fill: float = 0.0) -> np.ndarray:
    """Centre-crop or pad a volume to ``shape`` without interpolation.

    Along each axis, a longer volume loses ``(n - m) // 2`` voxels at the start and the rest at
    the end; a shorter one gets ``(m - n) // 2`` voxels of ``fill`` before and the rest after.

    Parameters
    ----------
    data : np.ndarray
        (X, Y, Z) array; not modified.
    shape : sequence of 3 int, keyword-only
        Output shape.
    fill : float, keyword-only
        Value of padded voxels (0 = air after windowing to [0, 1]).

    Returns
    -------
    np.ndarray
        A new array of exactly ``shape``, same dtype.

    Examples
    --------
    >>> crop_or_pad(np.arange(5.0).reshape(5, 1, 1), shape=(3, 1, 1)).ravel().tolist()
    [1.0, 2.0, 3.0]
    >>> crop_or_pad(np.ones((2, 1, 1)), shape=(5, 1, 1), fill=-1).ravel().tolist()
    [-1.0, 1.0, 1.0, -1.0, -1.0]
    """
    _check_3d(data)
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be 3 positive integers, got {shape}")
    out = np.full(shape, fill, dtype=data.dtype)
    src, dst = [], []
    for n, m in zip(data.shape, shape):
        if n >= m:
            start = (n - m) // 2
            src.append(slice(start, start + m))
            dst.append(slice(0, m))
        else:
            start = (m - n) // 2
            src.append(slice(0, n))
            dst.append(slice(start, start + n))
    out[tuple(dst)] = data[tuple(src)]
    return out
