"""The timed comparisons, one function per section, each alternating the reference and the course.

A section takes the run's :class:`Bench` (plan, inputs, caches, rows so far) and adds
:class:`~benchmarks.report.Row` objects and extra figures to it. Sections that fork worker
processes run before TensorFlow is imported in this process (the order of :data:`SECTIONS`).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import importlib
import json
import os
import random
import shutil
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import reference as R
from benchmarks.config import SHAPE, Plan, compile_like_course, course_batch_size
from benchmarks.inputs import subset
from benchmarks.measure import alternate, cores, cpu_seconds, log, seconds_of, summarize, warm_page_cache
from benchmarks.probes import run_child
from benchmarks.report import Row, fmt_mem


class Bench:
    """The state of one run: its plan and options, the inputs, the course caches, rows and extra figures."""

    def __init__(self, plan: Plan, args: argparse.Namespace, inputs: dict[str, Any]) -> None:
        self.plan, self.args, self.inputs = plan, args, inputs
        self.out: Path = args.out
        self.rows: list[Row] = []
        self.extra: dict[str, Any] = {"notes": []}
        self.load: dict[str, Any] = {"start": list(os.getloadavg()), "sections": {}}
        self.workers: int = args.workers or cores()
        self.cache: Any = None  # the dataset row's course cache, reused by later sections
        self.tf: Any = None

    def section(self, name: str, fn: Callable[[Bench], None]) -> None:
        """Run one section if it was asked for; a failure is recorded and the others still run."""
        if name not in self.args.only:
            return
        log(f"== {name}")
        before, t0 = os.getloadavg(), time.perf_counter()
        try:
            fn(self)
            status = "ok"
        except Exception as error:  # noqa: BLE001 - one failed section is reported, the others still run
            status = f"failed: {type(error).__name__}: {error}"
            log(f"section {name} {status}")
            traceback.print_exc()
        self.load["sections"][name] = {
            "load_before": [round(x, 2) for x in before], "load_after": [round(x, 2) for x in os.getloadavg()],
            "wall_s": round(time.perf_counter() - t0, 2), "status": status,
        }

    def add(self, row: Row) -> None:
        self.rows.append(row)
        log(f"  {row.step}: reference {row.cell(row.reference)} | course {row.cell(row.course)} | {row.ratio_text()}")

    def import_tf(self) -> Any:
        """TensorFlow, imported (and Keras seeded) on first use."""
        if self.tf is None:
            t0 = time.perf_counter()
            import keras
            import tensorflow as tf

            keras.utils.set_random_seed(self.args.seed)
            self.tf = tf
            self.extra["tensorflow_import_s"] = round(time.perf_counter() - t0, 2)
        return self.tf

    def dataset_cache(self) -> Any:
        """The course cache of the dataset row's scans (built once if that section did not run)."""
        if self.cache is None:
            from ctutils.cache import build_cache

            src, _, _ = subset(self.inputs, self.plan.dataset_scans, self.out)
            self.cache = build_cache(src, self.out / "cache-dataset", workers=self.workers, progress=False)
        return self.cache

    def largest_cache(self) -> Any:
        """The memory probe's cache (more training volumes) if it is there and valid, else the dataset row's."""
        from ctutils.cache import CacheError, open_cache

        with contextlib.suppress(CacheError):
            cache = open_cache(self.out / "cache-memory")
            if len(cache.indices("train")) > len(self.dataset_cache().indices("train")):
                return cache
        return self.dataset_cache()

    def run(self) -> None:
        """Every section, in order; the load average at the start and end."""
        log(f"mode {self.plan.mode}, {cores()} cores, workers {self.workers}, out {self.out}")
        for name, fn in SECTIONS.items():
            self.section(name, fn)
        self.load["end"] = list(os.getloadavg())


# ----------------------------------------------------------------------------- preprocessing


