"""One training recipe over several seeds, scored on validation and test (chapter 06, README, docs/experiments.md).

A single training run is one draw: the initial weights, the order of the batches and the
augmentation all come from its seed. :func:`seed_study` trains the same model with the same
recipe and epochs for each seed (or reuses runs that are already complete), then scores each
best checkpoint on the validation and test splits with bootstrap 95 % intervals::

    runs = seed_study("data/cache/synthetic-quick-64x64x32",
                      {0: "runs/quick-synthetic", 1: "runs/quick-synthetic/seeds/seed-1"},
                      train_kwargs={"model": "cnn3d-small", "recipe": "improved", "epochs": 30})
    print(seeds_table(runs))

In a terminal: ``python -m ctutils course seeds --profile quick --seeds 0 1 2`` (the course's
profile, its main run for the chapter's seed, the other seeds in ``RUN/seeds/seed-N``).

Each run folder gets ``seed_scores.json`` with its scores; the training time comes from the run's
``state.json`` (``train_seconds``, summed over the sessions of a resumed run).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ctutils.atomic import write_json
from ctutils.runs import SCORES_FILE  # written into each run folder by seed_study()

__all__ = [
    "RESULTS_FILE",
    "SCORES_FILE",
    "SeedRun",
    "describe_seed_comparison",
    "load_results",
    "seed_study",
    "seeds_summary",
    "seeds_table",
]

#: The measured comparisons of docs/experiments.md (made by ``docs/experiments.py``), relative to the root.
RESULTS_FILE = "docs/experiments.json"


@dataclass(frozen=True)
class SeedRun:
    """One seed's run and its scores.

    Attributes
    ----------
    seed : int
        The training seed.
    run_dir : str
        The run folder.
    epochs_done, best_epoch : int
        Epochs trained, and the epoch kept in ``model.keras``.
    best_val_loss : float
        Validation loss of the kept epoch.
    val_auc, test_auc : tuple of 3 float
        ROC-AUC of the kept model on the validation and test splits: (value, low, high), a
        stratified bootstrap 95 % interval.
    val_n, test_n : int
        Scans in each split.
    test_accuracy : float
        Test accuracy at the threshold 0.5.
    train_seconds : float or None
        Wall time of the training (None for a run trained elsewhere).
    """

    seed: int
    run_dir: str
    epochs_done: int
    best_epoch: int
    best_val_loss: float
    val_auc: tuple[float, float, float]
    test_auc: tuple[float, float, float]
    val_n: int
    test_n: int
    test_accuracy: float
    train_seconds: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (lists for tuples)."""
        return json.loads(json.dumps(asdict(self)))


def _read_seconds(run: Path) -> float | None:
    """The run's training time: ``state.json``'s ``train_seconds`` (all sessions), else an older record."""
    for name in ("state.json", SCORES_FILE):  # runs trained before state.json kept the time: SCORES_FILE
        path = run / name
        try:
            value = json.loads(path.read_text()).get("train_seconds") if path.is_file() else None
        except (OSError, ValueError):
            value = None
        if value:
            return float(value)
    return None


def _write_scores(run: Path, data: Mapping[str, Any]) -> None:
    write_json(run / SCORES_FILE, data)


