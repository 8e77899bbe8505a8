"""3-D CNN classifiers for chest CT volumes (chapter 04_model).

All models take a batch of preprocessed volumes ``(B, X, Y, Z, 1)`` float32 in [0, 1]
(X = patient right, Y = anterior, Z = superior / slice axis, see :mod:`ctutils.io`) and
return ``(B, 1)`` float32: the probability that the scan is abnormal (label 1).

* :func:`build_cnn3d` reproduces the Keras example "3D image classification from CT scans"
  exactly by default (1,352,897 parameters at 128 x 128 x 64 x 1).
* ``padding="same"`` lets the same network run on small quick-run shapes (e.g. 64 x 64 x 32).
* :func:`build_resnet3d_small` is a lighter, faster residual alternative.

The final ``Dense(1, sigmoid)`` is always computed in float32 so that the models stay
numerically safe under the ``mixed_float16`` policy that :mod:`ctutils.training` switches on
when a GPU is present (with the default float32 policy this changes nothing).

:func:`load_model_safely` reads a ``.keras`` file with ``safe_mode=True`` (nothing is ever
unpickled) and turns every kind of bad file into one ``ValueError`` naming the file.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from ctutils.tfimport import keras

layers = keras.layers

__all__ = [
    "MODELS",
    "build_cnn3d",
    "build_model",
    "build_resnet3d_small",
    "load_model_safely",
    "minimum_input_size",
]

_POOLINGS = ("avg", "max", "avgmax")
_AXES = ("X", "Y", "Z")
_PADDINGS = ("valid", "same")


def minimum_input_size(n_blocks: int = 4, padding: str = "valid") -> int:
    """Smallest size of a spatial axis that :func:`build_cnn3d` can shrink to >= 1 voxel.

    Each block is ``Conv3D(kernel 3)`` followed by ``MaxPool3D(2)`` (floor division). With
    ``valid`` padding the convolution removes 2 voxels, so a block maps ``n`` to
    ``(n - 2) // 2``; the smallest ``n`` giving ``t`` voxels is ``2 * t + 2``. Working back
    from 1 voxel: 1 -> 4 -> 10 -> 22 -> 46 for the reference's 4 blocks. With ``same``
    padding a block maps ``n`` to ``n // 2`` and the minimum is ``2 ** n_blocks``.

    Parameters
    ----------
    n_blocks : int
        Number of conv/pool blocks (>= 1).
    padding : {"valid", "same"}
        Padding of the convolutions.

    Returns
    -------
    int
        Minimum number of voxels per spatial axis.

    Examples
    --------
    >>> minimum_input_size()
    46
    >>> minimum_input_size(4, "same")
    16
    """
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 1:
        raise ValueError(f"n_blocks must be a positive integer, got {n_blocks!r}")
    _check_padding(padding)
    size = 1
    for _ in range(n_blocks):
        size = 2 * size + 2 if padding == "valid" else 2 * size
    return size


def build_cnn3d(
    input_shape: Sequence[int] = (128, 128, 64, 1),
    *,
    filters: Sequence[int] = (64, 64, 128, 256),
    dense_units: int = 512,
    dropout: float = 0.3,
    padding: str = "valid",
    bn_momentum: float = 0.99,
    pooling: str = "avg",
    name: str = "cnn3d",
) -> keras.Model:
    """The 3-D CNN of the Keras CT example, configurable.

    ``Input -> len(filters) x [Conv3D(f, 3, relu, padding) -> MaxPool3D(2) ->
    BatchNormalization] -> GlobalAveragePooling3D (or ``pooling``) -> Dense(dense_units, relu) ->
    Dropout(dropout) -> Dense(1, sigmoid)``. The defaults reproduce the reference exactly
    (same layers, same order, 1,352,897 parameters at 128 x 128 x 64 x 1).

    Parameters
    ----------
    input_shape : sequence of 4 int
        ``(X, Y, Z, channels)`` of one volume, e.g. ``(128, 128, 64, 1)``.
    filters : sequence of int
        Filters of each conv block; its length is the number of blocks.
    dense_units : int
        Width of the hidden dense layer.
    dropout : float
        Dropout rate before the output layer, in [0, 1).
    padding : {"valid", "same"}
        ``valid`` (reference) needs at least :func:`minimum_input_size` voxels per axis
        (46 for 4 blocks); ``same`` needs ``2 ** len(filters)`` (16 for 4 blocks) and so
        builds at quick-run shapes such as 64 x 64 x 32.
    bn_momentum : float
        Momentum of the batch-normalisation running statistics (Keras default 0.99, as the
        reference). Short runs of a few hundred steps need a lower value (e.g. 0.9): with 0.99
        the statistics used at validation lag far behind the training ones, and predictions stay
        poorly calibrated (accuracy stuck at 0.5) even when the ranking (AUC) is already good.
    pooling : {"avg", "max", "avgmax"}
        How the last feature maps become one vector: ``GlobalAveragePooling3D`` (the reference),
        ``GlobalMaxPooling3D``, or both concatenated (the hidden dense layer then sees twice as
        many features). Averaging asks "how much of the volume looks abnormal", the maximum "does
        any one place look abnormal". An option to experiment with, not a recommendation: on the
        synthetic data at 64 x 64 x 32 (``cnn3d-small``, 40 epochs, one seed each) neither ``max``
        nor ``avgmax`` beat ``avg`` on validation.
    name : str
        Model name.

    Returns
    -------
    keras.Model
        Uncompiled model mapping ``(B, X, Y, Z, C)`` float32 to ``(B, 1)`` probabilities.

    Raises
    ------
    ValueError
        If ``input_shape`` is not 4-D or an axis is smaller than the minimum size (the
        message names the axis, the shape and the minimum), or for an unknown ``padding`` or
        ``pooling`` or a ``dropout`` outside [0, 1).

    Examples
    --------
    >>> build_cnn3d().count_params()
    1352897
    >>> build_cnn3d((64, 64, 32, 1), padding="same").output_shape
    (None, 1)
    """
    shape = _check_input_shape(input_shape)
    filters = _check_filters(filters)
    _check_padding(padding)
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    if pooling not in _POOLINGS:
        raise ValueError(f"pooling must be one of {_POOLINGS}, got {pooling!r}")
    minimum = minimum_input_size(len(filters), padding)
    for axis, size in zip(_AXES, shape[:3]):
        if size < minimum:
            raise ValueError(
                f"input_shape {shape}: axis {axis} has {size} voxels, but the {padding}-padding "
                f"CNN with {len(filters)} blocks needs at least {minimum} voxels per axis "
                f"(use a larger preprocessing shape or padding='same')"
            )

    inputs = keras.Input(shape)
    x = inputs
    for n_filters in filters:
        x = layers.Conv3D(filters=n_filters, kernel_size=3, activation="relu", padding=padding)(x)
        x = layers.MaxPool3D(pool_size=2)(x)
        x = layers.BatchNormalization(momentum=bn_momentum)(x)
    if pooling == "avg":
        x = layers.GlobalAveragePooling3D()(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling3D()(x)
    else:
        x = layers.Concatenate()([layers.GlobalAveragePooling3D()(x), layers.GlobalMaxPooling3D()(x)])
    x = layers.Dense(units=dense_units, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(units=1, activation="sigmoid", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def build_resnet3d_small(
    input_shape: Sequence[int] = (128, 128, 64, 1),
    *,
    filters: Sequence[int] = (16, 32, 64, 128),
    dropout: float = 0.3,
    bn_momentum: float = 0.99,
    name: str = "resnet3d",
) -> keras.Model:
    """A small 3-D ResNet: the stronger, cheaper alternative to :func:`build_cnn3d`.

    ``Conv3D(filters[0], 3) -> BN -> ReLU -> MaxPool3D(2)``, then one basic residual block
    per entry of ``filters`` (two ``Conv3D(3)`` + BN, identity shortcut, or a strided
    ``Conv3D(1)`` + BN shortcut when the width or resolution changes; every block after the
    first halves the resolution with stride 2), then ``GlobalAveragePooling3D ->
    Dropout -> Dense(1, sigmoid)``. All convolutions use ``same`` padding.

    Trade-off against the reference CNN at 128 x 128 x 64 x 1 (default arguments):

    * parameters: 898,929 vs 1,352,897 (no 512-unit dense layer; the width goes into
      the deepest convolutions instead);
    * compute: about 3.5 vs 16 GMAC per volume forward (the reference spends most of it in
      the second 64 -> 64 convolution at 61 x 61 x 29), but on a 2-core CPU the
      full-resolution batch norm and ReLU of the stem eat much of that gain in time per
      training step (measured once, with peak memory: docs/measurements.md);
    * receptive field: 96 vs 46 voxels per axis along the main path, so deep features see
      most of a lung rather than a 46-voxel patch;
    * residual shortcuts and batch normalisation after every convolution are meant to let
      it train with a larger learning rate (the ``improved`` recipe uses 1e-3);
    * ``same`` padding builds down to ``2 ** len(filters)`` voxels per axis (16 for the
      defaults: the last stage then works on a single voxel);
    * cost: the stem keeps 16 channels at full resolution (128 x 128 x 64), and it is not
      the published reference, so results are not directly comparable with the Keras
      example. Whether it scores better is measured, not assumed: docs/experiments.md.

    Parameters
    ----------
    input_shape : sequence of 4 int
        ``(X, Y, Z, channels)`` of one volume.
    filters : sequence of int
        Width of the stem and of each residual stage.
    dropout : float
        Dropout rate before the output layer, in [0, 1).
    bn_momentum : float
        Momentum of every batch-normalisation layer (see :func:`build_cnn3d`).
    name : str
        Model name.

    Returns
    -------
    keras.Model
        Uncompiled model mapping ``(B, X, Y, Z, C)`` float32 to ``(B, 1)`` probabilities.

    Raises
    ------
    ValueError
        If ``input_shape`` is not 4-D or an axis is smaller than ``2 ** len(filters)``.

    Examples
    --------
    >>> build_resnet3d_small().count_params()
    898929
    """
    shape = _check_input_shape(input_shape)
    filters = _check_filters(filters)
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    minimum = 2 ** len(filters)  # stem pool + (len(filters) - 1) strided stages, >= 2 voxels left
    for axis, size in zip(_AXES, shape[:3]):
        if size < minimum:
            raise ValueError(
                f"input_shape {shape}: axis {axis} has {size} voxels, but the residual network "
                f"with {len(filters)} stages needs at least {minimum} voxels per axis"
            )

    inputs = keras.Input(shape)
    x = layers.Conv3D(filters[0], 3, padding="same", use_bias=False)(inputs)
    x = layers.BatchNormalization(momentum=bn_momentum)(x)
    x = layers.Activation("relu")(x)
    x = layers.MaxPool3D(pool_size=2)(x)
    for stage, n_filters in enumerate(filters):
        x = _residual_block(x, n_filters, strides=1 if stage == 0 else 2, bn_momentum=bn_momentum)
    x = layers.GlobalAveragePooling3D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(units=1, activation="sigmoid", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def _residual_block(x: Any, n_filters: int, *, strides: int, bn_momentum: float) -> Any:
    shortcut = x
    y = layers.Conv3D(n_filters, 3, strides=strides, padding="same", use_bias=False)(x)
    y = layers.BatchNormalization(momentum=bn_momentum)(y)
    y = layers.Activation("relu")(y)
    y = layers.Conv3D(n_filters, 3, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization(momentum=bn_momentum)(y)
    if strides != 1 or x.shape[-1] != n_filters:
        shortcut = layers.Conv3D(n_filters, 1, strides=strides, use_bias=False)(x)
        shortcut = layers.BatchNormalization(momentum=bn_momentum)(shortcut)
    y = layers.Add()([y, shortcut])
    return layers.Activation("relu")(y)


def _check_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int, int]:
    try:
        shape = tuple(int(n) for n in input_shape)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"input_shape must be 4 integers (X, Y, Z, channels), got {input_shape!r}") from exc
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(f"input_shape must be 4 positive integers (X, Y, Z, channels), got {input_shape!r}")
    return shape  # type: ignore[return-value]


def _check_filters(filters: Sequence[int]) -> tuple[int, ...]:
    out = tuple(int(f) for f in filters)
    if not out or min(out) < 1:
        raise ValueError(f"filters must be a non-empty sequence of positive integers, got {filters!r}")
    return out


def _check_padding(padding: str) -> None:
    if padding not in _PADDINGS:
        raise ValueError(f"padding must be one of {_PADDINGS}, got {padding!r}")


#: Model builders by name; each is called as ``builder(input_shape, **kwargs)``.
MODELS: dict[str, Callable[..., keras.Model]] = {
    "cnn3d": build_cnn3d,
    "cnn3d-same": partial(build_cnn3d, padding="same", name="cnn3d_same"),
    # The course's quick profile: the reference's layout, same padding, a quarter of the filters,
    # and batch-norm statistics that settle within a few hundred steps.
    "cnn3d-small": partial(
        build_cnn3d, padding="same", filters=(16, 32, 64, 128), dense_units=128, bn_momentum=0.9, name="cnn3d_small"
    ),
    "resnet3d": build_resnet3d_small,
}


def build_model(name: str, input_shape: Sequence[int], **kwargs: Any) -> keras.Model:
    """Build a model of :data:`MODELS` by name.

    Parameters
    ----------
    name : str
        One of ``MODELS`` (``"cnn3d"``, ``"cnn3d-same"``, ``"cnn3d-small"``, ``"resnet3d"``).
    input_shape : sequence of 4 int
        ``(X, Y, Z, channels)``.
    **kwargs
        Passed to the builder (e.g. ``filters=(8, 8, 16, 16)``).

    Returns
    -------
    keras.Model

    Raises
    ------
    ValueError
        If ``name`` is not in :data:`MODELS`.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](input_shape, **kwargs)


