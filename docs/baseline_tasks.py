"""The one-feature baseline on each task of the synthetic data: the table of docs/phantoms.md.

Usage (from the repository root)::

    .venv/bin/python docs/baseline_tasks.py [--n 100] [--size 256] [--data data/baseline-tasks]

For each task it generates (or reuses) ``--n`` normal and ``--n`` abnormal studies with seed 0, computes
the ground-glass fraction of every study (:func:`ctutils.baseline.dataset_features`, in-plane subsampled
to 128 voxels), and prints its ROC-AUC with a 95 % bootstrap interval, the held-out accuracy of the
threshold rule over 100 random 70/30 splits, and the feature's median per grade. Synthetic data only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ctutils.baseline import dataset_features, holdout_accuracy  # noqa: E402
from ctutils.evaluation import metrics_with_ci  # noqa: E402
from ctutils.synthetic import generate_dataset  # noqa: E402

TASKS = {  # name: (layout, grades)
    "CT-0 against CT-23 (CT-2 and CT-3; the default)": ("keras-example", None),
    "CT-0 against CT-1 … CT-4 (full layout, binary)": ("full", None),
    "CT-0 against CT-1 only (mild disease)": ("full", [1]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="studies per class")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "baseline-tasks")
    args = parser.parse_args()
    print("| task | studies | baseline ROC-AUC [95 % CI] | held-out accuracy, 100 splits (mean ± sd) "
          "| median feature per grade |")
    print("|---|---:|---|---|---|")
    for k, (task, (layout, grades)) in enumerate(TASKS.items()):
        root = args.data / f"task{k}-{layout}-{'-'.join(map(str, grades or []))}-{args.n}-{args.size}"
        generate_dataset(root, normal=args.n, abnormal=args.n, seed=0, size=args.size, layout=layout,
                         grades=grades, progress=False)
        features, labels, paths = dataset_features(root, max_inplane=128, progress=False)
        metrics = metrics_with_ci(labels, features, threshold=float(np.median(features)), n_boot=1000, seed=0)
        auc, low, high = metrics["roc_auc"]
        accs = [holdout_accuracy(features, labels, seed=s)["test_accuracy"] for s in range(100)]
        meta = {s["path"]: s["grade"] for s in json.loads((root / "synthetic.json").read_text())["studies"]}
        grade = np.array([meta[f"{p.parent.name}/{p.name}"] for p in paths])
        medians = ", ".join(f"CT-{g} {np.median(features[grade == g]):.2f}" for g in sorted(set(grade)))
        print(f"| {task} | {len(labels)} | {auc:.3f} [{low:.2f}, {high:.2f}] | "
              f"{np.mean(accs):.3f} ± {np.std(accs):.3f} | {medians} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