def seed_study(
    cache_dir: str | os.PathLike[str],
    run_dirs: Mapping[int, str | os.PathLike[str]],
    *,
    train_kwargs: Mapping[str, Any],
    n_boot: int = 1000,
    boot_seed: int = 0,
    verbose: str | int = 0,
    on_run: Callable[[SeedRun], None] | None = None,
) -> list[SeedRun]:
    """Train (or reuse) one run per seed with the same settings and score each on val and test.

    Parameters
    ----------
    cache_dir : path-like
        The preprocessed cache (train, val and test splits).
    run_dirs : mapping of int to path-like
        ``{seed: run folder}``. A complete run with the same settings is reused as it is
        (``ctutils.training.train`` returns it at once); an interrupted one is resumed.
    train_kwargs : mapping
        Keyword arguments of ``ctutils.training.train`` except ``seed`` (model, recipe, epochs,
        batch_size, model_kwargs, augment, ...): the same for every seed.
    n_boot, boot_seed : int
        Bootstrap resamples and their seed for the intervals.
    verbose : "auto", 0, 1 or 2
        Passed to ``model.fit``.
    on_run : callable, optional
        Called with each :class:`SeedRun` as soon as it is scored (to print progress).

    Returns
    -------
    list of SeedRun
        In the order of ``run_dirs``.

    Raises
    ------
    ValueError
        ``train_kwargs`` with a ``seed``, no seed, or what ``training.train`` raises.
    """
    from ctutils import training
    from ctutils.cache import open_cache
    from ctutils.evaluation import metrics_with_ci, predict_cache
    from ctutils.predict import load_model

    if "seed" in train_kwargs:
        raise ValueError("train_kwargs must not contain 'seed': the seeds are the keys of run_dirs")
    if not run_dirs:
        raise ValueError("run_dirs is empty: give at least one {seed: run folder}")
    cache = open_cache(cache_dir)
    out: list[SeedRun] = []
    for seed, folder in run_dirs.items():
        run = Path(folder)
        result = training.train(cache_dir, run, **dict(train_kwargs), seed=int(seed), verbose=verbose)
        seconds = _read_seconds(run)
        model = load_model(result.model_path)
        scores: dict[str, Any] = {}
        for split in ("val", "test"):
            y, p = predict_cache(model, cache, split)
            ci = metrics_with_ci(y, p, n_boot=n_boot, seed=boot_seed, metrics=("roc_auc", "accuracy"))
            scores[split] = (ci["roc_auc"], int(len(y)), ci["accuracy"][0])
        best_loss = result.best_metrics.get("val_loss", float("nan"))
        item = SeedRun(
            seed=int(seed),
            run_dir=str(run),
            epochs_done=result.epochs_done,
            best_epoch=result.best_epoch,
            best_val_loss=float(best_loss),
            val_auc=tuple(float(v) for v in scores["val"][0]),  # type: ignore[arg-type]
            test_auc=tuple(float(v) for v in scores["test"][0]),  # type: ignore[arg-type]
            val_n=scores["val"][1],
            test_n=scores["test"][1],
            test_accuracy=float(scores["test"][2]),
            train_seconds=None if seconds is None else round(float(seconds), 1),
        )
        _write_scores(run, item.to_dict())
        out.append(item)
        if on_run is not None:
            on_run(item)
    return out


def seeds_summary(runs: Sequence[SeedRun]) -> dict[str, float]:
    """Means and extremes over seeds: what the course's targets are stated in.

    Examples
    --------
    >>> runs = [SeedRun(s, "r", 30, 29, loss, (auc, 0.8, 1.0), (0.9, 0.8, 1.0), 30, 30, 0.9, 60.0)
    ...         for s, loss, auc in ((0, 0.2, 0.95), (1, 0.4, 0.85))]
    >>> summary = seeds_summary(runs)
    >>> round(summary["val_auc_mean"], 3), summary["val_auc_min"], summary["best_val_loss_max"]
    (0.9, 0.85, 0.4)
    """
    if not runs:
        raise ValueError("no runs to summarise")
    val = np.array([r.val_auc[0] for r in runs])
    test = np.array([r.test_auc[0] for r in runs])
    loss = np.array([r.best_val_loss for r in runs])
    half = np.array([(r.test_auc[2] - r.test_auc[1]) / 2 for r in runs])
    seconds = [r.train_seconds for r in runs if r.train_seconds is not None]
    return {
        "n_seeds": float(len(runs)),
        "val_auc_mean": float(val.mean()),
        "val_auc_min": float(val.min()),
        "best_val_loss_max": float(loss.max()),
        "test_auc_mean": float(test.mean()),
        "test_auc_sd": float(test.std(ddof=1)) if len(runs) > 1 else math.nan,
        "test_auc_half_width_max": float(half.max()),
        "train_seconds_mean": float(np.mean(seconds)) if seconds else math.nan,
    }