def load_model_safely(path: str | os.PathLike[str], *, compile: bool = False) -> keras.Model:
    """Load a ``.keras`` model with ``safe_mode=True``; any bad file gives one clear error.

    Nothing is unpickled: ``safe_mode`` refuses ``Lambda`` layers with serialized Python
    code, and legacy HDF5 / SavedModel files are refused before Keras sees them.

    Parameters
    ----------
    path : path-like
        A ``.keras`` archive written by ``model.save`` (e.g. ``RUN/model.keras``).
    compile : bool
        Also restore the optimizer, loss and metrics (needed only to resume training).

    Returns
    -------
    keras.Model

    Raises
    ------
    ValueError
        Naming the file, if it is missing, not a ``.keras`` file, truncated or corrupt,
        not a zip archive, or not a Keras model.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: model file not found")
    if path.suffix != ".keras":
        raise ValueError(f"{path}: expected a Keras '.keras' model file, got suffix {path.suffix!r}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a Keras model archive (not a zip file; truncated or another format?)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            bad_member = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"{path}: corrupt Keras model archive ({exc})") from exc
    if bad_member is not None:
        raise ValueError(f"{path}: corrupt Keras model archive (bad CRC in {bad_member})")
    if "config.json" not in names:
        raise ValueError(f"{path}: not a Keras model archive (no config.json inside)")
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as exc:  # Keras raises many types for bad archives; report them as one.
        raise ValueError(f"{path}: could not load the Keras model ({type(exc).__name__}: {exc})") from exc
