"""The reference pipeline: the Keras example "3D image classification from CT scans", re-implemented.

This module reproduces, step by step, what the Keras example does (as described in the course's
issues; the original code is not vendored). It is the *baseline* of ``benchmarks/run.py`` and is
deliberately **not** improved: the in-place clipping, the order-3 ``ndimage.rotate`` by 90°, the
``float64`` read, the unseeded ``random.choice`` inside ``tf.numpy_function``, the whole training
set held in RAM for ``from_tensor_slices`` — all are kept, because they are what is measured.

Pipeline
--------
``read_nifti_file``  ``nib.load(path).get_fdata()`` (float64, no reorientation)
``normalize``        clip **in place** to [-1000, 400] HU, scale to [0, 1], ``astype("float32")``
``resize_volume``    ``ndimage.rotate(img, 90, reshape=False)`` (spline order 3), then
                     ``ndimage.zoom(img, (w, h, d), order=1)`` with factors ``1 / (current / desired)``
``process_scan``     the three above
``load_dataset``     ``np.array([process_scan(p) for p in paths])`` per class, 70 % / 30 % split by
                     list order (the example's ``[:70]`` / ``[70:]`` on 100 scans per class)
``rotate``           ``scipy.ndimage.rotate`` by ``random.choice([-20, -10, -5, 5, 10, 20])``,
                     ``reshape=False``, clipped to [0, 1], inside ``tf.numpy_function``
``make_train_dataset``  ``from_tensor_slices`` → ``shuffle(len)`` → ``map(train_preprocessing)`` →
                     ``batch(2)`` → ``prefetch(2)``
``build_model`` / ``compile_model``  ``ctutils.models.build_cnn3d()`` (the example's network, the
                     same object the course uses), Adam + ExponentialDecay(1e-4, 100000, 0.96,
                     staircase), binary cross-entropy, accuracy
``predict``          ``model.predict(np.expand_dims(x, axis=0))[0]``

TensorFlow is imported only inside the functions that need it, so preprocessing-only processes
(the benchmark's memory probes) do not load it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import nibabel as nib
import numpy as np
from scipy import ndimage

__all__ = [
    "ANGLES",
    "DESIRED_SHAPE",
    "ReferenceData",
    "build_model",
    "compile_model",
    "load_dataset",
    "make_train_dataset",
    "make_validation_dataset",
    "normalize",
    "predict",
    "process_scan",
    "read_nifti_file",
    "resize_volume",
    "rotate",
    "scipy_rotate",
    "train_preprocessing",
    "validation_preprocessing",
]

#: (width, height, depth) of the example's network input.
DESIRED_SHAPE: tuple[int, int, int] = (128, 128, 64)
#: The example's augmentation angles, in degrees.
ANGLES: tuple[int, ...] = (-20, -10, -5, 5, 10, 20)
HU_MIN, HU_MAX = -1000, 400


def read_nifti_file(filepath: str | Path) -> np.ndarray:
    """``nib.load(filepath).get_fdata()``: float64 (X, Y, Z) in HU, as stored (no reorientation)."""
    scan = nib.load(str(filepath))
    return scan.get_fdata()


def normalize(volume: np.ndarray) -> np.ndarray:
    """Clip to [-1000, 400] HU **in place**, scale to [0, 1] and cast to float32 (as the example)."""
    volume[volume < HU_MIN] = HU_MIN
    volume[volume > HU_MAX] = HU_MAX
    volume = (volume - HU_MIN) / (HU_MAX - HU_MIN)
    return volume.astype("float32")


def resize_volume(img: np.ndarray, *, shape: Sequence[int] = DESIRED_SHAPE) -> np.ndarray:
    """Rotate by 90° (order-3 spline, ``reshape=False``) and zoom linearly to ``shape`` (W, H, D)."""
    desired_width, desired_height, desired_depth = (int(n) for n in shape)
    current_depth = img.shape[-1]
    current_width = img.shape[0]
    current_height = img.shape[1]
    depth = current_depth / desired_depth
    width = current_width / desired_width
    height = current_height / desired_height
    depth_factor = 1 / depth
    width_factor = 1 / width
    height_factor = 1 / height
    img = ndimage.rotate(img, 90, reshape=False)
    img = ndimage.zoom(img, (width_factor, height_factor, depth_factor), order=1)
    return img


def process_scan(path: str | Path, *, shape: Sequence[int] = DESIRED_SHAPE) -> np.ndarray:
    """Read, normalise and resize one scan: float32 ``shape`` in [0, 1]."""
    volume = read_nifti_file(path)
    volume = normalize(volume)
    volume = resize_volume(volume, shape=shape)
    return volume


class ReferenceData(NamedTuple):
    """The example's module-level arrays after loading (all of them stay alive in its script)."""

    normal_scans: np.ndarray
    abnormal_scans: np.ndarray
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def load_dataset(
    normal_paths: Sequence[str | Path],
    abnormal_paths: Sequence[str | Path],
    *,
    train_fraction: float = 0.7,
    shape: Sequence[int] = DESIRED_SHAPE,
) -> ReferenceData:
    """Preprocess every scan into RAM and split by list order, as the example does.

    The example's ``[:70]`` / ``[70:]`` on 100 scans per class is ``train_fraction = 0.7``. Its
    script keeps the per-class arrays *and* the concatenated splits as module-level variables,
    so every volume is held twice (three times once ``from_tensor_slices`` copies the splits into
    tensors) — that is the reference's memory cost, reproduced by returning all of them.
    """
    normal_scans = np.array([process_scan(path, shape=shape) for path in normal_paths])
    abnormal_scans = np.array([process_scan(path, shape=shape) for path in abnormal_paths])
    abnormal_labels = np.array([1 for _ in range(len(abnormal_scans))])
    normal_labels = np.array([0 for _ in range(len(normal_scans))])
    n_a = int(round(train_fraction * len(abnormal_scans)))
    n_n = int(round(train_fraction * len(normal_scans)))
    x_train = np.concatenate((abnormal_scans[:n_a], normal_scans[:n_n]), axis=0)
    y_train = np.concatenate((abnormal_labels[:n_a], normal_labels[:n_n]), axis=0)
    x_val = np.concatenate((abnormal_scans[n_a:], normal_scans[n_n:]), axis=0)
    y_val = np.concatenate((abnormal_labels[n_a:], normal_labels[n_n:]), axis=0)
    return ReferenceData(normal_scans, abnormal_scans, x_train, y_train, x_val, y_val)


