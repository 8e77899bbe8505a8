"""The benchmark's inputs: synthetic 512 × 512 × 40–60 int16 ``.nii.gz`` chest phantoms and subsets of them."""

from __future__ import annotations

import concurrent.futures as cf
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.config import SLICES_RANGE
from benchmarks.measure import cores, log


def _write_input(task: tuple[str, int, int, int, int]) -> str:
    """Worker: make study ``index`` of class ``label`` (seeded by (seed, label, index)) and write it atomically."""
    import nibabel as nib

    from ctutils.atomic import atomic_path
    from ctutils.phantoms import make_phantom

    path, label, index, seed, size = task
    n_slices = int(np.random.default_rng([seed, label, index, 7]).integers(SLICES_RANGE[0], SLICES_RANGE[1] + 1))
    phantom = make_phantom(grade=2 * label, rng=np.random.default_rng([seed, label, index]), size=size, n_slices=n_slices)
    image = nib.Nifti1Image(np.asarray(phantom.data, dtype=np.int16), phantom.affine)
    image.header.set_data_dtype(np.int16)
    image.header.set_xyzt_units("mm", "sec")
    image.set_sform(phantom.affine, code=1)
    image.set_qform(phantom.affine, code=1)
    with atomic_path(path) as tmp:
        nib.save(image, tmp)
    return path


def make_inputs(out: Path, *, per_class: int, seed: int, size: int) -> dict[str, Any]:
    """Generate (or reuse) the pool of synthetic studies: ``CT-0/study_NNNN`` and ``CT-23/study_5NNN``."""
    from ctutils.phantoms import PHANTOM_VERSION

    tag = f"phantoms-v{PHANTOM_VERSION}"  # a new generator version gets a new pool
    pool = out / "inputs" / f"{tag}-{size}px-seed{seed}"
    tasks = []
    for label, folder, offset in ((0, "CT-0", 0), (1, "CT-23", 5000)):
        (pool / folder).mkdir(parents=True, exist_ok=True)
        for i in range(1, per_class + 1):
            path = pool / folder / f"study_{offset + i:04d}.nii.gz"
            if not path.is_file():
                tasks.append((str(path), label, i, seed, size))
    t0 = time.perf_counter()
    if tasks:
        log(f"generating {len(tasks)} synthetic studies at {size} px into {pool} (cached for later runs)")
        with cf.ProcessPoolExecutor(max_workers=cores()) as executor:
            for done, _ in enumerate(executor.map(_write_input, tasks), 1):
                if done % 10 == 0 or done == len(tasks):
                    log(f"  {done}/{len(tasks)} studies")
    normal = [pool / "CT-0" / f"study_{i:04d}.nii.gz" for i in range(1, per_class + 1)]
    abnormal = [pool / "CT-23" / f"study_{5000 + i:04d}.nii.gz" for i in range(1, per_class + 1)]
    return {
        "pool": pool, "normal": normal, "abnormal": abnormal, "generator": "ctutils.phantoms.make_phantom", "tag": tag,
        "generated": len(tasks), "generate_s": time.perf_counter() - t0, "size": size, "seed": seed,
    }


def subset(inputs: dict[str, Any], n: int, out: Path) -> tuple[Path, list[Path], list[Path]]:
    """A dataset folder of ``n`` studies (n/2 per class) made of symlinks into the pool."""
    n_abnormal = n // 2
    n_normal = n - n_abnormal
    if n_normal > len(inputs["normal"]) or n_abnormal > len(inputs["abnormal"]):
        raise ValueError(f"{inputs['pool']}: {n} scans requested, the pool has {len(inputs['normal'])} per class")
    root = out / "sets" / f"{inputs['tag']}-n{n}"
    normal, abnormal = inputs["normal"][:n_normal], inputs["abnormal"][:n_abnormal]
    for folder, paths in (("CT-0", normal), ("CT-23", abnormal)):
        d = root / folder
        d.mkdir(parents=True, exist_ok=True)
        wanted = {p.name for p in paths}
        for stale in d.iterdir():
            if stale.name not in wanted:
                stale.unlink()
        for p in paths:
            link = d / p.name
            if not link.exists():
                link.symlink_to(p.resolve())
    return root, normal, abnormal