def seeds_table(runs: Sequence[SeedRun]) -> str:
    """A Markdown table: one row per seed, then the mean.

    Examples
    --------
    >>> run = SeedRun(0, "r", 30, 29, 0.065, (1.0, 1.0, 1.0), (0.889, 0.704, 1.0), 18, 18, 0.667, 61.2)
    >>> print(seeds_table([run]).splitlines()[2])
    | 0 | 30 | 29 | 0.065 | 1.000 [1.00, 1.00] | 0.889 [0.70, 1.00] | 0.667 | 61 |
    """
    def auc(v: tuple[float, float, float]) -> str:
        return f"{v[0]:.3f} [{v[1]:.2f}, {v[2]:.2f}]"

    def secs(v: float | None) -> str:
        return "–" if v is None or math.isnan(v) else f"{v:.0f}"

    n_val = runs[0].val_n if runs else 0
    n_test = runs[0].test_n if runs else 0
    lines = [
        f"| seed | epochs | best epoch | best val_loss | val ROC-AUC ({n_val} scans) | "
        f"test ROC-AUC ({n_test} scans) | test accuracy (0.5) | training (s) |",
        "|---:|---:|---:|---:|---|---|---:|---:|",
    ]
    for r in runs:
        lines.append(f"| {r.seed} | {r.epochs_done} | {r.best_epoch} | {r.best_val_loss:.3f} | {auc(r.val_auc)} | "
                     f"{auc(r.test_auc)} | {r.test_accuracy:.3f} | {secs(r.train_seconds)} |")
    if len(runs) > 1:
        s = seeds_summary(runs)
        lines.append(f"| mean | | | {np.mean([r.best_val_loss for r in runs]):.3f} | {s['val_auc_mean']:.3f} | "
                     f"{s['test_auc_mean']:.3f} ± {s['test_auc_sd']:.3f} (sd) | "
                     f"{np.mean([r.test_accuracy for r in runs]):.3f} | {secs(s['train_seconds_mean'])} |")
    return "\n".join(lines)


def load_results(root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The course's measured experiments (``docs/experiments.json``), or ``{}`` when the file is missing.

    The chapters quote these numbers instead of typing them; each entry names its command, wall
    time and machine. ``root`` defaults to the repository root (:func:`ctutils.course.find_root`).

    Raises
    ------
    ValueError
        The file exists but is not valid JSON (the message names it).
    """
    if root is None:
        from ctutils.course import find_root

        root = find_root()
    path = Path(root) / RESULTS_FILE
    if not path.is_file():
        return {}
    try:
        return dict(json.loads(path.read_text()))
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


def describe_seed_comparison(paired: Sequence[Mapping[str, float]], *, name_a: str, name_b: str,
                             n_scans: int | None = None) -> str:
    """One sentence about a per-seed paired comparison (``compare_auc`` results with a ``seed``).

    The direction words come from the intervals: how many seeds' intervals of
    ``AUC(a) - AUC(b)`` lie above 0, below 0, or contain it.

    Examples
    --------
    >>> rows = [{"seed": 0, "diff": 0.10, "low": 0.02, "high": 0.20},
    ...         {"seed": 1, "diff": 0.03, "low": -0.04, "high": 0.10}]
    >>> print(describe_seed_comparison(rows, name_a="improved", name_b="reference", n_scans=30))
    improved minus reference, test ROC-AUC (paired bootstrap over the 30 test scans, per training seed): seed 0 +0.100 [+0.020, +0.200], seed 1 +0.030 [-0.040, +0.100]; mean +0.065. The interval lies above 0 in 1 of 2 seeds, contains 0 in 1 of 2 seeds: no seed-robust difference.
    """
    if not paired:
        raise ValueError("no paired comparison to describe")
    parts = [f"seed {int(p['seed'])} {p['diff']:+.3f} [{p['low']:+.3f}, {p['high']:+.3f}]" for p in paired]
    above = sum(p["low"] > 0 for p in paired)
    below = sum(p["high"] < 0 for p in paired)
    middle = len(paired) - above - below
    n = len(paired)
    counts = ", ".join(text for count, text in ((above, f"lies above 0 in {above} of {n} seeds"),
                                               (below, f"lies below 0 in {below} of {n} seeds"),
                                               (middle, f"contains 0 in {middle} of {n} seeds")) if count)
    if above == n:
        verdict = f"{name_a} ranks the test scans better than {name_b} for every seed."
    elif below == n:
        verdict = f"{name_b} ranks the test scans better than {name_a} for every seed."
    elif middle == n:
        verdict = "these test scans cannot tell the two apart for any seed."
    else:
        verdict = "no seed-robust difference."
    where = f"the {n_scans} test scans" if n_scans else "the test scans"
    mean = float(np.mean([p["diff"] for p in paired]))
    return (f"{name_a} minus {name_b}, test ROC-AUC (paired bootstrap over {where}, per training seed): "
            f"{', '.join(parts)}; mean {mean:+.3f}. The interval {counts}: {verdict}")
