"""Reading and writing CT volumes stored as NIfTI (``.nii`` / ``.nii.gz``).

Chapter 01 (data) teaches what is in a NIfTI file: a voxel array, a header with the
scaling to Hounsfield units (``scl_slope`` / ``scl_inter``), and an affine that maps voxel
indices to millimetres in the scanner's RAS+ space. :func:`load_volume` returns all of it,
reoriented to one canonical orientation so that every scan in the course has the same
axis meaning:

* axis 0 (X) increases towards the patient's **R**\\ight,
* axis 1 (Y) increases towards the **A**\\nterior,
* axis 2 (Z) increases towards the **S**\\uperior; Z is the slice axis.

A ``.nii.gz`` file is inflated with Intel ISA-L's igzip (the ``isal`` package, a dependency of the
course) when it is installed: inflating is most of the time it takes to read a CT scan, and igzip
does it about 2.5 times faster than the standard library's zlib. Without ``isal`` the standard
library is used; the volume and header are the same either way.
"""

from __future__ import annotations

import gzip
import importlib
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import nibabel as nib
import numpy as np

from ctutils.atomic import atomic_path
from ctutils.orientation import axcodes, ras_view

__all__ = ["Volume", "VolumeError", "load_mask", "load_volume", "save_volume"]


class VolumeError(ValueError):
    """A file cannot be read as a 3-D CT volume; the message names the file and the cause."""


@dataclass(frozen=True)
class Volume:
    """A CT volume in Hounsfield units with its geometry.

    Attributes
    ----------
    data : np.ndarray
        float32 array (X, Y, Z) in HU (slope and intercept applied).
    affine : np.ndarray
        (4, 4) voxel-to-RAS+ mm affine of ``data``.
    spacing_mm : tuple of float
        Voxel size along X, Y, Z in mm.
    path : Path
        The file it was read from.
    original_shape : tuple of int
        Shape of the array as stored in the file.
    original_axcodes : tuple of str
        Orientation of the stored array, e.g. ``('L', 'P', 'S')``.
    canonical : bool
        True when ``data`` was reoriented to RAS+.
    """

    data: np.ndarray
    affine: np.ndarray
    spacing_mm: tuple[float, float, float]
    path: Path
    original_shape: tuple[int, ...]
    original_axcodes: tuple[str, ...]
    canonical: bool = True

    @property
    def axcodes(self) -> tuple[str, ...]:
        """Orientation of ``data`` (``('R', 'A', 'S')`` when canonical)."""
        return axcodes(self.affine)


def _isal() -> tuple[ModuleType, ModuleType] | None:
    """ISA-L's ``isal.igzip`` and ``isal.isal_zlib`` when the package is installed, else None."""
    try:
        return importlib.import_module("isal.igzip"), importlib.import_module("isal.isal_zlib")
    except ImportError:
        return None


_NIFTI1_SIZEOF_HDR = (348).to_bytes(4, "little"), (348).to_bytes(4, "big")
_NIFTI1_SINGLE_FILE_MAGIC = b"n+1\x00"


def _load_nifti1_gz_in_memory(path: Path) -> nib.Nifti1Image | None:
    """Inflate a NIfTI-1 ``.nii.gz`` with ISA-L and let nibabel parse the bytes in memory.

    Returns None, so that :func:`nibabel.load` reads the file as usual (and words any error), when
    ``isal`` is not installed, the name does not end in ``.nii.gz``, the file does not inflate, or
    its bytes are not a single-file NIfTI-1 image (NIfTI-2, CIFTI and the rest go to ``nib.load``).
    """
    isal = _isal()
    if isal is None or not path.name.lower().endswith(".nii.gz"):
        return None
    igzip, isal_zlib = isal
    try:
        raw = igzip.decompress(path.read_bytes())
    except (OSError, EOFError, ValueError, isal_zlib.error):
        return None
    if raw[:4] not in _NIFTI1_SIZEOF_HDR or raw[344:348] != _NIFTI1_SINGLE_FILE_MAGIC:
        return None
    try:
        return nib.Nifti1Image.from_bytes(raw)
    except (ValueError, nib.spatialimages.HeaderDataError, nib.wrapstruct.WrapStructError):
        return None


