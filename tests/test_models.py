"""Tests for ctutils.models: the reference 3-D CNN, its size limits, the ResNet, safe loading."""

from __future__ import annotations

import zipfile

import keras
import numpy as np
import pytest

from ctutils.models import (
    MODELS,
    build_cnn3d,
    build_model,
    build_resnet3d_small,
    load_model_safely,
    minimum_input_size,
)

REFERENCE_LAYERS = [
    "InputLayer",
    *["Conv3D", "MaxPooling3D", "BatchNormalization"] * 4,
    "GlobalAveragePooling3D",
    "Dense",
    "Dropout",
    "Dense",
]


def test_reference_cnn_has_1352897_parameters_and_the_example_layer_order():
    model = build_cnn3d()
    # Hand count: convs 27*1*64+64, 27*64*64+64, 27*64*128+128, 27*128*256+256 = 1,218,752;
    # BN 4*(64+64+128+256) = 2,048; Dense 256*512+512 = 131,584; Dense 512+1 = 513.
    assert model.count_params() == 1_352_897
    assert [type(layer).__name__ for layer in model.layers] == REFERENCE_LAYERS
    assert model.input_shape == (None, 128, 128, 64, 1)
    assert model.output_shape == (None, 1)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv3D)]
    assert [c.filters for c in convs] == [64, 64, 128, 256]
    assert {c.padding for c in convs} == {"valid"}
    assert {c.kernel_size for c in convs} == {(3, 3, 3)}
    assert model.layers[-2].rate == pytest.approx(0.3)
    assert model.layers[-1].activation.__name__ == "sigmoid"


@pytest.mark.parametrize(
    ("n_blocks", "padding", "expected"),
    # valid: n -> (n - 2) // 2 per block; 1 <- 4 <- 10 <- 22 <- 46. same: n -> n // 2.
    [(1, "valid", 4), (2, "valid", 10), (3, "valid", 22), (4, "valid", 46), (4, "same", 16), (1, "same", 2)],
)
def test_minimum_input_size_hand_computed(n_blocks, padding, expected):
    assert minimum_input_size(n_blocks, padding) == expected


def test_minimum_size_46_builds_and_45_raises_naming_axis_shape_and_minimum():
    model = build_cnn3d((46, 128, 64, 1))
    # 46 -> 44 -> 22 -> 20 -> 10 -> 8 -> 4 -> 2 -> 1 voxel left before global pooling.
    assert model.layers[-5].output.shape[1] == 1
    with pytest.raises(ValueError, match=r"input_shape \(45, 128, 64, 1\): axis X has 45 voxels.*at least 46"):
        build_cnn3d((45, 128, 64, 1))


def test_quick_run_shape_needs_same_padding():
    with pytest.raises(ValueError, match=r"axis Z has 32 voxels.*at least 46.*padding='same'"):
        build_cnn3d((64, 64, 32, 1))
    model = build_cnn3d((64, 64, 32, 1), padding="same")
    assert model.output_shape == (None, 1)
    # Padding does not change any weight shape: the same 1,352,897 parameters.
    assert model.count_params() == 1_352_897
    x = np.zeros((2, 64, 64, 32, 1), np.float32)
    assert model.predict(x, verbose=0).shape == (2, 1)


def test_configurable_filters_dense_and_dropout():
    model = build_cnn3d((16, 16, 16, 1), filters=(2, 3), dense_units=5, dropout=0.0, padding="same")
    # conv 27*1*2+2=56, BN 8, conv 27*2*3+3=165, BN 12, Dense 3*5+5=20, Dense 5+1=6.
    assert model.count_params() == 56 + 8 + 165 + 12 + 20 + 6
    with pytest.raises(ValueError, match="padding must be one of"):
        build_cnn3d(padding="causal")
    with pytest.raises(ValueError, match="dropout"):
        build_cnn3d(dropout=1.0)
    with pytest.raises(ValueError, match="4 positive integers"):
        build_cnn3d((128, 128, 64))


def test_pooling_options_change_only_the_head():
    avg = build_cnn3d((16, 16, 16, 1), filters=(2, 3), dense_units=5, padding="same")
    mx = build_cnn3d((16, 16, 16, 1), filters=(2, 3), dense_units=5, padding="same", pooling="max")
    both = build_cnn3d((16, 16, 16, 1), filters=(2, 3), dense_units=5, padding="same", pooling="avgmax")
    # Same convolutions; avg+max concatenates 3 + 3 features, so Dense has 6*5+5 = 35 not 20 weights.
    assert avg.count_params() == mx.count_params() == 267
    assert both.count_params() == 267 - 20 + 35
    assert any(isinstance(layer, keras.layers.GlobalMaxPooling3D) for layer in mx.layers)
    assert not any(isinstance(layer, keras.layers.GlobalMaxPooling3D) for layer in avg.layers)
    with pytest.raises(ValueError, match="pooling must be one of"):
        build_cnn3d(pooling="mean")


