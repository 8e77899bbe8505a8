"""Preprocessing a CT scan for the CNN: orientation, HU window, spacing, size (chapter 02).

Two presets:

``course`` (the default)
    Read the NIfTI, reorient it **with its affine** to RAS+ (:mod:`ctutils.orientation`), window
    to [-1000, 400] HU → [0, 1], then resize linearly to ``shape`` (128 × 128 × 64) — or, with
    ``spacing_mm``, resample to that voxel size and centre-crop/pad to ``shape``. Every scan ends up in the same anatomical orientation whatever
    the scanner wrote, and the caller's array is never modified.

``keras-example``
    Reproduces the Keras example "3D image classification from CT scans" step by step:
    ``get_fdata()`` with no reorientation, clip/scale to [0, 1], ``scipy.ndimage.rotate(…, 90,
    reshape=False)``, then ``scipy.ndimage.zoom(order=1)`` to ``shape``. For square slices the
    rotation is done exactly with ``np.rot90`` (the same array, ~15× faster than the order-3
    spline rotation); output agrees with the original to ≤ 1e-5. Use it to compare with the tutorial.

Why the default differs: a fixed 90° rotation is only right for files stored in one particular
orientation; the affine says how each file is stored, so reorienting with it is right for all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from ctutils.intensity import HU_MAX, HU_MIN, window_hu
from ctutils.io import Volume, load_mask, load_volume
from ctutils.resample import crop_or_pad, resample_to_spacing, resize_volume

__all__ = ["PRESETS", "PreprocessConfig", "preprocess_file", "preprocess_mask", "preprocess_volume"]

PRESETS = ("course", "keras-example")


@dataclass(frozen=True)
class PreprocessConfig:
    """The preprocessing steps, saved with every cache and every trained model.

    Attributes
    ----------
    shape : tuple of 3 int
        Output shape (X, Y, Z) in voxels.
    hu_min, hu_max : float
        HU window mapped to [0, 1].
    spacing_mm : tuple of 3 float or None
        ``None`` (default): resize to ``shape`` whatever the voxel size. Otherwise resample to
        this voxel size in mm, then centre-crop or pad (with air) to ``shape``: every scan then
        has the same voxel size and a field of view of ``shape × spacing_mm`` mm, e.g.
        (2.8, 2.8, 5.0) mm × (128, 128, 64) ≈ 358 × 358 × 320 mm for a chest.
    preset : {"course", "keras-example"}
        See the module docstring.
    """

    shape: tuple[int, int, int] = (128, 128, 64)
    hu_min: float = HU_MIN
    hu_max: float = HU_MAX
    spacing_mm: tuple[float, float, float] | None = None
    preset: str = "course"

    def __post_init__(self) -> None:
        shape = tuple(int(n) for n in self.shape)
        if len(shape) != 3 or min(shape) < 2:
            raise ValueError(f"shape must be 3 integers ≥ 2 (X, Y, Z), got {self.shape}")
        object.__setattr__(self, "shape", shape)
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if not self.hu_max > self.hu_min:
            raise ValueError(f"hu_max ({self.hu_max}) must be greater than hu_min ({self.hu_min})")
        object.__setattr__(self, "hu_min", float(self.hu_min))
        object.__setattr__(self, "hu_max", float(self.hu_max))
        if self.spacing_mm is not None:
            spacing = tuple(float(s) for s in self.spacing_mm)
            if len(spacing) != 3 or min(spacing) <= 0:
                raise ValueError(f"spacing_mm must be 3 positive numbers (mm), got {self.spacing_mm}")
            if self.preset == "keras-example":
                raise ValueError("the keras-example preset does not resample (spacing_mm must be None)")
            object.__setattr__(self, "spacing_mm", spacing)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists for tuples)."""
        out = asdict(self)
        out["shape"] = list(self.shape)
        out["spacing_mm"] = None if self.spacing_mm is None else list(self.spacing_mm)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreprocessConfig:
        """Rebuild a config from :meth:`to_dict` output; unknown keys are ignored."""
        fields = {"shape", "hu_min", "hu_max", "spacing_mm", "preset"}
        kwargs = {k: v for k, v in data.items() if k in fields}
        if "shape" in kwargs:
            kwargs["shape"] = tuple(kwargs["shape"])
        if kwargs.get("spacing_mm") is not None:
            kwargs["spacing_mm"] = tuple(kwargs["spacing_mm"])
        return cls(**kwargs)

    def replace(self, **changes: Any) -> PreprocessConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def key(self) -> str:
        """A short stable hash of the parameters (used to key caches).

        Examples
        --------
        >>> PreprocessConfig().key() == PreprocessConfig(shape=[128, 128, 64]).key()
        True
        >>> PreprocessConfig().key() == PreprocessConfig(shape=(64, 64, 32)).key()
        False
        """
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _keras_example(data: np.ndarray, shape: Sequence[int], hu_min: float, hu_max: float) -> np.ndarray:
    """The Keras example's ``normalize`` + ``resize_volume``, on a copy (float64 in, float32 out)."""
    volume = np.clip(np.asarray(data, dtype=np.float64), hu_min, hu_max)
    volume = ((volume - hu_min) / (hu_max - hu_min)).astype(np.float32)
    return _keras_geometry(volume, shape)


