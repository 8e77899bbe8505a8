"""ctutils.course: profiles and paths, metrics, chapters, artefacts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nbfake import fake_repo
from ctutils import course


# ----------------------------------------------------------------------------- profiles and paths


def test_default_paths_of_each_profile_and_dataset(tmp_path: Path) -> None:
    root = fake_repo(tmp_path)
    quick = course.course_config("quick", "synthetic", root=root)
    assert quick.data_dir == root / "data" / "synthetic-quick"
    assert quick.cache_dir == root / "data" / "cache" / "synthetic-quick-64x64x32"
    assert quick.run_dir == root / "runs" / "quick-synthetic"
    assert quick.model_path == root / "runs" / "quick-synthetic" / "model.keras"
    full = course.course_config("full", "mosmeddata", root=root)
    assert full.data_dir == root / "data" / "mosmeddata"
    assert full.cache_dir == root / "data" / "cache" / "mosmeddata-128x128x64"
    assert full.run_dir == root / "runs" / "full-mosmeddata"
    assert full.registry_name == "mosmeddata-ct0-ct23"
    assert quick.preprocess.shape == (64, 64, 32)
    assert full.train_kwargs() == {"model": "cnn3d", "recipe": "reference", "epochs": 100, "batch_size": 2,
                                   "seed": 0, "model_kwargs": {}}


def test_profiles_print_as_plain_data() -> None:
    quick = course.PROFILES["quick"].to_dict()
    assert quick["shape"] == [64, 64, 32]
    assert (quick["n_normal"], quick["n_abnormal"], quick["size"], quick["epochs"]) == (100, 100, 256, 20)
    assert quick["model"] == "cnn3d-small"
    assert course.PROFILES["full"].to_dict()["shape"] == [128, 128, 64]
    assert json.loads(json.dumps(quick)) == quick


def test_paths_resolve_from_the_notebooks_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake_repo(tmp_path)
    monkeypatch.chdir(root / "notebooks")
    assert course.find_root() == root.resolve()
    cfg = course.course_config("quick", "synthetic", chapter="00_setup")
    assert cfg.root == root.resolve()
    assert cfg.data_dir == root.resolve() / "data" / "synthetic-quick"
    assert cfg.relative(cfg.cache_dir) == "data/cache/synthetic-quick-64x64x32"
    assert "data      data/synthetic-quick" in cfg.describe()


def test_without_a_checkout_the_current_folder_is_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    colab = tmp_path / "content"
    colab.mkdir()
    monkeypatch.chdir(colab)
    assert course.find_root() == colab.resolve()
    assert course.course_config().data_dir == colab.resolve() / "data" / "synthetic-quick"


def test_the_environment_can_name_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """nbgrader runs a chapter in autograded/<student>/<assignment>/ of its own folder: CT3D_COURSE_ROOT names the course."""
    root = fake_repo(tmp_path)
    grading = tmp_path / "grading" / "autograded" / "alice" / "00_setup"
    grading.mkdir(parents=True)
    monkeypatch.chdir(grading)
    assert course.find_root() == grading.resolve()  # no checkout above: the current folder
    monkeypatch.setenv(course.ROOT_ENV, str(root))
    assert course.find_root() == root.resolve()
    cfg = course.course_config("quick", "synthetic")
    assert cfg.data_dir == root.resolve() / "data" / "synthetic-quick"
    assert cfg.run_dir == root.resolve() / "runs" / "quick-synthetic"
    assert course.find_root(grading) == grading.resolve()  # an explicit start is not overridden
    monkeypatch.chdir(root / "notebooks")
    other = fake_repo(tmp_path / "elsewhere")
    monkeypatch.setenv(course.ROOT_ENV, str(other))
    assert course.find_root() == other.resolve()  # the variable wins over the checkout around the folder
    monkeypatch.setenv(course.ROOT_ENV, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=r"missing: the course root named by CT3D_COURSE_ROOT is not a folder"):
        course.course_config()


def test_one_rule_for_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Defaults resolve against the root; a folder passed as a parameter against the current folder."""
    root = fake_repo(tmp_path)
    notebooks = root / "notebooks"
    monkeypatch.chdir(notebooks)  # papermill … --cwd notebooks -p run_dir runs/x
    cfg = course.course_config("quick", "synthetic", run_dir="runs/x", cache_dir="../data/cache/mine")
    assert cfg.run_dir == notebooks.resolve() / "runs" / "x"
    assert cfg.cache_dir == root.resolve() / "data" / "cache" / "mine"
    assert cfg.data_dir == root.resolve() / "data" / "synthetic-quick"
    assert all(p.is_absolute() for p in (cfg.run_dir, cfg.cache_dir, cfg.data_dir))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert course.course_config(data_dir="~/scans").data_dir == (tmp_path / "home" / "scans").resolve()