def scipy_rotate(volume: np.ndarray) -> np.ndarray:
    """The example's augmentation body: rotate by a random angle of :data:`ANGLES`, clip to [0, 1]."""
    angle = random.choice(ANGLES)
    volume = ndimage.rotate(volume, angle, reshape=False)
    volume[volume < 0] = 0
    volume[volume > 1] = 1
    return volume


_ROTATE: Any = None


def rotate(volume: Any) -> Any:
    """``@tf.function`` wrapping :func:`scipy_rotate` in ``tf.numpy_function`` (drops the static shape)."""
    global _ROTATE
    if _ROTATE is None:
        import tensorflow as tf

        @tf.function
        def _rotate(volume):
            return tf.numpy_function(scipy_rotate, [volume], tf.float32)

        _ROTATE = _rotate
    return _ROTATE(volume)


def train_preprocessing(volume: Any, label: Any) -> tuple[Any, Any]:
    """Rotate, then add a channel axis."""
    import tensorflow as tf

    volume = rotate(volume)
    volume = tf.expand_dims(volume, axis=3)
    return volume, label


def validation_preprocessing(volume: Any, label: Any) -> tuple[Any, Any]:
    """Only add a channel axis."""
    import tensorflow as tf

    volume = tf.expand_dims(volume, axis=3)
    return volume, label


def make_train_dataset(x_train: np.ndarray, y_train: np.ndarray, *, batch_size: int = 2) -> Any:
    """``from_tensor_slices`` (a copy of every volume) → shuffle → map → batch(2) → prefetch(2)."""
    import tensorflow as tf

    train_loader = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    return train_loader.shuffle(len(x_train)).map(train_preprocessing).batch(batch_size).prefetch(2)


def make_validation_dataset(x_val: np.ndarray, y_val: np.ndarray, *, batch_size: int = 2) -> Any:
    """``from_tensor_slices`` → shuffle → map(validation_preprocessing) → batch(2) → prefetch(2)."""
    import tensorflow as tf

    validation_loader = tf.data.Dataset.from_tensor_slices((x_val, y_val))
    return validation_loader.shuffle(len(x_val)).map(validation_preprocessing).batch(batch_size).prefetch(2)


def build_model(input_shape: Sequence[int] = (*DESIRED_SHAPE, 1)) -> Any:
    """The example's 3-D CNN (``ctutils.models.build_cnn3d`` reproduces it: 1,352,897 parameters)."""
    from ctutils.models import build_cnn3d

    return build_cnn3d(tuple(input_shape))


def compile_model(model: Any) -> Any:
    """Adam with ExponentialDecay(1e-4, 100000, 0.96, staircase), binary cross-entropy, accuracy."""
    import keras

    initial_learning_rate = 0.0001
    lr_schedule = keras.optimizers.schedules.ExponentialDecay(
        initial_learning_rate, decay_steps=100000, decay_rate=0.96, staircase=True
    )
    model.compile(
        loss="binary_crossentropy",
        optimizer=keras.optimizers.Adam(learning_rate=lr_schedule),
        metrics=["acc"],
    )
    return model


def predict(model: Any, x: np.ndarray) -> np.ndarray:
    """``model.predict(np.expand_dims(x, axis=0))[0]`` for one preprocessed volume."""
    return model.predict(np.expand_dims(x, axis=0), verbose=0)[0]
