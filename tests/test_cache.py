"""Tests for ctutils.cache: build, reuse, rebuild, bad scans, strict, interruption, open_cache checks."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_dataset

import ctutils.cache
from ctutils.cache import COLUMNS, Cache, CacheError, build_cache, open_cache, write_cache
from ctutils.datasets import DatasetError
from ctutils.io import save_volume
from ctutils.preprocess import PreprocessConfig, preprocess_file
from ctutils.splits import stratified_split

CONFIG = PreprocessConfig(shape=(8, 8, 4))
FILES = ["cache.json", "manifest.csv", "volumes.npy"]


def build(src: Path, out: Path, **kwargs) -> Cache:
    options = {"config": CONFIG, "workers": 1, "progress": False, **kwargs}
    return build_cache(src, out, **options)


def read_manifest(root: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(root / "manifest.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def named(path: Path, cause: str) -> str:
    return "^" + re.escape(f"{path}: ") + f".*{cause}"


def add_bad_scans(src: Path) -> tuple[Path, Path]:
    """A text file named .nii.gz in CT-0 and a truncated .nii.gz in CT-23."""
    garbage = src / "CT-0" / "study_0050.nii.gz"
    garbage.write_text("this is not a scan\n")
    good = (src / "CT-23" / "study_0101.nii.gz").read_bytes()
    truncated = src / "CT-23" / "study_0150.nii.gz"
    truncated.write_bytes(good[: len(good) // 2])
    return garbage, truncated


def small_cache(root: Path, n: int = 12, seed: int = 0) -> tuple[Cache, np.ndarray, list[int], list[str]]:
    rng = np.random.default_rng(seed)
    volumes = rng.random((n, 16, 16, 8), dtype=np.float32)
    labels = [i % 2 for i in range(n)]
    splits = (["train", "val", "test"] * n)[:n]
    cache = write_cache(
        root, volumes, labels, splits=splits, config=PreprocessConfig(shape=(16, 16, 8)),
        paths=[f"scan_{i:02d}.nii.gz" for i in range(n)],
    )
    return cache, volumes, labels, splits


# --- building --------------------------------------------------------------------------------


def test_build_writes_volumes_manifest_and_description(tiny_dataset, tmp_path):
    out = tmp_path / "cache"
    cache = build(tiny_dataset, out)
    assert names(out) == FILES
    assert cache.info["reused"] is False

    volumes = np.load(out / "volumes.npy", mmap_mode="r")
    assert isinstance(volumes, np.memmap)
    assert volumes.dtype == np.float32 and volumes.shape == (12, 8, 8, 4)
    assert 0.0 <= float(volumes.min()) and float(volumes.max()) <= 1.0

    columns, rows = read_manifest(out)
    assert columns == list(COLUMNS)
    assert {"path", "label", "split", "index", "error", "class_name", "original_shape", "spacing_mm"} <= set(columns)
    expected_paths = [tiny_dataset / "CT-0" / f"study_{i:04d}.nii.gz" for i in range(1, 7)]
    expected_paths += [tiny_dataset / "CT-23" / f"study_{i:04d}.nii.gz" for i in range(101, 107)]
    assert [Path(r["path"]) for r in rows] == expected_paths  # sorted by class folder, then name
    assert [r["label"] for r in rows] == ["0"] * 6 + ["1"] * 6
    assert [r["class_name"] for r in rows] == ["normal"] * 6 + ["abnormal"] * 6
    assert [r["index"] for r in rows] == [str(i) for i in range(12)]
    assert all(r["error"] == "" for r in rows)
    assert [r["original_shape"] for r in rows[:2]] == ["20x20x6", "21x21x7"]
    assert {r["spacing_mm"] for r in rows} == {"0.8x0.8x2.5"}

    # Splits: stratified on the paths relative to the dataset root, seed 0; 6 per class -> 4/1/1.
    keys = [str(Path(r["path"]).relative_to(tiny_dataset)) for r in rows]
    assert [r["split"] for r in rows] == stratified_split([int(r["label"]) for r in rows], keys=keys, seed=0)
    info = json.loads((out / "cache.json").read_text())
    assert info["config"] == CONFIG.to_dict()
    assert info["class_names"] == ["normal", "abnormal"]
    assert (info["n_volumes"], info["n_skipped"]) == (12, 0)
    assert info["counts"] == {
        "train": {"normal": 4, "abnormal": 4},
        "val": {"normal": 1, "abnormal": 1},
        "test": {"normal": 1, "abnormal": 1},
    }

    # Each row of volumes.npy is its scan, preprocessed.
    for row in rows:
        expected, _ = preprocess_file(row["path"], config=CONFIG)
        np.testing.assert_array_equal(volumes[int(row["index"])], expected)


def test_one_and_two_workers_give_identical_files(tiny_dataset, tmp_path):
    one = build(tiny_dataset, tmp_path / "one", workers=1)
    two = build(tiny_dataset, tmp_path / "two", workers=2)
    np.testing.assert_array_equal(np.load(one.root / "volumes.npy"), np.load(two.root / "volumes.npy"))
    for name in ("volumes.npy", "manifest.csv", "cache.json"):
        assert (one.root / name).read_bytes() == (two.root / name).read_bytes(), name


def test_opened_cache_is_a_read_only_memory_map(tiny_dataset, tmp_path):
    cache = build(tiny_dataset, tmp_path / "cache")
    assert isinstance(cache.volumes, np.memmap)
    with pytest.raises(ValueError, match="read-only"):
        cache.volumes[0, 0, 0, 0] = 1.0
    assert len(cache) == 12
    assert cache.config == CONFIG
    assert cache.class_names == ("normal", "abnormal")


def test_second_run_does_no_work(tiny_dataset, tmp_path, monkeypatch):
    out = tmp_path / "cache"
    build(tiny_dataset, out)
    stamps = {name: (out / name).stat().st_mtime_ns for name in FILES}

    def must_not_run(*args, **kwargs):
        raise AssertionError("preprocess_file was called on a cache hit")

    monkeypatch.setattr(ctutils.cache, "preprocess_file", must_not_run)
    again = build(tiny_dataset, out)
    assert again.info["reused"] is True
    assert len(again) == 12
    assert {name: (out / name).stat().st_mtime_ns for name in FILES} == stamps
    assert names(out) == FILES


def test_changed_parameters_rebuild(tiny_dataset, tmp_path):
    out = tmp_path / "cache"
    first = build(tiny_dataset, out)
    second = build(tiny_dataset, out, config=PreprocessConfig(shape=(6, 6, 3)))
    assert second.info["reused"] is False
    assert second.volumes.shape == (12, 6, 6, 3)
    assert open_cache(out).config.shape == (6, 6, 3)
    assert second.info["key"] != first.info["key"]
    assert build(tiny_dataset, out, seed=1).info["reused"] is False  # the split seed is a parameter too
    assert names(out) == FILES


def test_changed_source_file_rebuilds(tiny_dataset, tmp_path):
    out = tmp_path / "cache"
    before = np.array(build(tiny_dataset, out).volumes)
    scan = tiny_dataset / "CT-23" / "study_0103.nii.gz"
    old_mtime = scan.stat().st_mtime_ns
    save_volume(scan, np.full((20, 20, 6), 300, np.int16) - np.arange(6, dtype=np.int16), np.diag([-0.8, -0.8, 2.5, 1]))
    os.utime(scan, ns=(old_mtime + 10**9, old_mtime + 10**9))
    after = build(tiny_dataset, out)
    assert after.info["reused"] is False
    row = next(r["index"] for r in after.records if Path(r["path"]) == scan)
    changed = [i for i in range(12) if not np.array_equal(before[i], after.volumes[i])]
    assert changed == [row]


def test_added_scan_rebuilds(tiny_dataset, tmp_path):
    out = tmp_path / "cache"
    build(tiny_dataset, out)
    save_volume(tiny_dataset / "CT-0" / "study_0099.nii.gz", np.arange(20 * 20 * 6, dtype=np.int16).reshape(20, 20, 6) - 1000, np.eye(4))
    cache = build(tiny_dataset, out)
    assert cache.info["reused"] is False and len(cache) == 13


# --- bad scans -------------------------------------------------------------------------------


def test_bad_scans_are_skipped_and_reported(tiny_dataset, tmp_path, capsys):
    garbage, truncated = add_bad_scans(tiny_dataset)
    out = tmp_path / "cache"
    cache = build(tiny_dataset, out, progress=True)
    assert len(cache) == 12
    assert cache.volumes.shape == (12, 8, 8, 4)
    assert (cache.info["n_volumes"], cache.info["n_skipped"]) == (12, 2)

    _, rows = read_manifest(out)
    assert len(rows) == 14
    by_path = {Path(r["path"]): r for r in rows}
    assert by_path[garbage]["index"] == "" and "not a NIfTI file" in by_path[garbage]["error"]
    assert by_path[truncated]["index"] == "" and "truncated" in by_path[truncated]["error"]
    assert sorted(int(r["index"]) for r in rows if r["index"]) == list(range(12))
    assert all(r["error"] == "" for r in rows if r["index"])
    assert [Path(r["path"]) for r in cache.skipped] == [garbage, truncated]
    assert garbage not in cache.paths() and truncated not in cache.paths()

    err = capsys.readouterr().err
    assert f"skipped {garbage}: not a NIfTI file" in err
    assert f"skipped {truncated}: " in err


def test_strict_stops_at_the_first_bad_scan_and_writes_nothing(tiny_dataset, tmp_path):
    garbage, _ = add_bad_scans(tiny_dataset)
    out = tmp_path / "cache"
    with pytest.raises(ctutils.cache.PreprocessError, match=named(garbage, "not a NIfTI file")):
        build(tiny_dataset, out, strict=True)
    assert not out.exists() or names(out) == []


def test_strict_failure_keeps_the_previous_cache(tiny_dataset, tmp_path):
    out = tmp_path / "cache"
    good = build(tiny_dataset, out)
    key, volumes = good.info["key"], np.array(good.volumes)
    add_bad_scans(tiny_dataset)
    with pytest.raises(ValueError, match="not a NIfTI file"):
        build(tiny_dataset, out, strict=True)
    assert names(out) == FILES
    kept = open_cache(out)
    assert kept.info["key"] == key
    np.testing.assert_array_equal(kept.volumes, volumes)


def test_no_readable_scan_is_an_error_naming_the_folder(tmp_path):
    src = tmp_path / "data"
    for folder in ("CT-0", "CT-23"):
        (src / folder).mkdir(parents=True)
        (src / folder / "study_0001.nii.gz").write_text("garbage")
    with pytest.raises(ValueError, match=named(src, "none of the 2 scans could be preprocessed")):
        build(src, tmp_path / "cache")
    assert names(tmp_path / "cache") == []


def interrupt_on_call(monkeypatch, n: int) -> None:
    """Make the n-th preprocess_file call of this process raise KeyboardInterrupt (Ctrl-C)."""
    real = ctutils.cache.preprocess_file
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(ctutils.cache, "preprocess_file", flaky)


def test_interruption_keeps_the_previous_complete_cache(tiny_dataset, tmp_path, monkeypatch):
    out = tmp_path / "cache"
    first = build(tiny_dataset, out)
    volumes, manifest, info = np.array(first.volumes), (out / "manifest.csv").read_text(), (out / "cache.json").read_text()
    interrupt_on_call(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        build(tiny_dataset, out, config=PreprocessConfig(shape=(6, 6, 3)))
    assert names(out) == FILES  # no .partial-* file left behind
    kept = open_cache(out)
    np.testing.assert_array_equal(kept.volumes, volumes)
    assert (out / "manifest.csv").read_text() == manifest
    assert (out / "cache.json").read_text() == info

    monkeypatch.undo()
    assert build(tiny_dataset, out, config=PreprocessConfig(shape=(6, 6, 3))).volumes.shape == (12, 6, 6, 3)


def test_interrupted_first_build_leaves_nothing_that_looks_complete(tiny_dataset, tmp_path, monkeypatch):
    out = tmp_path / "cache"
    interrupt_on_call(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        build(tiny_dataset, out)
    assert names(out) == []


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize("bad_scans", [False, True], ids=["all-kept", "two-skipped"])
def test_volumes_file_is_byte_for_byte_what_np_save_writes(tiny_dataset, tmp_path, bad_scans):
    if bad_scans:
        add_bad_scans(tiny_dataset)  # rows are then copied into a smaller file (_Rows.keep)
    cache = build(tiny_dataset, tmp_path / "cache")
    volumes = np.array(cache.volumes)
    assert volumes.shape == (12, *CONFIG.shape)
    assert (cache.root / "volumes.npy").read_bytes() == npy_bytes(volumes)


def test_masks_file_is_byte_for_byte_what_np_save_writes(tmp_path):
    src = _with_masks(tmp_path / "data")
    cache = build_cache(src, tmp_path / "cache", config=PreprocessConfig(shape=(10, 10, 3)), workers=1, progress=False)
    assert (cache.root / "masks.npy").read_bytes() == npy_bytes(np.array(cache.masks))
    assert (cache.root / "volumes.npy").read_bytes() == npy_bytes(np.array(cache.volumes))


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_partial_files_of_a_dead_run_are_removed_by_the_next_build(tiny_dataset, tmp_path):
    out = tmp_path / "cache"
    out.mkdir()
    pid = dead_pid()
    stale = [out / f".partial-{pid}-0123abcd-volumes.npy", out / f".partial-{pid}-4567cdef-masks.npy"]
    for path in stale:
        path.write_bytes(b"half a cache")
    build(tiny_dataset, out)
    assert names(out) == FILES
    stale[0].write_bytes(b"half a cache")
    assert build(tiny_dataset, out).info["reused"] is True  # an up-to-date cache is cleaned too
    assert names(out) == FILES


def test_partial_files_of_running_processes_are_kept(tiny_dataset, tmp_path):
    out = tmp_path / "cache"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = [out / f".partial-{sleeper.pid}-0123abcd-volumes.npy", out / f".partial-{os.getpid()}-4567cdef-volumes.npy"]
        for path in live:
            path.write_bytes(b"a concurrent build's rows")
        build(tiny_dataset, out)
        assert names(out) == sorted([*FILES, *(p.name for p in live)])
        assert all(p.read_bytes() == b"a concurrent build's rows" for p in live)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_after_a_sigkilled_preprocess_the_next_run_leaves_no_partial_file(tiny_dataset, tmp_path):
    out = tmp_path / "cache"
    # `python -m ctutils data preprocess` that gets SIGKILL while preprocessing its third scan
    script = textwrap.dedent(f"""
        import os, signal, sys
        import ctutils.cache
        from ctutils.cli import main
        real, calls = ctutils.cache.preprocess_file, []
        def killed(*args, **kwargs):
            calls.append(1)
            if len(calls) == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        ctutils.cache.preprocess_file = killed
        sys.exit(main(["data", "preprocess", "--src", {str(tiny_dataset)!r}, "--out", {str(out)!r},
                       "--shape", "8", "8", "4", "--workers", "1", "--quiet"]))
    """)
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = [name for name in names(out) if name.startswith(".partial-")]
    assert left and all(name.endswith("volumes.npy") for name in left)  # what a killed run leaves

    build(tiny_dataset, out)
    assert names(out) == FILES


def test_a_build_running_beside_another_on_the_same_cache_keeps_its_files(tiny_dataset, tmp_path):
    out, paused, go_on = tmp_path / "cache", tmp_path / "paused", tmp_path / "go-on"
    # Run A stops after its first scan until run B, started meanwhile, has built the same cache.
    script = textwrap.dedent(f"""
        import pathlib, time
        import ctutils.cache
        from ctutils.preprocess import PreprocessConfig
        real, calls = ctutils.cache.preprocess_file, []
        def waiting(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                pathlib.Path({str(paused)!r}).touch()
                deadline = time.monotonic() + 60
                while not pathlib.Path({str(go_on)!r}).exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
            return real(*args, **kwargs)
        ctutils.cache.preprocess_file = waiting
        ctutils.cache.build_cache({str(tiny_dataset)!r}, {str(out)!r}, config=PreprocessConfig(shape=(8, 8, 4)),
                                  workers=1, progress=False)
    """)
    first = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1200):
            if paused.exists() or first.poll() is not None:
                break
            time.sleep(0.05)
        assert paused.exists(), "run A did not start"
        partials = [name for name in names(out) if name.startswith(f".partial-{first.pid}-")]
        assert partials
        second = build(tiny_dataset, out)  # run B: A's partial files must survive it
        assert second.info["reused"] is False
        assert set(partials) <= set(names(out))
    finally:
        go_on.touch()
        _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert names(out) == FILES
    np.testing.assert_array_equal(open_cache(out).volumes, second.volumes)


# --- dataset folders -------------------------------------------------------------------------


def test_missing_class_folder_is_named(tmp_path):
    src = make_dataset(tmp_path / "data", n_normal=2, n_abnormal=2)
    for scan in (src / "CT-23").iterdir():
        scan.unlink()
    (src / "CT-23").rmdir()
    with pytest.raises(DatasetError, match=named(src / "CT-23", "class folder 'CT-23' .*is missing")):
        build(src, tmp_path / "cache", dataset="mosmeddata-ct0-ct23")
    assert not (tmp_path / "cache").exists()


def test_empty_class_folder_is_named(tmp_path):
    src = make_dataset(tmp_path / "data", n_normal=2, n_abnormal=2)
    for scan in (src / "CT-23").iterdir():
        scan.unlink()
    with pytest.raises(DatasetError, match=named(src / "CT-23", "holds no .nii or .nii.gz scan")):
        build(src, tmp_path / "cache")


def test_missing_dataset_folder_is_named(tmp_path):
    src = tmp_path / "nowhere"
    with pytest.raises(ValueError, match=named(src, "dataset folder does not exist")):
        build(src, tmp_path / "cache")


# --- open_cache ------------------------------------------------------------------------------


def test_open_cache_missing_folder(tmp_path):
    root = tmp_path / "nope"
    with pytest.raises(CacheError, match=named(root, "no such cache folder")):
        open_cache(root)


@pytest.mark.parametrize("name", FILES)
def test_open_cache_missing_file(tmp_path, name):
    root = tmp_path / "cache"
    small_cache(root)
    (root / name).unlink()
    with pytest.raises(CacheError, match=named(root / name, "missing; the cache is incomplete")):
        open_cache(root)


@pytest.mark.parametrize(
    ("array", "described"),
    [
        (np.zeros((12, 4, 4, 4), np.float32), r"holds float32 \(12, 4, 4, 4\)"),
        (np.zeros((11, 16, 16, 8), np.float32), r"holds float32 \(11, 16, 16, 8\)"),
        (np.zeros((12, 16, 16, 8), np.float64), r"holds float64 \(12, 16, 16, 8\)"),
        (np.zeros((12, 16, 16), np.float32), r"holds float32 \(12, 16, 16\)"),
    ],
)
def test_open_cache_volumes_of_the_wrong_shape_or_dtype(tmp_path, array, described):
    root = tmp_path / "cache"
    small_cache(root)
    np.save(root / "volumes.npy", array)
    with pytest.raises(CacheError, match=named(root / "volumes.npy", described)):
        open_cache(root)


def test_open_cache_unreadable_volumes(tmp_path):
    root = tmp_path / "cache"
    small_cache(root)
    (root / "volumes.npy").write_bytes(b"garbage")
    with pytest.raises(CacheError, match=named(root / "volumes.npy", "cannot read the volumes")):
        open_cache(root)


@pytest.mark.parametrize("text", ["{not json", '{"config": {"preset": "nope"}, "class_names": []}', "[]"])
def test_open_cache_bad_description(tmp_path, text):
    root = tmp_path / "cache"
    small_cache(root)
    (root / "cache.json").write_text(text)
    with pytest.raises(CacheError, match=named(root / "cache.json", "not a valid cache description")):
        open_cache(root)


def edit_manifest(root: Path, row: int, **changes: str) -> None:
    columns, rows = read_manifest(root)
    rows[row].update(changes)
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.parametrize(
    ("row", "changes", "cause"),
    [
        (3, {"index": "2"}, "index column covers 12 rows"),  # row 2 twice, row 3 never
        (3, {"index": ""}, "index column covers 11 rows"),
        (0, {"index": "12"}, "each row 0…N-1 must appear once"),
        (5, {"label": "5"}, "label 5 of scan_05.nii.gz is not one of 0…1"),
        (5, {"label": "-1"}, "label -1 of scan_05.nii.gz"),
        (1, {"split": "training"}, "split 'training' of scan_01.nii.gz"),
        (0, {"index": "first"}, "line 2: label and index must be integers"),
        (4, {"label": "abnormal"}, "line 6: label and index must be integers"),
    ],
)
def test_open_cache_inconsistent_manifest(tmp_path, row, changes, cause):
    root = tmp_path / "cache"
    small_cache(root)
    edit_manifest(root, row, **changes)
    with pytest.raises(CacheError, match=named(root / "manifest.csv", cause)):
        open_cache(root)


def test_open_cache_manifest_without_a_column(tmp_path):
    root = tmp_path / "cache"
    small_cache(root)
    (root / "manifest.csv").write_text("path,label,split,error\nscan_00.nii.gz,0,train,\n")
    with pytest.raises(CacheError, match=named(root / "manifest.csv", "lacks the column")):
        open_cache(root)


def test_open_cache_manifest_with_a_short_row(tmp_path):
    root = tmp_path / "cache"
    small_cache(root)
    with open(root / "manifest.csv", "a") as handle:
        handle.write("scan_99.nii.gz\n")  # e.g. a file cut short by a crash of another tool
    with pytest.raises(CacheError, match=named(root / "manifest.csv", "line 14")):
        open_cache(root)


# --- write_cache and the Cache accessors -------------------------------------------------------


def test_write_cache_roundtrip(tmp_path):
    root = tmp_path / "cache"
    cache, volumes, labels, splits = small_cache(root)
    assert names(root) == FILES
    again = open_cache(root)
    np.testing.assert_array_equal(again.volumes, volumes)
    assert again.config == PreprocessConfig(shape=(16, 16, 8))
    assert again.class_names == ("normal", "abnormal")
    assert [r["label"] for r in again.records] == labels
    assert [r["split"] for r in again.records] == splits
    assert [r["index"] for r in again.records] == list(range(12))
    assert [r["class_name"] for r in again.records] == ["normal", "abnormal"] * 6
    assert again.info["counts"]["train"] == {"normal": 2, "abnormal": 2}
    assert again.skipped == []


def test_write_cache_default_paths_and_float32(tmp_path):
    volumes = np.zeros((2, 4, 4, 4), np.float64)
    cache = write_cache(tmp_path / "c", volumes, [0, 1], splits=["train", "test"], config=PreprocessConfig(shape=(4, 4, 4)))
    assert cache.volumes.dtype == np.float32
    assert [str(p) for p in cache.paths()] == ["volume_0000", "volume_0001"]


def test_write_cache_rejects_volumes_that_do_not_match_the_config(tmp_path):
    root = tmp_path / "cache"
    with pytest.raises(ValueError, match=named(root, r"volumes of shape \(2, 4, 4, 4\) do not match config.shape \(8, 8, 4\)")):
        write_cache(root, np.zeros((2, 4, 4, 4)), [0, 1], splits=["train", "val"], config=CONFIG)
    with pytest.raises(ValueError, match=named(root, "got 2 volumes, 1 labels and 2 splits")):
        write_cache(root, np.zeros((2, 8, 8, 4)), [0], splits=["train", "val"], config=CONFIG)
    assert not root.exists() or names(root) == []


@pytest.mark.parametrize(("labels", "splits"), [([0, 1], ["train", "training"]), ([0, -1], ["train", "val"])])
def test_write_cache_bad_rows_keep_the_previous_cache(tmp_path, labels, splits):
    root = tmp_path / "cache"
    _, volumes, _, _ = small_cache(root)
    with pytest.raises(ValueError):
        write_cache(root, np.zeros((2, 16, 16, 8)), labels, splits=splits, config=PreprocessConfig(shape=(16, 16, 8)))
    np.testing.assert_array_equal(open_cache(root).volumes, volumes)


def test_indices_labels_and_paths_are_aligned_per_split(tmp_path):
    root = tmp_path / "cache"
    labels = [0, 0, 1, 1, 0, 1, 1, 0, 1, 0]
    splits = ["test", "train", "train", "val", "train", "test", "train", "val", "train", "train"]
    paths = [f"s{i}.nii.gz" for i in range(10)]
    cache = write_cache(root, np.zeros((10, 4, 4, 4)), labels, splits=splits, paths=paths, config=PreprocessConfig(shape=(4, 4, 4)))
    assert cache.indices("train").tolist() == [1, 2, 4, 6, 8, 9]
    assert cache.labels("train").tolist() == [0, 1, 0, 1, 1, 0]
    assert cache.paths("train") == [Path(f"s{i}.nii.gz") for i in (1, 2, 4, 6, 8, 9)]
    assert cache.indices("val").tolist() == [3, 7] and cache.labels("val").tolist() == [1, 0]
    assert cache.indices("test").tolist() == [0, 5] and cache.labels("test").tolist() == [0, 1]
    assert cache.indices().tolist() == list(range(10)) and cache.labels().tolist() == labels
    assert cache.indices("train").dtype == np.int64
    with pytest.raises(ValueError, match="unknown split 'dev'; choose one of train, val, test"):
        cache.indices("dev")


def test_accessors_skip_unreadable_scans(tiny_dataset, tmp_path):
    garbage, truncated = add_bad_scans(tiny_dataset)
    cache = build(tiny_dataset, tmp_path / "cache")
    all_indices = np.concatenate([cache.indices(s) for s in ("train", "val", "test")])
    assert sorted(all_indices.tolist()) == list(range(12))
    for split in ("train", "val", "test"):
        for index, label, path in zip(cache.indices(split), cache.labels(split), cache.paths(split)):
            assert label == (1 if path.parent.name == "CT-23" else 0)
            expected, _ = preprocess_file(path, config=CONFIG)
            np.testing.assert_array_equal(cache.volumes[index], expected)
    assert (cache.labels("train") == 0).sum() == 4 and (cache.labels("train") == 1).sum() == 4


def test_write_cache_key_follows_the_content(tmp_path):
    """Training resumes only onto the same data: two in-memory caches with other voxels get other keys."""
    config = PreprocessConfig(shape=(4, 4, 2))
    volumes = np.zeros((4, 4, 4, 2), np.float32)
    splits = ["train", "train", "val", "test"]
    a = write_cache(tmp_path / "a", volumes, [0, 1, 0, 1], splits=splits, config=config)
    b = write_cache(tmp_path / "b", volumes, [0, 1, 0, 1], splits=splits, config=config)
    volumes[0, 0, 0, 0] = 0.5
    c = write_cache(tmp_path / "c", volumes, [0, 1, 0, 1], splits=splits, config=config)
    assert a.info["key"] == b.info["key"] != c.info["key"]


# --------------------------------------------------------------------------- lesion masks


def _with_masks(root: Path) -> Path:
    """A tiny dataset whose abnormal scans have MosMedData-style masks (a 6 x 6 x 3 lesion each)."""
    import nibabel as nib

    make_dataset(root, n_normal=2, n_abnormal=3)
    (root / "masks").mkdir()
    for scan in sorted((root / "CT-23").iterdir()):
        image = nib.load(scan)
        mask = np.zeros(image.shape, dtype=np.uint8)
        mask[2:8, 2:8, 1:4] = 1
        stem = scan.name.removesuffix(".nii.gz")
        nib.save(nib.Nifti1Image(mask, image.affine), root / "masks" / f"{stem}_mask.nii.gz")
    return root


def test_masks_are_cached_beside_the_volumes_with_a_manifest_column(tmp_path):
    src = _with_masks(tmp_path / "data")
    cache = build_cache(src, tmp_path / "cache", config=PreprocessConfig(shape=(10, 10, 3)), workers=1, progress=False)
    assert cache.masks is not None and cache.masks.dtype == np.float16
    assert cache.masks.shape == cache.volumes.shape
    has = cache.has_mask()
    labels = cache.labels()
    assert has.tolist() == (labels == 1).tolist()  # the abnormal scans, in row order
    for row, with_mask in enumerate(has):
        total = float(cache.masks[row].astype(np.float64).sum())
        # a 6 x 6 x 3 lesion of a 20 x 20 x 6 (or 21 x 21 x 7) scan resized to 10 x 10 x 3: the
        # sample points at x, y = 2.1 .. 6.7 and z = 2.5 or 3 fall in it, so 3 x 3 x 1 voxels at
        # least are inside, some partly (linear interpolation)
        assert (total >= 2.0) == bool(with_mask), total
        assert 0.0 <= float(cache.masks[row].min()) and float(cache.masks[row].max()) <= 1.0
    reopened = open_cache(tmp_path / "cache")
    np.testing.assert_array_equal(reopened.masks, cache.masks)


def test_no_masks_folder_no_masks_file(tmp_path):
    src = make_dataset(tmp_path / "data", n_normal=2, n_abnormal=2)
    cache = build_cache(src, tmp_path / "cache", config=PreprocessConfig(shape=(8, 8, 3)), workers=1, progress=False)
    assert cache.masks is None and not (tmp_path / "cache" / "masks.npy").exists()
    assert not cache.has_mask().any()


def test_a_mask_that_does_not_fit_its_scan_is_skipped_not_the_scan(tmp_path, capsys):
    import nibabel as nib

    src = _with_masks(tmp_path / "data")
    bad = sorted((src / "masks").iterdir())[0]
    nib.save(nib.Nifti1Image(np.ones((5, 5, 5), dtype=np.uint8), np.eye(4)), bad)
    skewed = sorted((src / "masks").iterdir())[1]
    image = nib.load(skewed)
    nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj), image.affine @ np.diag([2.0, 1, 1, 1])), skewed)
    cache = build_cache(src, tmp_path / "cache", config=PreprocessConfig(shape=(8, 8, 3)), workers=1)
    assert len(cache) == 5 and not cache.skipped  # every scan kept
    rows = {Path(r["path"]).name: r for r in cache.records}
    first = bad.name.replace("_mask", "")
    second = skewed.name.replace("_mask", "")
    assert rows[first]["mask"] == "" and "mask shape (5, 5, 5) differs from its scan's" in rows[first]["mask_error"]
    assert str(bad) in rows[first]["mask_error"]
    assert rows[second]["mask"] == "" and "mask affine differs" in rows[second]["mask_error"]
    assert cache.has_mask().sum() == 1
    err = capsys.readouterr().err
    assert f"skipped the mask of {src / 'CT-23' / first}" in err


def test_adding_masks_rebuilds_the_cache(tmp_path):
    src = make_dataset(tmp_path / "data", n_normal=2, n_abnormal=2)
    config = PreprocessConfig(shape=(8, 8, 3))
    first = build_cache(src, tmp_path / "cache", config=config, workers=1, progress=False)
    assert first.masks is None
    import nibabel as nib

    scan = sorted((src / "CT-23").iterdir())[0]
    image = nib.load(scan)
    (src / "masks").mkdir()
    nib.save(nib.Nifti1Image(np.ones(image.shape, dtype=np.uint8), image.affine),
             src / "masks" / scan.name.replace(".nii.gz", "_mask.nii.gz"))
    second = build_cache(src, tmp_path / "cache", config=config, workers=1, progress=False)
    assert second.info["reused"] is False and second.masks is not None and second.has_mask().sum() == 1