def _best(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Shortest time of ``repeats`` calls of ``fn``, and its last result."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def breakdown(scan: Path, repeats: int = 2) -> dict[str, dict[str, float]]:
    """Seconds per step of one scan's preprocessing, each side (best of ``repeats``)."""
    from scipy import ndimage

    from ctutils.intensity import window_hu
    from ctutils.io import load_volume
    from ctutils.resample import resize_volume

    ref: dict[str, float] = {}
    ref["read_nifti_file (gunzip + float64)"], raw = _best(lambda: R.read_nifti_file(scan), repeats)
    ref["normalize (in place, float32)"], norm = _best(lambda: R.normalize(raw.copy()), repeats)
    ref["rotate 90° (order-3 spline)"], rot = _best(lambda: ndimage.rotate(norm, 90, reshape=False), repeats)
    factors = [d / c for c, d in zip(rot.shape, SHAPE)]
    ref["zoom (order 1)"], _ = _best(lambda: ndimage.zoom(rot, factors, order=1), repeats)
    course: dict[str, float] = {}
    course["gunzip alone, zlib (for scale)"], _ = _best(lambda: gzip.decompress(scan.read_bytes()), repeats)
    with contextlib.suppress(ImportError):
        igzip = importlib.import_module("isal.igzip")
        course["gunzip alone, ISA-L (for scale)"], _ = _best(lambda: igzip.decompress(scan.read_bytes()), repeats)
    course["load_volume (gunzip, float32, checks, RAS)"], volume = _best(lambda: load_volume(scan), repeats)
    course["window_hu"], windowed = _best(lambda: window_hu(volume.data), repeats)
    course["resize_volume (order 1)"], _ = _best(lambda: resize_volume(windowed, shape=SHAPE), repeats)
    return {"reference": {k: round(v, 4) for k, v in ref.items()}, "course": {k: round(v, 4) for k, v in course.items()}}


def _check_keras_example(bench: Bench, scans: list[Path]) -> float:
    """Largest |reference − keras-example preset| over ``scans``; recorded in ``extra['correctness']``."""
    from ctutils.preprocess import PreprocessConfig, preprocess_file

    diffs = []
    for path in scans:
        ref = R.process_scan(path)
        kex, volume = preprocess_file(path, config=PreprocessConfig(preset="keras-example"))
        diffs.append({"scan": path.name, "shape": list(volume.original_shape), "max_abs_diff": float(np.abs(ref - kex).max())})
    worst = max(d["max_abs_diff"] for d in diffs)
    ok = worst <= 1e-5
    bench.extra["correctness"] = {"keras_example_vs_reference_max_abs_diff": worst, "tolerance": 1e-5, "ok": ok, "scans": diffs}
    log(f"  keras-example preset vs reference: max |difference| = {worst:.3g} over {len(scans)} scans ({'OK' if ok else 'TOO LARGE'})")
    return worst


def preprocess_one(bench: Bench) -> None:
    """One scan, one process: the reference's process_scan against the course default and keras-example preset."""
    from ctutils.preprocess import PreprocessConfig, preprocess_file

    inputs = bench.inputs
    scans = [inputs["abnormal"][0], inputs["normal"][0], inputs["abnormal"][1]][: bench.plan.correctness_scans]
    warm_page_cache(scans)
    worst = _check_keras_example(bench, scans)
    scan = scans[0]
    course, keras_example = PreprocessConfig(), PreprocessConfig(preset="keras-example")
    _, volume = preprocess_file(scan, config=course)
    bench.extra["one_scan"] = {"path": str(scan.relative_to(bench.out)), "shape": list(volume.original_shape)}
    values = alternate(
        {
            "reference": seconds_of(lambda: R.process_scan(scan)),
            "course": seconds_of(lambda: preprocess_file(scan, config=course)),
            "keras-example": seconds_of(lambda: preprocess_file(scan, config=keras_example)),
        },
        bench.plan.one_scan_repeats,
    )
    bench.extra["breakdown_s"] = breakdown(scan)
    log("  where the time goes (s, best of 2): " + json.dumps(bench.extra["breakdown_s"]))
    shape = "×".join(str(n) for n in volume.original_shape)
    bench.add(Row("preprocess_one_course", f"preprocess one scan ({shape} .nii.gz → 128×128×64), course default", "time",
                  summarize(values["reference"]), summarize(values["course"]), note="one process, one scan"))
    bench.add(Row("preprocess_one_keras_example", "preprocess one scan, course `keras-example` preset (same output as the reference)", "time",
                  summarize(values["reference"]), summarize(values["keras-example"]),
                  note=f"max abs. difference vs reference {worst:.2g}"))


def dataset(bench: Bench) -> None:
    """A dataset of N scans: the reference's sequential load against the course's parallel cache (fresh, 1 core, rerun)."""
    from ctutils.cache import build_cache
    from ctutils.preprocess import PreprocessConfig

    n = bench.plan.dataset_scans
    src, normal, abnormal = subset(bench.inputs, n, bench.out)
    warm_page_cache(normal + abnormal)
    cache_dir, cache_dir_1 = bench.out / "cache-dataset", bench.out / "cache-dataset-1worker"
    config = PreprocessConfig()
    cpu: dict[str, list[float]] = {"reference": [], "course": []}

    def reference(_r: int) -> float:
        t0, c0 = time.perf_counter(), cpu_seconds()
        R.load_dataset(normal, abnormal)
        cpu["reference"].append(cpu_seconds() - c0)
        return (time.perf_counter() - t0) / n

    def course(folder: Path, workers: int, *, fresh: bool) -> Callable[[int], float]:
        def timed(_r: int) -> float:
            if fresh:
                shutil.rmtree(folder, ignore_errors=True)
            t0, c0 = time.perf_counter(), cpu_seconds()
            cache = build_cache(src, folder, config=config, workers=workers, progress=False)
            wall = time.perf_counter() - t0
            if bool(cache.info.get("reused")) == fresh or len(cache) != n:
                raise RuntimeError(f"{folder}: expected {'a fresh' if fresh else 'the reused'} cache of {n} volumes")
            if folder == cache_dir:
                bench.cache = cache
                if fresh:
                    cpu["course"].append(cpu_seconds() - c0)
            return wall / n
        return timed

    values = alternate(
        {"reference": reference, "course": course(cache_dir, bench.workers, fresh=True),
         "course-1-worker": course(cache_dir_1, 1, fresh=True), "course-rerun": course(cache_dir, bench.workers, fresh=False)},
        bench.plan.dataset_repeats,
    )
    # The reference has no cache: its "then again" is another full pass; every pass above is one.
    ref = summarize(values["reference"])
    bench.add(Row("preprocess_dataset", f"preprocess a dataset of {n} scans, s/scan (course: parallel on {bench.workers} cores + cache)", "time",
                  ref, summarize(values["course"]), note="reference: sequential, all volumes in RAM"))
    bench.add(Row("preprocess_dataset_1worker", "… same, course on 1 core (per-core speed-up)", "time",
                  ref, summarize(values["course-1-worker"])))
    bench.add(Row("preprocess_dataset_rerun", f"preprocess the same {n} scans again, s/scan (reference: no cache; course: cached)", "time",
                  ref, summarize(values["course-rerun"]), note="course returns the memory-mapped cache"))
    bench.extra["dataset"] = {"n_scans": n, "workers": bench.workers,
                              "cpu_s_per_scan": {k: summarize([x / n for x in v]) for k, v in cpu.items()}}
    shutil.rmtree(cache_dir_1, ignore_errors=True)


# ----------------------------------------------------------------------------- memory (child processes)


def _scaling_row(bench: Bench, n: int) -> dict[str, Any]:
    src, _, _ = subset(bench.inputs, n, bench.out)
    warm_page_cache(sorted(src.glob("*/*.nii.gz")))
    cache = bench.out / "scaling" / f"cache-n{n}"
    result = run_child("scaling", {"src": str(src), "cache": str(cache), "workers": bench.workers, "label": f"n{n}"},
                       bench.out, timeout_s=60 + 10 * n)
    shutil.rmtree(cache, ignore_errors=True)
    return {
        "n_scans": n, "s_per_scan": result["wall_s"] / n, "wall_s": result["wall_s"], "cpu_s_per_scan": result["cpu_s"] / n,
        "main_vmhwm_kib": result["vmhwm_kib"], "largest_worker_maxrss_kib": result["workers_maxrss_kib"],
        "tree_peak_rss_kib": result["sampled_peak_rss_kib"], "tree_peak_anon_kib": result["sampled_peak_anon_kib"],
        "main_peak_anon_kib": result["sampled_main_anon_kib"], "main_peak_file_kib": result["sampled_main_file_kib"],
        "cache_bytes": int(n * np.prod(SHAPE) * 4),
    }


def scaling(bench: Bench) -> None:
    """The course's build_cache on growing datasets, one fresh subprocess per size: time and memory per scan."""
    rows = []
    for n in bench.plan.scaling_scans:
        row = _scaling_row(bench, n)
        rows.append(row)
        log(f"  n={n}: {row['s_per_scan']:.3f} s/scan, main VmHWM {fmt_mem(row['main_vmhwm_kib'])}, "
            f"largest worker {fmt_mem(row['largest_worker_maxrss_kib'])}, tree RSS {fmt_mem(row['tree_peak_rss_kib'])} "
            f"(anonymous {fmt_mem(row['tree_peak_anon_kib'])})")
    first, last = rows[0], rows[-1]
    growth = {"scans": last["n_scans"] / first["n_scans"], "s_per_scan": last["s_per_scan"] / first["s_per_scan"]}
    for key, field in (("main_vmhwm", "main_vmhwm_kib"), ("tree_peak_rss", "tree_peak_rss_kib"),
                       ("tree_peak_anon", "tree_peak_anon_kib"), ("largest_worker", "largest_worker_maxrss_kib")):
        growth[key] = last[field] / first[field]
    # Memory added per extra scan (least-squares slope, MiB/scan); one cached volume is 4 MiB.
    ns = np.array([r["n_scans"] for r in rows], dtype=float)
    slope = {
        key: float(np.polyfit(ns, np.array([r[f"{key}_kib"] for r in rows], dtype=float) / 1024, 1)[0]) if len(rows) > 1 else None
        for key in ("tree_peak_anon", "tree_peak_rss", "main_vmhwm", "main_peak_anon", "main_peak_file", "largest_worker_maxrss")
    }
    bench.extra["scaling"] = {"rows": rows, "growth_first_to_last": growth, "slope_mib_per_scan": slope,
                              "volume_mib": float(np.prod(SHAPE) * 4 / 2**20), "workers": bench.workers}


def _peak(result: dict[str, Any], phases: list[str] | None, hwm: int | None) -> dict[str, Any]:
    """max(sampled process-tree RSS over ``phases`` (None: all), the main process's VmHWM at their end)."""
    peaks = result["sampled"]["peaks_by_phase"]
    sampled = max((v["rss_kib"] for k, v in peaks.items() if phases is None or k in phases), default=0)
    return {"median": max(sampled, hwm or 0), "n": 1}


def memory(bench: Bench) -> None:
    """Peak memory of each side preprocessing the same scans and training a few steps, in fresh subprocesses."""
    plan = bench.plan
    src, normal, abnormal = subset(bench.inputs, plan.rss_scans, bench.out)
    warm_page_cache(normal + abnormal)
    bs = course_batch_size()
    results = {}
    for side, kind, args in (
        ("reference", "memory-reference", {"normal": [str(p) for p in normal], "abnormal": [str(p) for p in abnormal]}),
        ("course", "memory-course", {"src": str(src), "cache": str(bench.out / "cache-memory"), "workers": bench.workers,
                                     "batch_sizes": sorted({2, bs})}),
    ):
        log(f"  {side}: {plan.rss_scans} scans + {plan.rss_steps} training steps in a subprocess")
        results[side] = run_child(kind, {**args, "steps": plan.rss_steps, "label": side}, bench.out, timeout_s=600 + 8 * plan.rss_scans)
    ref, course = results["reference"], results["course"]
    ref_all = _peak(ref, None, ref["vmhwm_kib"])
    bench.add(Row("peak_rss_preprocess", f"peak RSS while preprocessing {plan.rss_scans} scans (all processes)", "memory",
                  _peak(ref, ["start", "preprocess"], ref["vmhwm_after_preprocess_kib"]),
                  _peak(course, ["start", "preprocess"], course["vmhwm_after_preprocess_kib"]),
                  note=f"course: {bench.workers} worker processes + memory-mapped cache"))
    bench.add(Row("peak_rss_batch2", f"peak RSS, preprocess {plan.rss_scans} scans + {plan.rss_steps} training steps, batch 2 both", "memory",
                  ref_all, _peak(course, ["start", "preprocess", "setup", "train-b2"], course.get("vmhwm_after_train_b2_kib")),
                  note="same model, same batch: equal work"))
    if bs != 2:
        bench.add(Row("peak_rss_course_batch", f"… course at its own batch size ({bs})", "memory", ref_all,
                      _peak(course, None, course["vmhwm_kib"]), note="activations of a larger batch"))
    bench.extra["memory"] = {"reference": ref, "course": course, "n_scans": plan.rss_scans, "steps": plan.rss_steps,
                             "definition": "peak = max(sampled RSS sum over the process tree, the main process's VmHWM)"}
    log(f"  reference: {ref.get('fit')}")


# ----------------------------------------------------------------------------- TensorFlow sections


def augment(bench: Bench) -> None:
    """Volumes/s: the reference's scipy rotation in tf.numpy_function against the course's TF-op augmentation."""
    tf = bench.import_tf()
    from ctutils.augment import AugmentConfig, augment_volume

    seed, cache = bench.args.seed, bench.dataset_cache()
    k = min(bench.plan.augment_volumes, len(cache))
    volumes = [tf.constant(np.array(cache.volumes[i])) for i in range(k)]
    random.seed(seed)
    fns = {}
    for name, config in {"course-reference": AugmentConfig.reference(), "course": AugmentConfig()}.items():
        fns[name] = tf.function(lambda v, s, config=config: augment_volume(v, seed=s, config=config))
        fns[name](volumes[0], tf.constant([0, 0], tf.int64)).numpy()  # trace once, untimed
    R.rotate(volumes[0]).numpy()
    counter = [0]

    def reference(_r: int) -> float:
        t0 = time.perf_counter()
        for v in volumes:
            R.rotate(v).numpy()
        return k / (time.perf_counter() - t0)

    def course(name: str) -> Callable[[int], float]:
        def timed(_r: int) -> float:
            t0 = time.perf_counter()
            for v in volumes:
                counter[0] += 1
                fns[name](v, tf.constant([seed, counter[0]], tf.int64)).numpy()
            return k / (time.perf_counter() - t0)
        return timed

    values = alternate({"reference": reference, "course-reference": course("course-reference"), "course": course("course")},
                       bench.plan.augment_repeats)
    bench.add(Row("augment_reference_angles", "augmentation, volumes/s — course with the reference's angle set (equal work)", "rate",
                  summarize(values["reference"]), summarize(values["course-reference"]),
                  note="scipy in tf.numpy_function vs TF ops (tf.function)"))
    bench.add(Row("augment_default", "augmentation, volumes/s — course default (rotate+flip+zoom+intensity+noise)", "rate",
                  summarize(values["reference"]), summarize(values["course"])))


def pipeline(bench: Bench) -> None:
    """Samples/s drawn from each side's training dataset, without a model."""
    tf = bench.import_tf()
    from ctutils.augment import AugmentConfig
    from ctutils.pipeline import make_dataset

    seed, samples, cache = bench.args.seed, bench.plan.pipeline_samples, bench.largest_cache()
    idx = cache.indices("train")
    random.seed(seed)
    tf.random.set_seed(seed)
    t0 = time.perf_counter()
    ref_ds = R.make_train_dataset(np.array(cache.volumes[idx]), cache.labels("train"))  # every volume in RAM
    bench.extra["pipeline_reference_from_tensor_slices_s"] = time.perf_counter() - t0
    bs = course_batch_size()
    datasets = {
        "reference": ref_ds,
        "course": make_dataset(cache, "train", batch_size=bs, augment=AugmentConfig(), seed=seed),
        "course-reference": make_dataset(cache, "train", batch_size=2, augment=AugmentConfig.reference(), seed=seed),
    }
    for ds in datasets.values():  # first batch: iterator creation and tracing, untimed
        next(iter(ds))

    def consume(ds: Any) -> Callable[[int], float]:
        def timed(_r: int) -> float:
            seen = 0
            t0 = time.perf_counter()
            while seen < samples:
                for x, _y in ds:
                    seen += int(x.shape[0])
                    if seen >= samples:
                        break
            return seen / (time.perf_counter() - t0)
        return timed

    values = alternate({k: consume(v) for k, v in datasets.items()}, bench.plan.pipeline_repeats)
    bench.extra["pipeline_values"] = values
    bench.add(Row("pipeline", f"input pipeline alone, samples/s (course: cache → augment → batch {bs})", "rate",
                  summarize(values["reference"]), summarize(values["course"]),
                  note=f"reference: from_tensor_slices, numpy_function rotate, batch 2, prefetch 2; {len(idx)} training volumes"))
    bench.add(Row("pipeline_reference_augment", "… course with the reference's augmentation and batch 2 (equal work)", "rate",
                  summarize(values["reference"]), summarize(values["course-reference"])))


def train(bench: Bench) -> None:
    """Seconds per train_on_batch of the same network: the reference's recipe (batch 2) against the course's."""
    bench.import_tf()
    import keras

    from ctutils.augment import AugmentConfig
    from ctutils.models import build_cnn3d
    from ctutils.pipeline import make_dataset

    plan, cache, bs = bench.plan, bench.dataset_cache(), course_batch_size()
    random.seed(bench.args.seed)
    keras.utils.set_random_seed(bench.args.seed)
    ref_ds = R.make_train_dataset(np.array(cache.volumes[cache.indices("train")]), cache.labels("train"))
    x_ref, y_ref = (t.numpy() for t in next(iter(ref_ds)))
    course_ds = make_dataset(cache, "train", batch_size=bs, augment=AugmentConfig(), seed=0, repeat=True)
    x_c, y_c = (t.numpy() for t in next(iter(course_ds)))
    ref_model, course_model = R.compile_model(R.build_model()), build_cnn3d()
    bench.extra["course_compile"] = compile_like_course(course_model)
    bench.extra["n_params"] = int(course_model.count_params())
    t0 = time.perf_counter()
    ref_model.train_on_batch(x_ref, y_ref)
    t1 = time.perf_counter()
    course_model.train_on_batch(x_c, y_c)
    bench.extra["first_step_s"] = {"reference": t1 - t0, "course": time.perf_counter() - t1}

    def steps(model: Any, x: np.ndarray, y: np.ndarray) -> Callable[[int], float]:
        def timed(_r: int) -> float:
            t0 = time.perf_counter()
            for _ in range(plan.train_steps):
                model.train_on_batch(x, y)
            return (time.perf_counter() - t0) / plan.train_steps
        return timed

    values = alternate({"reference": steps(ref_model, x_ref, y_ref), "course": steps(course_model, x_c, y_c)}, plan.train_repeats)
    bench.add(Row("train_step", f"one training step, same model (1,352,897 parameters), reference batch 2 vs course batch {bs}", "time",
                  summarize(values["reference"]), summarize(values["course"]), note="seconds per step (different batch sizes)"))
    bench.add(Row("train_samples", "training throughput, samples/s", "rate",
                  summarize([2 / v for v in values["reference"]]), summarize([bs / v for v in values["course"]]),
                  note="the model is the bottleneck on a CPU"))
    bench.extra["train_values"] = {"reference": [2 / v for v in values["reference"]], "course": [bs / v for v in values["course"]], "batch_size": bs}


def _predict_run_folder(folder: Path) -> Path:
    """A run folder with an untrained course model and its preprocess.json, as ``predict_scan`` expects."""
    from ctutils.atomic import atomic_path
    from ctutils.models import build_cnn3d
    from ctutils.preprocess import PreprocessConfig
    from ctutils.training import save_model_atomic

    model_path = folder / "model.keras"
    save_model_atomic(build_cnn3d(), model_path)
    with atomic_path(folder / "preprocess.json") as tmp:
        tmp.write_text(json.dumps({**PreprocessConfig().to_dict(), "class_names": ["normal", "abnormal"], "input_shape": [*SHAPE, 1]}, indent=2))
    return model_path


def predict(bench: Bench) -> None:
    """One raw scan end to end, and one preprocessed volume through the model alone."""
    bench.import_tf()
    from ctutils.predict import load_model, predict_scan

    model_path = _predict_run_folder(bench.out / "predict-run")
    t0 = time.perf_counter()
    model = load_model(model_path)
    bench.extra["predict_model_load_s"] = time.perf_counter() - t0
    scan = bench.inputs["abnormal"][0]
    x = R.process_scan(scan)
    x_course = np.asarray(x, dtype=np.float32)[np.newaxis, ..., np.newaxis]
    R.predict(model, x)  # warm up both paths
    predict_scan(scan, model_path=model_path, model=model)
    values = alternate(
        {
            "reference": seconds_of(lambda: R.predict(model, R.process_scan(scan))),
            "course": seconds_of(lambda: predict_scan(scan, model_path=model_path, model=model)),
            "reference-model": seconds_of(lambda: R.predict(model, x)),
            "course-model": seconds_of(lambda: model(x_course, training=False).numpy()),
        },
        bench.plan.predict_repeats,
    )
    bench.add(Row("predict_scan", "predict one raw scan end to end (read, preprocess, model)", "time",
                  summarize(values["reference"]), summarize(values["course"]),
                  note="reference: process_scan + model.predict; course: ctutils.predict.predict_scan (model loaded once)"))
    bench.add(Row("predict_model", "predict one preprocessed volume (model only)", "time",
                  summarize(values["reference-model"]), summarize(values["course-model"]),
                  note="model.predict vs model(x, training=False)"))


# ----------------------------------------------------------------------------- GPU


def _gpu_build(shape: tuple[int, ...], policy: str, xla: bool) -> Any:
    """The course's network under a precision ``policy``, compiled with or without XLA."""
    import keras

    from ctutils.models import build_cnn3d

    keras.mixed_precision.set_global_policy(policy)
    model = build_cnn3d((*shape, 1))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", jit_compile=xla)
    return model


def _gpu_precision_rates(x: np.ndarray, y: np.ndarray, steps: int, mixed_policy: str, device: str) -> dict[str, tuple[float, str, bool]]:
    """Training samples/s for float32 and mixed precision, each with and without XLA: {label: (rate, policy, xla)}."""
    rates = {}
    for policy in ("float32", mixed_policy):
        for xla in (False, True):
            model = _gpu_build(x.shape[1:-1], policy, xla)
            for _ in range(2):
                model.train_on_batch(x, y)
            t0 = time.perf_counter()
            for _ in range(steps):
                model.train_on_batch(x, y)
            label = f"{policy}{' + XLA' if xla else ''}"
            rates[label] = (len(x) * steps / (time.perf_counter() - t0), policy, xla)
            log(f"  {device}: {label}: {rates[label][0]:.1f} samples/s")
    return rates


def _gpu_fit_rates(model: Any, piped: Any, x: np.ndarray, y: np.ndarray, steps: int) -> dict[str, float]:
    """Does the course's pipeline keep the device busy? fit samples/s through it vs on one constant batch."""
    import tensorflow as tf

    rates = {}
    for label, ds in (("constant", tf.data.Dataset.from_tensors((x, y)).repeat()), ("pipeline", piped)):
        model.fit(ds, epochs=1, steps_per_epoch=2, verbose=0)
        t0 = time.perf_counter()
        model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)
        rates[label] = len(x) * steps / (time.perf_counter() - t0)
    return rates


