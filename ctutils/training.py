"""Training a 3-D CNN on a preprocessed cache, resumably (chapter 05_training).

:func:`train` builds a model of :data:`ctutils.models.MODELS` for the cache's input shape,
fits it on split ``"train"`` with validation on ``"val"`` following a :data:`RECIPES` entry,
and writes a run folder (file names: :mod:`ctutils.runs`)::

    RUN/model.keras         best weights so far (by the recipe's checkpoint monitor)
    RUN/last.keras          weights + optimizer state after the last completed epoch
    RUN/state.json          epochs done, best epoch/value, callback state (for resume)
    RUN/history.csv, .json  one row / entry per completed epoch (epoch numbers start at 1)
    RUN/preprocess.json     PreprocessConfig.to_dict() + class_names + input_shape
    RUN/train_config.json   arguments, recipe, versions, device, precision, XLA, determinism
    RUN/logs/               TensorBoard logs (only with tensorboard=True)

Every file is written atomically (:func:`ctutils.atomic.atomic_path`): an interruption (Ctrl-C,
a crash, a full disk) never leaves a half-written file, and ``model.keras`` / ``last.keras``
always hold the last good checkpoint. Calling :func:`train` again with ``resume=True``
continues from the last completed epoch (``initial_epoch``) with the optimizer state, the
early-stopping and learning-rate-plateau counters and the history restored.

Reproducibility: :func:`train` calls ``keras.utils.set_random_seed(seed)`` and, by default on
CPU, ``tf.config.experimental.enable_op_determinism()``, so two runs with the same seed on the
same machine and versions give the same history. Op determinism is process-wide and cannot be
switched off again. On CPU it is on by default because its cost there was within measurement
noise (docs/measurements.md); on a GPU it restricts cuDNN and XLA to deterministic, often slower,
kernels, so it is off there unless ``deterministic=True``. A resumed run restarts the data order from the first epoch's
stream, so it is not bit-identical to an uninterrupted run.

On a GPU, :func:`train` switches on mixed precision (``mixed_float16``; the output layer stays
float32) and XLA (``jit_compile=True``); ``train_config.json`` records which were used.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import importlib.util
import json
import math
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ctutils.atomic import atomic_path, write_json
from ctutils.augment import AugmentConfig
from ctutils.cache import Cache, open_cache
from ctutils.models import MODELS, build_model, load_model_safely
from ctutils.pipeline import class_weights, make_dataset
from ctutils.runs import (
    CONFIG_FILE,
    HISTORY_CSV,
    HISTORY_JSON,
    LAST_FILE,
    LOG_DIR,
    MODEL_FILE,
    PREPROCESS_FILE,
    STATE_FILE,
    read_preprocess_json,  # its home is ctutils.runs (no TensorFlow); kept importable from here
)
from ctutils.tfimport import keras, tf

__all__ = [
    "RECIPES",
    "Recipe",
    "TrainResult",
    "compile_model",
    "read_preprocess_json",
    "save_model_atomic",
    "train",
]


# Arguments that must match to continue an existing run.
_RESUME_KEYS = ("model", "model_kwargs", "recipe", "batch_size", "seed", "augment", "input_shape", "cache_key")


@dataclass(frozen=True)
class Recipe:
    """How to compile and fit a model.

    Attributes
    ----------
    name : str
        Recipe name (key of :data:`RECIPES`).
    epochs, batch_size : int
        Defaults for :func:`train`.
    learning_rate : float
        Initial Adam learning rate.
    lr_decay : bool
        Use ``ExponentialDecay(learning_rate, decay_steps, decay_rate, staircase=True)``.
    decay_steps, decay_rate
        The schedule's parameters (optimizer steps, factor).
    reduce_lr_patience : int or None
        ``ReduceLROnPlateau`` on ``checkpoint_monitor`` (factor ``reduce_lr_factor``,
        ``min_lr``) when not None; exclusive with ``lr_decay``.
    reduce_lr_factor, min_lr : float
    metrics : tuple of str
        ``"acc"`` (binary accuracy) and/or ``"auc"`` (ROC-AUC); logged as ``acc``/``val_acc``...
    checkpoint_monitor, checkpoint_mode : str
        Which logged value picks ``model.keras`` and whether larger (``"max"``) is better.
    early_stopping_monitor, early_stopping_mode : str
    patience : int
        Epochs without improvement of the early-stopping monitor before stopping.
    restore_best_weights : bool
        Restore the best early-stopping epoch's weights at the end of training.
    class_weighted : bool
        Pass balanced class weights of the training split to ``fit``.
    augment : {"reference", "default"}
        ``AugmentConfig.reference()`` (the example's rotations) or ``AugmentConfig()``.
    """

    name: str
    epochs: int
    batch_size: int
    learning_rate: float
    lr_decay: bool = False
    decay_steps: int = 100_000
    decay_rate: float = 0.96
    reduce_lr_patience: int | None = None
    reduce_lr_factor: float = 0.5
    min_lr: float = 1e-6
    metrics: tuple[str, ...] = ("acc",)
    checkpoint_monitor: str = "val_loss"
    checkpoint_mode: str = "min"
    early_stopping_monitor: str = "val_acc"
    early_stopping_mode: str = "max"
    patience: int = 15
    restore_best_weights: bool = False
    class_weighted: bool = False
    augment: str = "reference"

    def augment_config(self) -> AugmentConfig:
        """The :class:`~ctutils.augment.AugmentConfig` this recipe trains with."""
        return AugmentConfig.reference() if self.augment == "reference" else AugmentConfig()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        out = dataclasses.asdict(self)
        out["metrics"] = list(self.metrics)
        return out


#: ``reference``: the Keras example (Adam + ExponentialDecay(1e-4, 100000, 0.96, staircase),
#: binary cross-entropy, accuracy, best checkpoint on val_loss as its ModelCheckpoint default,
#: EarlyStopping(val_acc, patience 15), 100 epochs, batch 2, its rotation augmentation).
#: ``improved``: accuracy + ROC-AUC, Adam 1e-3 with ReduceLROnPlateau(val_loss, 0.5, 5),
#: balanced class weights, best checkpoint and EarlyStopping(patience 12, best weights restored)
#: on val_loss, the default AugmentConfig (rotation, flip, zoom, intensity, noise), batch 4.
#: Why val_loss and not val_auc: on the small validation splits of a course (12–30 scans) the AUC
#: moves in coarse steps and ties often, so "the best val_auc" can pick a lucky early, untrained epoch
#: (one such case is in docs/measurements.md); the loss is smooth and picks a trained model.
RECIPES: dict[str, Recipe] = {
    "reference": Recipe(
        name="reference",
        epochs=100,
        batch_size=2,
        learning_rate=1e-4,
        lr_decay=True,
        metrics=("acc",),
        checkpoint_monitor="val_loss",
        checkpoint_mode="min",
        early_stopping_monitor="val_acc",
        early_stopping_mode="max",
        patience=15,
        restore_best_weights=False,
        class_weighted=False,
        augment="reference",
    ),
    "improved": Recipe(
        name="improved",
        epochs=60,
        batch_size=4,
        learning_rate=1e-3,
        reduce_lr_patience=5,
        metrics=("acc", "auc"),
        checkpoint_monitor="val_loss",
        checkpoint_mode="min",
        early_stopping_monitor="val_loss",
        early_stopping_mode="min",
        patience=12,
        restore_best_weights=True,
        class_weighted=True,
        augment="default",
    ),
}


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` produced.

    Attributes
    ----------
    run_dir : Path
        The run folder.
    model_path : Path
        ``RUN/model.keras``, the best checkpoint.
    history : dict of str to list of float
        Per-epoch values, ``history["epoch"] = [1, 2, ...]``, plus ``loss``, ``acc``,
        ``val_loss``, ..., ``learning_rate`` (the rate used during the epoch).
    best_epoch : int
        Epoch (1-based) of ``model.keras``.
    best_metrics : dict of str to float
        The validation values (``val_*``) of the best epoch.
    monitor : str
        The value that picked the best epoch.
    epochs_done : int
        Completed epochs in the run (over all sessions).
    stopped_early : bool
        True when early stopping ended the run.
    initial_epoch : int
        Epochs already done when this call started (0 for a fresh run).
    """

    run_dir: Path
    model_path: Path
    history: dict[str, list[float]]
    best_epoch: int
    best_metrics: dict[str, float]
    monitor: str
    epochs_done: int
    stopped_early: bool
    initial_epoch: int = 0


# ----------------------------------------------------------------------------- file helpers


def save_model_atomic(model: keras.Model, path: str | os.PathLike[str]) -> Path:
    """``model.save`` to a temporary ``.keras`` name beside ``path``, then ``os.replace``.

    If saving fails midway (disk full, interruption) the previous file at ``path`` stays intact
    and readable, and the partial temporary file is removed.

    Parameters
    ----------
    model : keras.Model
    path : path-like
        Target, ending in ``.keras``.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: Keras models are saved as '.keras' files")
    with atomic_path(path) as tmp:
        model.save(tmp)
    return path


def _write_history(run: Path, history: Mapping[str, list[Any]]) -> None:
    keys = ["epoch"] + sorted(k for k in history if k != "epoch")
    with atomic_path(run / HISTORY_CSV) as tmp:
        with open(tmp, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(keys)
            for row in zip(*(history[k] for k in keys)):
                writer.writerow(["" if v is None else v for v in row])
    write_json(run / HISTORY_JSON, {k: list(history[k]) for k in keys})


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _json_float(value: Any) -> float | None:
    """A finite float, or None for None / inf / nan (JSON has no infinities)."""
    if value is None:
        return None
    value = float(np.asarray(value))
    return value if math.isfinite(value) else None


# ----------------------------------------------------------------------------- callbacks


class _ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """``EarlyStopping`` whose counters (and best weights) can be carried over a resume."""

    def __init__(self, *args: Any, initial_state: Mapping[str, Any] | None = None, best_path: Path | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial_state = dict(initial_state or {})
        self.best_path = best_path

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        super().on_train_begin(logs)
        if not self.initial_state:
            return
        self.wait = int(self.initial_state.get("wait", 0))
        self.best_epoch = int(self.initial_state.get("best_epoch", 0))
        best = self.initial_state.get("best")
        self.best = None if best is None else float(best)
        if self.restore_best_weights and self.best is not None and self.best_path and self.best_path.is_file():
            self.best_weights = load_model_safely(self.best_path).get_weights()

    def get_state(self) -> dict[str, Any]:
        return {"wait": int(self.wait), "best": _json_float(self.best), "best_epoch": int(self.best_epoch)}


class _ResumableReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
    """``ReduceLROnPlateau`` whose counters can be carried over a resume."""

    def __init__(self, *args: Any, initial_state: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial_state = dict(initial_state or {})

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        super().on_train_begin(logs)
        if self.initial_state:
            self.wait = int(self.initial_state.get("wait", 0))
            self.cooldown_counter = int(self.initial_state.get("cooldown_counter", 0))
            best = self.initial_state.get("best")
            if best is not None:
                self.best = float(best)

    def get_state(self) -> dict[str, Any]:
        return {"wait": int(self.wait), "cooldown_counter": int(self.cooldown_counter), "best": _json_float(self.best)}


class _RunRecorder(keras.callbacks.Callback):
    """After every epoch: best checkpoint, last checkpoint, history files, then state.json.

    The order matters for a resume: ``state.json`` is replaced last and records the hash of
    ``last.keras``, so a resume can tell whether the two belong together.
    """

    def __init__(
        self,
        run: Path,
        *,
        monitor: str,
        mode: str,
        state: Mapping[str, Any],
        stateful: Sequence[tuple[str, Any]],
        early_stopping: keras.callbacks.EarlyStopping,
    ) -> None:
        super().__init__()
        self.early_stopping = early_stopping
        self.run = run
        self.monitor = monitor
        self.mode = mode
        self.history: dict[str, list[Any]] = {k: list(v) for k, v in state.get("history", {}).items()}
        self.best_value: float | None = state.get("best_value")
        self.best_epoch: int = int(state.get("best_epoch", 0))
        self.stateful = stateful
        self._lr: float | None = None
        # wall time of the epochs so far, over all sessions of a resumed run (checkpoint writes included)
        self.train_seconds = float(state.get("train_seconds") or 0.0)
        self._epoch_start = 0.0

    def _improved(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best_value is None:
            return True
        return value > self.best_value if self.mode == "max" else value < self.best_value

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._lr = _json_float(self.model.optimizer.learning_rate)
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        logs = dict(logs or {})
        logs["learning_rate"] = self._lr
        if self.monitor not in logs:
            raise ValueError(f"{self.run}: the checkpoint monitor {self.monitor!r} is not logged (logged: {sorted(logs)})")
        number = epoch + 1
        n_before = len(self.history.get("epoch", []))
        row = {"epoch": number, **{k: _json_float(v) for k, v in logs.items()}}
        for key in set(self.history) | set(row):
            self.history.setdefault(key, [None] * n_before).append(row.get(key))

        value = float(logs[self.monitor])
        if self._improved(value):
            save_model_atomic(self.model, self.run / MODEL_FILE)
            self.best_value, self.best_epoch = value, number
        save_model_atomic(self.model, self.run / LAST_FILE)
        _write_history(self.run, self.history)
        self.train_seconds += time.perf_counter() - self._epoch_start
        stopped = self.early_stopping.stopped_epoch > 0
        write_json(self.run / STATE_FILE, self.state(epochs_done=number, finished=stopped, stop_reason="early_stopping" if stopped else None))

    def state(self, *, epochs_done: int, finished: bool, stop_reason: str | None) -> dict[str, Any]:
        last = self.run / LAST_FILE
        return {
            "epochs_done": epochs_done,
            "finished": finished,
            "stop_reason": stop_reason,
            "monitor": self.monitor,
            "mode": self.mode,
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "last_checkpoint_sha256": _sha256(last) if last.is_file() else None,
            "callbacks": {name: cb.get_state() for name, cb in self.stateful},
            "history": self.history,
            "train_seconds": round(self.train_seconds, 1),
        }


# ----------------------------------------------------------------------------- train


def _check_positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _open_training_cache(cache_dir: str | os.PathLike[str]) -> Cache:
    cache = open_cache(cache_dir)  # CacheError (a ValueError) naming the file
    for split in ("train", "val"):
        if len(cache.indices(split)) == 0:
            raise ValueError(f"{cache.root}: split {split!r} is empty; training needs scans in 'train' and 'val'")
    if len(cache.class_names) != 2:
        raise ValueError(f"{cache.root}: binary training needs 2 class names, the cache has {list(cache.class_names)}")
    labels = cache.labels("train")
    if len(np.unique(labels)) < 2:
        raise ValueError(f"{cache.root}: split 'train' holds only label {int(labels[0])}; both classes are needed")
    return cache


def compile_model(model: keras.Model, recipe: Recipe, *, jit_compile: bool) -> None:
    """Compile ``model`` as ``recipe`` says: Adam (with the recipe's decay), binary cross-entropy, its metrics.

    Raises
    ------
    ValueError
        The recipe names a metric other than ``"acc"`` and ``"auc"``.
    """
    if recipe.lr_decay:
        learning_rate: Any = keras.optimizers.schedules.ExponentialDecay(
            recipe.learning_rate, decay_steps=recipe.decay_steps, decay_rate=recipe.decay_rate, staircase=True
        )
    else:
        learning_rate = recipe.learning_rate
    metrics: list[keras.metrics.Metric] = []
    for name in recipe.metrics:
        if name == "acc":
            metrics.append(keras.metrics.BinaryAccuracy(name="acc"))
        elif name == "auc":
            metrics.append(keras.metrics.AUC(name="auc"))
        else:
            raise ValueError(f"recipe {recipe.name!r}: unknown metric {name!r} (use 'acc' or 'auc')")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy",
        metrics=metrics,
        jit_compile=jit_compile,
    )


#: The name benchmarks/run.py imports (kept until it uses :func:`compile_model`).
_compile = compile_model


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ctutils_version = version("ctutils")
    except PackageNotFoundError:
        ctutils_version = "unknown"
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "ctutils": ctutils_version,
        "platform": platform.platform(),
    }


def _load_state(run: Path) -> dict[str, Any] | None:
    path = run / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
        int(state["epochs_done"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: unreadable resume state ({exc}); pass resume=False to start the run afresh") from exc
    return state


def _check_resume(run: Path, state: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
    path = run / CONFIG_FILE
    try:
        previous = json.loads(path.read_text())["settings"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: missing or unreadable, cannot check the run before resuming ({exc}); pass resume=False to start afresh") from exc
    for key in _RESUME_KEYS:
        if previous.get(key) != settings.get(key):
            raise ValueError(
                f"{run}: this run was trained with {key}={previous.get(key)!r}, not {settings.get(key)!r}; "
                f"pass resume=False to start afresh or use another output folder"
            )
    last = run / LAST_FILE
    if not last.is_file() or _sha256(last) != state.get("last_checkpoint_sha256"):
        raise ValueError(
            f"{last}: missing or does not match {STATE_FILE} (interrupted between the two writes?); "
            f"pass resume=False to start afresh"
        )


def _result(run: Path, recorder_state: Mapping[str, Any], *, initial_epoch: int) -> TrainResult:
    raw = recorder_state.get("history", {})
    history = {k: list(raw[k]) for k in sorted(raw, key=lambda k: (k != "epoch", k))}
    best_epoch = int(recorder_state.get("best_epoch", 0))
    best_metrics: dict[str, float] = {}
    if best_epoch and "epoch" in history:
        i = history["epoch"].index(best_epoch)
        best_metrics = {k: v[i] for k, v in history.items() if k.startswith("val_") and v[i] is not None}
    return TrainResult(
        run_dir=run,
        model_path=run / MODEL_FILE,
        history=history,
        best_epoch=best_epoch,
        best_metrics=best_metrics,
        monitor=str(recorder_state.get("monitor")),
        epochs_done=int(recorder_state.get("epochs_done", 0)),
        stopped_early=recorder_state.get("stop_reason") == "early_stopping",
        initial_epoch=initial_epoch,
    )


def train(
    cache_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    model: str = "cnn3d",
    recipe: str = "reference",
    epochs: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    augment: bool | AugmentConfig = True,
    tensorboard: bool = False,
    resume: bool = True,
    verbose: str | int = "auto",
    model_kwargs: Mapping[str, Any] | None = None,
    deterministic: bool | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainResult:
    """Train a model on a cache's ``train`` split, validating on ``val``; write ``out_dir``.

    Parameters
    ----------
    cache_dir : path-like
        A cache from ``python -m ctutils data preprocess`` (:func:`ctutils.cache.open_cache`).
    out_dir : path-like
        The run folder (created); see the module docstring for its files.
    model : str
        A name of :data:`ctutils.models.MODELS`; it is built for ``cache.config.shape + (1,)``.
    recipe : {"reference", "improved"}
        See :data:`RECIPES`.
    epochs, batch_size : int or None
        Override the recipe's. ``epochs`` is the total over all sessions of a resumed run.
    seed : int
        Seeds weights, dropout, shuffling and augmentation.
    augment : bool or AugmentConfig
        True: the recipe's augmentation; False: none; or an explicit config.
    tensorboard : bool
        Write TensorBoard logs to ``RUN/logs``.
    resume : bool
        Continue a run found in ``out_dir`` from its last completed epoch (its settings must
        match); False starts afresh, replacing the run's checkpoints and history.
    verbose : "auto", 0, 1 or 2
        Passed to ``model.fit``.
    model_kwargs : mapping, optional
        Extra arguments of the model builder (e.g. ``{"filters": (8, 8, 16, 16)}``).
    deterministic : bool or None
        Call ``tf.config.experimental.enable_op_determinism()`` (process-wide). None: only when
        no GPU is present (see the module docstring for the cost).
    callbacks : sequence of keras.callbacks.Callback
        Extra callbacks, run after the run's own ones.

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError
        For an unknown model or recipe, a bad epochs / batch size, a missing or inconsistent
        cache (:class:`ctutils.cache.CacheError`), an empty train or val split (naming the
        cache and split), a shape the model cannot take, or a run in ``out_dir`` whose
        settings differ from these when resuming.

    Examples
    --------
    Not run as a doctest (it trains a model; ``tests/test_training.py`` does, on a tiny cache)::

        result = train("data/cache-64", "runs/quick", model="cnn3d-same", recipe="improved", epochs=5)
        result.best_metrics["val_auc"]
    """
    plan = _resolve_settings(
        model=model, recipe=recipe, epochs=epochs, batch_size=batch_size, seed=seed, augment=augment,
        model_kwargs=model_kwargs, tensorboard=tensorboard,
    )
    cache = _open_training_cache(cache_dir)
    run = Path(out_dir)
    gpus = tf.config.list_physical_devices("GPU")
    deterministic = (not gpus) if deterministic is None else bool(deterministic)
    settings = _resume_settings(plan, cache)

    state = _load_state(run) if resume else None
    if state is not None:
        _check_resume(run, state, settings)
        if state.get("finished") or int(state["epochs_done"]) >= plan.epochs:
            return _result(run, state, initial_epoch=int(state["epochs_done"]))
    initial_epoch = int(state["epochs_done"]) if state else 0

    keras.utils.set_random_seed(plan.seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    # Build (or load) before touching the run folder: a model that cannot take this shape
    # fails here and leaves nothing behind.
    net = _build_or_load(plan, cache, run, resume_state=state, on_gpu=bool(gpus))
    _prepare_run_folder(run, fresh=state is None)
    _write_run_config(
        run, plan, cache, net, settings=settings, cache_dir=cache_dir, initial_epoch=initial_epoch,
        tensorboard=tensorboard, resume=resume, gpus=gpus, deterministic=deterministic,
    )
    own, early, recorder = _callbacks(run, plan.recipe, state or {}, tensorboard=tensorboard)
    _fit(net, plan, cache, callbacks=[*own, *callbacks], initial_epoch=initial_epoch, verbose=verbose)
    return _finish(run, plan, recorder, early, initial_epoch=initial_epoch)


@dataclass(frozen=True)
class _Plan:
    """The checked arguments of one :func:`train` call."""

    model: str
    recipe: Recipe
    epochs: int
    batch_size: int
    seed: int
    augment: AugmentConfig | None
    model_kwargs: dict[str, Any]


def _resolve_settings(
    *,
    model: str,
    recipe: str,
    epochs: int | None,
    batch_size: int | None,
    seed: Any,
    augment: bool | AugmentConfig,
    model_kwargs: Mapping[str, Any] | None,
    tensorboard: bool,
) -> _Plan:
    """Check :func:`train`'s arguments and fill in the recipe's defaults."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {sorted(RECIPES)}")
    rec = RECIPES[recipe]
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {sorted(MODELS)}")
    epochs = _check_positive("epochs", rec.epochs if epochs is None else epochs)
    batch_size = _check_positive("batch_size", rec.batch_size if batch_size is None else batch_size)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if isinstance(augment, AugmentConfig):
        augment_config: AugmentConfig | None = augment
    elif augment is True:
        augment_config = rec.augment_config()
    elif augment is False:
        augment_config = None
    else:
        raise ValueError(f"augment must be True, False or an AugmentConfig, got {augment!r}")
    if tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ValueError("tensorboard=True needs the 'tensorboard' package (pip install tensorboard)")
    return _Plan(
        model=model, recipe=rec, epochs=epochs, batch_size=batch_size, seed=int(seed),
        augment=augment_config, model_kwargs=dict(model_kwargs or {}),
    )


def _resume_settings(plan: _Plan, cache: Cache) -> dict[str, Any]:
    """The settings recorded in ``train_config.json`` that a resume must match (:data:`_RESUME_KEYS`)."""
    return {
        "model": plan.model,
        "model_kwargs": json.loads(json.dumps(plan.model_kwargs)),
        "recipe": plan.recipe.name,
        "batch_size": plan.batch_size,
        "seed": plan.seed,
        "augment": None if plan.augment is None else plan.augment.to_dict(),
        "input_shape": [*cache.config.shape, 1],
        # The cache's own key covers the preprocessing, the source files and the split: a cache
        # rebuilt from other data cannot silently resume (or reuse) a run trained on the old one.
        "cache_key": cache.info.get("key") or cache.config.key(),
    }


def _build_or_load(plan: _Plan, cache: Cache, run: Path, *, resume_state: Mapping[str, Any] | None, on_gpu: bool) -> keras.Model:
    """A compiled model: ``last.keras`` when resuming, else a new one; mixed precision on a GPU.

    The global precision policy is restored afterwards, whatever happens.
    """
    previous_policy = keras.mixed_precision.global_policy()
    try:
        if on_gpu:
            keras.mixed_precision.set_global_policy("mixed_float16")
        if resume_state is not None:
            net = load_model_safely(run / LAST_FILE, compile=True)
            net.jit_compile = on_gpu
        else:
            net = build_model(plan.model, (*cache.config.shape, 1), **plan.model_kwargs)
            compile_model(net, plan.recipe, jit_compile=on_gpu)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    return net


def _prepare_run_folder(run: Path, *, fresh: bool) -> None:
    """Create the run folder; a fresh run removes the previous run's checkpoints and history."""
    run.mkdir(parents=True, exist_ok=True)
    if fresh:
        for name in (STATE_FILE, LAST_FILE, MODEL_FILE, HISTORY_CSV, HISTORY_JSON):
            (run / name).unlink(missing_ok=True)


def _write_run_config(
    run: Path,
    plan: _Plan,
    cache: Cache,
    net: keras.Model,
    *,
    settings: Mapping[str, Any],
    cache_dir: str | os.PathLike[str],
    initial_epoch: int,
    tensorboard: bool,
    resume: bool,
    gpus: Sequence[Any],
    deterministic: bool,
) -> None:
    """Write ``preprocess.json`` and ``train_config.json``."""
    on_gpu = bool(gpus)
    write_json(
        run / PREPROCESS_FILE,
        {**cache.config.to_dict(), "class_names": list(cache.class_names), "input_shape": [*cache.config.shape, 1]},
    )
    write_json(
        run / CONFIG_FILE,
        {
            "settings": dict(settings),
            "cache_dir": str(Path(cache_dir).resolve()),
            "out_dir": str(run.resolve()),
            "epochs": plan.epochs,
            "initial_epoch": initial_epoch,
            "tensorboard": bool(tensorboard),
            "resume": bool(resume),
            "recipe": plan.recipe.to_dict(),
            "n_params": int(net.count_params()),
            "counts": {s: int(len(cache.indices(s))) for s in ("train", "val", "test")},
            "class_names": list(cache.class_names),
            "device": {
                "gpus": [d.name for d in gpus],
                "mixed_precision": on_gpu,
                "xla_jit_compile": on_gpu,
                "op_determinism": deterministic,
            },
            "versions": _versions(),
            "command": sys.argv,
        },
    )


def _callbacks(
    run: Path, rec: Recipe, state: Mapping[str, Any], *, tensorboard: bool
) -> tuple[list[keras.callbacks.Callback], _ResumableEarlyStopping, _RunRecorder]:
    """The run's own callbacks, in order, with their counters restored from ``state``.

    Returns the list plus the early-stopping callback and the recorder, which :func:`_finish` reads.
    """
    cb_state = state.get("callbacks", {})
    early = _ResumableEarlyStopping(
        monitor=rec.early_stopping_monitor,
        mode=rec.early_stopping_mode,
        patience=rec.patience,
        restore_best_weights=rec.restore_best_weights,
        initial_state=cb_state.get("early_stopping"),
        best_path=run / MODEL_FILE,
    )
    stateful: list[tuple[str, Any]] = [("early_stopping", early)]
    own: list[keras.callbacks.Callback] = []
    if rec.reduce_lr_patience is not None:
        plateau = _ResumableReduceLROnPlateau(
            monitor=rec.checkpoint_monitor,
            mode=rec.checkpoint_mode,
            factor=rec.reduce_lr_factor,
            patience=rec.reduce_lr_patience,
            min_lr=rec.min_lr,
            initial_state=cb_state.get("reduce_lr"),
        )
        stateful.append(("reduce_lr", plateau))
        own.append(plateau)
    own.append(early)
    recorder = _RunRecorder(
        run, monitor=rec.checkpoint_monitor, mode=rec.checkpoint_mode, state=state, stateful=stateful, early_stopping=early
    )
    own.append(recorder)
    if tensorboard:
        own.append(keras.callbacks.TensorBoard(log_dir=str(run / LOG_DIR)))
    return own, early, recorder


def _datasets(cache: Cache, plan: _Plan) -> tuple[tf.data.Dataset, tf.data.Dataset, dict[int, float] | None]:
    """The shuffled, augmented training dataset, the validation dataset and the class weights (or None)."""
    train_ds = make_dataset(cache, "train", batch_size=plan.batch_size, shuffle=True, augment=plan.augment, seed=plan.seed)
    val_ds = make_dataset(cache, "val", batch_size=plan.batch_size, shuffle=False, augment=None, seed=plan.seed)
    weights = class_weights(cache.labels("train")) if plan.recipe.class_weighted else None
    return train_ds, val_ds, weights


def _fit(
    net: keras.Model,
    plan: _Plan,
    cache: Cache,
    *,
    callbacks: Sequence[keras.callbacks.Callback],
    initial_epoch: int,
    verbose: str | int,
) -> None:
    """``net.fit`` on the training split, validating on ``val``, from ``initial_epoch`` to ``plan.epochs``."""
    train_ds, val_ds, weights = _datasets(cache, plan)
    net.fit(
        train_ds,
        validation_data=val_ds,
        epochs=plan.epochs,
        initial_epoch=initial_epoch,
        class_weight=weights,
        callbacks=list(callbacks),
        shuffle=False,  # the dataset shuffles itself (seeded)
        verbose=verbose,
    )


def _finish(run: Path, plan: _Plan, recorder: _RunRecorder, early: keras.callbacks.EarlyStopping, *, initial_epoch: int) -> TrainResult:
    """Check that a best model exists, write the final ``state.json`` and return the result."""
    done = len(recorder.history.get("epoch", []))
    stopped = early.stopped_epoch > 0
    if not (run / MODEL_FILE).is_file():
        raise RuntimeError(f"{run}: no epoch gave a finite {plan.recipe.checkpoint_monitor}; training diverged, no model.keras written")
    reason = "early_stopping" if stopped else ("epochs" if done >= plan.epochs else None)
    final = recorder.state(epochs_done=done, finished=stopped, stop_reason=reason)
    write_json(run / STATE_FILE, final)
    return _result(run, final, initial_epoch=initial_epoch)
