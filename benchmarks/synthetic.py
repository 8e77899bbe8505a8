"""How long the embedded synthetic dataset takes to generate (issue targets: the course's quick dataset
in under 1 minute, 2 × 100 studies at 512 px in under 5 minutes in either layout, on 2 cores).

Usage (from the repository root)::

    .venv/bin/python benchmarks/synthetic.py [--only quick keras-512 full-512] [--out benchmarks/out/synthetic]

There is no reference generator to alternate with, so the figures are wall-clock times of
:func:`ctutils.synthetic.generate_dataset` with every available core, with the load average before and
after each case (other processes inflate the times). Each case generates into an empty folder, which
is removed afterwards. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ctutils.machine import available_cores  # noqa: E402
from ctutils.synthetic import generate_dataset  # noqa: E402

CASES = {  # name: (normal, abnormal, size, layout, target seconds)
    "quick": (60, 60, 256, "keras-example", 60),
    "keras-512": (100, 100, 512, "keras-example", 300),
    "full-512": (100, 100, 512, "full", 300),
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime + own.ru_utime + own.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "synthetic")
    parser.add_argument("--keep", action="store_true", help="keep the generated folders")
    args = parser.parse_args()
    cores = available_cores()
    print(f"{cores} cores; python {sys.version.split()[0]}")
    print("| dataset | layout | wall | CPU (user + sys) | size on disk | load before → after | target |")
    print("|---|---|---:|---:|---:|---|---:|")
    for name in args.only:
        normal, abnormal, size, layout, target = CASES[name]
        out = args.out / name
        shutil.rmtree(out, ignore_errors=True)
        load_before = os.getloadavg()[0]
        cpu0, t0 = _children_cpu(), time.perf_counter()
        generate_dataset(out, normal=normal, abnormal=abnormal, seed=0, size=size, layout=layout,
                         progress=False)
        wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
        megabytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
        verdict = "met" if wall <= target else "missed"
        print(f"| {normal} + {abnormal} at {size} px | {layout} | {wall:.1f} s | {cpu:.1f} s | "
              f"{megabytes:,.0f} MB | {load_before:.2f} → {os.getloadavg()[0]:.2f} | "
              f"< {target} s: {verdict} |", flush=True)
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
