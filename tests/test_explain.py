"""Tests for ctutils.explain: Grad-CAM on tiny 3-D CNNs whose behaviour is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from ctutils.explain import conv_layer_names, grad_cam_3d  # noqa: E402


def _detector_model(head_weights):
    """Pool 2 → Conv3D(1×1×1) with two channels → global average → Dense(1, sigmoid).

    Channel 0 = ReLU(x − 0.5) fires on bright voxels, channel 1 = ReLU(0.5 − x) on dark ones.
    ``head_weights`` (w0, w1) choose which channel drives P(abnormal). The feature map is
    4 × 4 × 4 for an 8 × 8 × 8 input, so the heatmap has to be upsampled.
    """
    inputs = keras.Input((8, 8, 8, 1))
    x = keras.layers.MaxPooling3D(2)(inputs)
    x = keras.layers.Conv3D(2, 1, activation="relu", name="detect")(x)
    x = keras.layers.GlobalAveragePooling3D()(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="head")(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("detect").set_weights(
        [np.array([1.0, -1.0], np.float32).reshape(1, 1, 1, 1, 2), np.array([-0.5, 0.5], np.float32)]
    )
    model.get_layer("head").set_weights([np.array(head_weights, np.float32).reshape(2, 1), np.zeros(1, np.float32)])
    return model


def _volume():
    """Dim background 0.2; a bright 2×2×2 blob (1.0) in the first octant."""
    v = np.full((8, 8, 8), 0.2, np.float32)
    v[0:2, 0:2, 0:2] = 1.0
    return v


def test_heatmap_follows_the_channel_that_drives_the_output():
    v = _volume()
    original = v.copy()
    # Output driven by the bright-blob detector: the blob lights up, the background stays 0.
    heat = grad_cam_3d(_detector_model([3.0, 0.0]), v)
    assert heat.shape == v.shape and heat.dtype == np.float32
    assert heat.min() >= 0.0 and heat.max() == pytest.approx(1.0)
    assert heat[0, 0, 0] == pytest.approx(1.0)
    assert heat[4:, 4:, 4:].max() == 0.0  # far octant: no evidence
    assert heat[0:2, 0:2, 0:2].mean() > 5 * heat[2:, 2:, 2:].mean()
    np.testing.assert_array_equal(v, original)  # the caller's array is untouched

    # Output driven by the background detector: now the blob is the one place without heat.
    heat = grad_cam_3d(_detector_model([0.0, 3.0]), v)
    assert heat[0, 0, 0] == 0.0
    assert heat[6, 6, 6] == pytest.approx(1.0)


def test_negative_evidence_is_clipped_to_zero():
    # The bright detector pushes P(abnormal) down (negative weight) and is the only active
    # channel at the blob: ReLU leaves no heat anywhere → an all-zero map, not NaN.
    v = np.full((8, 8, 8), 0.5, np.float32)  # nothing for the dark detector: ReLU(0.5 - 0.5) = 0
    v[0:2, 0:2, 0:2] = 1.0
    heat = grad_cam_3d(_detector_model([-3.0, 0.0]), v)
    assert np.all(heat == 0.0)


def test_accepts_channel_axis_and_default_layer_is_last_conv():
    inputs = keras.Input((8, 8, 8, 1))
    x = keras.layers.Conv3D(2, 3, padding="same", name="first")(inputs)
    x = keras.layers.Conv3D(2, 3, padding="valid", name="second")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.GlobalAveragePooling3D()(x))
    model = keras.Model(inputs, outputs)
    assert conv_layer_names(model) == ["first", "second"]
    rng = np.random.default_rng(0)
    v = rng.uniform(size=(8, 8, 8, 1)).astype(np.float32)
    heat = grad_cam_3d(model, v)  # "second": 6 × 6 × 6 map upsampled to 8 × 8 × 8
    assert heat.shape == (8, 8, 8)
    assert 0.0 <= heat.min() and heat.max() <= 1.0
    heat_first = grad_cam_3d(model, v, layer_name="first")
    assert heat_first.shape == (8, 8, 8)
    assert heat_first.std() > 0  # not constant


def test_bad_input():
    model = _detector_model([1.0, 0.0])
    with pytest.raises(ValueError, match="does not fit the model's input"):
        grad_cam_3d(model, np.zeros((8, 8, 4), np.float32))
    with pytest.raises(ValueError, match="expected one"):
        grad_cam_3d(model, np.zeros((1, 8, 8, 8, 1), np.float32))
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        grad_cam_3d(model, _volume(), layer_name="nope")
    with pytest.raises(ValueError, match=r"needs a \(B, X, Y, Z, C\) feature map"):
        grad_cam_3d(model, _volume(), layer_name="head")
    with pytest.raises(ValueError, match="class_index 1 out of range"):
        grad_cam_3d(model, _volume(), class_index=1)
    inputs = keras.Input((8, 8, 8, 1))
    no_conv = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.GlobalAveragePooling3D()(inputs)))
    with pytest.raises(ValueError, match="no Conv3D layer"):
        grad_cam_3d(no_conv, _volume())
