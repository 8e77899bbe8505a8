"""Random augmentation of CT volumes with stateless TensorFlow ops (chapter 03_augmentation).

Every random draw comes from ``tf.random.stateless_*`` ops keyed by an explicit seed, so a
volume augmented with the same seed is the same in every run — bit-identical in the same
execution mode, and equal up to float rounding (~1e-6) between eager code, ``tf.function`` and
``tf.data.Dataset.map``. There is no ``numpy_function``, no
``py_function`` and no SciPy on this path, so it runs in parallel in the tf.data runtime.

Geometry
--------
Volumes are ``(X, Y, Z)`` float32 in ``[0, 1]`` (HU windowed), RAS+ after
:func:`ctutils.io.load_volume`: axis 0 → patient Right, 1 → Anterior, 2 → Superior (slices).
In-plane operations (rotation, zoom/crop) treat the volume as an ``X × Y`` image with ``Z``
channels, so every slice gets the same transform. They are resampled with bilinear
interpolation and the outside is filled with 0 (= ``hu_min``, air after windowing).

Sign of the rotation angle: a **positive angle turns the anatomy counter-clockwise as seen in**
:func:`ctutils.orientation.display_slice` (radiological view: anterior at the top, the patient's
right on the viewer's left). For +90° this is ``np.rot90(volume, k=-1, axes=(0, 1))``, i.e.
``display_slice(rotated, z) == np.rot90(display_slice(volume, z), k=1)``. (``scipy.ndimage.rotate``
as used by the Keras reference turns the other way in this display; its angle set is symmetric,
so the distribution is the same.)

Why not ``keras.layers.RandomRotation``: Keras 3 preprocessing layers draw from a stateful
``SeedGenerator`` and cannot take a per-element seed tensor, so their output inside
``tf.data`` cannot be reproduced element by element. The resampling op used here,
``tf.raw_ops.ImageProjectiveTransformV3``, is the one ``keras.ops.image.affine_transform`` calls
on the TensorFlow backend, with the same transform convention; calling it directly keeps this
module independent of ``KERAS_BACKEND``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ctutils.tfimport import tf

__all__ = ["AugmentConfig", "augment_volume", "preview_augmentations"]

#: The Keras 3-D CT example's angle set (degrees), drawn uniformly.
REFERENCE_ANGLES_DEG: tuple[float, ...] = (-20.0, -10.0, -5.0, 5.0, 10.0, 20.0)

# Order of the per-op seeds split from the caller's seed. Appending keeps old seeds valid.
_OPS = ("rotation", "flip", "zoom", "intensity", "noise")


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations to apply, each with its own probability.

    Each ``*_p`` is the probability that the operation is applied to a volume (independent
    draws per operation). Ranges are closed ``(low, high)`` pairs drawn uniformly.

    Parameters
    ----------
    rotation_p : float
        Probability of an in-plane rotation (one angle for all slices of the volume).
    max_angle_deg : float
        Angle drawn uniformly in ``[-max_angle_deg, max_angle_deg]`` degrees ...
    angles_deg : tuple of float or None
        ... unless this is given: then one of these angles (degrees), uniformly. Positive is
        counter-clockwise in :func:`ctutils.orientation.display_slice` (see the module docstring).
    flip_p : float
        Probability of a left-right flip (axis 0, patient right/left in RAS).
    zoom_p : float
        Probability of an in-plane zoom; the result is cropped/padded back to the input shape.
    zoom_range : (float, float)
        Scale factor range; ``> 1`` magnifies (a random crop of ``shape / scale`` voxels kept
        inside the volume, resized back), ``< 1`` shrinks (centred, padded with 0 = air).
    intensity_p : float
        Probability of an intensity change ``v * scale + shift``.
    intensity_scale : (float, float)
        Multiplicative factor range.
    intensity_shift : (float, float)
        Additive shift range, in windowed ``[0, 1]`` units (0.01 ≈ 14 HU for the course window).
    noise_p : float
        Probability of additive Gaussian noise.
    noise_std : float
        Noise standard deviation in windowed ``[0, 1]`` units.

    Examples
    --------
    >>> AugmentConfig.reference().angles_deg
    (-20.0, -10.0, -5.0, 5.0, 10.0, 20.0)
    >>> AugmentConfig.none().is_identity()
    True
    >>> AugmentConfig(flip_p=0.0).flip_p
    0.0
    """

    rotation_p: float = 0.8
    max_angle_deg: float = 15.0
    angles_deg: tuple[float, ...] | None = None
    flip_p: float = 0.5
    zoom_p: float = 0.3
    zoom_range: tuple[float, float] = (0.9, 1.1)
    intensity_p: float = 0.3
    intensity_scale: tuple[float, float] = (0.95, 1.05)
    intensity_shift: tuple[float, float] = (-0.03, 0.03)
    noise_p: float = 0.2
    noise_std: float = 0.01

    def __post_init__(self) -> None:
        for name in ("rotation_p", "flip_p", "zoom_p", "intensity_p", "noise_p"):
            p = getattr(self, name)
            if not (isinstance(p, (int, float)) and 0.0 <= p <= 1.0):
                raise ValueError(f"AugmentConfig: {name} must be a probability in [0, 1], got {p!r}")
        if not (math.isfinite(self.max_angle_deg) and self.max_angle_deg >= 0):
            raise ValueError(
                f"AugmentConfig: max_angle_deg must be finite and >= 0, got {self.max_angle_deg!r}"
            )
        if self.angles_deg is not None:
            angles = tuple(float(a) for a in self.angles_deg)
            if not angles or not all(math.isfinite(a) for a in angles):
                raise ValueError(
                    f"AugmentConfig: angles_deg must be a non-empty tuple of finite angles, "
                    f"got {self.angles_deg!r}"
                )
            object.__setattr__(self, "angles_deg", angles)
        for name in ("zoom_range", "intensity_scale", "intensity_shift"):
            low, high = _pair(name, getattr(self, name))
            object.__setattr__(self, name, (low, high))
        if self.zoom_range[0] <= 0:
            raise ValueError(f"AugmentConfig: zoom_range must be > 0, got {self.zoom_range!r}")
        if not (math.isfinite(self.noise_std) and self.noise_std >= 0):
            raise ValueError(f"AugmentConfig: noise_std must be >= 0, got {self.noise_std!r}")

    @classmethod
    def reference(cls) -> AugmentConfig:
        """The Keras example's augmentation: always rotate by one of ±5, ±10, ±20 degrees."""
        return cls(
            rotation_p=1.0,
            angles_deg=REFERENCE_ANGLES_DEG,
            flip_p=0.0,
            zoom_p=0.0,
            intensity_p=0.0,
            noise_p=0.0,
        )

    @classmethod
    def none(cls) -> AugmentConfig:
        """No augmentation at all (every probability 0)."""
        return cls(rotation_p=0.0, flip_p=0.0, zoom_p=0.0, intensity_p=0.0, noise_p=0.0)

    def is_identity(self) -> bool:
        """True when no operation can ever change a volume (all probabilities 0)."""
        return not any((self.rotation_p, self.flip_p, self.zoom_p, self.intensity_p, self.noise_p))

    def to_dict(self) -> dict:
        """Plain-JSON dictionary of the fields (tuples as lists)."""
        return {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, d: dict) -> AugmentConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"AugmentConfig: unknown fields {unknown}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})


