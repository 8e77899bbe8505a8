"""Every "better" of the course, measured: the numbers of docs/experiments.md.

Usage (from the repository root, after ``make setup``)::

    .venv/bin/python docs/experiments.py                    # every experiment (about an hour on 2 CPU cores)
    .venv/bin/python docs/experiments.py --only recipes     # some of them: names below
    .venv/bin/python docs/experiments.py --list             # names and what each measures

Each experiment trains on the quick profile's synthetic data (``data/synthetic-quick``: 2 × 100
studies at 256 px, cached at 64 × 64 × 32, split 140 / 30 / 30) unless it says otherwise, with the
same epochs as the profile (20), for training seeds 0, 1 and 2. Its runs go to
``runs/experiments/<name>/`` (git-ignored; a complete run is reused, so a rerun only scores) and its
results, with the wall time of the experiment, into ``docs/experiments.json`` (committed), which
chapters 05 and 06 read. Synthetic data only: none of these numbers is a clinical result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ctutils import course  # noqa: E402
from ctutils.atomic import atomic_path  # noqa: E402
from ctutils.machine import available_cores  # noqa: E402

RESULTS = ROOT / "docs" / "experiments.json"
RUNS = ROOT / "runs" / "experiments"
IMG = ROOT / "docs" / "img"
SEEDS = (0, 1, 2)
N_BOOT = 1000
MARKER_MARGIN = 4  # voxels around the planted marker that count as "on the marker" for Grad-CAM


def _cfg(**kw: Any) -> course.CourseConfig:
    return course.course_config("quick", "synthetic", root=ROOT, **kw)


def _seed_runs(name: str, train_kwargs: dict[str, Any], *, cache_dir: Path | None = None,
               seeds: tuple[int, ...] = SEEDS) -> list[dict[str, Any]]:
    """Train/reuse one run per seed under runs/experiments/<name>/seed-N; val and test scores."""
    from ctutils.experiments import seed_study

    cfg = _cfg()
    cache = cfg.cache_dir if cache_dir is None else cache_dir
    course.ensure_cache(cfg, progress=False)
    runs = seed_study(cache, {s: RUNS / name / f"seed-{s}" for s in seeds}, train_kwargs=train_kwargs,
                      n_boot=N_BOOT, on_run=lambda r: print(f"  {name} seed {r.seed}: val AUC {r.val_auc[0]:.3f}, "
                                                               f"test AUC {r.test_auc[0]:.3f}", flush=True))
    return [r.to_dict() for r in runs]


def _profile_kwargs(**changes: Any) -> dict[str, Any]:
    kwargs = {k: v for k, v in _cfg().train_kwargs().items() if k != "seed"}
    return kwargs | changes


def _test_predictions(run_dir: str | Path, cache_dir: Path, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    from ctutils.cache import open_cache
    from ctutils.evaluation import predict_cache
    from ctutils.predict import load_model

    return predict_cache(load_model(Path(run_dir) / "model.keras"), open_cache(cache_dir), split)


def _paired(runs_a: list[dict[str, Any]], runs_b: list[dict[str, Any]], cache_dir: Path) -> list[dict[str, float]]:
    """Per seed, the paired bootstrap of test ROC-AUC(a) − ROC-AUC(b) on the same test scans."""
    from ctutils.evaluation import compare_auc

    out = []
    for a, b in zip(runs_a, runs_b):
        y, pa = _test_predictions(a["run_dir"], cache_dir)
        _, pb = _test_predictions(b["run_dir"], cache_dir)
        out.append({"seed": a["seed"]} | compare_auc(y, pa, pb, n_boot=N_BOOT, seed=0))
    return out


# ----------------------------------------------------------------------------- experiments


def profile_seeds() -> dict[str, Any]:
    """The quick profile (cnn3d-small, improved recipe, 20 epochs) over seeds 0, 1, 2: the README's table."""
    cfg = _cfg()
    runs = cfg.seed_study(SEEDS, on_run=lambda r: print(f"  seed {r.seed}: val AUC {r.val_auc[0]:.3f}", flush=True))
    from ctutils.experiments import seeds_summary

    return {"runs": [r.to_dict() for r in runs], "summary": seeds_summary(runs),
            "command": "python -m ctutils course seeds --profile quick --seeds 0 1 2"}


