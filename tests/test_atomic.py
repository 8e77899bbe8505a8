"""Tests for ctutils.atomic: a file appears under its final name only once it is complete."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ctutils.atomic import atomic_path, partial_name, remove_stale_partials


def test_partial_name_is_hidden_beside_the_target_and_keeps_every_suffix(tmp_path):
    target = tmp_path / "scan.nii.gz"
    tmp = partial_name(target)
    assert tmp.parent == tmp_path
    assert tmp.name.startswith(".partial-")
    assert tmp.name.endswith("scan.nii.gz")
    assert tmp.suffixes[-2:] == [".nii", ".gz"]
    assert partial_name(target) != tmp  # two writers never share a temporary file


def test_success_moves_the_temporary_file_onto_the_final_name(tmp_path):
    target = tmp_path / "a.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_text("done")
        assert not target.exists()  # nothing under the final name while writing
    assert target.read_text() == "done"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_success_replaces_an_existing_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_an_error_leaves_no_file_and_no_partial_file(tmp_path):
    target = tmp_path / "a.npy"
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_an_error_keeps_the_previous_file_untouched(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("good")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_writing_nothing_is_an_error_naming_the_file(tmp_path):
    target = tmp_path / "a.txt"
    with pytest.raises(FileNotFoundError, match=re.escape(f"{target}: nothing was written")):
        with atomic_path(target):
            pass
    assert not target.exists()


def test_missing_parent_folders_are_created(tmp_path):
    target = tmp_path / "x" / "y" / "a.txt"
    with atomic_path(str(target)) as tmp:
        assert isinstance(tmp, Path)
        tmp.write_text("ok")
    assert target.read_text() == "ok"


# --- partial files left by killed runs -----------------------------------------------------------


def dead_pid() -> int:
    """The id of a process that has run and exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def sleeping_pid():
    """The id of another process that is still running."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield child.pid
    child.kill()
    child.wait()


def test_remove_stale_partials_removes_a_dead_processs_files_only(tmp_path, sleeping_pid):
    dead = tmp_path / f".partial-{dead_pid()}-0123abcd-volumes.npy"
    mine = partial_name(tmp_path / "volumes.npy")
    other = tmp_path / f".partial-{sleeping_pid}-89abcdef-masks.npy"
    final = tmp_path / "volumes.npy"
    for path in (dead, mine, other, final):
        path.write_bytes(b"rows")
    assert remove_stale_partials(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, other.name, final.name])
    assert remove_stale_partials(str(tmp_path)) == []  # idempotent, takes a str


def test_remove_stale_partials_leaves_other_names_and_subfolders(tmp_path):
    pid = dead_pid()
    keep = [
        f".partial-{pid}-study_0004.nii.gz",  # no random token: not a partial_name
        f".partial-{pid}-0123ABCD-a.npy",  # upper-case hex: not a partial_name
        f".partial-x{pid}-0123abcd-a.npy",
        f".partial-{pid}-0123abcd-",  # no final name
        f"partial-{pid}-0123abcd-a.npy",
        "._study_0001.nii.gz",
    ]
    for name in keep:
        (tmp_path / name).write_bytes(b"")
    folder = tmp_path / f".partial-{pid}-0123abcd-folder"
    folder.mkdir()
    (folder / f".partial-{pid}-0123abcd-a.npy").write_bytes(b"")  # inside a subfolder: not looked at
    assert remove_stale_partials(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*keep, folder.name])
    assert remove_stale_partials(tmp_path / "missing") == []


def test_remove_stale_partials_keeps_files_of_processes_it_may_not_signal(tmp_path, monkeypatch):
    path = tmp_path / ".partial-1-0123abcd-a.npy"
    path.write_bytes(b"")

    def refuse(pid, signal):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "kill", refuse)
    assert remove_stale_partials(tmp_path) == []
    assert path.exists()


def test_write_json_is_standard_utf8_json_with_a_final_newline(tmp_path):
    import json

    from ctutils.atomic import write_json

    path = write_json(tmp_path / "sub" / "a.json", {"name": "Grad-CAM · 95 %", "n": [1, 2]})
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n") and "Grad-CAM · 95 %" in text and json.loads(text)["n"] == [1, 2]
    with pytest.raises(ValueError):
        write_json(path, {"loss": float("nan")})
    assert json.loads(path.read_text(encoding="utf-8"))["n"] == [1, 2]  # the old file is untouched
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".partial-")]


def test_write_notebook(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from ctutils.atomic import write_notebook

    path = write_notebook(new_notebook(cells=[new_code_cell("x = 1")]), tmp_path / "nb.ipynb")
    assert nbformat.read(path, as_version=4).cells[0].source == "x = 1"