def _pair(name: str, value) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"AugmentConfig: {name} must be a (low, high) pair, got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise ValueError(f"AugmentConfig: {name} must have finite low <= high, got {value!r}")
    return low, high


def _as_seed(seed) -> tf.Tensor:
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer:
        raise ValueError(f"seed must be an integer tensor of shape [2], got dtype {seed.dtype.name}")
    if seed.shape.rank is not None and seed.shape.as_list() != [2]:
        raise ValueError(f"seed must have shape [2], got {seed.shape}")
    # int32 and int64 seeds select different Philox streams; one dtype makes [1, 2] mean one thing.
    return tf.cast(seed, tf.int64)


def _uniform(seed: tf.Tensor, n: int) -> tf.Tensor:
    """``n`` independent U[0, 1) float32 draws."""
    return tf.random.stateless_uniform([n], seed=seed, dtype=tf.float32)


def _lerp(u: tf.Tensor, low: float, high: float) -> tf.Tensor:
    return low + (high - low) * u


def _affine_params(shape_xy: tf.Tensor, angle_rad, scale, shift_xy) -> tf.Tensor:
    """Transform vector for ``ImageProjectiveTransformV3`` (image rows = X, columns = Y).

    Forward map (input → output) about the in-plane centre ``c = ((X-1)/2, (Y-1)/2)``:
    ``out = c + scale * R(angle) @ (in - c) + shift`` with ``R = [[cos, sin], [-sin, cos]]`` in
    ``(X, Y)`` coordinates (counter-clockwise in the radiological display). The op wants the
    inverse map, output pixel ``(col, row)`` → input ``(col', row')``, as 8 numbers.
    """
    size = tf.cast(shape_xy, tf.float32)
    cu = (size[0] - 1.0) / 2.0  # rows = X
    cw = (size[1] - 1.0) / 2.0  # columns = Y
    cos = tf.cos(angle_rad) / scale
    sin = tf.sin(angle_rad) / scale
    pu = cu + shift_xy[0]
    pw = cw + shift_xy[1]
    a0, a1, a2 = cos, sin, cw - (cos * pw + sin * pu)
    b0, b1, b2 = -sin, cos, cu - (cos * pu - sin * pw)
    zero = tf.zeros_like(cos)
    return tf.stack([a0, a1, a2, b0, b1, b2, zero, zero])[tf.newaxis]


