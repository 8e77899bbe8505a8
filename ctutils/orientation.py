"""Orientation: reorient with the affine, and show axial slices the way radiologists do.

The course stores every volume in RAS+ (axis 0 → patient's Right, 1 → Anterior,
2 → Superior) and displays axial slices in the **radiological convention**: anterior at the
top of the image and the patient's right on the viewer's left, as if looking up from the
patient's feet. :func:`display_slice` is the only place that turns a volume into an image.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np

__all__ = ["axcodes", "reorient_to_ras", "ras_view", "display_slice"]


def axcodes(affine: np.ndarray) -> tuple[str, ...]:
    """Return the orientation codes of an affine, e.g. ``('R', 'A', 'S')``.

    Examples
    --------
    >>> axcodes(np.diag([-0.7, -0.7, 5.0, 1.0]))
    ('L', 'P', 'S')
    """
    return tuple(nib.aff2axcodes(affine))


def reorient_to_ras(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorder and flip the axes of ``data`` so that they point to R, A, S.

    Uses the affine alone (``nibabel.orientations``), as ``nibabel.as_closest_canonical`` does;
    no interpolation, so voxel values are unchanged.

    Parameters
    ----------
    data : np.ndarray
        (I, J, K) array as stored in the file.
    affine : np.ndarray
        (4, 4) voxel-to-RAS+ affine of ``data``.

    Returns
    -------
    data : np.ndarray
        A new C-contiguous (X, Y, Z) array in RAS+ order.
    affine : np.ndarray
        The affine of the returned array.

    Examples
    --------
    >>> data = np.arange(8).reshape(2, 2, 2)
    >>> ras, new_affine = reorient_to_ras(data, np.diag([-1.0, 1.0, 1.0, 1.0]))
    >>> ras[:, 0, 0].tolist(), axcodes(new_affine)
    ([4, 0], ('R', 'A', 'S'))
    """
    view, new_affine = ras_view(data, affine)
    return np.ascontiguousarray(view), new_affine


def ras_view(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`reorient_to_ras`, but return a view (no copy) where flips and transposes allow."""
    current = nib.orientations.io_orientation(affine)
    target = nib.orientations.axcodes2ornt(("R", "A", "S"))
    transform = nib.orientations.ornt_transform(current, target)
    view = nib.orientations.apply_orientation(data, transform)
    return view, affine @ nib.orientations.inv_ornt_aff(transform, data.shape)


def display_slice(volume: np.ndarray, z: int) -> np.ndarray:
    """Return axial slice ``z`` of a RAS+ volume as an image in radiological convention.

    Rows run from anterior (top) to posterior; columns from the patient's right (left of the
    image) to the patient's left. Pass the result straight to ``plt.imshow`` (with the
    default ``origin="upper"``).

    Parameters
    ----------
    volume : np.ndarray
        (X, Y, Z) array in RAS+ orientation.
    z : int
        Slice index along Z.

    Returns
    -------
    np.ndarray
        A new (Y, X) array, ``volume[:, :, z].T[::-1, ::-1]``.

    Examples
    --------
    >>> v = np.zeros((4, 3, 1)); v[3, 2, 0] = 1     # most right, most anterior voxel
    >>> np.argwhere(display_slice(v, 0) == 1).tolist()   # top row, left column
    [[0, 0]]
    """
    if volume.ndim != 3:
        raise ValueError(f"expected a 3-D (X, Y, Z) volume, got shape {volume.shape}")
    return np.ascontiguousarray(volume[:, :, z].T[::-1, ::-1])