def _open_image(path: Path) -> nib.Nifti1Image | nib.Nifti2Image:
    if not path.exists():
        raise VolumeError(f"{path}: no such file")
    if path.is_dir():
        raise VolumeError(f"{path}: is a folder, expected a .nii or .nii.gz file")
    image = _load_nifti1_gz_in_memory(path)
    if image is not None:
        return image
    try:
        image = nib.load(path)
    except (nib.filebasedimages.ImageFileError, gzip.BadGzipFile) as error:
        raise VolumeError(f"{path}: not a NIfTI file ({error})") from error
    except (EOFError, OSError, zlib.error, ValueError) as error:
        raise VolumeError(f"{path}: cannot read the NIfTI header ({error})") from error
    if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
        raise VolumeError(f"{path}: not a NIfTI file (read as {type(image).__name__})")
    return image


def _read_data(image: nib.Nifti1Image | nib.Nifti2Image, path: Path) -> np.ndarray:
    """Read the voxels in HU (slope and intercept applied); a truncated or corrupt file becomes a VolumeError.

    The array keeps the file's integer type when the scaling is the identity (the usual int16 CT),
    so the checks and the reorientation below touch half the bytes of a float32 copy.
    """
    try:
        return np.asanyarray(image.dataobj)
    except (EOFError, OSError, zlib.error, ValueError) as error:
        raise VolumeError(f"{path}: the voxel data cannot be read; is the file truncated? ({error})") from error


def _check_shape(shape: tuple[int, ...], path: Path) -> tuple[int, int, int]:
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) == 4:
        raise VolumeError(
            f"{path}: a 4-D series of {shape[3]} volumes (shape {shape}); expected one 3-D volume"
        )
    if len(shape) != 3:
        raise VolumeError(f"{path}: expected a 3-D volume, got shape {shape}")
    if min(shape) < 2:
        raise VolumeError(f"{path}: expected a 3-D volume, got shape {shape} (a single 2-D slice)")
    return shape  # type: ignore[return-value]


_SLAB_ROWS = 8  # Y rows per slab: a 512 x 8 x Z slab of both arrays stays in the CPU caches


def _as_c_order(data: np.ndarray, *, dtype: type) -> np.ndarray:
    """Return a C-ordered copy of the (X, Y, Z) array ``data`` converted to ``dtype``.

    NIfTI stores X fastest (Fortran order), so ``data.astype(dtype, order="C")`` reverses the
    memory order of the axes in one pass whose reads jump across the whole array; copying slabs
    of a few Y rows keeps each slab of both arrays in the CPU caches (about 4x faster on a
    512 x 512 x 40 CT). The values are those of ``astype``.
    """
    out = np.empty(data.shape, dtype=dtype)
    for y in range(0, data.shape[1], _SLAB_ROWS):
        out[:, y : y + _SLAB_ROWS] = data[:, y : y + _SLAB_ROWS]
    return out


def load_volume(path: str | Path, *, canonical: bool = True, dtype: type = np.float32) -> Volume:
    """Read a NIfTI CT volume in Hounsfield units.

    Parameters
    ----------
    path : str or Path
        A ``.nii`` or ``.nii.gz`` file holding one 3-D volume (a 4-D file with a single
        volume is squeezed).
    canonical : bool, keyword-only
        Reorient the array with its affine to RAS+ (``nibabel.as_closest_canonical``'s
        convention). ``False`` keeps the array exactly as stored, as the Keras example does.
    dtype : numpy dtype, keyword-only
        float32 (default) or float64.

    Returns
    -------
    Volume
        ``data`` is (X, Y, Z) in HU; see :class:`Volume`.

    Raises
    ------
    VolumeError
        Naming the file, for a missing path, a file that is not NIfTI, a truncated ``.nii.gz``,
        a 2-D image, a 4-D series of several volumes, NaN or infinite voxels, or a constant volume.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> path = Path(tempfile.mkdtemp()) / "tiny.nii.gz"
    >>> data = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    >>> save_volume(path, data, np.diag([-1.0, -1.0, 2.0, 1.0]))   # stored L, P, S
    >>> volume = load_volume(path)
    >>> volume.axcodes, volume.data.shape, volume.spacing_mm
    (('R', 'A', 'S'), (2, 3, 4), (1.0, 1.0, 2.0))
    >>> float(volume.data[0, 0, 0]) == float(data[1, 2, 0])   # X and Y were flipped
    True
    """
    path = Path(path)
    image = _open_image(path)
    original_shape = tuple(int(n) for n in image.shape)
    shape = _check_shape(original_shape, path)
    data = _read_data(image, path).reshape(shape)
    if data.dtype.kind == "f":  # integers cannot be NaN or infinite
        finite = np.isfinite(data)
        if not finite.all():
            raise VolumeError(f"{path}: {int((~finite).sum())} voxels are NaN or infinite")
    lowest, highest = float(data.min()), float(data.max())
    if lowest == highest:
        raise VolumeError(f"{path}: constant volume (every voxel is {lowest:g} HU)")
    affine = np.asarray(image.affine, dtype=np.float64)
    original_codes = axcodes(affine)
    if canonical:
        data, affine = ras_view(data, affine)
    data = _as_c_order(data, dtype=dtype)
    spacing = tuple(float(s) for s in nib.affines.voxel_sizes(affine))
    return Volume(
        data=data,
        affine=affine,
        spacing_mm=spacing,  # type: ignore[arg-type]
        path=path,
        original_shape=original_shape,
        original_axcodes=original_codes,
        canonical=canonical,
    )


