"""Grad-CAM for 3-D CNNs: which part of the volume drove the prediction (chapter 06_evaluation).

Grad-CAM (Selvaraju et al., 2017) weights each channel ``k`` of a convolutional feature map
``A_k`` by the mean gradient of the model's output with respect to it,

    α_k = mean over (x, y, z) of ∂y/∂A_k(x, y, z),      cam = ReLU(Σ_k α_k · A_k),

then upsamples ``cam`` to the input grid. Here ``y`` is the sigmoid output, P(abnormal), so
the map shows the regions whose features pushed the model towards "abnormal". The map is
coarse (one value per feature-map voxel: 12 × 12 × 4 for the reference network's last conv
layer at 128 × 128 × 64) and shows where the evidence is, not what it is. An untrained or
saturated model often gives an all-zero map.

TensorFlow is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

__all__ = ["conv_layer_names", "grad_cam_3d"]


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