def _keras_geometry(volume: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """The Keras example's 90° rotation and order-1 zoom to ``shape``."""
    # Zoom factors computed exactly as the example does: 1 / (current / desired).
    factors = [1 / (current / desired) for current, desired in zip(volume.shape, shape)]
    if volume.shape[0] == volume.shape[1]:
        volume = np.rot90(volume, k=1, axes=(0, 1))  # == ndimage.rotate(volume, 90, reshape=False)
    else:
        volume = ndimage.rotate(volume, 90, reshape=False)
    return ndimage.zoom(volume, factors, order=1)


def _course_geometry(array: np.ndarray, volume: Volume, config: PreprocessConfig, *, fill: float) -> np.ndarray:
    """The course preset's resize (or resampling to ``spacing_mm`` and centre crop/pad)."""
    if config.spacing_mm is None:
        return resize_volume(array, shape=config.shape, order=1)
    # same voxel size in mm for every scan, then the fixed shape without stretching
    out = resample_to_spacing(array, spacing_mm=volume.spacing_mm, target_spacing_mm=config.spacing_mm)
    return crop_or_pad(out, shape=config.shape, fill=fill)


def preprocess_volume(volume: Volume, *, config: PreprocessConfig | None = None) -> np.ndarray:
    """Turn a loaded scan into the network's input.

    Parameters
    ----------
    volume : Volume
        From :func:`ctutils.io.load_volume` (canonical for the ``course`` preset; as stored,
        ``canonical=False``, to reproduce the ``keras-example`` preset exactly).
    config : PreprocessConfig, keyword-only
        Steps and parameters; default ``PreprocessConfig()``.

    Returns
    -------
    np.ndarray
        float32 array of ``config.shape`` with values in [0, 1].
    """
    config = config or PreprocessConfig()
    if config.preset == "keras-example":
        out = _keras_example(volume.data, config.shape, config.hu_min, config.hu_max)
    else:
        out = window_hu(volume.data, hu_min=config.hu_min, hu_max=config.hu_max)
        out = _course_geometry(out, volume, config, fill=0.0)
        out = np.clip(out, 0.0, 1.0, out=out)  # interpolation stays inside the window
    if out.shape != config.shape:
        raise ValueError(f"{volume.path}: preprocessing produced shape {out.shape}, expected {config.shape}")
    return out.astype(np.float32, copy=False)


def preprocess_file(path: str | Path, *, config: PreprocessConfig | None = None) -> tuple[np.ndarray, Volume]:
    """Read a NIfTI scan and preprocess it; returns ``(array, volume)``.

    Raises :class:`ctutils.io.VolumeError` naming the file for any unreadable or invalid scan.
    """
    config = config or PreprocessConfig()
    keras_example = config.preset == "keras-example"
    volume = load_volume(path, canonical=not keras_example, dtype=np.float64 if keras_example else np.float32)
    return preprocess_volume(volume, config=config), volume


def preprocess_mask(path: str | Path, *, volume: Volume, config: PreprocessConfig | None = None) -> np.ndarray:
    """Bring a scan's lesion mask to the network's input grid, with the scan's own geometry steps.

    Parameters
    ----------
    path : str or Path
        The mask file (:func:`ctutils.io.load_mask`: same shape and affine as the scan).
    volume : Volume, keyword-only
        The scan as :func:`preprocess_file` read it (its orientation decides the mask's).
    config : PreprocessConfig, keyword-only
        The scan's preprocessing; only its geometry (reorientation, rotation, resizing or
        resampling) applies to the mask.

    Returns
    -------
    np.ndarray
        float16 array of ``config.shape``: the fraction of each voxel inside a lesion (linear
        interpolation of the 0/1 mask), in [0, 1].

    Raises
    ------
    ctutils.io.VolumeError
        Naming the mask file, when it is unreadable or does not fit its scan.
    """
    config = config or PreprocessConfig()
    mask = load_mask(path, like=volume)
    if config.preset == "keras-example":
        out = _keras_geometry(mask, config.shape)
    else:
        out = _course_geometry(mask, volume, config, fill=0.0)
    return np.clip(out, 0.0, 1.0).astype(np.float16)