def _transform(volume: tf.Tensor, params: tf.Tensor) -> tf.Tensor:
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=volume[tf.newaxis],
        transforms=params,
        output_shape=tf.shape(volume)[:2],
        fill_value=tf.constant(0.0, tf.float32),
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    return out[0]


def augment_volume(volume, *, seed, config: AugmentConfig) -> tf.Tensor:
    """Randomly augment one volume; the same ``seed`` always gives the same result.

    Operations, in order: in-plane rotation and zoom/crop (combined into one bilinear
    resampling, fill 0), left-right flip (axis 0), intensity ``v * scale + shift``, Gaussian
    noise; finally clipped to ``[0, 1]``. Each is applied with its probability from ``config``
    (see :class:`AugmentConfig`, which also states the sign of the rotation angle).

    Parameters
    ----------
    volume : tf.Tensor or np.ndarray, shape (X, Y, Z), float
        Windowed volume in ``[0, 1]``; Z is the slice axis. Not modified.
    seed : tf.Tensor, shape [2], int32 or int64
        Stateless seed, e.g. ``tf.constant([0, 7])`` or one row of
        ``tf.random.experimental.stateless_split``.
    config : AugmentConfig
        Probabilities and ranges. ``AugmentConfig.none()`` returns the clipped input.

    Returns
    -------
    tf.Tensor, shape (X, Y, Z), float32, values in [0, 1]
        Same static shape as ``volume``.

    Raises
    ------
    ValueError
        If ``volume`` is not 3-D or ``seed`` is not an integer pair.

    Examples
    --------
    >>> v = tf.zeros((8, 8, 4))
    >>> augment_volume(v, seed=tf.constant([1, 2]), config=AugmentConfig()).shape
    TensorShape([8, 8, 4])
    """
    if not isinstance(config, AugmentConfig):
        raise ValueError(f"config must be an AugmentConfig, got {type(config).__name__}")
    volume = tf.convert_to_tensor(volume)
    if not volume.dtype.is_floating:
        raise ValueError(f"expected a float volume, got dtype {volume.dtype.name}")
    volume = tf.cast(volume, tf.float32)
    if volume.shape.rank != 3:
        raise ValueError(f"expected a 3-D volume (X, Y, Z), got shape {volume.shape}")
    static_shape = volume.shape
    seeds = dict(zip(_OPS, tf.unstack(tf.random.experimental.stateless_split(_as_seed(seed), len(_OPS)))))
    c = config
    out = volume

    # Rotation and zoom: one resampling for both, skipped when neither is drawn.
    if c.rotation_p > 0 or c.zoom_p > 0:
        u_rot = _uniform(seeds["rotation"], 2)
        rotate = u_rot[0] < c.rotation_p
        if c.angles_deg is not None:
            angles = tf.constant(c.angles_deg, tf.float32)
            k = tf.minimum(tf.cast(u_rot[1] * len(c.angles_deg), tf.int32), len(c.angles_deg) - 1)
            angle_deg = tf.gather(angles, k)
        else:
            angle_deg = _lerp(u_rot[1], -c.max_angle_deg, c.max_angle_deg)
        angle_rad = tf.where(rotate, angle_deg * (math.pi / 180.0), 0.0)

        u_zoom = _uniform(seeds["zoom"], 4)
        zoom = u_zoom[0] < c.zoom_p
        scale = tf.where(zoom, _lerp(u_zoom[1], *c.zoom_range), 1.0)
        size_xy = tf.cast(tf.shape(out)[:2], tf.float32)
        # Magnified (scale > 1): move the crop window anywhere that keeps it inside the volume.
        max_shift = (size_xy - 1.0) / 2.0 * tf.maximum(scale - 1.0, 0.0)
        shift_xy = (2.0 * u_zoom[2:4] - 1.0) * max_shift

        params = _affine_params(tf.shape(out)[:2], angle_rad, scale, shift_xy)
        x = out
        out = tf.cond(rotate | zoom, lambda: _transform(x, params), lambda: x)

    if c.flip_p > 0:
        flip = _uniform(seeds["flip"], 1)[0] < c.flip_p
        x = out
        out = tf.cond(flip, lambda: tf.reverse(x, axis=[0]), lambda: x)

    if c.intensity_p > 0:
        u = _uniform(seeds["intensity"], 3)
        on = u[0] < c.intensity_p
        factor = tf.where(on, _lerp(u[1], *c.intensity_scale), 1.0)
        shift = tf.where(on, _lerp(u[2], *c.intensity_shift), 0.0)
        out = out * factor + shift

    if c.noise_p > 0 and c.noise_std > 0:
        noise_seeds = tf.random.experimental.stateless_split(seeds["noise"], 2)
        on = _uniform(noise_seeds[0], 1)[0] < c.noise_p
        x = out
        out = tf.cond(
            on,
            lambda: x
            + c.noise_std * tf.random.stateless_normal(tf.shape(x), seed=noise_seeds[1], dtype=tf.float32),
            lambda: x,
        )

    out = tf.clip_by_value(out, 0.0, 1.0)
    return tf.ensure_shape(out, static_shape)


def preview_augmentations(
    volume: np.ndarray, *, config: AugmentConfig, seed: int, n: int = 4
) -> list[np.ndarray]:
    """Augment one volume ``n`` times for a before/after montage.

    Parameters
    ----------
    volume : np.ndarray, shape (X, Y, Z), float
        Windowed volume in ``[0, 1]``; not modified.
    config : AugmentConfig
        Augmentation settings.
    seed : int
        The ``i``-th preview uses the stateless seed ``(seed, i)``.
    n : int
        Number of augmented copies.

    Returns
    -------
    list of np.ndarray, each (X, Y, Z) float32 in [0, 1]

    Examples
    --------
    >>> out = preview_augmentations(np.zeros((8, 8, 2), np.float32), config=AugmentConfig(), seed=0, n=2)
    >>> [a.shape for a in out]
    [(8, 8, 2), (8, 8, 2)]
    """
    arr = np.asarray(volume)
    if arr.ndim != 3:
        raise ValueError(f"expected a 3-D volume (X, Y, Z), got shape {arr.shape}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    x = tf.constant(arr, dtype=tf.float32)
    return [
        augment_volume(x, seed=tf.constant([seed, i], tf.int64), config=config).numpy() for i in range(n)
    ]
