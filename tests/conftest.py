"""Shared fixtures: tiny NIfTI files written by hand, a tiny dataset, and the real chest CT."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from ctutils.course import REAL_CT_FILE, ROOT_ENV
from ctutils.exercises import NBGRADER_ENV

os.environ.setdefault("MPLBACKEND", "Agg")  # tests never open windows
# A course root named in the environment, or an nbgrader run around the tests, would change what
# the tests (and the chapters' kernels they start) see; tests that need them set them themselves.
for _name in (ROOT_ENV, NBGRADER_ENV):
    os.environ.pop(_name, None)

#: The real chest CT that ships with the course (data/real-ct/README.md).
REAL_CT = Path(__file__).resolve().parents[1] / REAL_CT_FILE


def make_nifti(
    path: str | os.PathLike[str],
    data: np.ndarray,
    affine: np.ndarray | None = None,
    *,
    slope: float | None = None,
    inter: float | None = None,
) -> Path:
    """Write ``data`` (stored dtype kept) with ``affine`` to a NIfTI-1 file; return its path.

    ``slope`` / ``inter`` go to ``scl_slope`` / ``scl_inter``: the file then holds the raw
    ``data`` and a reader must return ``data * slope + inter``.
    """
    import nibabel as nib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    affine = np.eye(4) if affine is None else np.asarray(affine, dtype=np.float64)
    image = nib.Nifti1Image(np.asarray(data), affine)
    if slope is not None or inter is not None:
        image.header.set_slope_inter(1.0 if slope is None else slope, 0.0 if inter is None else inter)
    nib.save(image, path)
    return path


def make_dataset(
    root: str | os.PathLike[str],
    *,
    n_normal: int = 6,
    n_abnormal: int = 6,
    shape: Sequence[int] = (20, 20, 6),
    seed: int = 0,
) -> Path:
    """A MosMedData-shaped folder of tiny int16 scans written with ``ctutils.io.save_volume``.

    ``<root>/CT-0/study_0001.nii.gz`` … and ``<root>/CT-23/study_0101.nii.gz`` …; abnormal
    scans are brighter so the two classes differ. Shapes vary by a voxel from scan to scan.
    """
    from ctutils.io import save_volume

    root = Path(root)
    rng = np.random.default_rng(seed)
    affine = np.diag([-0.8, -0.8, 2.5, 1.0])  # stored L, P, S like MosMedData
    for folder, count, first, offset in (("CT-0", n_normal, 1, -800), ("CT-23", n_abnormal, 101, -400)):
        for i in range(count):
            x, y, z = (int(n) + (i % 2) for n in shape)
            data = rng.integers(-1024, 400, size=(x, y, z)) + offset // 4
            save_volume(root / folder / f"study_{first + i:04d}.nii.gz", data.astype(np.int16), affine)
    return root


def _real_ct_present() -> Path:
    if not REAL_CT.is_file():
        pytest.fail(f"{REAL_CT}: missing, but it is part of the repository (git checkout -- {REAL_CT_FILE})")
    return REAL_CT


@pytest.fixture
def real_ct() -> Path:
    """Path of the repository's real chest CT (``data/real-ct/lung1.nii.gz``)."""
    return _real_ct_present()


@pytest.fixture(scope="session")
def real_ct_volume():
    """The real chest CT read once per session with ``ctutils.io.load_volume`` (canonical RAS)."""
    from ctutils.io import load_volume

    return load_volume(_real_ct_present())


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    """A fresh 6 + 6 scan dataset of about 20 x 20 x 6 voxels under ``tmp_path/data``."""
    return make_dataset(tmp_path / "data")
