"""Tests for ctutils.predict: single-scan prediction with the saved preprocessing, and bad input."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from ctutils.io import save_volume  # noqa: E402
from ctutils.predict import (  # noqa: E402
    Prediction,
    format_prediction,
    predict_scan,
    prediction_to_json,
)
from ctutils.preprocess import PreprocessConfig, preprocess_file  # noqa: E402

SHAPE = (8, 8, 4)
P_ABNORMAL = 0.6701  # the Keras example's printed confidence


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _mean_model(shape, *, weight: float, bias: float):
    """P(abnormal) = sigmoid(weight · mean(x) + bias): a model whose output we can compute."""
    inputs = keras.Input((*shape, 1))
    x = keras.layers.Conv3D(1, 1, use_bias=False, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling3D()(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="head")(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("conv").set_weights([np.ones((1, 1, 1, 1, 1), np.float32)])
    model.get_layer("head").set_weights([np.array([[weight]], np.float32), np.array([bias], np.float32)])
    return model


def _write_run(run: Path, model, config: PreprocessConfig, *, input_shape=None) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    model.save(run / "model.keras")
    record = config.to_dict() | {
        "class_names": ["normal", "abnormal"],
        "input_shape": list(input_shape or (*config.shape, 1)),
    }
    (run / "preprocess.json").write_text(json.dumps(record))
    return run / "model.keras"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs: a constant-output model (67.01 %) and one depending on the input's mean."""
    root = tmp_path_factory.mktemp("runs")
    const = _write_run(root / "const", _mean_model(SHAPE, weight=0.0, bias=_logit(P_ABNORMAL)),
                       PreprocessConfig(shape=SHAPE))
    # a narrower window than the default so that the saved preprocessing visibly matters
    mean_cfg = PreprocessConfig(shape=SHAPE, hu_min=-500.0, hu_max=500.0)
    mean = _write_run(root / "mean", _mean_model(SHAPE, weight=4.0, bias=-2.0), mean_cfg)
    return {"const": const, "mean": mean, "mean_cfg": mean_cfg, "root": root}