def recipes() -> dict[str, Any]:
    """The Keras example's recipe against the course's improved one: same model, data and epochs."""
    base = profile_seeds()["runs"]
    ref = _seed_runs("reference-recipe", _profile_kwargs(recipe="reference"))
    return {"improved": base, "reference": ref, "paired_improved_minus_reference": _paired(base, ref, _cfg().cache_dir)}


def flip() -> dict[str, Any]:
    """Left–right flips on (the improved recipe) against off (the same augmentation with flip_p = 0)."""
    from ctutils.augment import AugmentConfig

    base = profile_seeds()["runs"]
    off = _seed_runs("no-flip", _profile_kwargs(augment=AugmentConfig(flip_p=0.0)))
    return {"flip_on": base, "flip_off": off, "paired_on_minus_off": _paired(base, off, _cfg().cache_dir)}


def models() -> dict[str, Any]:
    """The quick profile's cnn3d-small against the small 3-D ResNet, same recipe, data and epochs."""
    base = profile_seeds()["runs"]
    res = _seed_runs("resnet3d", _profile_kwargs(model="resnet3d"))
    return {"cnn3d-small": base, "resnet3d": res, "paired_cnn_minus_resnet": _paired(base, res, _cfg().cache_dir)}


def learning_curve() -> dict[str, Any]:
    """Validation ROC-AUC against the number of training scans (20, 40, 80, all 140), seeds 0 and 1."""
    from ctutils.cache import open_cache, write_cache

    cfg = _cfg()
    cache = course.ensure_cache(cfg, progress=False)
    train_idx, train_y = cache.indices("train"), cache.labels("train")
    points = []
    for n in (20, 40, 80, len(train_idx)):
        if n == len(train_idx):
            runs = profile_seeds()["runs"][:2]
        else:
            sub = RUNS / "learning-curve" / f"cache-{n}"
            if not (sub / "manifest.csv").is_file():
                rng = np.random.default_rng(0)  # the same subset for every seed: n / 2 per class
                chosen = np.concatenate([rng.choice(train_idx[train_y == c], n // 2, replace=False) for c in (0, 1)])
                rows = np.concatenate([np.sort(chosen), cache.indices("val"), cache.indices("test")])
                splits = ["train"] * len(chosen) + ["val"] * len(cache.indices("val")) + ["test"] * len(cache.indices("test"))
                labels = cache.labels()[np.searchsorted(cache.indices(), rows)]
                write_cache(sub, np.asarray(cache.volumes[rows]), labels.tolist(), splits=splits, config=cache.config,
                            paths=[str(cache.paths()[np.searchsorted(cache.indices(), r)]) for r in rows])
            open_cache(sub)
            runs = _seed_runs(f"learning-curve/n{n}", _profile_kwargs(), cache_dir=sub, seeds=(0, 1))
        points.append({"n_train": int(n), "runs": runs})
    _learning_curve_figure(points)
    return {"points": points, "figure": "docs/img/learning_curve.png"}


def _learning_curve_figure(points: list[dict[str, Any]]) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 3.4), layout="constrained")
    for p in points:
        for r in p["runs"]:
            v, lo, hi = r["val_auc"]
            ax.errorbar(p["n_train"] * (1 + 0.03 * (r["seed"] - 0.5)), v, yerr=[[v - lo], [hi - v]], fmt="o",
                        ms=4, capsize=2, color=f"C{r['seed']}", label=f"seed {r['seed']}" if p is points[0] else None)
    means = [np.mean([r["val_auc"][0] for r in p["runs"]]) for p in points]
    ax.plot([p["n_train"] for p in points], means, "k-", lw=1, label="mean")
    ax.axhline(0.5, ls="--", color="grey", lw=1, label="chance")
    ax.set_xscale("log")
    ax.set_xticks([p["n_train"] for p in points], [str(p["n_train"]) for p in points])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # no "3 × 10¹" between the sizes
    ax.set_xlabel("training scans (half normal, half abnormal)")
    ax.set_ylabel("validation ROC-AUC (30 scans), 95 % CI")
    ax.set_ylim(0.3, 1.02)
    ax.set_title("Learning curve, cnn3d-small, synthetic CT-0 vs CT-23", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    IMG.mkdir(parents=True, exist_ok=True)
    fig.savefig(IMG / "learning_curve.png", dpi=100)
    plt.close(fig)


def mild_disease() -> dict[str, Any]:
    """CT-0 against CT-1 only (mild disease, full layout): the CNN against the one-feature baseline."""
    from ctutils.baseline import cache_features, fit_threshold
    from ctutils.cache import build_cache, open_cache
    from ctutils.evaluation import compare_auc, metrics_with_ci
    from ctutils.synthetic import generate_dataset

    cfg = _cfg()
    data = ROOT / "data" / "synthetic-ct1"
    cache_dir = ROOT / "data" / "cache" / "synthetic-ct1-64x64x32"
    p = cfg.profile
    generate_dataset(data, normal=p.n_normal, abnormal=p.n_abnormal, seed=p.data_seed, size=p.size, layout="full",
                     grades=[1], progress=False)
    build_cache(data, cache_dir, config=cfg.preprocess, dataset="synthetic", seed=p.data_seed, progress=False)
    cache = open_cache(cache_dir)
    runs = _seed_runs("mild-disease", _profile_kwargs(), cache_dir=cache_dir)
    features = {s: cache_features(cache, s) for s in ("train", "val", "test")}
    threshold = fit_threshold(features["train"], cache.labels("train"))
    out: dict[str, Any] = {"cnn": runs, "baseline_threshold": float(threshold), "paired": {}}
    for split in ("val", "test"):
        y = cache.labels(split)
        out[f"baseline_{split}_auc"] = metrics_with_ci(y, features[split], n_boot=N_BOOT, seed=0,
                                                       metrics=("roc_auc",))["roc_auc"]
        out["paired"][split] = [{"seed": r["seed"]} | compare_auc(y, _test_predictions(r["run_dir"], cache_dir, split)[1],
                                                                  features[split], n_boot=N_BOOT, seed=0) for r in runs]
    # the same comparison on the default task, for the chapter's "which task needs what"
    base = profile_seeds()["runs"]
    default = open_cache(cfg.cache_dir)
    f_def = {s: cache_features(default, s) for s in ("val", "test")}
    out["default_task_paired"] = {split: [{"seed": r["seed"]} | compare_auc(
        default.labels(split), _test_predictions(r["run_dir"], cfg.cache_dir, split)[1], f_def[split],
        n_boot=N_BOOT, seed=0) for r in base] for split in ("val", "test")}
    return out


def reproducibility() -> dict[str, Any]:
    """Two fresh processes with the same seed, and one with oneDNN off: are the histories identical?"""
    script = (
        "import json, sys\n"
        "from ctutils import training\n"
        "r = training.train(sys.argv[1], sys.argv[2], model='cnn3d-small', recipe='improved', epochs=3, seed=0, verbose=0)\n"
        "print(json.dumps(r.history))\n"
    )
    cfg = _cfg()
    course.ensure_cache(cfg, progress=False)
    histories = {}
    for name, env in (("a", {}), ("b", {}), ("onednn-off", {"TF_ENABLE_ONEDNN_OPTS": "0"})):
        out = RUNS / "reproducibility" / name
        import shutil

        shutil.rmtree(out, ignore_errors=True)
        proc = subprocess.run([sys.executable, "-c", script, str(cfg.cache_dir), str(out)], capture_output=True,
                              text=True, env=os.environ | env, check=True)
        histories[name] = json.loads(proc.stdout.strip().splitlines()[-1])

    def max_diff(h1: dict[str, list[float]], h2: dict[str, list[float]]) -> dict[str, float]:
        return {k: float(np.max(np.abs(np.array(h1[k], float) - np.array(h2[k], float))))
                for k in ("loss", "val_loss", "val_auc")}

    return {"epochs": 3, "histories": histories, "same_process_settings": max_diff(histories["a"], histories["b"]),
            "onednn_off_vs_on": max_diff(histories["a"], histories["onednn-off"]),
            "cpu": platform.processor() or platform.machine()}


def shortcut() -> dict[str, Any]:
    """Going further: a marker planted in every abnormal study of a copy of the data; Grad-CAM and clean scans catch it."""
    from ctutils.cache import build_cache, open_cache
    from ctutils.evaluation import metrics_with_ci
    from ctutils.explain import grad_cam_3d
    from ctutils.synthetic import generate_dataset

    cfg = _cfg()
    p = cfg.profile
    clean = course.ensure_cache(cfg, progress=False)
    data = ROOT / "data" / "synthetic-quick-marker"
    cache_dir = ROOT / "data" / "cache" / "synthetic-quick-marker-64x64x32"
    generate_dataset(data, normal=p.n_normal, abnormal=p.n_abnormal, seed=p.data_seed, size=p.size,
                     shortcut_marker=True, progress=False)
    build_cache(data, cache_dir, config=cfg.preprocess, dataset="synthetic", seed=p.data_seed, progress=False)
    marked = open_cache(cache_dir)
    if [x.name for x in marked.paths("test")] != [x.name for x in clean.paths("test")]:
        raise RuntimeError("the marked and the clean caches have different test splits")
    runs = _seed_runs("shortcut", _profile_kwargs(), cache_dir=cache_dir, seeds=(0,))
    from ctutils.predict import load_model

    model = load_model(Path(runs[0]["run_dir"]) / "model.keras")
    out: dict[str, Any] = {"runs": runs}
    for name, cache in (("marked_test", marked), ("clean_test", clean)):
        from ctutils.evaluation import predict_cache

        y, prob = predict_cache(model, cache, "test")
        ci = metrics_with_ci(y, prob, n_boot=N_BOOT, seed=0, metrics=("roc_auc", "accuracy", "sensitivity", "specificity"))
        out[name] = {k: list(v) for k, v in ci.items()}
    # Grad-CAM heat on the marker: the marker is where the marked and the clean volumes differ
    rows_m, rows_c, y = marked.indices("test"), clean.indices("test"), marked.labels("test")
    from scipy import ndimage

    shares, areas, hits = [], [], []
    for rm, rc in zip(rows_m[y == 1], rows_c[y == 1]):
        vm = np.asarray(marked.volumes[rm])
        region = np.abs(vm - np.asarray(clean.volumes[rc])) > 0.05
        # the last conv layer's map is 8 × 8 × 4 at 64 × 64 × 32: score a neighbourhood of one feature voxel
        near = ndimage.binary_dilation(region, iterations=MARKER_MARGIN)
        heat = grad_cam_3d(model, vm)
        if heat.sum() > 0 and region.any():
            shares.append(float(heat[near].sum() / heat.sum()))
            areas.append(float(near.mean()))
            hits.append(bool(near[np.unravel_index(np.argmax(heat), heat.shape)]))
    out["marker_margin_voxels"] = MARKER_MARGIN
    out["gradcam_heat_on_marker_mean"] = float(np.mean(shares)) if shares else None
    out["marker_volume_share_mean"] = float(np.mean(areas)) if areas else None
    out["gradcam_peak_on_marker"] = float(np.mean(hits)) if hits else None
    out["gradcam_scans"] = len(shares)
    _shortcut_figure(model, marked, clean)
    out["figure"] = "docs/img/shortcut_gradcam.png"
    return out


def _shortcut_figure(model: Any, marked: Any, clean: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from ctutils import plotting
    from ctutils.explain import grad_cam_3d

    y = marked.labels("test")
    row = int(marked.indices("test")[np.flatnonzero(y == 1)[0]])
    volume = np.asarray(marked.volumes[row])
    heat = grad_cam_3d(model, volume)
    slices = sorted(np.argsort(heat.sum(axis=(0, 1)))[-4:].tolist())
    fig = plotting.overlay_montage(volume, heat, slices=slices, cols=4,
                                   title="Grad-CAM of a model trained with a planted marker (abnormal test scan)")
    IMG.mkdir(parents=True, exist_ok=True)
    fig.savefig(IMG / "shortcut_gradcam.png", dpi=90, bbox_inches="tight")


EXPERIMENTS: dict[str, Callable[[], dict[str, Any]]] = {
    "profile_seeds": profile_seeds,
    "recipes": recipes,
    "flip": flip,
    "models": models,
    "learning_curve": learning_curve,
    "mild_disease": mild_disease,
    "reproducibility": reproducibility,
    "shortcut": shortcut,
}


# ----------------------------------------------------------------------------- docs/experiments.md


def _auc(v: list[float]) -> str:
    return f"{v[0]:.3f} [{v[1]:.2f}, {v[2]:.2f}]"


def _runs_table(columns: dict[str, list[dict[str, Any]]]) -> list[str]:
    """One row per set-up: mean best val_loss, val and test ROC-AUC per seed and mean, training time."""
    lines = ["| set-up | seeds | best val_loss (mean) | val ROC-AUC per seed | test ROC-AUC per seed [95 % CI] "
             "| test ROC-AUC mean ± sd | training per run (s) |", "|---|---:|---:|---|---|---|---:|"]
    for name, runs in columns.items():
        val = ", ".join(f"{r['val_auc'][0]:.3f}" for r in runs)
        test = ", ".join(_auc(r["test_auc"]) for r in runs)
        t = [r["test_auc"][0] for r in runs]
        secs = [r["train_seconds"] for r in runs if r.get("train_seconds")]
        sd = f" ± {np.std(t, ddof=1):.3f}" if len(t) > 1 else ""
        lines.append(f"| {name} | {len(runs)} | {np.mean([r['best_val_loss'] for r in runs]):.3f} | {val} | {test} | "
                     f"{np.mean(t):.3f}{sd} | {np.mean(secs):.0f} |" if secs else
                     f"| {name} | {len(runs)} | {np.mean([r['best_val_loss'] for r in runs]):.3f} | {val} | {test} | "
                     f"{np.mean(t):.3f}{sd} | – |")
    return lines


def _how(result: dict[str, Any]) -> str:
    m = result["machine"]
    return (f"Command: `{result['command']}`; wall time of its last invocation {result['wall_seconds'] / 60:.1f} min "
            f"on {m['cores']} cores ({m['cpu']}), TensorFlow {m['tensorflow']}, Keras {m['keras']} (runs already "
            "complete are reused and only scored; each run's own training time is in the tables).")


def render_markdown(results: dict[str, Any]) -> str:
    """docs/experiments.md from docs/experiments.json: every number and verdict computed from the results."""
    from ctutils.experiments import describe_seed_comparison

    out = ["# Experiments: every \"better\" of the course, measured", "",
           "Made by `python docs/experiments.py` (all experiments) and `python docs/experiments.py --markdown` (this "
           "page, from `docs/experiments.json`). Every number and every verdict on this page is computed from that "
           "file; nothing is typed. Each experiment lists its command, wall time and machine.", "",
           "**Data.** The quick profile's synthetic dataset unless said otherwise: 2 × 100 computer-generated chest-CT "
           "phantoms at 256 px (`data/synthetic-quick`, seed 0), CT-0 against CT-23, cached at 64 × 64 × 32 and split "
           "140 / 30 / 30 (train / validation / test). **None of these numbers is a clinical result**; they say how the "
           "course's set-ups behave on its phantoms.", "",
           "**Method.** Every set-up is trained for the profile's 20 epochs with training seeds 0, 1 and 2 (the learning "
           "curve: seeds 0 and 1); the epoch "
           "with the lowest validation loss is kept. ROC-AUC intervals are stratified bootstrap 95 % intervals over "
           "the scans (1,000 resamples). A comparison of two set-ups is *paired*: for each seed, both models score the "
           "same test scans, and the bootstrap gives an interval for the difference of their ROC-AUCs "
           "(`ctutils.evaluation.compare_auc`). A difference is called real only when its interval excludes 0 for "
           "every seed.", ""]
    if "profile_seeds" in results:
        r = results["profile_seeds"]
        s = r["summary"]
        from ctutils.experiments import SeedRun, seeds_table

        runs = [SeedRun(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in x.items()}) for x in r["runs"]]
        targets = [("validation ROC-AUC at least 0.90 on average", s["val_auc_mean"] >= 0.90),
                   ("at least 0.85 for each seed", s["val_auc_min"] >= 0.85),
                   ("best val_loss at most 0.45 for each seed", s["best_val_loss_max"] <= 0.45),
                   ("test interval at most about ±0.15", s["test_auc_half_width_max"] <= 0.16)]
        out += ["## The quick profile over three seeds", "",
                "`cnn3d-small`, recipe `improved`, 20 epochs, batch 4 (what `make course` trains in chapter 05; chapter "
                "06 trains the other two seeds). " + _how(r), "", seeds_table(runs), "",
                "The course's targets for this profile: " + "; ".join(f"{t}: {'met' if ok else 'NOT met'}" for t, ok in targets)
                + f" (mean validation ROC-AUC {s['val_auc_mean']:.3f}, lowest {s['val_auc_min']:.3f}, highest best "
                  f"val_loss {s['best_val_loss_max']:.3f}, widest test interval ±{s['test_auc_half_width_max']:.3f}).", ""]
    for key, title, a, b, ka, kb, label, text in (
        ("recipes", "The Keras example's recipe against the improved one", "improved", "reference", "improved",
         "reference", "paired_improved_minus_reference",
         "Same model (`cnn3d-small`), data and 20 epochs. `reference`: Adam 1e-4 with the example's never-firing decay, "
         "batch 2, rotations only, early stopping on validation accuracy. `improved`: Adam 1e-3 halved on plateaus, "
         "batch 4, rotations + flips + zoom + intensity + noise, balanced class weights, best weights restored."),
        ("flip", "Left–right flips on against off", "flip on", "flip off", "flip_on", "flip_off", "paired_on_minus_off",
         "The improved recipe with its full augmentation, against the same augmentation with `flip_p = 0`."),
        ("models", "The quick model against a small 3-D ResNet", "cnn3d-small", "resnet3d", "cnn3d-small", "resnet3d",
         "paired_cnn_minus_resnet",
         "Both with the improved recipe at 64 × 64 × 32. The reference CNN itself needs 128 × 128 × 64 (its valid "
         "convolutions shrink a 32-slice input to nothing); there one Adam step of batch 2 took 1.1–1.2 s on 2 CPU cores "
         "(`docs/measurements.md`), so three seeds of it are a GPU job: use `python -m ctutils course run --profile "
         "full` on a GPU."),
    ):
        if key not in results:
            continue
        r = results[key]
        n = r[ka][0]["test_n"]
        out += [f"## {title}", "", text + " " + _how(r), "", *_runs_table({a: r[ka], b: r[kb]}), "",
                describe_seed_comparison(r[label], name_a=a, name_b=b, n_scans=n), ""]
    if "learning_curve" in results:
        r = results["learning_curve"]
        rows = ["| training scans | val ROC-AUC per seed [95 % CI] | mean |", "|---:|---|---:|"]
        for p_ in r["points"]:
            rows.append(f"| {p_['n_train']} | " + ", ".join(_auc(x["val_auc"]) for x in p_["runs"])
                        + f" | {np.mean([x['val_auc'][0] for x in p_['runs']]):.3f} |")
        out += ["## Learning curve", "",
                "Validation ROC-AUC (30 scans) against the number of training scans, half of them abnormal, the same "
                "subset for both seeds, the same model, recipe and epochs. " + _how(r), "",
                "![learning curve](img/learning_curve.png)", "", *rows, ""]
    if "mild_disease" in results:
        r = results["mild_disease"]
        out += ["## CT-0 against CT-1 (mild disease): the quick CNN against the density baseline", "",
                "The same CNN set-up on 2 × 100 studies of the `full` layout with CT-1 only (mild disease: under a "
                "quarter of the lung), against the one-feature baseline (the ground-glass fraction of the lung, "
                "threshold fitted on the training split) on the same scans. " + _how(r), "",
                *_runs_table({"CNN, CT-0 vs CT-1": r["cnn"]}), "",
                f"Baseline ROC-AUC: validation {_auc(r['baseline_val_auc'])}, test {_auc(r['baseline_test_auc'])}.", "",
                "- CT-0 against CT-1, test: " + describe_seed_comparison(r["paired"]["test"], name_a="the CNN", name_b="the baseline"),
                "- CT-0 against CT-1, validation: " + describe_seed_comparison(r["paired"]["val"], name_a="the CNN", name_b="the baseline").replace("test ROC-AUC", "validation ROC-AUC").replace("test scans", "validation scans"),
                "- CT-0 against CT-23 (the default task), test: " + describe_seed_comparison(r["default_task_paired"]["test"], name_a="the CNN", name_b="the baseline"),
                ""]
    if "reproducibility" in results:
        r = results["reproducibility"]
        same, off = r["same_process_settings"], r["onednn_off_vs_on"]
        out += ["## Reproducibility", "",
                f"The same {r['epochs']}-epoch run (seed 0) in three fresh processes: two with the same settings, one with "
                "oneDNN switched off (`TF_ENABLE_ONEDNN_OPTS=0`, standing in for another CPU or TensorFlow build). "
                + _how(r), "",
                "| comparison | largest difference: loss | val_loss | val_auc |", "|---|---:|---:|---:|",
                f"| same settings, two processes | {same['loss']:.1e} | {same['val_loss']:.1e} | {same['val_auc']:.1e} |",
                f"| oneDNN off against on | {off['loss']:.1e} | {off['val_loss']:.1e} | {off['val_auc']:.1e} |", "",
                ("Same machine and settings: identical to the last bit. " if max(same.values()) == 0 else
                 "Same machine and settings: NOT identical. ")
                + (f"oneDNN off: different numbers within {r['epochs']} epochs, so histories on another machine or "
                   "TensorFlow build are expected to differ too." if max(off.values()) > 0 else "oneDNN off: identical here."), ""]
    if "shortcut" in results:
        r = results["shortcut"]
        mt, ct = r["marked_test"], r["clean_test"]
        out += ["## Going further: a planted shortcut", "",
                "A copy of the quick dataset made with `python -m ctutils data synth … --shortcut-marker`: every "
                "abnormal study carries a small dense marker, every normal one does not; everything else is byte for "
                "byte the same data. The profile's model is trained on it (seed 0), then tested on the marked test "
                "split and on the clean copies of the same test scans "
                f"(training: {r['runs'][0]['train_seconds']:.0f} s). " + _how(r), "",
                "| test split | ROC-AUC [95 % CI] | accuracy | sensitivity | specificity |", "|---|---|---:|---:|---:|",
                f"| marked | {_auc(mt['roc_auc'])} | {mt['accuracy'][0]:.3f} | {mt['sensitivity'][0]:.3f} | {mt['specificity'][0]:.3f} |",
                f"| clean | {_auc(ct['roc_auc'])} | {ct['accuracy'][0]:.3f} | {ct['sensitivity'][0]:.3f} | {ct['specificity'][0]:.3f} |", ""]
        if r.get("gradcam_heat_on_marker_mean") is not None:
            out += [f"Grad-CAM over the {r['gradcam_scans']} abnormal marked test scans: on average "
                    f"{r['gradcam_heat_on_marker_mean']:.1%} of the heat lies on the marker or within "
                    f"{r['marker_margin_voxels']} voxels of it (one feature voxel of the last convolution), a region "
                    f"that fills {r['marker_volume_share_mean']:.1%} of the volume "
                    f"({r['gradcam_heat_on_marker_mean'] / r['marker_volume_share_mean']:.1f} times its share); the "
                    f"hottest voxel lies there in {r['gradcam_peak_on_marker']:.0%} of the scans.", "",
                    "![shortcut](img/shortcut_gradcam.png)", ""]
    return "\n".join(out) + "\n"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(EXPERIMENTS), default=None)
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--markdown", action="store_true",
                        help="only write docs/experiments.md and the learning-curve figure from docs/experiments.json")
    args = parser.parse_args()
    if args.markdown:
        results = json.loads(RESULTS.read_text())
        if "learning_curve" in results:
            _learning_curve_figure(results["learning_curve"]["points"])
        (ROOT / "docs" / "experiments.md").write_text(render_markdown(results))
        print("docs/experiments.md written")
        return 0
    if args.list:
        for name, fn in EXPERIMENTS.items():
            print(f"{name:<16} {(fn.__doc__ or '').splitlines()[0]}")
        return 0
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    from importlib.metadata import version

    for name in args.only or list(EXPERIMENTS):
        print(f"{name}: {(EXPERIMENTS[name].__doc__ or '').splitlines()[0]}", flush=True)
        start = time.perf_counter()
        value = EXPERIMENTS[name]()
        value["wall_seconds"] = round(time.perf_counter() - start, 1)
        value["machine"] = {"cpu": _cpu_name(), "cores": available_cores(),
                            "tensorflow": version("tensorflow"), "keras": version("keras")}
        value["command"] = value.get("command", f"python docs/experiments.py --only {name}")
        results[name] = value
        with atomic_path(RESULTS) as tmp:
            Path(tmp).write_text(json.dumps(results, indent=1) + "\n")
        print(f"{name}: {value['wall_seconds']:.0f} s → {RESULTS.relative_to(ROOT)}", flush=True)
    (ROOT / "docs" / "experiments.md").write_text(render_markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
