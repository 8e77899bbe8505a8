"""Classify one raw CT scan with a trained model, using exactly the preprocessing it was trained with.

Chapter 06_evaluation (single-scan prediction). A training run folder holds::

    RUN/model.keras        the model (loaded with safe_mode=True, nothing unpickled)
    RUN/preprocess.json    PreprocessConfig.to_dict() + "class_names" + "input_shape"

:func:`predict_scan` reads ``preprocess.json`` beside the model, checks that the model's input
matches the shape that preprocessing produces, preprocesses the raw NIfTI with
:func:`ctutils.preprocess.preprocess_file` and returns a :class:`Prediction`.
:func:`format_prediction` prints it in the Keras example's words::

    This model is 32.99 percent confident that CT scan is normal
    This model is 67.01 percent confident that CT scan is abnormal

Every bad input (missing or non-NIfTI scan, missing / truncated / non-Keras model, missing or
malformed ``preprocess.json``, a model for another input shape) raises ``ValueError`` (or a
subclass) whose one-line message names the file; ``python -m ctutils predict`` prints it as is.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ctutils.runs import PREPROCESS_FILE, check_model_input, read_preprocess_json

__all__ = [
    "PREPROCESS_JSON",
    "Prediction",
    "PredictionError",
    "format_prediction",
    "load_model",
    "model_input_shape",
    "predict_scan",
    "prediction_to_json",
]

#: Name of the preprocessing record written beside ``model.keras`` by :mod:`ctutils.training`
#: (read with :func:`ctutils.runs.read_preprocess_json`); its home is :data:`ctutils.runs.PREPROCESS_FILE`.
PREPROCESS_JSON = PREPROCESS_FILE


class PredictionError(ValueError):
    """The model, its ``preprocess.json`` or the scan cannot be used together; names the file."""


@dataclass(frozen=True)
class Prediction:
    """The result of classifying one scan.

    Attributes
    ----------
    path : Path
        The scan.
    class_names : tuple of str
        ``("normal", "abnormal")``: label k at position k.
    probabilities : tuple of float
        Aligned with ``class_names``: ``(1 - p, p)`` with p = the model's sigmoid output,
        P(abnormal).
    label : str
        ``class_names[1]`` when ``p >= threshold`` else ``class_names[0]``.
    threshold : float
        Decision threshold used for ``label``.
    model_path : Path or None
        The model that made the prediction.
    """

    path: Path
    class_names: tuple[str, ...]
    probabilities: tuple[float, ...]
    label: str
    threshold: float = 0.5
    model_path: Path | None = None

    @property
    def p_abnormal(self) -> float:
        """P(abnormal), the model's sigmoid output."""
        return self.probabilities[1]


def load_model(path: str | os.PathLike[str]) -> Any:
    """Load a ``.keras`` model safely (:func:`ctutils.models.load_model_safely`).

    Raises ``ValueError`` naming the file when it is missing, truncated or not a Keras model.
    """
    from ctutils.models import load_model_safely

    return load_model_safely(path)


def model_input_shape(model: Any) -> tuple[int | None, ...]:
    """The model's input shape without the batch axis, e.g. ``(128, 128, 64, 1)``."""
    shape = model.input_shape
    if isinstance(shape, list):
        if len(shape) != 1:
            raise ValueError(f"expected a model with one input, got {len(shape)} inputs")
        shape = shape[0]
    return tuple(shape[1:])


def predict_scan(
    path: str | os.PathLike[str],
    *,
    model_path: str | os.PathLike[str],
    model: Any = None,
    threshold: float = 0.5,
) -> Prediction:
    """Classify one raw NIfTI scan.

    Parameters
    ----------
    path : path-like
        A ``.nii`` / ``.nii.gz`` chest CT in HU (any orientation; the affine is used).
    model_path : path-like
        ``RUN/model.keras``; ``RUN/preprocess.json`` must sit beside it.
    model : keras.Model, optional
        The already loaded model from ``model_path`` (saves reloading it for many scans).
    threshold : float
        P(abnormal) at or above which ``label`` is the abnormal class.

    Returns
    -------
    Prediction
        ``probabilities = (1 - p, p)`` with p = P(abnormal).

    Raises
    ------
    ValueError
        (``VolumeError``, ``PredictionError`` or the model loader's error) with one line naming
        the file: scan missing or not NIfTI, ``preprocess.json`` missing or malformed, model
        missing / truncated / not a Keras model, model input shape different from the
        preprocessing's output shape.
    """
    from ctutils.preprocess import preprocess_file

    model_path = Path(model_path)
    json_path = model_path.parent / PREPROCESS_JSON
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    config, class_names, _input_shape = read_preprocess_json(model_path)
    if len(class_names) != 2:
        raise PredictionError(f"{json_path}: expected 2 class names, got {list(class_names)}")
    if model is None:
        model = load_model(model_path)
    check_model_input(model_input_shape(model), config.shape, model_path=model_path,
                      source=f"preprocessing in {json_path}", advice="use the preprocess.json saved with this model",
                      error=PredictionError)
    array, _volume = preprocess_file(path, config=config)
    x = np.asarray(array, dtype=np.float32)[np.newaxis, ..., np.newaxis]
    out = np.asarray(model(x, training=False), dtype=np.float64)
    if out.shape != (1, 1):
        raise PredictionError(
            f"{model_path}: expected one sigmoid output per scan (shape (1, 1)), got {out.shape}"
        )
    p = float(out[0, 0])
    if not (math.isfinite(p) and 0.0 <= p <= 1.0):
        raise PredictionError(f"{model_path}: the model returned {p}, not a probability")
    return Prediction(
        path=Path(path),
        class_names=class_names,
        probabilities=(1.0 - p, p),
        label=class_names[1] if p >= threshold else class_names[0],
        threshold=threshold,
        model_path=model_path,
    )


def format_prediction(pred: Prediction) -> str:
    """The two confidence lines of the Keras example, one per class (normal first).

    Examples
    --------
    >>> pred = Prediction(Path("scan.nii.gz"), ("normal", "abnormal"), (0.3299, 0.6701), "abnormal")
    >>> print(format_prediction(pred))
    This model is 32.99 percent confident that CT scan is normal
    This model is 67.01 percent confident that CT scan is abnormal
    """
    return "\n".join(
        "This model is %.2f percent confident that CT scan is %s" % (100 * score, name)
        for score, name in zip(pred.probabilities, pred.class_names)
    )


def prediction_to_json(pred: Prediction) -> dict[str, Any]:
    """A JSON-ready dict: scan, model, class names, probabilities by class, label, threshold.

    Examples
    --------
    >>> pred = Prediction(Path("scan.nii.gz"), ("normal", "abnormal"), (0.25, 0.75), "abnormal")
    >>> prediction_to_json(pred)["probabilities"]
    {'normal': 0.25, 'abnormal': 0.75}
    """
    return {
        "path": str(pred.path),
        "model": None if pred.model_path is None else str(pred.model_path),
        "class_names": list(pred.class_names),
        "probabilities": {name: float(p) for name, p in zip(pred.class_names, pred.probabilities)},
        "label": pred.label,
        "threshold": pred.threshold,
    }
