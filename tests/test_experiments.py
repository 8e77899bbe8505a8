"""Tests for ctutils.experiments (the seeds study) and the study facts of ctutils.synthetic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ctutils.cache import write_cache
from ctutils.experiments import SCORES_FILE, SeedRun, seed_study, seeds_summary, seeds_table
from ctutils.preprocess import PreprocessConfig
from ctutils.synthetic import active_confounders, read_studies, study_caption

SHAPE = (32, 32, 16)
TINY = {"model": "cnn3d-same", "recipe": "improved", "epochs": 2, "batch_size": 4,
        "model_kwargs": {"filters": (4, 4, 8, 8), "dense_units": 8}}


def _run(seed: int, loss: float, val: float, test: float, seconds: float | None = 10.0) -> SeedRun:
    return SeedRun(seed, f"r{seed}", 30, 20 + seed, loss, (val, val - 0.1, 1.0), (test, test - 0.2, test + 0.05),
                   30, 30, 0.9, seconds)


def test_summary_means_and_extremes_by_hand():
    runs = [_run(0, 0.10, 1.0, 0.90), _run(1, 0.30, 0.90, 0.80), _run(2, 0.20, 0.80, 0.70, seconds=None)]
    s = seeds_summary(runs)
    assert s["n_seeds"] == 3
    assert s["val_auc_mean"] == pytest.approx(0.9)
    assert s["val_auc_min"] == pytest.approx(0.8)
    assert s["best_val_loss_max"] == pytest.approx(0.3)
    assert s["test_auc_mean"] == pytest.approx(0.8)
    assert s["test_auc_sd"] == pytest.approx(0.1)  # sample sd of 0.9, 0.8, 0.7
    assert s["test_auc_half_width_max"] == pytest.approx(0.125)  # (0.05 + 0.2) / 2
    assert s["train_seconds_mean"] == pytest.approx(10.0)  # the run without a time is left out
    with pytest.raises(ValueError, match="no runs"):
        seeds_summary([])


def test_table_has_a_row_per_seed_and_a_mean_row():
    runs = [_run(0, 0.10, 1.0, 0.90), _run(1, 0.30, 0.90, 0.80, seconds=None)]
    lines = seeds_table(runs).splitlines()
    assert lines[0].startswith("| seed |") and "(30 scans)" in lines[0]
    assert lines[2] == "| 0 | 30 | 20 | 0.100 | 1.000 [0.90, 1.00] | 0.900 [0.70, 0.95] | 0.900 | 10 |"
    assert lines[3].endswith("| 0.900 | – |")  # no training time known
    assert lines[4].startswith("| mean | | | 0.200 | 0.950 | 0.850 ± 0.071 (sd)")
    assert len(lines) == 5


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    labels = np.arange(20) % 2
    volumes = rng.uniform(0.0, 0.3, size=(20, *SHAPE)).astype(np.float32)
    volumes[labels == 1, 8:-8, 8:-8, 4:-4] += 0.6
    root = tmp_path_factory.mktemp("cache")
    write_cache(root, volumes, labels, splits=["train"] * 12 + ["val"] * 4 + ["test"] * 4,
                config=PreprocessConfig(shape=SHAPE))
    return root


def test_seed_study_trains_each_seed_then_reuses_it(cache_dir, tmp_path):
    seen = []
    runs = seed_study(cache_dir, {0: tmp_path / "a", 3: tmp_path / "b"}, train_kwargs=TINY, n_boot=50,
                      on_run=seen.append)
    assert [r.seed for r in runs] == [0, 3] == [r.seed for r in seen]
    for r in runs:
        assert r.epochs_done == 2 and 1 <= r.best_epoch <= 2
        assert r.val_n == 4 and r.test_n == 4
        assert r.val_auc[1] <= r.val_auc[0] <= r.val_auc[2]
        assert r.train_seconds is not None and r.train_seconds > 0
        saved = json.loads((Path(r.run_dir) / SCORES_FILE).read_text())
        assert saved["seed"] == r.seed and saved["train_seconds"] == r.train_seconds
        state = json.loads((Path(r.run_dir) / "state.json").read_text())
        assert state["train_seconds"] == r.train_seconds  # the training's own record, epoch by epoch
        settings = json.loads((Path(r.run_dir) / "train_config.json").read_text())["settings"]
        assert settings["seed"] == r.seed and settings["model"] == "cnn3d-same"
    again = seed_study(cache_dir, {0: tmp_path / "a"}, train_kwargs=TINY, n_boot=50)
    assert again[0].train_seconds == runs[0].train_seconds  # reused: the recorded time, not a new one
    assert again[0].val_auc == runs[0].val_auc


def test_seed_study_rejects_a_seed_in_the_settings_and_no_runs(cache_dir, tmp_path):
    with pytest.raises(ValueError, match="must not contain 'seed'"):
        seed_study(cache_dir, {0: tmp_path / "a"}, train_kwargs=TINY | {"seed": 1})
    with pytest.raises(ValueError, match="run_dirs is empty"):
        seed_study(cache_dir, {}, train_kwargs=TINY)


def test_course_seed_run_dirs():
    from ctutils.course import course_config

    cfg = course_config("quick", root="/course", seed=1)
    assert cfg.seed_run_dir(1) == cfg.run_dir
    assert cfg.seed_run_dir(0) == cfg.run_dir / "seeds" / "seed-0"


def test_study_facts_read_back(tmp_path):
    from ctutils.synthetic import generate_dataset

    generate_dataset(tmp_path / "d", normal=1, abnormal=1, seed=0, size=64, progress=False, workers=1)
    studies = read_studies(tmp_path / "d")
    assert sorted(studies) == ["CT-0/study_0001.nii.gz", "CT-23/study_0002.nii.gz"]
    abnormal = studies["CT-23/study_0002.nii.gz"]
    assert abnormal["grade"] in (2, 3)
    caption = study_caption(abnormal)
    assert caption.startswith(f"CT-{abnormal['grade']}, {100 * abnormal['involvement']:.1f} % of the lung; ")
    assert study_caption(studies["CT-0/study_0001.nii.gz"]).startswith("CT-0; ")
    with pytest.raises(FileNotFoundError, match="not a synthetic dataset"):
        read_studies(tmp_path)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "synthetic.json").write_text("{not json")
    with pytest.raises(ValueError, match="synthetic.json"):
        read_studies(tmp_path / "bad")


def test_active_confounders_by_hand():
    none = {"expiratory": False, "contrast": False, "dependent_hu": 0.0, "atelectasis_mm": 0.0, "nodules": 0,
            "scars": 0, "kernel": "standard", "coverage": "full", "motion_mm": 0.0}
    assert active_confounders({"confounders": none}) == []
    every = none | {"expiratory": True, "contrast": True, "dependent_hu": 30.0, "atelectasis_mm": 5.0, "nodules": 1,
                    "scars": 2, "kernel": "smooth", "coverage": "no-base", "motion_mm": 2.0}
    assert active_confounders({"confounders": every}) == [
        "expiratory", "contrast", "dependent density", "atelectasis", "nodules", "scars", "smooth kernel",
        "no base", "motion"]


def test_seed_comparison_words_follow_the_intervals():
    from ctutils.experiments import describe_seed_comparison

    better = [{"seed": s, "diff": 0.1, "low": 0.02, "high": 0.2} for s in range(3)]
    worse = [{"seed": s, "diff": -0.1, "low": -0.2, "high": -0.01} for s in range(3)]
    tied = [{"seed": s, "diff": 0.0, "low": -0.05, "high": 0.05} for s in range(3)]
    text = describe_seed_comparison(better, name_a="A", name_b="B", n_scans=30)
    assert "lies above 0 in 3 of 3 seeds" in text and text.endswith("A ranks the test scans better than B for every seed.")
    assert "mean +0.100" in text and "over the 30 test scans" in text
    text = describe_seed_comparison(worse, name_a="A", name_b="B")
    assert "lies below 0 in 3 of 3 seeds" in text and text.endswith("B ranks the test scans better than A for every seed.")
    assert "mean -0.100" in text
    text = describe_seed_comparison(tied, name_a="A", name_b="B")
    assert "contains 0 in 3 of 3 seeds" in text and text.endswith("cannot tell the two apart for any seed.")
    with pytest.raises(ValueError, match="no paired comparison"):
        describe_seed_comparison([], name_a="A", name_b="B")


def test_load_results(tmp_path):
    from ctutils.experiments import load_results

    assert load_results(tmp_path) == {}
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "experiments.json").write_text('{"flip": {"wall_seconds": 12.5}}')
    assert load_results(tmp_path) == {"flip": {"wall_seconds": 12.5}}
    (tmp_path / "docs" / "experiments.json").write_text("{oops")
    with pytest.raises(ValueError, match="experiments.json: not valid JSON"):
        load_results(tmp_path)
