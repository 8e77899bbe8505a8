"""Tests for ctutils.training: run folder, recipes, resume, atomic checkpoints, determinism."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from ctutils.cache import CacheError, write_cache
from ctutils.models import build_cnn3d, load_model_safely
from ctutils.preprocess import PreprocessConfig
from ctutils.training import RECIPES, read_preprocess_json, save_model_atomic, train

SHAPE = (32, 32, 16)
SMALL = {"filters": (4, 4, 8, 8), "dense_units": 8}  # a few thousand parameters: fast on CPU


def _volumes(n: int, shape: tuple[int, int, int], *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise in [0, 0.3]; abnormal volumes (odd rows) get a bright central block (+0.6)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    volumes = rng.uniform(0.0, 0.3, size=(n, *shape)).astype(np.float32)
    x, y, z = (s // 4 for s in shape)
    volumes[labels == 1, x:-x, y:-y, z:-z] += 0.6
    return volumes, labels


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cache")
    volumes, labels = _volumes(20, SHAPE, seed=0)
    splits = ["train"] * 12 + ["val"] * 4 + ["test"] * 4
    write_cache(root, volumes, labels, splits=splits, config=PreprocessConfig(shape=SHAPE))
    return root


def _train(cache_dir: Path, run: Path, **kwargs):
    options = {"model": "cnn3d-same", "recipe": "improved", "epochs": 2, "batch_size": 4, "model_kwargs": SMALL, "verbose": 0}
    options.update(kwargs)
    return train(cache_dir, run, **options)


class _RaiseAfterEpoch(keras.callbacks.Callback):
    """Raise ``error`` at the end of epoch ``epoch`` (0-based), after the run's own callbacks."""

    def __init__(self, epoch: int, error: BaseException) -> None:
        super().__init__()
        self.epoch, self.error = epoch, error

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise self.error


class _RaiseInBatch(keras.callbacks.Callback):
    """Raise ``error`` after the first batch of epoch ``epoch`` (0-based): a crash mid-epoch."""

    def __init__(self, epoch: int, error: BaseException) -> None:
        super().__init__()
        self.epoch, self.error, self.current = epoch, error, -1

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch:
            raise self.error


def test_recipes_match_the_reference_and_the_improved_plan():
    ref, imp = RECIPES["reference"], RECIPES["improved"]
    assert (ref.learning_rate, ref.lr_decay, ref.decay_steps, ref.decay_rate) == (1e-4, True, 100_000, 0.96)
    assert (ref.epochs, ref.batch_size, ref.patience, ref.early_stopping_monitor) == (100, 2, 15, "val_acc")
    assert ref.metrics == ("acc",) and ref.augment == "reference" and not ref.class_weighted
    assert ref.augment_config().angles_deg == (-20.0, -10.0, -5.0, 5.0, 10.0, 20.0)
    assert "auc" in imp.metrics and imp.class_weighted and imp.restore_best_weights
    assert imp.reduce_lr_patience is not None and imp.early_stopping_monitor == "val_loss"
    assert (imp.checkpoint_monitor, imp.checkpoint_mode) == ("val_loss", "min")


def test_train_writes_the_run_folder_and_the_model_reloads_safely(cache_dir, tmp_path):
    run = tmp_path / "run"
    result = _train(cache_dir, run)

    names = {p.name for p in run.iterdir()}
    assert {"model.keras", "last.keras", "state.json", "history.csv", "history.json", "preprocess.json", "train_config.json"} <= names
    assert not [n for n in names if n.startswith(".partial")]
    assert result.model_path == run / "model.keras"
    assert result.epochs_done == 2 and result.initial_epoch == 0

    with open(run / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"loss", "acc", "auc", "val_loss", "val_acc", "val_auc", "learning_rate"} <= set(rows[0])
    history = json.loads((run / "history.json").read_text())
    assert history == result.history
    assert history["val_auc"] == pytest.approx([float(r["val_auc"]) for r in rows])
    assert result.best_epoch in (1, 2)
    best = history["epoch"].index(result.best_epoch)
    # The improved recipe keeps the epoch of the lowest validation loss (the first one on a tie).
    assert result.best_metrics["val_loss"] == history["val_loss"][best] == min(history["val_loss"][: best + 1])

    config, class_names, input_shape = read_preprocess_json(run)
    assert config == PreprocessConfig(shape=SHAPE)
    assert class_names == ("normal", "abnormal") and input_shape == (*SHAPE, 1)

    settings = json.loads((run / "train_config.json").read_text())
    assert settings["settings"]["seed"] == 0 and settings["settings"]["model"] == "cnn3d-same"
    assert settings["device"] == {"gpus": [], "mixed_precision": False, "xla_jit_compile": False, "op_determinism": True}
    assert settings["versions"]["keras"] == keras.__version__

    model = load_model_safely(run / "model.keras")
    assert model.input_shape == (None, *SHAPE, 1)
    x = np.zeros((3, *SHAPE, 1), np.float32)
    probabilities = model.predict(x, verbose=0)
    assert probabilities.shape == (3, 1) and np.all((probabilities >= 0) & (probabilities <= 1))


