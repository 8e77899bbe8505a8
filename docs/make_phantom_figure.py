"""Regenerate docs/img/phantom_vs_real.png, docs/img/phantom_grades.png and the realism table of
docs/phantoms.md.

Usage (from the repository root)::

    .venv/bin/python docs/make_phantom_figure.py [--n 100] [--size 256]

The real chest CT is the repository's ``data/real-ct/lung1.nii.gz``. The script prints the
Markdown tables to stdout: HU-class shares inside the body (real CT against the mean, min and max of
``--n`` normal phantoms of the default dataset, seed 0) and the Jensen-Shannon distance of each
phantom's in-body histogram to the real CT's (:mod:`ctutils.realism`).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ctutils.baseline import body_mask  # noqa: E402
from ctutils.course import real_ct_path  # noqa: E402
from ctutils.orientation import display_slice  # noqa: E402
from ctutils.phantoms import make_phantom  # noqa: E402
from ctutils.realism import HU_CLASSES, body_hu_histogram, js_distance  # noqa: E402


def canonical(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    return np.asanyarray(nib.as_closest_canonical(nib.Nifti1Image(data, affine)).dataobj)


def label(lo: float, hi: float) -> str:
    if np.isinf(lo):
        return f"< {hi:g}"
    if np.isinf(hi):
        return f">= {lo:g}"
    return f"{lo:g} … {hi:g}"


def realism_tables(real: np.ndarray, n: int, size: int) -> None:
    """Print the HU-class table and the distance summary for ``n`` normal phantoms of seed 0."""
    real_h = body_hu_histogram(real)
    rows, dist, expiratory = [], [], []
    for i in range(1, n + 1):
        p = make_phantom(grade=0, rng=np.random.default_rng([0, 0, i]), size=size)
        h = body_hu_histogram(p.data)
        rows.append(h)
        dist.append(js_distance(real_h, h))
        expiratory.append(p.info["confounders"]["expiratory"])
    ours, dist, expiratory = np.array(rows), np.array(dist), np.array(expiratory)
    print(f"| HU class | range | real CT | phantoms (mean of {n}) | min | max |")
    print("|---|---|---:|---:|---:|---:|")
    for k, (name, (lo, hi)) in enumerate(HU_CLASSES.items()):
        print(f"| {name} | {label(lo, hi)} | {real_h[k]:.1%} | {ours[:, k].mean():.1%} | "
              f"{ours[:, k].min():.1%} | {ours[:, k].max():.1%} |".replace("%", " %"))
    print()
    print(f"Jensen-Shannon distance to the real CT, {n} normal phantoms at {size} px: mean "
          f"{dist.mean():.3f} (median {np.median(dist):.3f}, range {dist.min():.3f}-{dist.max():.3f}); "
          f"inspiratory ({(~expiratory).sum()}) {dist[~expiratory].mean():.3f}, expiratory "
          f"({expiratory.sum()}) {dist[expiratory].mean():.3f}")


def grade_figure(size: int, out: Path) -> None:
    """One anatomy (normal study 3 of seed 0's generator state) at grades 0-4, lesion outlines in red."""
    fig, axes = plt.subplots(2, 5, figsize=(15, 6.6), dpi=80)
    for g in range(5):
        p = make_phantom(grade=g, rng=np.random.default_rng([0, 1, 3]), size=size)
        vol = canonical(p.data, p.affine)
        mask = canonical(p.lesion_mask.astype(np.uint8), p.affine)
        z = int(0.35 * vol.shape[2])
        for row, outline in ((0, False), (1, True)):
            ax = axes[row, g]
            ax.imshow(display_slice(vol, z), cmap="gray", vmin=-1000, vmax=200, interpolation="bilinear")
            if outline and g:
                ax.contour(display_slice(mask, z), levels=[0.5], colors="red", linewidths=0.7)
            ax.set_axis_off()
        title = "CT-0, normal" if g == 0 else f"CT-{g}: {p.info['involvement']:.0%} of the lungs"
        axes[0, g].set_title(title, fontsize=10)
        axes[1, g].set_title(textwrap.fill(p.info["pattern"], 30) if g else "(no lesion mask)", fontsize=8)
    fig.suptitle("The same synthetic anatomy at each MosMedData grade (slice at 35 % of the height; "
                 "bottom: the lesion mask in red). Synthetic, not a patient.", fontsize=10)
    fig.savefig(out, dpi=80, bbox_inches="tight", pil_kwargs={"optimize": True})
    plt.close(fig)


def real_figure(real_ras: np.ndarray, real: np.ndarray, size: int, out: Path) -> None:
    """The real CT beside a normal phantom, and the two in-body HU histograms."""
    p = make_phantom(grade=0, rng=np.random.default_rng([0, 0, 1]), size=size)
    ph = canonical(p.data, p.affine)
    fig = plt.figure(figsize=(11, 8), dpi=80)
    grid = fig.add_gridspec(2, 2, height_ratios=[1.0, 0.6], hspace=0.25, wspace=0.05)
    for col, (vol, z, title) in enumerate(((real_ras, 25, "real chest CT (data/real-ct), slice 25"),
                                           (ph, int(0.6 * ph.shape[2]), "normal phantom (synthetic)"))):
        ax = fig.add_subplot(grid[0, col])
        ax.imshow(display_slice(vol, z), cmap="gray", vmin=-1350, vmax=150, interpolation="bilinear")
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    ax = fig.add_subplot(grid[1, :])
    bins = np.arange(-1100, 1301, 10)
    centres = (bins[:-1] + bins[1:]) / 2
    for vol, name, colour in ((real, "real chest CT", "k"), (p.data, "normal phantom", "tab:orange")):
        values = np.clip(vol[body_mask(vol)], -1100, 1300)
        ax.semilogy(centres, np.histogram(values, bins=bins, density=True)[0], label=name,
                    color=colour, lw=1.2)
    ax.set(xlabel="HU inside the body (clipped to −1100…1300)", ylabel="density (log)",
           xlim=(-1100, 1300), ylim=(1e-7, 1e-1))
    ax.legend(loc="upper right", fontsize=9)
    fig.savefig(out, dpi=80, bbox_inches="tight", pil_kwargs={"optimize": True})
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="normal phantoms in the realism table")
    parser.add_argument("--size", type=int, default=256, help="in-plane size of the phantoms")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/img")
    args = parser.parse_args()
    image = nib.load(real_ct_path())
    real = np.asanyarray(image.dataobj)
    args.out.mkdir(parents=True, exist_ok=True)
    real_figure(canonical(real, image.affine), real, args.size, args.out / "phantom_vs_real.png")
    grade_figure(args.size, args.out / "phantom_grades.png")
    realism_tables(real, args.n, args.size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