@pytest.fixture(scope="module")
def scan(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("scans") / "scan.nii.gz"
    data = rng.integers(-1000, 300, size=(12, 10, 6)).astype(np.int16)
    save_volume(path, data, np.diag([-0.8, -0.8, 2.5, 1.0]))
    return path


def _one_line(exc: pytest.ExceptionInfo, name: str) -> None:
    message = str(exc.value)
    assert "\n" not in message
    assert name in message


def test_prediction_and_reference_wording(runs, scan):
    pred = predict_scan(scan, model_path=runs["const"])
    assert pred.class_names == ("normal", "abnormal")
    assert pred.probabilities == pytest.approx((1 - P_ABNORMAL, P_ABNORMAL), abs=1e-6)
    assert pred.label == "abnormal"
    assert pred.p_abnormal == pytest.approx(P_ABNORMAL, abs=1e-6)
    assert format_prediction(pred).splitlines() == [
        "This model is 32.99 percent confident that CT scan is normal",
        "This model is 67.01 percent confident that CT scan is abnormal",
    ]


def test_json_output(runs, scan):
    pred = predict_scan(scan, model_path=runs["const"])
    out = json.loads(json.dumps(prediction_to_json(pred)))
    assert out["class_names"] == ["normal", "abnormal"]
    assert set(out["probabilities"]) == {"normal", "abnormal"}
    assert out["probabilities"]["abnormal"] == pytest.approx(P_ABNORMAL, abs=1e-6)
    assert sum(out["probabilities"].values()) == pytest.approx(1.0)
    assert out["label"] == "abnormal" and out["path"] == str(scan)


def test_uses_the_saved_preprocessing(runs, scan):
    # expected P from the model's formula on the scan preprocessed with the run's own config
    array, _ = preprocess_file(scan, config=runs["mean_cfg"])
    expected = 1 / (1 + math.exp(-(4.0 * float(array.mean()) - 2.0)))
    pred = predict_scan(scan, model_path=runs["mean"])
    assert pred.p_abnormal == pytest.approx(expected, abs=1e-5)
    default, _ = preprocess_file(scan, config=PreprocessConfig(shape=SHAPE))
    assert abs(default.mean() - array.mean()) > 0.01  # the default window would differ


def test_threshold_sets_the_label(runs, scan):
    assert predict_scan(scan, model_path=runs["const"], threshold=0.7).label == "normal"
    with pytest.raises(ValueError, match="threshold"):
        predict_scan(scan, model_path=runs["const"], threshold=2.0)


def test_format_prediction_rounds_like_the_reference():
    pred = Prediction(Path("s.nii.gz"), ("normal", "abnormal"), (0.5, 0.5), "abnormal")
    assert "50.00 percent confident that CT scan is normal" in format_prediction(pred)


# ------------------------------------------------------------------ bad input
def test_missing_scan(runs, tmp_path):
    missing = tmp_path / "nope.nii.gz"
    with pytest.raises(ValueError) as exc:
        predict_scan(missing, model_path=runs["const"])
    _one_line(exc, "nope.nii.gz")


def test_not_a_nifti(runs, tmp_path):
    fake = tmp_path / "notes.nii.gz"
    fake.write_text("this is not a scan")
    with pytest.raises(ValueError) as exc:
        predict_scan(fake, model_path=runs["const"])
    _one_line(exc, "notes.nii.gz")


def test_missing_model(runs, scan, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(runs["const"].parent / "preprocess.json", run / "preprocess.json")
    with pytest.raises(ValueError, match="not found") as exc:
        predict_scan(scan, model_path=run / "model.keras")
    _one_line(exc, "model.keras")


def test_truncated_model(runs, scan, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(runs["const"].parent / "preprocess.json", run / "preprocess.json")
    data = runs["const"].read_bytes()
    (run / "model.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError) as exc:
        predict_scan(scan, model_path=run / "model.keras")
    _one_line(exc, "model.keras")


def test_text_file_renamed_keras(runs, scan, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(runs["const"].parent / "preprocess.json", run / "preprocess.json")
    (run / "model.keras").write_text("print('not a model')\n")
    with pytest.raises(ValueError, match="not a Keras model") as exc:
        predict_scan(scan, model_path=run / "model.keras")
    _one_line(exc, "model.keras")


def test_model_for_another_input_shape(runs, scan, tmp_path):
    # a model trained at 8 x 8 x 8 next to a preprocess.json that produces 8 x 8 x 4
    run = tmp_path / "run"
    run.mkdir()
    _mean_model((8, 8, 8), weight=1.0, bias=0.0).save(run / "model.keras")
    shutil.copy(runs["const"].parent / "preprocess.json", run / "preprocess.json")
    expected = r"model expects input 8 x 8 x 8 x 1 but preprocessing .* gives 8 x 8 x 4 x 1"
    with pytest.raises(ValueError, match=expected) as exc:
        predict_scan(scan, model_path=run / "model.keras")
    _one_line(exc, "preprocess.json")
    assert "model.keras" in str(exc.value)


def test_missing_preprocess_json(runs, scan, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(runs["const"], run / "model.keras")
    with pytest.raises(ValueError, match="missing") as exc:
        predict_scan(scan, model_path=run / "model.keras")
    _one_line(exc, "preprocess.json")


def test_malformed_preprocess_json(runs, scan, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(runs["const"], run / "model.keras")
    (run / "preprocess.json").write_text("{not json")
    with pytest.raises(ValueError) as exc:
        predict_scan(scan, model_path=run / "model.keras")
    _one_line(exc, "preprocess.json")


# ------------------------------------------------------------------ the real chest CT
def test_real_ct(tmp_path, real_ct):
    shape = (32, 32, 16)
    model_path = _write_run(tmp_path / "run", _mean_model(shape, weight=4.0, bias=-2.0),
                            PreprocessConfig(shape=shape))
    pred = predict_scan(real_ct, model_path=model_path)
    assert sum(pred.probabilities) == pytest.approx(1.0)
    assert 0.0 < pred.p_abnormal < 1.0
    lines = format_prediction(pred).splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("This model is ") and lines[1].endswith("confident that CT scan is abnormal")