def test_tensorboard_logs_or_a_clear_error_without_the_package(cache_dir, tmp_path):
    if importlib.util.find_spec("tensorboard") is None:
        with pytest.raises(ValueError, match="needs the 'tensorboard' package"):
            _train(cache_dir, tmp_path / "run", epochs=1, tensorboard=True)
        assert not (tmp_path / "run").exists()
    else:
        _train(cache_dir, tmp_path / "run", epochs=1, tensorboard=True)
        assert any((tmp_path / "run" / "logs").rglob("events.out.tfevents.*"))


def test_reference_recipe_fits_the_valid_padding_cnn_with_augmentation(tmp_path):
    # The reference architecture (4 valid blocks, 64-64-128-256 filters) at a shape just above
    # its 46-voxel minimum, through model.fit with the reference rotations: static shapes hold.
    shape = (48, 48, 48)
    volumes, labels = _volumes(4, shape, seed=1)
    write_cache(tmp_path / "cache", volumes, labels, splits=["train", "train", "val", "val"], config=PreprocessConfig(shape=shape))
    result = train(tmp_path / "cache", tmp_path / "run", model="cnn3d", recipe="reference", epochs=1, verbose=0)
    assert result.epochs_done == 1
    assert set(result.history) == {"epoch", "loss", "acc", "val_loss", "val_acc", "learning_rate"}
    assert result.history["learning_rate"] == [pytest.approx(1e-4)]
    config = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert config["n_params"] == 1_352_897
    assert config["settings"]["augment"]["angles_deg"] == [-20.0, -10.0, -5.0, 5.0, 10.0, 20.0]


@pytest.mark.slow
def test_reference_model_at_128x128x64_trains_one_step_through_fit(tmp_path):
    shape = (128, 128, 64)
    volumes, labels = _volumes(4, shape, seed=2)
    write_cache(tmp_path / "cache", volumes, labels, splits=["train", "train", "val", "val"], config=PreprocessConfig(shape=shape))
    result = train(tmp_path / "cache", tmp_path / "run", model="cnn3d", recipe="reference", epochs=1, verbose=0)
    assert result.epochs_done == 1 and np.isfinite(result.history["loss"][0])
    assert load_model_safely(result.model_path).count_params() == 1_352_897


def test_resume_after_keyboard_interrupt_and_mid_epoch_crash(cache_dir, tmp_path):
    run = tmp_path / "run"
    steps_per_epoch = 3  # 12 training volumes, batch 4
    with pytest.raises(KeyboardInterrupt):
        _train(cache_dir, run, epochs=3, callbacks=[_RaiseAfterEpoch(0, KeyboardInterrupt())])
    state = json.loads((run / "state.json").read_text())
    assert state["epochs_done"] == 1 and not state["finished"]
    assert state["train_seconds"] > 0  # the epochs' wall time, kept for the resume
    first = json.loads((run / "history.json").read_text())
    assert first["epoch"] == [1]

    # A crash in the middle of epoch 2 leaves epoch 1's checkpoints byte for byte.
    model_bytes, last_bytes = (run / "model.keras").read_bytes(), (run / "last.keras").read_bytes()
    with pytest.raises(RuntimeError, match="power cut"):
        _train(cache_dir, run, epochs=3, callbacks=[_RaiseInBatch(1, RuntimeError("power cut"))])
    assert (run / "model.keras").read_bytes() == model_bytes
    assert (run / "last.keras").read_bytes() == last_bytes
    assert json.loads((run / "state.json").read_text())["epochs_done"] == 1
    load_model_safely(run / "model.keras")

    result = _train(cache_dir, run, epochs=3)
    assert result.initial_epoch == 1 and result.epochs_done == 3
    assert json.loads((run / "state.json").read_text())["train_seconds"] > state["train_seconds"]  # summed over sessions
    assert result.history["epoch"] == [1, 2, 3]
    assert result.history["loss"][0] == first["loss"][0]
    with open(run / "history.csv", newline="") as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == [1, 2, 3]
    # The optimizer state came back with last.keras: 3 epochs of steps in all, not 2.
    resumed = load_model_safely(run / "last.keras", compile=True)
    assert int(resumed.optimizer.iterations) == 3 * steps_per_epoch

    # Asking again for the same number of epochs trains nothing.
    again = _train(cache_dir, run, epochs=3)
    assert again.initial_epoch == 3 and again.history == result.history

    with pytest.raises(ValueError, match=r"trained with seed=0, not 1.*resume=False"):
        _train(cache_dir, run, epochs=4, seed=1)
    fresh = _train(cache_dir, run, epochs=1, seed=1, resume=False)
    assert fresh.history["epoch"] == [1] and fresh.initial_epoch == 0


