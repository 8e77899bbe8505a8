"""Regenerate docs/img/phantom_vs_real.png and the HU-class table of docs/phantoms.md.

Usage (from the repository root)::

    .venv/bin/python docs/make_phantom_figure.py [--real PATH] [--n 10] [--size 512]

The real chest CT is ``../shared/data/real-ct/lung1.nii.gz`` (not part of the repository); the
script stops with a message if it is missing. It prints the Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ctutils.phantoms import make_phantom  # noqa: E402

REAL_CT = ROOT.parent / "shared/data/real-ct/lung1.nii.gz"
CLASSES = [
    ("air", -np.inf, -900),
    ("aerated lung", -900, -700),
    ("ground glass / partial volume", -700, -300),
    ("(transition)", -300, -150),
    ("fat", -150, -30),
    ("soft tissue, blood", -30, 150),
    ("dense soft tissue, cartilage", 150, 300),
    ("bone", 300, np.inf),
]


def display_slice(volume: np.ndarray, z: int) -> np.ndarray:
    """Axial slice of a RAS volume, anterior up, patient's right on the viewer's left."""
    try:
        from ctutils.orientation import display_slice as lead_display
    except ImportError:
        return volume[:, :, z].T[::-1, ::-1]
    return lead_display(volume, z)


def canonical(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    return np.asanyarray(nib.as_closest_canonical(nib.Nifti1Image(data, affine)).dataobj)


def fractions(data: np.ndarray) -> list[float]:
    return [float(np.mean((data >= lo) & (data < hi))) for _, lo, hi in CLASSES]


def label(lo: float, hi: float) -> str:
    if np.isinf(lo):
        return f"< {hi:g}"
    if np.isinf(hi):
        return f">= {lo:g}"
    return f"{lo:g} … {hi:g}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=REAL_CT)
    parser.add_argument("--n", type=int, default=10, help="phantoms averaged in the table")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--out", type=Path, default=ROOT / "docs/img/phantom_vs_real.png")
    args = parser.parse_args()
    if not args.real.exists():
        print(f"{args.real}: real chest CT not found (see shared/data/real-ct/README.md)")
        return 1
    real_img = nib.load(args.real)
    real = np.asanyarray(real_img.dataobj)
    real_ras = canonical(real, real_img.affine)

    # phantoms of the default dataset (seed 0): study i of class c uses default_rng([0, c, i])
    table = []
    hist_bins = np.arange(-1100, 1301, 10)
    hist = np.zeros(len(hist_bins) - 1)
    for i in range(args.n):
        label_c = i % 2
        data, _, info = make_phantom(abnormal=bool(label_c),
                                     rng=np.random.default_rng([0, label_c, i // 2 + 1]),
                                     size=args.size)
        table.append(fractions(data))
        hist += np.histogram(np.clip(data, -1100, 1300), bins=hist_bins, density=True)[0]
    hist /= args.n
    ours = np.array(table)

    # the pair shown: abnormal study 3 of seed 0 and the same anatomy without lesions
    pair_rng = [0, 1, 3]
    normal, aff, _ = make_phantom(abnormal=False, rng=np.random.default_rng(pair_rng),
                                  size=args.size)
    abnormal, _, info = make_phantom(abnormal=True, rng=np.random.default_rng(pair_rng),
                                     size=args.size)
    normal_ras, abnormal_ras = canonical(normal, aff), canonical(abnormal, aff)
    n = normal.shape[2]
    diff = np.abs(abnormal_ras.astype(np.int32) - normal_ras).sum(axis=(0, 1))
    lo, hi = int(0.4 * n), int(0.75 * n)
    z_ph = lo + int(np.argmax(diff[lo:hi]))
    z_real = 25

    fig = plt.figure(figsize=(12, 8.2), dpi=90)
    grid = fig.add_gridspec(2, 3, height_ratios=[1.0, 0.62], hspace=0.22, wspace=0.04)
    panels = [
        (real_ras, z_real, f"real chest CT (lung1), slice {z_real}"),
        (normal_ras, z_ph, f"phantom, normal, slice {z_ph}"),
        (abnormal_ras, z_ph, f"same phantom + GGO ({info['severity']})"),
    ]
    for col, (vol, z, title) in enumerate(panels):
        ax = fig.add_subplot(grid[0, col])
        ax.imshow(display_slice(vol, z), cmap="gray", vmin=-1350, vmax=150,
                  interpolation="bilinear")
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    fig.text(0.5, 0.405, "lung window −1350…150 HU; anterior up, patient's right on the left",
             ha="center", fontsize=9)
    ax = fig.add_subplot(grid[1, :])
    real_hist = np.histogram(np.clip(real, -1100, 1300), bins=hist_bins, density=True)[0]
    centres = (hist_bins[:-1] + hist_bins[1:]) / 2
    ax.semilogy(centres, real_hist, label="real chest CT", color="k", lw=1.2)
    ax.semilogy(centres, hist, label=f"phantoms (mean of {args.n}, {args.size} px)",
                color="tab:orange", lw=1.2)
    ax.set_xlabel("HU (clipped to −1100…1300)")
    ax.set_ylabel("density (log)")
    ax.set_xlim(-1100, 1300)
    ax.set_ylim(1e-7, 1e-1)
    ax.legend(loc="upper right", fontsize=9)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90, bbox_inches="tight", pil_kwargs={"optimize": True})
    plt.close(fig)

    real_f = fractions(real)
    print(f"| HU class | range | real CT | phantoms (mean of {args.n}) | min | max |")
    print("|---|---|---:|---:|---:|---:|")
    for k, (name, lo_hu, hi_hu) in enumerate(CLASSES):
        print(f"| {name} | {label(lo_hu, hi_hu)} | {100 * real_f[k]:.1f} % | "
              f"{100 * ours[:, k].mean():.1f} % | {100 * ours[:, k].min():.1f} % | "
              f"{100 * ours[:, k].max():.1f} % |")
    print(f"\nwrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
