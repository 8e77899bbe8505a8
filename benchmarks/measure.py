"""Timing and memory primitives shared by the sections and the child probes (standard library only)."""

from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

_T0 = time.perf_counter()


def log(message: str) -> None:
    """Progress line on stderr with the elapsed time and the 1-minute load average."""
    elapsed = time.perf_counter() - _T0
    print(f"[{elapsed:7.1f} s | load {os.getloadavg()[0]:4.1f}] {message}", file=sys.stderr, flush=True)


def cores() -> int:
    """CPU cores this process may use (:func:`ctutils.machine.available_cores`)."""
    from ctutils.machine import available_cores

    return available_cores()


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """Median, min, max and the raw values of one measured quantity."""
    v = [float(x) for x in values]
    if not v:
        return {"median": None, "min": None, "max": None, "n": 0, "values": []}
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v), "values": [round(x, 6) for x in v]}


def seconds_of(fn: Callable[[], Any]) -> Callable[[int], float]:
    """A runner for :func:`alternate` that times one call of ``fn`` (seconds)."""

    def run_once(_repeat: int) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    return run_once


def alternate(runners: dict[str, Callable[[int], float]], repeats: int) -> dict[str, list[float]]:
    """Run each measurement once per repeat, in the same order every repeat (A B A B …)."""
    values: dict[str, list[float]] = {name: [] for name in runners}
    for r in range(repeats):
        for name, fn in runners.items():
            values[name].append(float(fn(r)))
        log(f"  repeat {r + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:.4g}" for k, v in values.items()))
    return values


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """Memory fields of ``/proc/PID/status`` in KiB (VmRSS, VmHWM, RssAnon, RssFile, RssShmem)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                    out[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


def vmhwm_kib() -> int:
    """Peak resident set size of this process so far (KiB), from ``/proc/self/status``."""
    hwm = proc_status().get("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def children_maxrss_kib() -> int:
    """Largest peak RSS among terminated, waited-for child processes (KiB on Linux)."""
    return int(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def cpu_seconds() -> float:
    """User + system CPU time of this process and its waited-for children."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def warm_page_cache(paths: Sequence[Path]) -> None:
    """Read every file once so that no side pays for the first read from disk."""
    for p in paths:
        with open(p, "rb") as handle:
            while handle.read(1 << 22):
                pass