def test_failed_checkpoint_write_keeps_the_previous_model(cache_dir, tmp_path, monkeypatch):
    path = tmp_path / "model.keras"
    model = build_cnn3d((16, 16, 16, 1), filters=(2,), dense_units=2, padding="same")
    save_model_atomic(model, path)
    before = path.read_bytes()

    def broken_save(self, filepath, *args, **kwargs):
        Path(filepath).write_bytes(b"PK\x03\x04 half a zip")
        raise OSError("No space left on device")

    monkeypatch.setattr(keras.Model, "save", broken_save)
    with pytest.raises(OSError, match="No space left"):
        save_model_atomic(model, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]
    monkeypatch.undo()
    load_model_safely(path)


def test_failed_save_during_training_is_resumable(cache_dir, tmp_path, monkeypatch):
    run = tmp_path / "run"
    real_save = keras.Model.save
    calls = []

    def save_then_fail(self, filepath, *args, **kwargs):
        calls.append(filepath)
        if len(calls) > 2:  # epoch 1 writes model.keras and last.keras; epoch 2 fails
            Path(filepath).write_bytes(b"PK\x03\x04 half a zip")
            raise OSError("No space left on device")
        return real_save(self, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save", save_then_fail)
    with pytest.raises(OSError, match="No space left"):
        _train(cache_dir, run, epochs=2)
    monkeypatch.undo()
    assert json.loads((run / "state.json").read_text())["epochs_done"] == 1
    load_model_safely(run / "model.keras")
    load_model_safely(run / "last.keras")
    assert _train(cache_dir, run, epochs=2).history["epoch"] == [1, 2]


@pytest.mark.slow
def test_same_seed_same_history_on_cpu(cache_dir, tmp_path):
    a = _train(cache_dir, tmp_path / "a", seed=3, epochs=1)
    b = _train(cache_dir, tmp_path / "b", seed=3, epochs=1)
    c = _train(cache_dir, tmp_path / "c", seed=4, epochs=1)
    assert a.history == b.history
    assert a.history["loss"] != c.history["loss"]


def test_bad_input_gives_clear_errors(cache_dir, tmp_path):
    with pytest.raises(ValueError, match=r"unknown model 'vgg16'"):
        _train(cache_dir, tmp_path / "r", model="vgg16")
    with pytest.raises(ValueError, match=r"unknown recipe 'fast'"):
        _train(cache_dir, tmp_path / "r", recipe="fast")
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        _train(cache_dir, tmp_path / "r", epochs=0)
    with pytest.raises(CacheError, match="no such cache folder"):
        _train(tmp_path / "nowhere", tmp_path / "r")
    # The reference's valid padding cannot take 32 x 32 x 16.
    with pytest.raises(ValueError, match=r"input_shape \(32, 32, 16, 1\): axis X has 32 voxels.*at least 46"):
        _train(cache_dir, tmp_path / "r", model="cnn3d", model_kwargs={})
    assert not (tmp_path / "r").exists()  # nothing written for a run that cannot start

    volumes, labels = _volumes(6, SHAPE, seed=0)
    no_val = tmp_path / "no-val"
    write_cache(no_val, volumes, labels, splits=["train"] * 4 + ["test"] * 2, config=PreprocessConfig(shape=SHAPE))
    with pytest.raises(ValueError, match=r"no-val: split 'val' is empty"):
        _train(no_val, tmp_path / "r")
    one_class = tmp_path / "one-class"
    write_cache(one_class, volumes, [1] * 6, splits=["train"] * 4 + ["val"] * 2, config=PreprocessConfig(shape=SHAPE))
    with pytest.raises(ValueError, match=r"one-class: split 'train' holds only label 1"):
        _train(one_class, tmp_path / "r")


def test_read_preprocess_json_is_still_importable_from_training():
    from ctutils import runs

    assert read_preprocess_json is runs.read_preprocess_json