def load_mask(path: str | Path, *, like: Volume) -> np.ndarray:
    """Read a lesion mask (MosMedData's ``masks/study_XXXX_mask.nii.gz``) aligned with its scan.

    The mask is reoriented exactly as ``like`` was (canonical RAS+ or as stored), so that voxel
    ``[i, j, k]`` of the result belongs to voxel ``[i, j, k]`` of ``like.data``.

    Parameters
    ----------
    path : str or Path
        A ``.nii`` / ``.nii.gz`` file of the scan's shape and affine; non-zero voxels are lesion.
    like : Volume, keyword-only
        The scan, from :func:`load_volume`.

    Returns
    -------
    np.ndarray
        float32 (X, Y, Z), 1.0 inside lesions and 0.0 elsewhere, the shape of ``like.data``.

    Raises
    ------
    VolumeError
        Naming the mask file, when it cannot be read or its shape or affine differs from the
        scan's.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> affine = np.diag([-1.0, -1.0, 2.0, 1.0])
    >>> save_volume(folder / "scan.nii.gz", np.arange(24, dtype=np.int16).reshape(2, 3, 4), affine)
    >>> mask = np.zeros((2, 3, 4), dtype=np.uint8); mask[1, 2, 0] = 1
    >>> save_volume(folder / "mask.nii.gz", mask, affine)
    >>> scan = load_volume(folder / "scan.nii.gz")
    >>> load_mask(folder / "mask.nii.gz", like=scan)[0, 0, 0]   # flipped like the scan
    np.float32(1.0)
    """
    path = Path(path)
    image = _open_image(path)
    shape = _check_shape(tuple(int(n) for n in image.shape), path)
    if shape != tuple(like.original_shape[:3]):
        raise VolumeError(f"{path}: mask shape {shape} differs from its scan's "
                          f"{tuple(like.original_shape[:3])} ({like.path})")
    data = _read_data(image, path).reshape(shape)
    affine = np.asarray(image.affine, dtype=np.float64)
    if like.canonical:
        data, affine = ras_view(data, affine)
    if not np.allclose(affine, like.affine, atol=1e-3):
        raise VolumeError(f"{path}: mask affine differs from its scan's ({like.path}): "
                          f"{np.round(affine[:3], 3).tolist()} vs {np.round(like.affine[:3], 3).tolist()}")
    return (np.asarray(data) != 0).astype(np.float32, order="C")


def save_volume(path: str | Path, data: np.ndarray, affine: np.ndarray) -> None:
    """Write a 3-D volume to ``.nii`` / ``.nii.gz`` atomically (never half-written).

    Parameters
    ----------
    path : str or Path
        Destination; its suffix chooses compression.
    data : np.ndarray
        (X, Y, Z) array, usually int16 HU.
    affine : np.ndarray
        (4, 4) voxel-to-RAS+ mm affine.
    """
    if data.ndim != 3:
        raise ValueError(f"{path}: expected a 3-D volume, got shape {data.shape}")
    image = nib.Nifti1Image(np.asarray(data), np.asarray(affine, dtype=np.float64))
    image.header.set_xyzt_units("mm", "sec")
    with atomic_path(path) as tmp:
        nib.save(image, tmp)
