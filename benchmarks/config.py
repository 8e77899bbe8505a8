"""What a benchmark run measures: paths, input sizes, the quick and full plans, the course's recipe."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RUN_SCRIPT = HERE / "run.py"
DEFAULT_OUT = HERE / "out"
DEFAULT_RESULTS = HERE / "results.json"
SLICES_RANGE = (40, 60)  # inclusive, slices per synthetic study
SHAPE = (128, 128, 64)


@dataclass(frozen=True)
class Plan:
    """How much work each section does (``--quick`` or full)."""

    mode: str
    pool_per_class: int  # synthetic studies per class (CT-0, CT-23) generated and cached
    one_scan_repeats: int
    correctness_scans: int
    dataset_scans: int
    dataset_repeats: int
    augment_volumes: int
    augment_repeats: int
    pipeline_samples: int
    pipeline_repeats: int
    train_steps: int
    train_repeats: int
    predict_repeats: int
    rss_scans: int
    rss_steps: int
    scaling_scans: tuple[int, ...]
    gpu_steps: int


QUICK = Plan(
    mode="quick", pool_per_class=16, one_scan_repeats=3, correctness_scans=2, dataset_scans=8,
    dataset_repeats=2, augment_volumes=6, augment_repeats=3, pipeline_samples=16, pipeline_repeats=3,
    train_steps=2, train_repeats=2, predict_repeats=3, rss_scans=24, rss_steps=2,
    scaling_scans=(8, 16, 32), gpu_steps=5,
)
FULL = Plan(
    mode="full", pool_per_class=100, one_scan_repeats=5, correctness_scans=3, dataset_scans=40,
    dataset_repeats=2, augment_volumes=12, augment_repeats=5, pipeline_samples=48, pipeline_repeats=3,
    train_steps=3, train_repeats=3, predict_repeats=5, rss_scans=140, rss_steps=3,
    scaling_scans=(25, 50, 100, 200), gpu_steps=20,
)
REPEAT_FIELDS = ("one_scan_repeats", "dataset_repeats", "augment_repeats", "pipeline_repeats", "train_repeats", "predict_repeats")


def course_batch_size() -> int:
    """Batch size of the course's ``improved`` recipe."""
    from ctutils.training import RECIPES

    return int(RECIPES["improved"].batch_size)


def compile_like_course(model: Any) -> str:
    """Compile ``model`` as ``ctutils.training`` does for the improved recipe; return how."""
    from ctutils.training import RECIPES, compile_model

    compile_model(model, RECIPES["improved"], jit_compile=False)
    return "ctutils.training.compile_model(improved)"