def test_overrides_and_empty_strings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake_repo(tmp_path)
    monkeypatch.chdir(tmp_path)
    cfg = course.course_config("quick", "synthetic", root=root, data_dir="mine", cache_dir="", run_dir=None, seed=3)
    assert cfg.data_dir == (tmp_path / "mine").resolve()
    assert cfg.cache_dir == root.resolve() / "data" / "cache" / "synthetic-quick-64x64x32"
    assert cfg.seed == 3 and cfg.train_kwargs()["seed"] == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"profile": "huge"}, "unknown profile 'huge'; choose one of quick, full"),
        ({"dataset": "lidc"}, "unknown dataset 'lidc'; choose one of synthetic, mosmeddata"),
        ({"seed": 1.5}, "seed must be an integer, got 1.5"),
    ],
)
def test_bad_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        course.course_config(**kwargs)


def test_record_metrics_merges_per_chapter_and_converts_numpy(tmp_path: Path) -> None:
    path = course.record_metrics(tmp_path, "00_setup", {"n": np.int64(80)})
    course.record_metrics(tmp_path, "05_training", {"val_auc": np.float32(0.75), "bad": float("nan")})
    course.record_metrics(tmp_path, "00_setup", {"m": [1, 2]})
    assert json.loads(path.read_text()) == {
        "00_setup": {"n": 80, "m": [1, 2]},
        "05_training": {"val_auc": 0.75, "bad": None},
    }
    with pytest.raises(ValueError, match="cannot be written as JSON"):
        course.record_metrics(tmp_path, "00_setup", {"x": object()})


def test_record_and_save_figure_need_a_chapter(tmp_path: Path) -> None:
    cfg = course.course_config(root=tmp_path, run_dir=tmp_path / "run")
    with pytest.raises(ValueError, match="pass chapter='NN_topic'"):
        cfg.record(n=1)
    named = course.course_config(root=tmp_path, run_dir=tmp_path / "run", chapter="01_data")
    with pytest.raises(ValueError, match="figure name 'a b'"):
        named.save_figure(object(), "a b")


def test_list_chapters_ignores_other_files(tmp_path: Path) -> None:
    for name in ("01_data.ipynb", "00_setup.ipynb", "scratch.ipynb", "README.md", "1_bad.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in course.list_chapters(tmp_path)] == ["00_setup.ipynb", "01_data.ipynb"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no chapter notebooks"):
        course.list_chapters(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="notebooks folder not found"):
        course.list_chapters(tmp_path / "missing")


# ----------------------------------------------------------------------------- student copies


def test_ensure_model_reuses_a_finished_run_and_resumes_an_unfinished_one(tmp_path, monkeypatch):
    import ctutils.training

    cfg = course.course_config("quick", "synthetic", root=tmp_path)
    cfg.run_dir.mkdir(parents=True)
    cfg.model_path.write_bytes(b"a model")
    calls = []
    monkeypatch.setattr(course, "ensure_cache", lambda cfg, **kw: None)
    monkeypatch.setattr(ctutils.training, "train", lambda *a, **kw: calls.append(kw) or type("R", (), {"model_path": cfg.model_path})())
    # Finished by its epoch count (e.g. chapter 05 run with epochs=5): used as it is.
    (cfg.run_dir / "state.json").write_text(json.dumps({"epochs_done": 5, "finished": False, "stop_reason": "epochs"}))
    assert course.ensure_model(cfg) == cfg.model_path and calls == []
    # Interrupted after 3 epochs: resumed, never used half-trained.
    (cfg.run_dir / "state.json").write_text(json.dumps({"epochs_done": 3, "finished": False, "stop_reason": None}))
    assert course.ensure_model(cfg) == cfg.model_path
    assert len(calls) == 1 and calls[0]["resume"] is True


def test_a_dataset_with_the_shortcut_marker_is_never_the_courses(tmp_path):
    from ctutils.phantoms import PHANTOM_VERSION

    cfg = course.course_config("quick", "synthetic", data_dir=tmp_path / "data")
    p = cfg.profile
    studies = []
    for i in range(p.n_normal + p.n_abnormal):
        path = f"CT-{'0' if i < p.n_normal else '23'}/study_{i + 1:04d}.nii.gz"
        (tmp_path / "data" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / path).touch()
        studies.append({"path": path})
    meta = {"complete": True, "version": PHANTOM_VERSION, "seed": p.data_seed, "normal": p.n_normal,
            "abnormal": p.n_abnormal, "size": p.size, "layout": "keras-example", "grades": [2, 3],
            "studies": studies}
    (tmp_path / "data" / "synthetic.json").write_text(json.dumps(meta))
    assert course._synthetic_complete(cfg)  # written before the option existed: unmarked
    (tmp_path / "data" / "synthetic.json").write_text(json.dumps({**meta, "shortcut_marker": False}))
    assert course._synthetic_complete(cfg)
    (tmp_path / "data" / "synthetic.json").write_text(json.dumps({**meta, "shortcut_marker": True}))
    assert not course._synthetic_complete(cfg)
