"""Memory probes: measurements that run in a fresh interpreter (``run.py --child KIND``).

The parent starts the child with :func:`run_child` and samples the summed RSS of the child's
whole process tree every 0.1 s (:class:`TreeSampler`), split by the phase the child announces
(:func:`set_phase`). The child prints one ``RESULT {json}`` line: its ``VmHWM``, its pool workers'
``ru_maxrss`` and timings. No third-party dependency (no psutil).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ctutils.atomic import atomic_path

from benchmarks.config import ROOT, RUN_SCRIPT, compile_like_course
from benchmarks.measure import children_maxrss_kib, cpu_seconds, proc_status, vmhwm_kib

RESULT_PREFIX = "RESULT "


class TreeSampler(threading.Thread):
    """Sample the summed RSS (and anonymous RSS) of a process and all its descendants."""

    def __init__(self, pid: int, phase_file: Path, interval_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.phase_file, self.interval_s = pid, phase_file, interval_s
        self.stop_event = threading.Event()
        self.peaks: dict[str, dict[str, int]] = {}
        self.samples = 0

    def _tree(self) -> list[int]:
        parents: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    stat = handle.read()
                ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
        tree, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(parents.get(pid, []))
        return tree

    def _sample(self, phase: str) -> None:
        rss = anon = 0
        tree = self._tree()
        root: dict[str, int] = {}
        for pid in tree:
            status = proc_status(pid)
            rss += status.get("VmRSS", 0)
            anon += status.get("RssAnon", 0)
            if pid == self.pid:
                root = status
        peak = self.peaks.setdefault(phase, {"rss_kib": 0, "anon_kib": 0, "processes": 0, "main_anon_kib": 0, "main_file_kib": 0})
        if rss > peak["rss_kib"]:
            peak["rss_kib"], peak["processes"] = rss, len(tree)
        peak["anon_kib"] = max(peak["anon_kib"], anon)
        peak["main_anon_kib"] = max(peak["main_anon_kib"], root.get("RssAnon", 0))
        peak["main_file_kib"] = max(peak["main_file_kib"], root.get("RssFile", 0))
        self.samples += 1

    def run(self) -> None:
        phase = "start"
        while not self.stop_event.is_set():
            with contextlib.suppress(OSError):
                phase = self.phase_file.read_text().strip() or phase  # written atomically; keep the last on a miss
            self._sample(phase)
            self.stop_event.wait(self.interval_s)

    def summary(self) -> dict[str, Any]:
        """The peaks by phase and the overall peaks, as stored in a probe's result."""
        def peak(key: str) -> int | None:
            return max((p[key] for p in self.peaks.values()), default=None)

        return {
            "sampled": {"peaks_by_phase": self.peaks, "samples": self.samples, "interval_s": self.interval_s},
            "sampled_peak_rss_kib": peak("rss_kib"), "sampled_peak_anon_kib": peak("anon_kib"),
            "sampled_main_anon_kib": peak("main_anon_kib"), "sampled_main_file_kib": peak("main_file_kib"),
        }


def run_child(kind: str, args: dict[str, Any], out: Path, timeout_s: float) -> dict[str, Any]:
    """Run ``run.py --child KIND`` in a fresh interpreter, sampling its process tree's memory."""
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    label = args.get("label", "x")
    phase_file, log_path = logs / f"{kind}-{label}.phase", logs / f"{kind}-{label}.log"
    phase_file.write_text("start")
    args = {**args, "phase_file": str(phase_file)}
    with open(log_path, "w") as log_handle:
        proc = subprocess.Popen(
            [sys.executable, str(RUN_SCRIPT), "--child", kind, "--child-args", json.dumps(args)],
            stdout=subprocess.PIPE, stderr=log_handle, text=True, cwd=str(ROOT),
        )
        sampler = TreeSampler(proc.pid, phase_file)
        sampler.start()
        try:
            stdout, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, _ = proc.communicate()
            raise RuntimeError(f"{kind}: child ran past {timeout_s:.0f} s; see {log_path}") from None
        finally:
            sampler.stop_event.set()
            sampler.join()
    result = None
    for line in stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
    if proc.returncode != 0 or result is None:
        tail = log_path.read_text()[-2000:]
        raise RuntimeError(f"{kind}: child failed (exit {proc.returncode}); see {log_path}\n{tail}")
    return {**result, **sampler.summary()}


def set_phase(args: dict[str, Any], name: str) -> None:
    """Tell the parent's sampler which phase the child is in (atomic replace: never read half-written)."""
    with atomic_path(args["phase_file"]) as tmp:
        tmp.write_text(name)


# ----------------------------------------------------------------------------- the children


def _fresh_course_cache(args: dict[str, Any]) -> Any:
    """Build a fresh course cache of ``args['src']`` into ``args['cache']`` with ``args['workers']`` workers."""
    from ctutils.cache import build_cache
    from ctutils.preprocess import PreprocessConfig

    out = Path(args["cache"])
    shutil.rmtree(out, ignore_errors=True)
    set_phase(args, "preprocess")
    return build_cache(args["src"], out, config=PreprocessConfig(), workers=args["workers"], progress=False)


