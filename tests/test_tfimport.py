"""ctutils.tfimport: TensorFlow without its C++ start-up log, in the terminal and in notebooks.

The fast tests import a fake ``tensorflow`` package that writes to file descriptor 2 the way the
real one does, so the expected output is known exactly. The slow tests use the real TensorFlow:
``python -m ctutils predict`` and chapter 00's imports cell in a kernel that forwards descriptor 2
to the notebook, as JupyterLab's kernels do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from ctutils.tfimport import LOG_ENV, LOG_LINE

ROOT = Path(__file__).resolve().parents[1]
FAKE_INIT = '''
import os
os.write(2, b"I0000 00:00:1700000000.000001   42 port.cc:153] fake oneDNN custom operations are on\\n")
{tail}
'''
FAKE_OK = '''
class config:
    @staticmethod
    def list_physical_devices(kind=None):
        os.write(2, b"E0000 00:00:1700000000.000002   42 cuda_platform.cc:52] failed call to cuInit: fake\\n")
        return []
'''
FAKE_BROKEN = 'raise ImportError("libfake_tensorflow.so: cannot open shared object file")'
IMPORT = "from ctutils.tfimport import startup_log, tf; print(tf.__name__); print(json.dumps(startup_log()))"


def run_python(code: str, *, fake: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in (LOG_ENV, "TF_CPP_MIN_LOG_LEVEL")}
    if fake is not None:
        environ["PYTHONPATH"] = os.pathsep.join([str(fake), str(ROOT)])
    environ.update(env or {})
    return subprocess.run([sys.executable, "-c", f"import json\n{code}"], capture_output=True, text=True,
                          env=environ, cwd=ROOT, timeout=600)


def fake_tensorflow(root: Path, tail: str) -> Path:
    package = root / "tensorflow"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_INIT.format(tail=tail))
    return root


def test_start_up_lines_are_kept_off_stderr(tmp_path: Path) -> None:
    result = run_python(IMPORT, fake=fake_tensorflow(tmp_path, FAKE_OK))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    name, log = result.stdout.splitlines()
    assert name == "tensorflow"
    assert json.loads(log) == (
        "I0000 00:00:1700000000.000001   42 port.cc:153] fake oneDNN custom operations are on\n"
        "E0000 00:00:1700000000.000002   42 cuda_platform.cc:52] failed call to cuInit: fake\n"
    )


def test_environment_variable_lets_them_through(tmp_path: Path) -> None:
    result = run_python(IMPORT, fake=fake_tensorflow(tmp_path, FAKE_OK), env={LOG_ENV: "1"})
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "I0000 00:00:1700000000.000001   42 port.cc:153] fake oneDNN custom operations are on",
        "E0000 00:00:1700000000.000002   42 cuda_platform.cc:52] failed call to cuInit: fake",
    ]
    assert json.loads(result.stdout.splitlines()[1]) == ""


def test_a_failing_import_still_shows_its_error_and_its_log(tmp_path: Path) -> None:
    result = run_python(IMPORT, fake=fake_tensorflow(tmp_path, FAKE_BROKEN))
    assert result.returncode == 1
    assert "I0000 00:00:1700000000.000001   42 port.cc:153] fake oneDNN custom operations are on" in result.stderr
    assert "ImportError: libfake_tensorflow.so: cannot open shared object file" in result.stderr
    # and descriptor 2 is back: what the process writes after the failure reaches stderr
    after = run_python("import os\ntry:\n    from ctutils.tfimport import tf\nexcept ImportError:\n"
                       "    os.write(2, b'after the failure\\n')", fake=tmp_path)
    assert after.stderr.endswith("after the failure\n")


def test_keras_comes_through_the_same_import(tmp_path: Path) -> None:
    fake = fake_tensorflow(tmp_path, FAKE_OK)
    (fake / "keras").mkdir()
    (fake / "keras" / "__init__.py").write_text("import tensorflow  # as the real Keras does\n")
    result = run_python("from ctutils.tfimport import keras; print(keras.__name__)", fake=fake)
    assert (result.returncode, result.stdout, result.stderr) == (0, "keras\n", "")


def test_log_line_pattern_on_tensorflows_own_lines() -> None:
    lines = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1795764588.055428    3807 port.cc:153] oneDNN custom operations are on.",
        "E0000 00:00:1795764590.398184    3807 cuda_platform.cc:52] failed call to cuInit: INTERNAL",
        "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow",
    ]
    assert [bool(LOG_LINE.match(line)) for line in lines] == [True] * 4
    assert LOG_LINE.search("device: CPU (2 cores)\nepoch 1/30 loss 0.69\n") is None


# ----------------------------------------------------------------------------- the real TensorFlow


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, Path]:
    """A model of a (8, 8, 4) input with its preprocess.json, and a scan to classify."""
    from ctutils.io import save_volume
    from ctutils.preprocess import PreprocessConfig
    from ctutils.tfimport import keras

    root = tmp_path_factory.mktemp("tiny-run")
    config = PreprocessConfig(shape=(8, 8, 4))
    inputs = keras.Input((8, 8, 4, 1))
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.GlobalAveragePooling3D()(inputs))
    keras.Model(inputs, outputs).save(root / "model.keras")
    (root / "preprocess.json").write_text(json.dumps(
        config.to_dict() | {"class_names": ["normal", "abnormal"], "input_shape": [8, 8, 4, 1]}))
    scan = root / "scan.nii.gz"
    data = np.random.default_rng(0).integers(-1000, 300, size=(12, 10, 6)).astype(np.int16)
    save_volume(scan, data, np.diag([-0.8, -0.8, 2.5, 1.0]))
    return root / "model.keras", scan


@pytest.mark.slow
def test_predict_prints_no_tensorflow_log_lines(tiny_run: tuple[Path, Path]) -> None:
    model, scan = tiny_run
    command = f"from ctutils.cli import main; raise SystemExit(main({['predict', str(scan), '--model', str(model)]!r}))"
    quiet = run_python(command)
    assert quiet.returncode == 0, quiet.stderr
    assert "abnormal" in quiet.stdout
    assert LOG_LINE.search(quiet.stdout + quiet.stderr) is None, quiet.stderr
    assert quiet.stderr == ""
    # the same command with --verbose shows what was hidden: on a CPU-only machine, the CUDA probe
    verbose = run_python(command.replace("['predict'", "['--verbose', 'predict'"))
    assert verbose.returncode == 0, verbose.stderr
    assert LOG_LINE.search(verbose.stderr), verbose.stderr


def run_cell_in_kernel(source: str) -> list:
    """Execute one code cell in a fresh python3 kernel in notebooks/, as JupyterLab starts kernels.

    As there, the kernel forwards what is written to its descriptor 2 into the cell's output
    (ipykernel stops doing so when it sees PYTEST_CURRENT_TEST, so the kernel does not get it).
    """
    from nbclient import NotebookClient

    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_CURRENT_TEST", LOG_ENV, "TF_CPP_MIN_LOG_LEVEL")}
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell(source)]
    client = NotebookClient(nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(ROOT / "notebooks")}})
    client.execute(env=env)
    return nb.cells[0].outputs


def output_text(outputs: list) -> str:
    return "".join(o.get("text", "") for o in outputs if o.output_type == "stream")


@pytest.mark.slow
def test_the_imports_cell_of_chapter_00_shows_no_log_lines() -> None:
    nb = nbformat.read(ROOT / "notebooks" / "00_setup.ipynb", as_version=4)
    [cell] = [c for c in nb.cells if c.cell_type == "code" and "from ctutils.tfimport import" in c.source]
    outputs = run_cell_in_kernel(cell.source)
    assert [o.output_type for o in outputs] == ["stream"], outputs
    assert outputs[0].name == "stdout"
    assert "TensorFlow 2." in outputs[0].text and "device: " in outputs[0].text
    assert LOG_LINE.search(output_text(outputs)) is None
    # the same kernel set-up does show them when TensorFlow is imported directly
    direct = run_cell_in_kernel("import tensorflow as tf\ntf.config.list_physical_devices()")
    assert [o.get("name") for o in direct if o.output_type == "stream"].count("stderr") >= 1
    assert LOG_LINE.search(output_text(direct))
