"""The run folder: the names of its files, its preprocessing record, and whether a model fits a cache.

A run folder ``RUN`` is what ``python -m ctutils train --out RUN`` (:func:`ctutils.training.train`)
writes and what evaluation, prediction and the course read::

    RUN/model.keras          best weights so far (by the recipe's checkpoint monitor)     MODEL_FILE
    RUN/last.keras           weights + optimizer state after the last completed epoch     LAST_FILE
    RUN/state.json           epochs done, best epoch/value, callback state (for resume)   STATE_FILE
    RUN/history.csv, .json   one row / entry per completed epoch                          HISTORY_CSV, HISTORY_JSON
    RUN/preprocess.json      PreprocessConfig.to_dict() + class_names + input_shape       PREPROCESS_FILE
    RUN/train_config.json    arguments, recipe, versions, device, precision, XLA          CONFIG_FILE
    RUN/logs/                TensorBoard logs (only with tensorboard=True)                LOG_DIR
    RUN/seed_scores.json     a seeds study's scores of this run (ctutils.experiments)     SCORES_FILE
    RUN/metrics.json         the course's key metrics, one entry per chapter              METRICS_FILE
    RUN/figures/             the course's key figures                                     FIGURES_DIR

This module imports neither TensorFlow nor Keras: the course's notebooks and commands read run
folders without them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from ctutils.preprocess import PreprocessConfig

__all__ = [
    "CONFIG_FILE",
    "FIGURES_DIR",
    "HISTORY_CSV",
    "HISTORY_JSON",
    "LAST_FILE",
    "LOG_DIR",
    "METRICS_FILE",
    "MODEL_FILE",
    "PREPROCESS_FILE",
    "SCORES_FILE",
    "STATE_FILE",
    "check_model_input",
    "read_preprocess_json",
    "shape_text",
]

MODEL_FILE = "model.keras"
LAST_FILE = "last.keras"
STATE_FILE = "state.json"
HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"
PREPROCESS_FILE = "preprocess.json"
CONFIG_FILE = "train_config.json"
LOG_DIR = "logs"
SCORES_FILE = "seed_scores.json"
METRICS_FILE = "metrics.json"
FIGURES_DIR = "figures"


def read_preprocess_json(path: str | os.PathLike[str]) -> tuple[PreprocessConfig, tuple[str, ...], tuple[int, ...]]:
    """Read ``RUN/preprocess.json`` (given the run folder, the file or ``RUN/model.keras``).

    Parameters
    ----------
    path : path-like
        The run folder, ``preprocess.json`` itself, or a model file beside it.

    Returns
    -------
    config : PreprocessConfig
        The preprocessing the model was trained with.
    class_names : tuple of str
        Name of label k at position k, e.g. ``("normal", "abnormal")``.
    input_shape : tuple of int
        ``(X, Y, Z, 1)`` the model expects.

    Raises
    ------
    ValueError
        Naming the file, if it is missing or not a valid description.
    """
    path = Path(path)
    if path.is_dir():
        path = path / PREPROCESS_FILE
    elif path.name != PREPROCESS_FILE:
        path = path.with_name(PREPROCESS_FILE)
    if not path.is_file():
        raise ValueError(f"{path}: missing; the preprocessing of the model is unknown (train writes it next to model.keras)")
    try:
        data = json.loads(path.read_text())
        config = PreprocessConfig.from_dict(data)
        class_names = tuple(str(c) for c in data["class_names"])
        input_shape = tuple(int(n) for n in data["input_shape"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a valid preprocessing description ({exc})") from exc
    if input_shape[:3] != config.shape:
        raise ValueError(f"{path}: input_shape {input_shape} does not match the preprocessing shape {config.shape}")
    return config, class_names, input_shape


def shape_text(shape: Sequence[int | None]) -> str:
    """A shape as ``"128 x 128 x 64 x 1"``, ``?`` for an unknown size.

    Examples
    --------
    >>> shape_text((None, 8, 4))
    '? x 8 x 4'
    """
    return " x ".join("?" if s is None else str(s) for s in shape)


def check_model_input(
    model_input: Sequence[int | None],
    volume_shape: Sequence[int],
    *,
    model_path: str | os.PathLike[str],
    source: str,
    advice: str,
    error: type[ValueError] = ValueError,
) -> None:
    """Raise unless a model takes the volumes ``source`` gives: input ``(X, Y, Z, 1)`` = ``volume_shape`` + channel.

    Parameters
    ----------
    model_input : sequence of int or None
        The model's input shape without the batch axis (:func:`ctutils.predict.model_input_shape`).
    volume_shape : sequence of 3 int
        ``(X, Y, Z)`` in voxels of the preprocessed volumes (a cache's, or ``preprocess.json``'s).
    model_path : path-like
        The model file, named first in the message.
    source : str
        Where the volumes come from, e.g. ``"the cache data/cache/quick"``.
    advice : str
        What to do instead, ending the message.
    error : ValueError subclass
        The exception to raise (e.g. :class:`ctutils.predict.PredictionError`).

    Raises
    ------
    ValueError
        ``"MODEL: model expects input 8 x 8 x 8 x 1 but SOURCE gives 8 x 8 x 4 x 1; ADVICE"``.

    Examples
    --------
    >>> check_model_input((8, 8, 4, 1), (8, 8, 4), model_path="model.keras", source="the cache", advice="")
    """
    expected = tuple(int(s) for s in volume_shape) + (1,)
    got = tuple(model_input)
    if got != expected:
        raise error(f"{model_path}: model expects input {shape_text(got)} but {source} gives "
                    f"{shape_text(expected)}; {advice}")