def test_resnet_builds_at_quick_run_shape_with_fewer_parameters():
    resnet = build_resnet3d_small((64, 64, 32, 1))
    assert resnet.count_params() == 898_929
    assert resnet.count_params() < build_cnn3d().count_params()
    assert {layer.padding for layer in resnet.layers if isinstance(layer, keras.layers.Conv3D)} == {"same", "valid"}
    assert sum(isinstance(layer, keras.layers.Add) for layer in resnet.layers) == 4
    out = resnet.predict(np.zeros((1, 64, 64, 32, 1), np.float32), verbose=0)
    assert out.shape == (1, 1)
    with pytest.raises(ValueError, match=r"axis Z has 8 voxels.*at least 16"):
        build_resnet3d_small((64, 64, 8, 1))


def test_registry_and_build_model():
    assert set(MODELS) == {"cnn3d", "cnn3d-same", "cnn3d-small", "resnet3d"}
    model = build_model("cnn3d-same", (32, 32, 16, 1), filters=(2, 2, 2, 2), dense_units=4)
    assert {layer.padding for layer in model.layers if isinstance(layer, keras.layers.Conv3D)} == {"same"}
    with pytest.raises(ValueError, match=r"unknown model 'vgg'.*cnn3d"):
        build_model("vgg", (32, 32, 16, 1))


def test_output_layer_stays_float32_under_mixed_precision():
    previous = keras.mixed_precision.global_policy()
    try:
        keras.mixed_precision.set_global_policy("mixed_float16")
        model = build_cnn3d((16, 16, 16, 1), filters=(2,), dense_units=2, padding="same")
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert model.layers[1].compute_dtype == "float16"
    assert model.layers[-1].compute_dtype == "float32"
    assert model.output.dtype == "float32"


# ----------------------------------------------------------------------------- load_model_safely


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    model = build_cnn3d((16, 16, 16, 1), filters=(2, 2), dense_units=4, padding="same")
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(path)
    return model, path


def test_load_model_safely_round_trip(saved_model):
    model, path = saved_model
    loaded = load_model_safely(path)
    x = np.random.default_rng(0).uniform(size=(2, 16, 16, 16, 1)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_load_model_safely_missing_truncated_and_garbage(saved_model, tmp_path):
    _, path = saved_model
    missing = tmp_path / "missing.keras"
    with pytest.raises(ValueError, match=r"missing\.keras: model file not found"):
        load_model_safely(missing)

    truncated = tmp_path / "truncated.keras"
    data = path.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"truncated\.keras: .*(not a zip|corrupt)"):
        load_model_safely(truncated)

    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"\x80\x04this is a pickle, not a model" * 10)
    with pytest.raises(ValueError, match=r"garbage\.keras: not a Keras model archive"):
        load_model_safely(garbage)

    other_zip = tmp_path / "other.keras"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match=r"other\.keras: not a Keras model archive \(no config.json"):
        load_model_safely(other_zip)

    wrong_suffix = tmp_path / "model.h5"
    wrong_suffix.write_bytes(data)
    with pytest.raises(ValueError, match=r"model\.h5: expected a Keras '\.keras' model file"):
        load_model_safely(wrong_suffix)


def test_load_model_safely_flips_a_byte_in_the_weights(saved_model, tmp_path):
    _, path = saved_model
    data = bytearray(path.read_bytes())
    # Corrupt a byte in the middle of the archive (inside the weights member): the CRC check fails.
    data[len(data) // 2] ^= 0xFF
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"corrupt\.keras: "):
        load_model_safely(corrupt)


def test_load_model_safely_refuses_python_code(tmp_path):
    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda t: t * 2)(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ValueError, match=r"lambda\.keras: could not load the Keras model.*safe_mode"):
        load_model_safely(path)


def test_bn_momentum_reaches_every_batch_norm_layer():
    for name in ("cnn3d-same", "resnet3d"):
        model = build_model(name, (32, 32, 16, 1), bn_momentum=0.9)
        momenta = {layer.momentum for layer in model.layers if layer.__class__.__name__ == "BatchNormalization"}
        assert momenta == {0.9}, name
    reference = build_cnn3d()
    assert {layer.momentum for layer in reference.layers if layer.__class__.__name__ == "BatchNormalization"} == {0.99}


def test_cnn3d_small_is_the_quick_profiles_model():
    model = build_model("cnn3d-small", (64, 64, 32, 1))
    convs = [layer.filters for layer in model.layers if layer.__class__.__name__ == "Conv3D"]
    momenta = {layer.momentum for layer in model.layers if layer.__class__.__name__ == "BatchNormalization"}
    assert convs == [16, 32, 64, 128] and momenta == {0.9}
    # Conv3D (27·c_in + 1)·c_out: 448 + 13,856 + 55,360 + 221,312; BN 4·c: 960; Dense 128·129 + 129.
    assert model.count_params() == 448 + 13_856 + 55_360 + 221_312 + 960 + 16_512 + 129
