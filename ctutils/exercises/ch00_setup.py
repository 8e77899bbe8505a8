"""The checks of chapter 00_setup (``notebooks/00_setup.ipynb``).

* Exercise 00.1: count the scans in each class folder.
* Exercise 00.2: the size of a cache of float32 volumes in MiB.

Imported, and every check re-exported, by :mod:`ctutils.exercises`: call them as ``exercises.check_…(…)``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from ctutils.exercises import NotYet, exercise, expect, expect_close

__all__ = [
    "check_cache_size_mib",
    "check_count_scans",
]


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def _scan_counts(root: Path) -> dict[str, int]:
    from ctutils.datasets import is_scan_file

    return {
        folder.name: sum(1 for p in folder.iterdir() if is_scan_file(p))
        for folder in sorted(root.iterdir())
        if folder.is_dir() and not folder.name.startswith(".")
    }


@exercise("00_setup")
def check_count_scans(count_scans: Callable[[Path], Mapping[str, int]], data_dir: str | Path | None = None) -> str:
    """Exercise 00.1: count the scans in each class folder."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("CT-0/study_0001.nii.gz", "CT-0/study_0002.nii.gz", "CT-0/study_0003.nii",
                     "CT-0/.partial-123-study_0004.nii.gz", "CT-0/notes.txt",
                     "CT-23/study_0101.nii.gz", "CT-23/study_0102.nii.gz", "CT-23/._study_0101.nii.gz",
                     ".downloads/CT-0.zip", "README.md", "synthetic.json"):
            _touch(root / name)
        got = count_scans(root)
    expect(isinstance(got, Mapping), f"count_scans should return a dict {{folder name: number of scans}}, got {type(got).__name__}")
    got = dict(got)
    expected = {"CT-0": 3, "CT-23": 2}
    expect(".downloads" not in got, "skip hidden folders such as .downloads (download_dataset keeps its archives there)")
    extra = sorted(set(got) - set(expected))
    expect(not extra, f"only folders are class folders; {', '.join(map(repr, extra))} should not be in the result")
    missing = sorted(set(expected) - set(got))
    expect(not missing, f"the result lacks the class folder(s) {', '.join(map(repr, missing))}")
    if got != expected:
        wrong = "; ".join(f"{k}: expected {expected[k]}, got {got[k]!r}" for k in expected if got[k] != expected[k])
        raise NotYet(
            f"in a test folder ({wrong}). Count the files ending in .nii.gz or .nii, and skip hidden "
            "names starting with '.' (half-written .partial-… files, macOS ._ files) and other files"
        )
    if data_dir is None:
        return "count_scans handles hidden files, .nii and .nii.gz"
    data = Path(data_dir)
    real, want = count_scans(data), _scan_counts(data)
    expect(dict(real) == want, f"on {data.name}: expected {want}, got {dict(real)!r}")
    listing = ", ".join(f"{n} in {k}" for k, n in want.items())
    return f"count_scans finds {listing} in {data.name}"


@exercise("00_setup")
def check_cache_size_mib(cache_size_mib: Callable[..., float]) -> str:
    """Exercise 00.2: the size of a cache of float32 volumes in MiB."""
    cases = [
        ((80, (64, 64, 32)), {}, 40.0),
        ((200, (128, 128, 64)), {}, 800.0),
        ((1, (2, 2, 2)), {"bytes_per_voxel": 2}, 16 / 2**20),
    ]
    for args, kwargs, expected in cases:
        shown = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
        got = cache_size_mib(*args, **kwargs)
        expect(isinstance(got, (int, float, np.number)) and not isinstance(got, bool),
               f"cache_size_mib({shown}) should return a number of MiB, got {got!r}")
        ratio = float(got) / expected  # what a common slip gives, as a multiple of the answer
        slips = {
            1 / 4: "each float32 voxel takes bytes_per_voxel = 4 bytes: multiply by it",
            2.0: "use the bytes_per_voxel argument rather than a fixed 4",
            4.0: "multiply by bytes_per_voxel once, not twice",
            1.0: None,
            2**20 / 1e6: "1 MiB is 1024 × 1024 = 2**20 bytes, not 10**6",
            1024.0: "divide by 1024 twice (bytes → KiB → MiB)",
            float(2**20): "convert bytes to MiB: divide by 2**20",
        }
        for factor, hint in slips.items():
            if hint and abs(ratio / factor - 1) < 1e-6:
                raise NotYet(f"cache_size_mib({shown}) gave {got!r}, expected {expected:g}: {hint}")
        expect_close(got, expected, what=f"cache_size_mib({shown})")
    from ctutils.course import PROFILES

    sizes = []
    for name, p in PROFILES.items():
        n = p.n_normal + p.n_abnormal
        mib = n * int(np.prod(p.shape)) * 4 / 2**20
        sizes.append(f"the {name} profile's cache ({n} × {' × '.join(map(str, p.shape))} float32) takes {mib:g} MiB")
    return ", ".join(sizes)