def gpu(bench: Bench) -> None:
    """On a GPU: training samples/s per precision and XLA setting, and whether the pipeline keeps up."""
    tf = bench.import_tf()
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and not bench.args.force_gpu_section:
        bench.extra["gpu"] = {"available": False, "note": "no GPU on this machine"}
        log("  no GPU on this machine")
        return
    import keras

    from ctutils.augment import AugmentConfig
    from ctutils.pipeline import make_arrays_dataset, make_dataset

    device = tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name) if gpus else "CPU (forced, code-path test)"
    shape, bs = (SHAPE if gpus else (48, 48, 48)), course_batch_size()
    steps = bench.plan.gpu_steps if gpus else 2
    rng = np.random.default_rng(0)
    x, y = rng.random((bs, *shape, 1), dtype=np.float32), (rng.random(bs) > 0.5).astype(np.float32)
    mixed_policy = "mixed_float16" if gpus else "mixed_bfloat16"  # CPU has no float16 MaxPool3D kernel
    previous = keras.mixed_precision.global_policy()
    try:
        configs = _gpu_precision_rates(x, y, steps, mixed_policy, device)
        best = max(configs, key=lambda label: configs[label][0])
        model = _gpu_build(shape, configs[best][1], configs[best][2])
        if gpus:
            piped = make_dataset(bench.dataset_cache(), "train", batch_size=bs, augment=AugmentConfig(), seed=0, repeat=True)
        else:
            vols = rng.random((8, *shape), dtype=np.float32)
            piped = make_arrays_dataset(vols, np.arange(8) % 2, batch_size=bs, augment=AugmentConfig(), seed=0, repeat=True)
        rates = _gpu_fit_rates(model, piped, x, y, steps)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    keeps_up = rates["pipeline"] / rates["constant"]
    bench.extra["gpu"] = {
        "available": bool(gpus), "device": device, "shape": list(shape), "batch_size": bs, "steps": steps,
        "train_samples_per_s": {k: v[0] for k, v in configs.items()}, "best": best,
        "fit_samples_per_s": rates, "pipeline_keeps_up_ratio": keeps_up, "pipeline_keeps_up": keeps_up >= 0.9,
        "note": "fit through ctutils.pipeline.make_dataset vs fit on one constant batch, best precision/XLA setting",
    }
    for key, (rate, _, _) in configs.items():
        bench.add(Row(f"gpu_train_{key.replace(' + ', '_').lower()}", f"GPU training samples/s, {key} (vs float32, no XLA)", "rate",
                      {"median": configs["float32"][0], "n": 1}, {"median": rate, "n": 1}, where=device))
    bench.add(Row("gpu_pipeline_keeps_up", f"GPU fit samples/s through the course pipeline (vs constant data), {best}", "rate",
                  {"median": rates["constant"], "n": 1}, {"median": rates["pipeline"], "n": 1}, where=device,
                  note="ratio ≥ 0.9: the pipeline keeps the GPU busy"))


SECTIONS: dict[str, Callable[[Bench], None]] = {
    "preprocess": preprocess_one,
    "dataset": dataset,
    "scaling": scaling,
    "memory": memory,
    "augment": augment,
    "pipeline": pipeline,
    "train": train,
    "predict": predict,
    "gpu": gpu,
}
