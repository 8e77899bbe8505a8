"""Write data/real-ct/lung1.nii.gz: the course's real chest CT, cropped to the body and halved in-plane.

Usage (from the repository root)::

    .venv/bin/python data/real-ct/make_reduced.py SOURCE [--out data/real-ct/lung1.nii.gz]

``SOURCE`` is the full-resolution NIfTI ``lung1.nii.gz`` (512 x 512 x 48 int16 HU, converted
without resampling from ``data/lung1_image.nrrd`` of the pyradiomics 3.1.0 source distribution;
see data/real-ct/README.md). The script refuses any other file (it checks the SHA-256), so the
output is always the same bytes. The steps:

1. body mask: voxels above ``BODY_HU`` (-500 HU), largest 3-D connected component;
2. crop to the mask's bounding box plus ``MARGIN_MM`` (10 mm) on every side, clipped to the
   image; each in-plane extent is then made a multiple of the reduction factor (one more voxel
   at the end, or at the start when the end is the image border);
3. reduce in-plane by the smallest whole factor that brings both in-plane sizes to at most
   ``MAX_INPLANE`` (256): the mean of each ``factor x factor`` block of voxels (area
   averaging), rounded to the nearest HU; slices are kept as they are;
4. the affine follows: the voxel size grows by the factor, and the new voxel (0, 0, 0) sits at
   the centre of the block it averages, so every voxel keeps its place in scanner space and the
   array axes stay L, P, S.

It prints the crop box, the shapes, the voxel sizes and the SHA-256 of what it wrote.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from ctutils.io import save_volume  # noqa: E402

#: SHA-256 of the only source this script accepts (README of ../shared/data/real-ct).
SOURCE_SHA256 = "1376180937bb4788353c7c548f3dfc03f98e72a8f32a31f535f49cd96f005d90"
BODY_HU = -500.0
MARGIN_MM = 10.0
MAX_INPLANE = 256


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def body_box(hu: np.ndarray, *, voxel_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounding box ``(lo, hi)`` (voxel indices, ``hi`` exclusive) of the body plus ``MARGIN_MM``.

    ``hu`` is (X, Y, Z) in HU; ``voxel_mm`` the three voxel sizes in mm. The body is the largest
    3-D connected component of voxels above ``BODY_HU``; the box is clipped to the image.
    """
    labels, n = ndimage.label(hu > BODY_HU)
    if n == 0:
        raise ValueError(f"no voxel above {BODY_HU:g} HU: is this a CT in HU?")
    sizes = np.bincount(labels.ravel())[1:]
    body = np.argwhere(labels == 1 + int(np.argmax(sizes)))
    margin = np.ceil(MARGIN_MM / voxel_mm).astype(int)
    lo = np.maximum(body.min(axis=0) - margin, 0)
    hi = np.minimum(body.max(axis=0) + 1 + margin, hu.shape)
    return lo, hi


def whole_blocks(lo: np.ndarray, hi: np.ndarray, *, factor: int, shape: tuple[int, ...]) -> tuple[slice, ...]:
    """The box grown until each in-plane extent is a multiple of ``factor`` (at the end, else at the start)."""
    lo, hi = lo.copy(), hi.copy()
    for axis in (0, 1):
        while (hi[axis] - lo[axis]) % factor:
            if hi[axis] < shape[axis]:
                hi[axis] += 1
            else:
                lo[axis] -= 1
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def block_mean_inplane(hu: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor x factor`` in-plane blocks of an (X, Y, Z) array; X and Y divisible by ``factor``."""
    x, y, z = hu.shape
    blocks = hu.astype(np.float64).reshape(x // factor, factor, y // factor, factor, z)
    return blocks.mean(axis=(1, 3))


def reduce_ct(hu: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """Crop ``hu`` (X, Y, Z, HU) to the body and reduce it in-plane; return (int16 data, affine, facts)."""
    voxel_mm = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    lo, hi = body_box(hu, voxel_mm=voxel_mm)
    factor = int(np.ceil(max(hi[:2] - lo[:2]) / MAX_INPLANE))
    box = whole_blocks(lo, hi, factor=factor, shape=hu.shape)
    data = np.rint(block_mean_inplane(hu[box], factor)).astype(np.int16)  # means of int16 stay in range
    start = np.array([s.start for s in box], dtype=np.float64)
    to_source = np.diag([factor, factor, 1.0, 1.0])
    to_source[:3, 3] = start + [(factor - 1) / 2, (factor - 1) / 2, 0.0]
    facts = {"crop": box, "factor": factor, "voxel_mm": voxel_mm * [factor, factor, 1]}
    return data, affine @ to_source, facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the full-resolution lung1.nii.gz")
    parser.add_argument("--out", type=Path, default=ROOT / "data/real-ct/lung1.nii.gz")
    args = parser.parse_args(argv)
    if not args.source.is_file():
        parser.error(f"{args.source}: no such file")
    digest = sha256_of(args.source)
    if digest != SOURCE_SHA256:
        parser.error(f"{args.source}: SHA-256 {digest}, expected {SOURCE_SHA256} (not the lung1 source)")
    image = nib.load(args.source)
    hu = np.asanyarray(image.dataobj)
    if hu.dtype != np.int16 or hu.ndim != 3:
        parser.error(f"{args.source}: expected a 3-D int16 volume, got {hu.dtype} {hu.shape}")
    data, affine, facts = reduce_ct(hu, image.affine)
    save_volume(args.out, data, affine)
    crop = ", ".join(f"{s.start}:{s.stop}" for s in facts["crop"])  # type: ignore[attr-defined]
    print(f"source {hu.shape} {nib.aff2axcodes(image.affine)}, crop [{crop}], in-plane factor {facts['factor']}")
    print(f"wrote {args.out}: {data.shape} {data.dtype} {nib.aff2axcodes(affine)}, "
          f"voxel {np.round(facts['voxel_mm'], 6).tolist()} mm, HU {data.min()}..{data.max()}")
    print(f"{args.out.stat().st_size} bytes, sha256 {sha256_of(args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