def child_scaling(args: dict[str, Any]) -> dict[str, Any]:
    """Course: build a fresh cache of ``src`` with all cores; time it and report peaks."""
    t0, c0 = time.perf_counter(), cpu_seconds()
    cache = _fresh_course_cache(args)
    wall = time.perf_counter() - t0
    return {
        "n": len(cache), "wall_s": wall, "cpu_s": cpu_seconds() - c0, "reused": bool(cache.info.get("reused")),
        "vmhwm_kib": vmhwm_kib(), "workers_maxrss_kib": children_maxrss_kib(), "status_end": proc_status(),
    }


def _train_reference(model: Any, train_dataset: Any, validation_dataset: Any, steps: int) -> dict[str, Any]:
    """``model.fit`` as the example does; when it fails (TF 2.21 / Keras 3), record why and use train_on_batch."""
    from benchmarks import reference as R

    try:
        model.fit(train_dataset, validation_data=validation_dataset, epochs=1, steps_per_epoch=steps, verbose=0)
        return {"fit": "model.fit worked"}
    except Exception as error:  # noqa: BLE001 - recorded: the reference's known failure on TF 2.21 / Keras 3
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        result: dict[str, Any] = {"fit": f"model.fit failed: {type(error).__name__}: {first[:200]}"}
    model = R.compile_model(R.build_model())  # the failed fit leaves a half-built train function
    iterator = iter(train_dataset)
    t0 = time.perf_counter()
    for _ in range(steps):
        x, y = next(iterator)
        model.train_on_batch(x, y)
    result["train_on_batch_s"] = time.perf_counter() - t0
    return result


def child_memory_reference(args: dict[str, Any]) -> dict[str, Any]:
    """Reference: preprocess every scan into RAM, from_tensor_slices, then a few batch-2 steps."""
    from benchmarks import reference as R

    result: dict[str, Any] = {}
    random.seed(0)
    set_phase(args, "preprocess")
    t0 = time.perf_counter()
    data = R.load_dataset(args["normal"], args["abnormal"])
    result["preprocess_s"] = time.perf_counter() - t0
    result["vmhwm_after_preprocess_kib"] = vmhwm_kib()
    set_phase(args, "setup")
    import tensorflow as tf

    tf.random.set_seed(0)
    train_dataset = R.make_train_dataset(data.x_train, data.y_train)
    validation_dataset = R.make_validation_dataset(data.x_val, data.y_val)
    model = R.compile_model(R.build_model())
    result["vmhwm_after_setup_kib"] = vmhwm_kib()
    set_phase(args, "train")
    steps = int(args["steps"])
    result |= _train_reference(model, train_dataset, validation_dataset, steps)
    result["vmhwm_after_train_kib"] = result["vmhwm_kib"] = vmhwm_kib()
    result["workers_maxrss_kib"] = children_maxrss_kib()
    result["n_scans"] = len(data.normal_scans) + len(data.abnormal_scans)
    result |= {"steps": steps, "batch_size": 2}
    return result


def child_memory_course(args: dict[str, Any]) -> dict[str, Any]:
    """Course: fresh parallel cache of the same scans, then a few steps per batch size streaming from it."""
    result: dict[str, Any] = {}
    t0 = time.perf_counter()
    cache = _fresh_course_cache(args)
    result["preprocess_s"] = time.perf_counter() - t0
    result["vmhwm_after_preprocess_kib"] = vmhwm_kib()
    result["workers_maxrss_kib"] = children_maxrss_kib()
    result["status_after_preprocess"] = proc_status()
    set_phase(args, "setup")
    import keras

    from ctutils.augment import AugmentConfig
    from ctutils.models import build_cnn3d
    from ctutils.pipeline import make_dataset

    keras.utils.set_random_seed(0)
    model = build_cnn3d()
    result["compile"] = compile_like_course(model)
    result["vmhwm_after_setup_kib"] = vmhwm_kib()
    steps = int(args["steps"])
    for batch_size in args["batch_sizes"]:
        set_phase(args, f"train-b{batch_size}")
        dataset = make_dataset(cache, "train", batch_size=batch_size, augment=AugmentConfig(), seed=0, repeat=True)
        model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
        result[f"vmhwm_after_train_b{batch_size}_kib"] = vmhwm_kib()
    result["fit"] = "model.fit on ctutils.pipeline.make_dataset"
    result["vmhwm_kib"] = vmhwm_kib()
    result |= {"n_scans": len(cache), "steps": steps, "batch_sizes": list(args["batch_sizes"])}
    return result


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "scaling": child_scaling,
    "memory-reference": child_memory_reference,
    "memory-course": child_memory_course,
}


def child_main(kind: str, args_json: str) -> int:
    """Entry point of ``run.py --child KIND``: run the probe and print its ``RESULT`` line."""
    result = CHILDREN[kind](json.loads(args_json))
    print(RESULT_PREFIX + json.dumps(result, default=str), flush=True)
    return 0
