"""Tests for ``python -m ctutils data …``: help, preprocess, info, download, synth, errors, no TensorFlow."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import make_dataset

from ctutils.cli import main

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--shape", "8", "8", "4", "--workers", "1", "--quiet"]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m ctutils ARGS`` in a fresh interpreter, as a learner types it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-m", "ctutils", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def split_table(text: str) -> dict[str, list[int]]:
    """Parse the split table: the header line starting 'split', then one line per split."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == ["split"])
    table = {"header": lines[start].split()[1:]}
    for line in lines[start + 1 : start + 4]:
        name, *numbers = line.split()
        table[name] = [int(n) for n in numbers]
    return table


def add_garbage(src: Path) -> Path:
    bad = src / "CT-0" / "study_0050.nii.gz"
    bad.write_text("not a scan")
    return bad


# --- help ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--help"], ["data", "train", "evaluate", "predict", "course"]),
        (["data", "--help"], ["synth", "download", "preprocess", "info"]),
        (["data", "synth", "--help"], ["--out", "--normal", "--abnormal", "--seed", "--size", "--layout", "--grades"]),
        (["data", "download", "--help"], ["--dataset", "--dest", "--registry"]),
        (["data", "preprocess", "--help"], ["--src", "--out", "--shape", "--preset", "keras-example", "--strict"]),
        (["data", "info", "--help"], ["path", "--json"]),
    ],
)
def test_help(capsys, argv, expected):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m ctutils")
    for word in expected:
        assert word in out


def test_missing_required_option_is_a_usage_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "preprocess", "--src", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--out" in capsys.readouterr().err


# --- preprocess ------------------------------------------------------------------------------


