"""ctutils.runs: the run folder's file names, its preprocess.json, and whether a model fits the volumes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ctutils.preprocess import PreprocessConfig
from ctutils.runs import PREPROCESS_FILE, check_model_input, read_preprocess_json, shape_text


def test_read_preprocess_json_from_the_folder_the_file_or_the_model(tmp_path):
    config = PreprocessConfig(shape=(8, 8, 4))
    record = config.to_dict() | {"class_names": ["normal", "abnormal"], "input_shape": [8, 8, 4, 1]}
    (tmp_path / PREPROCESS_FILE).write_text(json.dumps(record))
    for path in (tmp_path, tmp_path / PREPROCESS_FILE, tmp_path / "model.keras"):
        assert read_preprocess_json(path) == (config, ("normal", "abnormal"), (8, 8, 4, 1))
    (tmp_path / PREPROCESS_FILE).write_text(json.dumps(record | {"input_shape": [8, 8, 8, 1]}))
    with pytest.raises(ValueError, match=r"input_shape \(8, 8, 8, 1\) does not match the preprocessing shape \(8, 8, 4\)"):
        read_preprocess_json(tmp_path)


def test_read_preprocess_json_errors(tmp_path):
    with pytest.raises(ValueError, match=r"preprocess\.json: missing"):
        read_preprocess_json(tmp_path / "model.keras")
    (tmp_path / "preprocess.json").write_text('{"shape": [32, 32, 16]}')
    with pytest.raises(ValueError, match=r"preprocess\.json: not a valid preprocessing description"):
        read_preprocess_json(tmp_path)


def test_check_model_input_names_the_model_the_source_and_both_shapes():
    check_model_input((8, 8, 4, 1), (8, 8, 4), model_path="run/model.keras", source="the cache c", advice="")

    class Mismatch(ValueError):
        pass

    with pytest.raises(Mismatch, match=r"^run/model\.keras: model expects input \? x 8 x 8 x 1 but the cache c gives "
                                       r"8 x 8 x 4 x 1; rebuild the cache$"):
        check_model_input((None, 8, 8, 1), (8, 8, 4), model_path="run/model.keras", source="the cache c",
                          advice="rebuild the cache", error=Mismatch)
    assert shape_text((128, 128, 64, 1)) == "128 x 128 x 64 x 1"


def test_importing_runs_imports_no_tensorflow():
    code = "import sys, ctutils.runs; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
