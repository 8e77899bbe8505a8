#!/usr/bin/env python
"""Benchmark the course's pipeline against the Keras example's, side by side, in one run.

Usage::

    .venv/bin/python benchmarks/run.py --quick     # a few minutes on 2 cores
    .venv/bin/python benchmarks/run.py             # the full run (~15 min on 2 quiet cores)

Every comparison alternates the reference (``benchmarks/reference.py``, a faithful
re-implementation of the Keras example) and the course (``ctutils``) on the same inputs,
repeat after repeat (A B A B …), and reports medians with min–max and the ratio of the medians.
Inputs are synthetic 512 × 512 × 40–60 int16 ``.nii.gz`` chest phantoms made by the script
itself (cached under ``benchmarks/out/inputs``), so it runs offline.

Outputs: a table on stdout, ``benchmarks/results.json`` (summary, ratios, machine, load),
``benchmarks/out/table.md`` and, with ``--update-doc``, the generated block of ``BENCHMARKS.md``.
Memory is measured in separate subprocesses (``--child``, see ``benchmarks/probes.py``).
No timing is asserted anywhere.

This file is the command line only: the sections are in ``sections.py``, the report in
``report.py``, the child-process probes in ``probes.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python benchmarks/run.py` puts only benchmarks/ on the path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before any TensorFlow import (this script only)

import numpy as np  # noqa: E402

from benchmarks import report  # noqa: E402
from benchmarks.config import DEFAULT_OUT, DEFAULT_RESULTS, FULL, QUICK, REPEAT_FIELDS, RUN_SCRIPT, Plan  # noqa: E402
from benchmarks.inputs import make_inputs  # noqa: E402
from benchmarks.measure import log  # noqa: E402
from benchmarks.probes import CHILDREN, child_main  # noqa: E402
from benchmarks.sections import SECTIONS, Bench  # noqa: E402


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the course (ctutils) against the Keras example's pipeline (benchmarks/reference.py), "
        "alternating the two on the same synthetic inputs. Prints a table and writes benchmarks/results.json.",
        epilog="Sections: " + ", ".join(SECTIONS) + ". Example: python benchmarks/run.py --quick --only preprocess dataset",
    )
    parser.add_argument("--quick", action="store_true", help="fewer scans and repeats (a few minutes on 2 cores)")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), default=list(SECTIONS), metavar="SECTION",
                        help="run only these sections (results then go to OUT/results-partial.json unless --results is given)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per alternating comparison (default: per mode)")
    parser.add_argument("--scans", type=int, default=None, help="scans in the dataset comparison (default: 8 quick, 40 full)")
    parser.add_argument("--memory-scans", type=int, default=None, help="scans in the peak-memory probes (default: 24 quick, 140 full)")
    parser.add_argument("--scaling", type=int, nargs="+", default=None, metavar="N", help="dataset sizes of the scaling runs (default: 8 16 32 quick; 25 50 100 200 full)")
    parser.add_argument("--workers", type=int, default=None, help="course worker processes (default: all available cores)")
    parser.add_argument("--size", type=int, default=512, help="in-plane size of the synthetic studies (default 512, as MosMedData)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the inputs, shuffles and augmentation")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="scratch folder: inputs, caches, logs (default benchmarks/out)")
    parser.add_argument("--results", type=Path, default=None, help="where to write the JSON summary (default benchmarks/results.json)")
    parser.add_argument("--update-doc", type=Path, nargs="?", const=ROOT / "BENCHMARKS.md", default=None, metavar="MD",
                        help="rewrite the generated block of BENCHMARKS.md (or MD) with this run's tables")
    parser.add_argument("--render", type=Path, default=None, metavar="RESULTS_JSON",
                        help="measure nothing: re-render OUT/table.md (and, with --update-doc, BENCHMARKS.md) from a results.json")
    parser.add_argument("--force-gpu-section", action="store_true", help=argparse.SUPPRESS)  # exercise the GPU code on a CPU
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--child-args", default="{}", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def plan_of(args: argparse.Namespace) -> Plan:
    """The quick or full plan with the command line's overrides; the pool covers the largest subset."""
    overrides: dict[str, object] = {}
    if args.repeats:
        overrides.update(dict.fromkeys(REPEAT_FIELDS, args.repeats))
    if args.scans:
        overrides["dataset_scans"] = args.scans
    if args.memory_scans:
        overrides["rss_scans"] = args.memory_scans
    if args.scaling:
        overrides["scaling_scans"] = tuple(sorted(args.scaling))
    plan = replace(QUICK if args.quick else FULL, **overrides)
    needed = max(plan.dataset_scans, plan.rss_scans, *plan.scaling_scans)
    return replace(plan, pool_per_class=max(plan.pool_per_class, (needed + 1) // 2))


def command_line() -> str:
    """This run's command, with paths inside the repository written relative to it."""
    python = os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT)) else sys.executable
    return " ".join([python, os.path.relpath(RUN_SCRIPT, ROOT), *sys.argv[1:]])


def publish(block: str, out: Path, update_doc: Path | None) -> None:
    """Print the Markdown block, write OUT/table.md and, if asked, the generated block of BENCHMARKS.md."""
    print("\n" + block)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(block)
    if update_doc:
        report.update_doc(update_doc, block)
        log(f"updated the generated block of {update_doc}")


def measure(args: argparse.Namespace) -> int:
    """Run the sections asked for, then write results.json and the tables."""
    plan = plan_of(args)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    partial = set(args.only) != set(SECTIONS)
    results_path = args.results or (args.out / "results-partial.json" if partial else DEFAULT_RESULTS)
    random.seed(args.seed)  # the reference's augmentation draws from the global generators, as the example does
    np.random.seed(args.seed)
    t0 = time.perf_counter()
    inputs = make_inputs(args.out, per_class=plan.pool_per_class, seed=args.seed, size=args.size)
    bench = Bench(plan, args, inputs)
    bench.run()
    results = report.results(plan=plan, sections=list(args.only), partial=partial, command=command_line(),
                             runtime_s=time.perf_counter() - t0, load=bench.load, inputs=inputs, rows=bench.rows, extra=bench.extra)
    report.write_json(results_path, results)
    publish(report.markdown(results), args.out, args.update_doc)
    log(f"wrote {results_path} and {args.out / 'table.md'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args.child, args.child_args)
    if args.render:
        publish(report.markdown(json.loads(args.render.read_text())), args.out, args.update_doc)
        return 0
    return measure(args)


if __name__ == "__main__":
    sys.exit(main())