def test_preprocess_writes_the_layout_and_prints_the_split_table(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "cache"
    assert main(["data", "preprocess", "--src", str(tiny_dataset), "--out", str(out), *SMALL]) == 0
    stdout = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["cache.json", "manifest.csv", "volumes.npy"]
    volumes = np.load(out / "volumes.npy", mmap_mode="r")
    assert volumes.shape == (12, 8, 8, 4) and volumes.dtype == np.float32
    assert f"{out}: 12 volumes of (8, 8, 4), 0 skipped; cache written" in stdout
    assert split_table(stdout) == {
        "header": ["normal", "abnormal"], "train": [4, 4], "val": [1, 1], "test": [1, 1],
    }

    stamp = (out / "volumes.npy").stat().st_mtime_ns
    assert main(["data", "preprocess", "--src", str(tiny_dataset), "--out", str(out), *SMALL]) == 0
    assert "cache reused (nothing to do)" in capsys.readouterr().out
    assert (out / "volumes.npy").stat().st_mtime_ns == stamp


def test_preprocess_keras_example_preset(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "cache"
    assert main(["data", "preprocess", "--src", str(tiny_dataset), "--out", str(out), "--preset", "keras-example", *SMALL]) == 0
    info = json.loads((out / "cache.json").read_text())
    assert info["config"]["preset"] == "keras-example" and info["config"]["shape"] == [8, 8, 4]


def test_preprocess_reports_skipped_scans(tiny_dataset, tmp_path, capsys):
    bad = add_garbage(tiny_dataset)
    assert main(["data", "preprocess", "--src", str(tiny_dataset), "--out", str(tmp_path / "cache"), *SMALL]) == 0
    stdout = capsys.readouterr().out
    assert f"skipped {bad}: not a NIfTI file" in stdout
    assert "12 volumes of (8, 8, 4), 1 skipped" in stdout


def test_strict_exits_2_with_one_line_and_no_traceback(tmp_path):
    make_dataset(tmp_path / "data", n_normal=3, n_abnormal=3)
    bad = add_garbage(tmp_path / "data")
    result = run_cli("data", "preprocess", "--src", "data", "--out", "cache", "--strict", *SMALL, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {bad.relative_to(tmp_path)}: not a NIfTI file")
    assert not (tmp_path / "cache").exists() or list((tmp_path / "cache").iterdir()) == []


def test_python_m_ctutils_preprocess_then_rerun(tmp_path):
    make_dataset(tmp_path / "data", n_normal=3, n_abnormal=3)
    first = run_cli("data", "preprocess", "--src", "data", "--out", "cache", *SMALL, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "6 volumes of (8, 8, 4), 0 skipped; cache written" in first.stdout
    second = run_cli("data", "preprocess", "--src", "data", "--out", "cache", *SMALL, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "reused" in second.stdout


def test_missing_src_folder_exits_2_naming_it(tmp_path, capsys):
    missing = tmp_path / "no-such-data"
    assert main(["data", "preprocess", "--src", str(missing), "--out", str(tmp_path / "cache"), *SMALL]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"error: {missing}: dataset folder does not exist\n"
    assert not (tmp_path / "cache").exists()


def test_bad_shape_exits_2(tiny_dataset, tmp_path, capsys):
    assert main(["data", "preprocess", "--src", str(tiny_dataset), "--out", str(tmp_path / "c"), "--shape", "1", "8", "8"]) == 2
    assert capsys.readouterr().err.startswith("error: shape must be 3 integers")


# --- info ------------------------------------------------------------------------------------


@pytest.fixture
def built_cache(tiny_dataset, tmp_path) -> Path:
    out = tmp_path / "cache"
    assert main(["data", "preprocess", "--src", str(tiny_dataset), "--out", str(out), *SMALL]) == 0
    return out


def test_info_on_a_cache(built_cache, capsys):
    capsys.readouterr()
    assert main(["data", "info", str(built_cache)]) == 0
    stdout = capsys.readouterr().out
    assert stdout.startswith(f"cache {built_cache}: 12 volumes (8, 8, 4), float32, preset course, window -1000…400 HU, 0 skipped")
    assert split_table(stdout)["train"] == [4, 4]


def test_info_on_a_cache_as_json(built_cache, capsys):
    capsys.readouterr()
    assert main(["data", "info", str(built_cache), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_volumes"] == 12 and info["n_skipped"] == 0
    assert info["config"]["shape"] == [8, 8, 4]
    assert info["counts"]["test"] == {"normal": 1, "abnormal": 1}
    assert "reused" not in info


def test_info_on_a_dataset_folder(tiny_dataset, capsys):
    assert main(["data", "info", str(tiny_dataset)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"dataset folder {tiny_dataset} (layout of mosmeddata-ct0-ct23): 12 scans"
    assert [line.split() for line in lines[1:]] == [["normal", "6"], ["abnormal", "6"]]
    assert main(["data", "info", str(tiny_dataset), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "dataset": "mosmeddata-ct0-ct23", "root": str(tiny_dataset), "counts": {"normal": 6, "abnormal": 6},
    }


def test_info_errors_name_the_path(built_cache, tmp_path, capsys):
    missing = tmp_path / "nothing-here"
    assert main(["data", "info", str(missing)]) == 2
    assert capsys.readouterr().err == f"error: {missing}: dataset folder does not exist\n"
    (built_cache / "volumes.npy").unlink()
    assert main(["data", "info", str(built_cache)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {built_cache / 'volumes.npy'}: missing")


# --- download and synth (modules of other helpers) -------------------------------------------


def tiny_registry(path: Path, url_0: str, url_23: str) -> Path:
    entry = {
        "name": "tiny", "description": "two tiny archives", "kind": "download",
        "files": [
            {"url": url_0, "filename": "CT-0.zip", "size": None, "sha256": None, "folder": "CT-0"},
            {"url": url_23, "filename": "CT-23.zip", "size": None, "sha256": None, "folder": "CT-23"},
        ],
        "class_folders": ["CT-0", "CT-23"], "label_mappings": {"binary": {"CT-0": 0, "CT-23": 1}},
        "default_mapping": "binary", "class_names": {"binary": ["normal", "abnormal"]},
    }
    path.write_text(json.dumps({"registry_version": 1, "datasets": [entry]}))
    return path


def zipped_scans(folder: Path, names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.write(folder / name, f"{folder.name}/{name}")
    return buffer.getvalue()


def test_download_from_a_local_server_then_info(tmp_path, capsys):
    pytest.importorskip("ctutils.download")
    from httpfake import FakeServer

    src = make_dataset(tmp_path / "src", n_normal=2, n_abnormal=2)
    with FakeServer() as server:
        url_0 = server.add("/CT-0.zip", zipped_scans(src / "CT-0", ["study_0001.nii.gz", "study_0002.nii.gz"]))
        url_23 = server.add("/CT-23.zip", zipped_scans(src / "CT-23", ["study_0101.nii.gz", "study_0102.nii.gz"]))
        registry = tiny_registry(tmp_path / "registry.json", url_0, url_23)
        dest = tmp_path / "dest"
        argv = ["data", "download", "--dataset", "tiny", "--dest", str(dest), "--registry", str(registry), "--quiet"]
        assert main(argv) == 0
        assert f"{dest}: dataset tiny is ready" in capsys.readouterr().out
    assert sorted(p.name for p in (dest / "CT-23").iterdir()) == ["study_0101.nii.gz", "study_0102.nii.gz"]
    assert main(["data", "info", str(dest), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"] == {"normal": 2, "abnormal": 2}


def test_download_unknown_dataset_or_registry_exits_2(tmp_path, capsys):
    pytest.importorskip("ctutils.download")
    assert main(["data", "download", "--dataset", "no-such-set", "--dest", str(tmp_path / "d")]) == 2
    assert "unknown dataset 'no-such-set'" in capsys.readouterr().err
    registry = tmp_path / "missing.json"
    assert main(["data", "download", "--dataset", "tiny", "--dest", str(tmp_path / "d"), "--registry", str(registry)]) == 2
    assert capsys.readouterr().err == f"error: {registry}: registry file not found\n"


def test_synth_then_preprocess(tmp_path, capsys):
    data = tmp_path / "data"
    argv = ["data", "synth", "--out", str(data), "--normal", "2", "--abnormal", "2", "--seed", "0", "--size", "64", "--workers", "1", "--quiet"]
    assert main(argv) == 0
    assert capsys.readouterr().out == f"{data}: 4 synthetic studies (2 in CT-0, 2 in CT-23), lesion masks in {data / 'masks'}\n"
    assert len(list((data / "CT-0").glob("*.nii.gz"))) == 2
    assert len(list((data / "CT-23").glob("*.nii.gz"))) == 2
    assert len(list((data / "masks").glob("*_mask.nii.gz"))) == 2
    assert main(["data", "preprocess", "--src", str(data), "--out", str(tmp_path / "cache"), *SMALL]) == 0
    assert "4 volumes of (8, 8, 4), 0 skipped" in capsys.readouterr().out
    assert (tmp_path / "cache" / "masks.npy").is_file()  # masks/ is not a class folder, its masks are cached
    assert main(["data", "info", str(data)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"dataset folder {data} (dataset synthetic, layout keras-example): 4 scans"
    assert main(["data", "info", str(tmp_path / "cache")]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "lesion masks: 2 of 4 rows (masks.npy)"


def test_synth_shortcut_marker(tmp_path, capsys):
    data = tmp_path / "data"
    argv = ["data", "synth", "--out", str(data), "--normal", "1", "--abnormal", "1", "--seed", "0", "--size", "32",
            "--workers", "1", "--quiet", "--shortcut-marker"]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("deliberate flaw: every abnormal study has a skin marker")
    meta = json.loads((data / "synthetic.json").read_text())
    assert meta["shortcut_marker"] is True
    assert [s["marker"] for s in meta["studies"]] == [False, True]


def test_synth_full_layout(tmp_path, capsys):
    data = tmp_path / "data"
    argv = ["data", "synth", "--out", str(data), "--normal", "1", "--abnormal", "4", "--seed", "0", "--size", "32",
            "--workers", "1", "--quiet", "--layout", "full"]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith(f"{data}: 5 synthetic studies (1 in CT-0, 1 in CT-1, 1 in CT-2, 1 in CT-3, 1 in CT-4)")


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--layout", "mosmed"], "error: layout: unknown layout 'mosmed'; choose one of keras-example, full\n"),
        (["--layout", "full", "--grades", "1", "2", "3"],
         "error: abnormal: 2 studies cannot cover the 3 grades asked for (CT-1, CT-2, CT-3); use --abnormal 3 or more\n"),
        (["--grades", "1"],
         "error: grades: [1] do not fit layout 'keras-example', whose abnormal grades are 2, 3\n"),
    ],
)
def test_synth_bad_layout_and_grades_give_one_line_errors(tmp_path, capsys, extra, message):
    argv = ["data", "synth", "--out", str(tmp_path / "d"), "--normal", "1", "--abnormal", "2", "--seed", "0",
            "--size", "32", "--quiet", *extra]
    assert main(argv) == 2
    assert capsys.readouterr().err == message
    assert not (tmp_path / "d").exists()


# --- no TensorFlow ---------------------------------------------------------------------------


def test_data_commands_do_not_import_tensorflow(tmp_path):
    make_dataset(tmp_path / "data", n_normal=2, n_abnormal=2)
    code = f"""
import sys
import ctutils.cache, ctutils.cli
assert "tensorflow" not in sys.modules and "keras" not in sys.modules, "imported by the modules"
from ctutils.cli import main
assert main(["data", "preprocess", "--src", "data", "--out", "cache", {", ".join(map(repr, SMALL))}]) == 0
assert main(["data", "info", "cache"]) == 0
assert main(["data", "info", "data"]) == 0
heavy = sorted(m for m in ("tensorflow", "keras", "torch") if m in sys.modules)
assert not heavy, heavy
print("clean")
"""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("clean")
