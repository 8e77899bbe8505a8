"""benchmarks/: the re-implemented reference equals the keras-example preset; run.py answers --help and re-renders a results file.

No timing is checked here (timings live in BENCHMARKS.md, measured by benchmarks/run.py).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ctutils.preprocess import PreprocessConfig, preprocess_file
from conftest import make_nifti

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load_reference():
    spec = importlib.util.spec_from_file_location("benchmarks_reference", BENCHMARKS / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_normalize_clips_in_place_and_scales_like_the_example():
    reference = _load_reference()
    hu = np.array([-2000.0, -1000.0, -300.0, 400.0, 3000.0])
    out = reference.normalize(hu)
    assert out.dtype == np.float32
    assert out.tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert hu.tolist() == [-1000.0, -1000.0, -300.0, 400.0, 400.0]  # the example clips its input in place


@pytest.mark.parametrize("shape", [(24, 24, 10), (20, 24, 9)], ids=["square", "non-square"])
def test_reference_process_scan_matches_the_keras_example_preset(tmp_path, shape):
    reference = _load_reference()
    rng = np.random.default_rng(0)
    data = rng.integers(-1100, 600, size=shape).astype(np.int16)
    path = make_nifti(tmp_path / "scan.nii.gz", data, np.diag([-0.8, -0.8, 2.5, 1.0]))
    out_shape = (12, 12, 6)

    expected = reference.process_scan(path, shape=out_shape)
    got, _ = preprocess_file(path, config=PreprocessConfig(shape=out_shape, preset="keras-example"))

    assert expected.shape == got.shape == out_shape
    assert expected.dtype == got.dtype == np.float32
    assert float(np.abs(expected - got).max()) <= 1e-5


def test_run_help_works_without_running_anything():
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "--quick" in result.stdout and "results.json" in result.stdout


def test_render_rewrites_the_tables_from_a_results_file_without_measuring(tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\nhand-written text\n")
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--render", str(BENCHMARKS / "results.json"),
         "--out", str(tmp_path / "out"), "--update-doc", str(doc)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    table = (tmp_path / "out" / "table.md").read_text()
    assert "| target | measured | met? |" in table and "dataset preprocessing" in table
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nhand-written text\n")
    assert "<!-- benchmarks:begin" in text and text.rstrip().endswith("<!-- benchmarks:end -->")
    assert table in text
