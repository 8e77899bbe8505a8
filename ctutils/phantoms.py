"""Synthetic chest-CT phantoms in Hounsfield units: the course's embedded dataset.

Chapter 01_data uses this module to build a dataset shaped like MosMedData
(``<root>/CT-0/study_0001.nii.gz`` … normal, ``<root>/CT-23/…`` with ground-glass opacities)
when the real data cannot be downloaded. **The phantoms are synthetic**: procedural anatomy,
not patients. See ``docs/phantoms.md`` for the design, the calibration against a real chest CT and
the accuracy of a one-feature baseline (:mod:`ctutils.baseline`).

Geometry. Volumes are stored like the real CT in ``shared/data/real-ct``: array axes (X, Y, Z) run
towards the patient's Left, Posterior and Superior (``nibabel.aff2axcodes`` gives
``('L', 'P', 'S')``), the affine is ``diag(-dx, -dy, dz)`` plus an origin, so
``nibabel.as_closest_canonical`` returns RAS.
Internally the anatomy is drawn in millimetres with ``u`` towards the patient's left, ``v`` towards
posterior and ``w`` towards superior, which are exactly the stored array directions.

How a phantom is made (all vectorised; one Python loop over slices, none over voxels):

1. sample the study parameters (body size and position, fat thickness, lung density, diaphragm
   heights, slice count and thickness, noise level, lesions);
2. paint each axial slice at a working resolution (``size`` / 2 for ``size`` >= 384, else ``size``)
   from ellipses and capsules: body, fat, muscle, thoracic cavity, ribs, spine, sternum, scapulae,
   mediastinum, heart, aorta, pulmonary trunk, vena cava, trachea, main bronchi, oesophagus,
   diaphragm, liver, stomach, spleen and an optional table;
3. fill the lungs with parenchyma (inspiration level, antero-posterior gradient, optional dependent
   density, smooth texture), add ground-glass opacities / consolidation to abnormal studies, then
   procedural vessel and airway trees that branch from the hila and get thinner (segments are
   rasterised with their volume as weight and blurred in-plane, which gives partial volume);
4. blur slightly (reconstruction kernel), upsample to ``size``, add spatially correlated Gaussian
   noise, round and clip to int16 in [-1024, 3071].
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from ctutils.atomic import atomic_path

__all__ = [
    "PHANTOM_VERSION",
    "CLASS_FOLDERS",
    "make_phantom",
    "generate_dataset",
    "study_paths",
]

#: Bumped whenever the generator's output changes; recorded in ``synthetic.json``.
PHANTOM_VERSION = 1
#: Class folder for each label, as in the reference MosMedData subset.
CLASS_FOLDERS = {0: "CT-0", 1: "CT-23"}
STORE_HU_MIN, STORE_HU_MAX = -1024, 3071
METADATA_NAME = "synthetic.json"

_AIR = -1000.0
# labels of the per-voxel tissue map used while painting
_OUT, _BODY, _LUNG, _MEDFAT = 0, 1, 2, 3


# --------------------------------------------------------------------------- parameters


def _u(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def _sample_params(rng: np.random.Generator, *, n_slices: int | None) -> dict[str, Any]:
    """Draw every per-study parameter (lengths in mm, densities in HU)."""
    p: dict[str, Any] = {}
    n = int(rng.integers(30, 71)) if n_slices is None else int(n_slices)
    p["n_slices"] = n
    # thoracic cavity (inside the ribs) and chest wall; ``habitus`` scales the fat
    a_t = _u(rng, 105, 135)
    b_t = a_t * _u(rng, 0.56, 0.68)
    p.update(a_t=a_t, b_t=b_t, b_ta=0.95 * b_t, b_tp=1.05 * b_t)
    habitus = _u(rng, 0.3, 1.0)
    p.update(
        fat_a=habitus * _u(rng, 15, 45), fat_l=habitus * _u(rng, 12, 40),
        fat_p=habitus * _u(rng, 10, 25), muscle_a=_u(rng, 12, 20), muscle_l=_u(rng, 9, 15),
        muscle_p=_u(rng, 38, 48),
    )
    # outline irregularity: harmonics of the body and cavity radius, pectoral/breast bulges
    p.update(
        body_harm=rng.uniform(0.0, 0.02, size=4), body_phase=rng.uniform(0, 2 * math.pi, size=4),
        cav_harm=rng.uniform(0.0, 0.012, size=4), cav_phase=rng.uniform(0, 2 * math.pi, size=4),
        bulge=habitus * _u(rng, 0.0, 0.08), pectoral=_u(rng, 0.0, 0.04),
    )
    p["a_b"] = a_t + p["muscle_l"] + p["fat_l"]
    p["b_ba"] = p["b_ta"] + p["muscle_a"] + p["fat_a"]
    p["b_bp"] = p["b_tp"] + p["muscle_p"] + p["fat_p"]
    p["cu"] = _u(rng, -12, 12)
    p["cv"] = _u(rng, -8, 14) + 0.5 * (p["b_ba"] - p["b_bp"])
    half = min(205.0, max(155.0, p["a_b"] + abs(p["cu"]) + _u(rng, 2, 18)))
    p["fov_mm"] = 2.0 * half
    # craniocaudal: w = 0 mm at the deepest costophrenic recess, the apex at w = lung_h
    p["lung_h"] = lung_h = _u(rng, 200, 250)
    p["margin_bottom"] = _u(rng, 15, 45)
    p["margin_top"] = _u(rng, 0, 6)
    p["thick"] = (lung_h + p["margin_bottom"] + p["margin_top"]) / n
    p["dome_r"] = _u(rng, 45, 75) * lung_h / 225
    p["dome_l"] = p["dome_r"] - _u(rng, 5, 22)
    p.update(
        fat_hu=_u(rng, -112, -88), muscle_hu=_u(rng, 38, 56), blood_hu=_u(rng, 32, 48),
        liver_hu=_u(rng, 50, 66), spleen_hu=_u(rng, 40, 52), vb_hu=_u(rng, 160, 280),
        cortex_hu=_u(rng, 650, 1100), rib_hu=_u(rng, 350, 550),
    )
    # lung parenchyma: inspiration level, gradient, dependent density, texture
    p["lung_hu"] = _u(rng, -930, -830)
    p["ap_grad_hu"] = _u(rng, 5, 50)
    p["dep_hu"] = _u(rng, 60, 300) if rng.random() < 0.55 else 0.0
    p["dep_mm"] = _u(rng, 3, 10)
    p["texture_hu"] = _u(rng, 5, 18)
    p["grain_hu"] = _u(rng, 10, 20)
    p["noise_hu"] = _u(rng, 8, 20)
    p["table"] = bool(rng.random() < 0.7)
    p["table_hu"] = _u(rng, 80, 300)
    p.update(
        heart_a=_u(rng, 48, 58), heart_b=_u(rng, 36, 44), heart_c=_u(rng, 45, 55),
        heart_angle=math.radians(_u(rng, 25, 45)), heart_du=_u(rng, 0.16, 0.28),
        r_aorta=_u(rng, 12, 17), r_trachea=_u(rng, 7.5, 10.5), r_vb=_u(rng, 14, 18),
        med_a=_u(rng, 0.2, 0.26), arch=_u(rng, 0.66, 0.73), hilum=_u(rng, 0.48, 0.56),
        carina_mm=_u(rng, 12, 28), rib_pitch=_u(rng, 26, 32), rib_drop=_u(rng, 90, 130),
        rib_w=_u(rng, 4.5, 6.5), rib_h=_u(rng, 3.5, 5.0), rib_phase=_u(rng, 0, 1),
        vert_pitch=_u(rng, 24, 30), vert_phase=_u(rng, 0, 1),
    )
    return p


def _sample_lesions(rng: np.random.Generator) -> tuple[str, list[dict[str, Any]]]:
    """Severity and lesion list for an abnormal study (sizes in mm, densities in HU)."""
    r = rng.random()
    # severity: (number of lesions [low, high), radius mm, target HU, blend strength)
    if r < 0.22:
        severity, n, rad, hu, amp = "subtle", rng.integers(1, 4), (8, 16), (-720, -560), (0.5, 0.9)
    elif r < 0.72:
        severity, n, rad, hu, amp = ("moderate", rng.integers(4, 10), (20, 38), (-650, -420),
                                     (0.65, 1.0))
    else:
        severity, n, rad, hu, amp = ("extensive", rng.integers(6, 15), (25, 50), (-620, -350),
                                     (0.7, 1.0))
    bilateral = rng.random() < 0.75
    side = 1.0 if rng.random() < 0.5 else -1.0
    lesions = []
    for _ in range(int(n)):
        lesions.append(
            {
                "radius_mm": _u(rng, *rad),
                "axes": rng.uniform(0.7, 1.3, size=3) * np.array([1.0, 1.0, 0.9]),
                "angle": _u(rng, 0, math.pi),
                "hu": _u(rng, *hu),
                "amp": _u(rng, *amp),
                "side": 0.0 if bilateral else side,
                "consolidation": severity == "extensive" and rng.random() < 0.35,
                "cons_hu": _u(rng, -90, 30),
                "waves": rng.normal(size=(3, 4)),
                "pick": _u(rng, 0, 1),
            }
        )
    return severity, lesions


# --------------------------------------------------------------------------- 2-D painting


def _span(coords: np.ndarray, lo: float, hi: float) -> slice:
    i0, i1 = np.searchsorted(coords, [lo, hi])
    return slice(int(i0), int(i1))


def _ellipse(u, v, cu, cv, au, av, *, scale=1.0):
    """Axis-aligned ellipse as (bounding-box slices, boolean mask inside the box) or None."""
    au, av = au * scale, av * scale
    if au <= 0 or av <= 0:
        return None
    si, sj = _span(u, cu - au, cu + au), _span(v, cv - av, cv + av)
    if si.stop <= si.start or sj.stop <= sj.start:
        return None
    du = ((u[si] - cu) / au) ** 2
    dv = ((v[sj] - cv) / av) ** 2
    return (si, sj), du[:, None] + dv[None, :] <= 1.0


def _rot_ellipse(u, v, cu, cv, au, av, angle, *, scale=1.0):
    """Ellipse whose ``au`` axis is turned by ``angle`` (radians) from +u towards -v (anterior)."""
    au, av = au * scale, av * scale
    if au <= 0 or av <= 0:
        return None
    r = max(au, av)
    si, sj = _span(u, cu - r, cu + r), _span(v, cv - r, cv + r)
    if si.stop <= si.start or sj.stop <= sj.start:
        return None
    du = (u[si] - cu)[:, None]
    dv = (v[sj] - cv)[None, :]
    c, s = math.cos(angle), math.sin(angle)
    x = du * c - dv * s
    y = du * s + dv * c
    return (si, sj), (x / au) ** 2 + (y / av) ** 2 <= 1.0


def _capsule(u, v, p0, p1, radius):
    """Points closer than ``radius`` to the in-plane segment p0–p1."""
    if radius <= 0:
        return None
    si = _span(u, min(p0[0], p1[0]) - radius, max(p0[0], p1[0]) + radius)
    sj = _span(v, min(p0[1], p1[1]) - radius, max(p0[1], p1[1]) + radius)
    if si.stop <= si.start or sj.stop <= sj.start:
        return None
    du = (u[si] - p0[0])[:, None]
    dv = (v[sj] - p0[1])[None, :]
    ex, ey = p1[0] - p0[0], p1[1] - p0[1]
    ll = max(ex * ex + ey * ey, 1e-9)
    t = np.clip((du * ex + dv * ey) / ll, 0.0, 1.0)
    return (si, sj), (du - t * ex) ** 2 + (dv - t * ey) ** 2 <= radius * radius


def _box(u, v, u0, u1, v0, v1):
    si, sj = _span(u, u0, u1), _span(v, v0, v1)
    if si.stop <= si.start or sj.stop <= sj.start:
        return None
    return (si, sj), np.ones((si.stop - si.start, sj.stop - sj.start), dtype=bool)


def _paint(hu, lab, region, value, label, *, within=None):
    """Set ``hu`` to ``value`` and ``lab`` to ``label`` where the region's mask holds."""
    if region is None:
        return
    sl, m = region
    if within is not None:
        m = m & within[sl]
    hu[sl][m] = value
    lab[sl][m] = label


def _cavity_scale(s: float) -> float:
    """In-plane size of the thoracic cavity at normalised lung height ``s`` (0 base, 1 apex)."""
    if s <= 0.55:
        return 1.0
    x = (s - 0.55) / 0.47
    return math.sqrt(max(0.0, 1.0 - x * x))


def _slab_overlap(dist, half_height: float, thick: float):
    """Fraction of a slab of thickness ``thick`` covered by a band of half-height ``half_height``
    whose centre lies ``dist`` mm from the slab centre (partial volume of thick slices)."""
    d = np.asarray(dist)
    lo = np.maximum(-thick / 2, d - half_height)
    hi = np.minimum(thick / 2, d + half_height)
    return np.clip(hi - lo, 0.0, None) / thick


def _soft_inside(r_norm: np.ndarray, rho: np.ndarray, px: float) -> np.ndarray:
    """Partial-volume fraction (0..1) inside a closed curve given the normalised radius of each
    point (1 on the curve) and its distance ``rho`` (mm) from the centre."""
    dist = (1.0 - r_norm) * rho / np.maximum(r_norm, 1e-3)
    return np.clip(0.5 + dist / px, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- trees


def _orthonormal(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.where(np.abs(d[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    e1 = np.cross(d, a)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    return e1, np.cross(d, e1)


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)


def _grow_tree(
    rng: np.random.Generator,
    starts: np.ndarray,
    dirs: np.ndarray,
    radii: np.ndarray,
    *,
    hilum: np.ndarray,
    inside,
    r_min: float = 0.32,
    max_gen: int = 30,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grow a branching tree; returns segment starts, ends (mm, (N, 3)) and radii (mm).

    A segment is 4–7 times as long as its radius. It ends in two children: one continues the
    trunk (0.84–0.93 times as thick, turning by 4–18 degrees), the other is a side branch
    (0.45–0.7 times as thick, 35–70 degrees off, in a random plane); both lean away from the
    hilum. A segment that would leave the region tested by ``inside`` gets up to three new random
    directions, then stops.
    """
    all_s, all_e, all_r = [], [], []
    for _ in range(max_gen):
        if len(starts) == 0:
            break
        lengths = (radii * rng.uniform(4.0, 7.0, size=len(radii)))[:, None]
        ends = starts + dirs * lengths
        ok = inside(ends) & inside(starts + 0.5 * dirs * lengths)
        for attempt in range(3):
            bad = np.flatnonzero(~ok)
            if len(bad) == 0:
                break
            nd = _normalise(dirs[bad] + rng.normal(scale=0.5 + 0.3 * attempt, size=(len(bad), 3)))
            ne = starts[bad] + nd * lengths[bad]
            good = inside(ne) & inside(starts[bad] + 0.5 * nd * lengths[bad])
            dirs[bad[good]] = nd[good]
            ends[bad[good]] = ne[good]
            ok[bad[good]] = True
        starts, ends, dirs, radii = starts[ok], ends[ok], dirs[ok], radii[ok]
        all_s.append(starts)
        all_e.append(ends)
        all_r.append(radii)
        grow = radii * 0.75 > r_min
        ends, dirs, radii = ends[grow], dirs[grow], radii[grow]
        m = len(ends)
        if m == 0:
            break
        e1, e2 = _orthonormal(dirs)
        beta = rng.uniform(0, 2 * math.pi, size=(m, 1))
        side = np.cos(beta) * e1 + np.sin(beta) * e2
        a1 = np.radians(rng.uniform(4, 18, size=(m, 1)))
        a2 = np.radians(rng.uniform(35, 70, size=(m, 1)))
        out = _normalise(ends - hilum)
        c1 = np.cos(a1) * dirs - np.sin(a1) * side + 0.12 * out
        c2 = np.cos(a2) * dirs + np.sin(a2) * side + 0.2 * out
        dirs = _normalise(np.concatenate([c1, c2]))
        r1 = radii * rng.uniform(0.84, 0.93, size=m)
        r2 = radii * rng.uniform(0.45, 0.70, size=m)
        starts = np.concatenate([ends, ends])
        radii = np.concatenate([r1, r2])
    if not all_s:
        return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0)
    return np.concatenate(all_s), np.concatenate(all_e), np.concatenate(all_r)


def _splat_tubes(segs, *, shape, origin, voxel_mm, edges=(0.0, 1.0, 2.2, np.inf)):
    """Rasterise tube segments: per radius group, an (X, Y, Z) float32 array whose voxels hold the
    tube volume they contain divided by the voxel volume, and the group's typical radius (mm).

    Segments are sampled every ~0.5 voxel; each sample adds its share of the tube volume to the
    voxel that contains it (``origin`` is the centre of voxel (0, 0, 0), in mm).
    """
    s0, s1, r = segs
    groups: list[tuple[np.ndarray, float]] = []
    if len(r) == 0:
        return groups
    px, thick = voxel_mm
    step = 0.5 * min(px, thick)
    length = np.linalg.norm(s1 - s0, axis=1)
    npts = np.maximum(2, np.ceil(length / step).astype(np.int64) + 1)
    seg = np.repeat(np.arange(len(r)), npts)
    first = np.cumsum(npts) - npts
    t = (np.arange(seg.size) - first[seg]) / (npts[seg] - 1)
    pts = s0[seg] + (s1 - s0)[seg] * t[:, None]
    rad = r[seg] * (1.0 - 0.12 * t)
    weight = (length[seg] / npts[seg]) * math.pi * rad**2 / (px * px * thick)
    ijk = np.floor((pts - origin) / np.array([px, px, thick]) + 0.5).astype(np.int64)
    ok = np.all((ijk >= 0) & (ijk < np.array(shape)), axis=1)
    ijk, rad, weight = ijk[ok], rad[ok], weight[ok]
    flat = np.ravel_multi_index(ijk.T, shape)
    size = int(np.prod(shape))
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (rad >= lo) & (rad < hi)
        if np.any(sel):
            acc = np.bincount(flat[sel], weights=weight[sel], minlength=size)
            groups.append((acc.reshape(shape).astype(np.float32), float(np.median(rad[sel]))))
    return groups


def _tube_fraction(groups, *, px: float, scale: float = 1.0) -> np.ndarray | None:
    """Blur each radius group in-plane by about its radius (times ``scale``; the volume grows by
    ``scale**2``), sum and clip to a volume fraction in [0, 1]."""
    out = None
    for acc, r_rep in groups:
        sigma = max(0.4, 0.6 * scale * r_rep / px)
        blurred = ndimage.gaussian_filter(acc, sigma=(sigma, sigma, 0), truncate=2.5)
        if scale != 1.0:
            blurred *= scale * scale
        out = blurred if out is None else out + blurred
    if out is not None:
        np.clip(out, 0.0, 1.0, out=out)
    return out


# --------------------------------------------------------------------------- volume helpers


def _upsample_axis(a: np.ndarray, factor: int, axis: int) -> np.ndarray:
    """Linear interpolation by an integer factor along ``axis`` (pixel centres aligned)."""
    n = a.shape[axis]
    x = (np.arange(n * factor) + 0.5) / factor - 0.5
    i0 = np.clip(np.floor(x).astype(np.int64), 0, n - 1)
    i1 = np.clip(i0 + 1, 0, n - 1)
    w = np.clip(x - np.floor(x), 0.0, 1.0).astype(np.float32)
    w[x < 0] = 0.0
    shape = [1] * a.ndim
    shape[axis] = -1
    lo = np.take(a, i0, axis=axis)
    hi = np.take(a, i1, axis=axis)
    hi -= lo
    hi *= w.reshape(shape)
    lo += hi
    return lo


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int, int], *, cell: int,
                  sigma: float) -> np.ndarray:
    """Zero-mean, unit-variance random field (float32, ``shape``): white noise on a grid ``cell``
    times coarser in-plane, Gaussian-smoothed by ``sigma`` coarse voxels, linearly upsampled."""
    cs = (-(-shape[0] // cell), -(-shape[1] // cell), shape[2])
    coarse = rng.standard_normal(cs, dtype=np.float32)
    coarse = ndimage.gaussian_filter(coarse, sigma=(sigma, sigma, sigma * 0.5), mode="wrap")
    if cell > 1:
        coarse = _upsample_axis(_upsample_axis(coarse, cell, 0), cell, 1)
    field = coarse[: shape[0], : shape[1], : shape[2]]
    field -= field.mean()
    field /= max(float(field.std()), 1e-6)
    return field


# --------------------------------------------------------------------------- the phantom


def make_phantom(
    *,
    abnormal: bool,
    rng: np.random.Generator,
    size: int = 512,
    n_slices: int | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Make one synthetic chest CT in Hounsfield units.

    Parameters
    ----------
    abnormal : bool
        Add ground-glass opacities (sometimes with consolidation); otherwise a normal chest.
    rng : numpy.random.Generator
        Source of every random choice: the same generator state gives the same phantom.
    size : int, default 512
        In-plane size in voxels (X = Y = ``size``). The field of view stays 310–410 mm, so the
        in-plane voxel size is about 0.6–0.8 mm at 512 and scales as ``1 / size``.
    n_slices : int or None
        Number of axial slices (Z); drawn from 30–70 when None. The slices always cover the
        chest from the upper abdomen to the lung apices, so the slice thickness is that coverage
        (about 215–305 mm) divided by ``n_slices``.

    Returns
    -------
    data : numpy.ndarray
        int16 HU, shape (``size``, ``size``, Z), axes towards the patient's Left, Posterior and
        Superior, values in [-1024, 3071].
    affine : numpy.ndarray
        float64 (4, 4) voxel-to-world (RAS+, mm) matrix ``diag(-dx, -dy, dz)`` plus an origin;
        ``nibabel.aff2axcodes(affine) == ('L', 'P', 'S')``.
    info : dict
        ``spacing_mm`` (dx, dy, dz), ``shape``, ``n_slices``, ``fov_mm``, ``slice_thickness_mm``,
        ``abnormal``, ``severity`` ("none", "subtle", "moderate" or "extensive"), ``n_lesions``,
        ``lesion_fraction`` (fraction of the lung volume inside lesions), ``lung_volume_ml``,
        ``noise_hu``, ``lung_hu`` (mean parenchyma density), ``dependent_hu`` (extra density at
        the posterior pleura, 0 for none) and the generator ``version``.

    Raises
    ------
    ValueError
        If ``size`` < 32, ``n_slices`` < 2 or ``rng`` is not a numpy Generator.

    Examples
    --------
    >>> import nibabel as nib
    >>> data, affine, info = make_phantom(abnormal=True, rng=np.random.default_rng(0), size=64,
    ...                                   n_slices=8)
    >>> data.shape, data.dtype.name, nib.aff2axcodes(affine)
    ((64, 64, 8), 'int16', ('L', 'P', 'S'))
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 32:
        raise ValueError(f"size: expected an integer >= 32 voxels, got {size!r}")
    if n_slices is not None and (
        isinstance(n_slices, bool) or not isinstance(n_slices, (int, np.integer)) or n_slices < 2
    ):
        raise ValueError(f"n_slices: expected an integer >= 2 or None, got {n_slices!r}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    size = int(size)
    P = _sample_params(rng, n_slices=n_slices)
    # lesions come from their own generator, drawn whatever ``abnormal`` is: a normal and an
    # abnormal phantom made from the same generator state share all their anatomy
    lesion_rng = np.random.default_rng(int(rng.integers(0, 2**63)))
    severity, lesions = _sample_lesions(lesion_rng) if abnormal else ("none", [])

    n = P["n_slices"]
    px = P["fov_mm"] / size
    factor = 2 if size >= 384 and size % 2 == 0 else 1
    nw = size // factor
    pxw = px * factor
    thick = P["thick"]
    u = ((np.arange(nw) + 0.5 - nw / 2) * pxw).astype(np.float32)
    v = u.copy()
    w = (-P["margin_bottom"] + (np.arange(n) + 0.5) * thick).astype(np.float32)

    hu, lab = _paint_slices(P, u, v, w)

    # work on the bounding box of lungs + mediastinal fat from here on
    region_full = (lab == _LUNG) | (lab == _MEDFAT)
    lung_voxels = int(np.count_nonzero(lab == _LUNG))
    lesion_fraction = 0.0
    if region_full.any():
        lo_hi = [np.flatnonzero(region_full.any(axis=tuple(a for a in range(3) if a != ax)))
                 for ax in range(3)]
        crop = tuple(slice(max(0, int(x[0]) - 3), int(x[-1]) + 4) for x in lo_hi)
        crop = (crop[0], crop[1], slice(0, n))
        H = hu[crop]  # a view: edits go into ``hu``
        lung = lab[crop] == _LUNG
        region = region_full[crop]
        shape = lung.shape
        origin = np.array([u[crop[0].start], v[crop[1].start], w[0]], dtype=np.float64)

        # texture: smooth density variation plus fine grain
        tex = _smooth_field(rng, shape, cell=8, sigma=1.2) * P["texture_hu"]
        tex += _smooth_field(rng, shape, cell=1, sigma=0.8) * P["grain_hu"]
        H[lung] += tex[lung]
        del tex

        if lesions:
            lesion_mask = _add_lesions(H, lung, lesions, P, origin, pxw)
            lesion_fraction = float(np.count_nonzero(lesion_mask & lung)) / max(lung_voxels, 1)

        def inside(pts: np.ndarray) -> np.ndarray:
            ijk = np.floor((pts - origin) / np.array([pxw, pxw, thick]) + 0.5).astype(np.int64)
            ok = np.all((ijk >= 0) & (ijk < np.array(shape)), axis=1)
            res = np.zeros(len(pts), dtype=bool)
            res[ok] = region[tuple(ijk[ok].T)]
            return res

        uc = origin[0] + np.arange(shape[0]) * pxw
        vc = origin[1] + np.arange(shape[1]) * pxw

        def roots(sgn: float, w_mm: float) -> np.ndarray:
            # the most medial lung voxel near the hilum's antero-posterior level, on that side
            k = int(np.clip(round((w_mm - w[0]) / thick), 0, n - 1))
            ii, jj = np.nonzero(lung[:, :, k])
            sel = (np.sign(uc[ii] - P["cu"]) == sgn) & (np.abs(vc[jj] - P["cv"]) < 20.0)
            if not sel.any():
                return np.array([P["cu"] + sgn * 40.0, P["cv"], w_mm])
            i = np.argmin(np.abs(uc[ii[sel]] - P["cu"]))
            return np.array([uc[ii[sel][i]] + sgn * 3.0, vc[jj[sel][i]], w[k]])

        vessels, airways = _trees(P, rng, inside, roots)
        kw = dict(shape=shape, origin=origin, voxel_mm=(pxw, thick))
        frac = _tube_fraction(_splat_tubes(vessels, **kw), px=pxw)
        if frac is not None:
            frac *= region
            H += frac * (P["blood_hu"] - H)
        groups = _splat_tubes(airways, **kw, edges=(0.0, 2.0, np.inf))
        wall = _tube_fraction(groups, px=pxw, scale=1.35)
        if wall is not None:
            wall *= lung
            H += wall * (20.0 - H)
            lumen = _tube_fraction(groups, px=pxw)
            lumen *= lung
            H += lumen * (_AIR - H)
        del frac, groups, wall

    # reconstruction blur, upsampling, correlated noise, int16
    hu = ndimage.gaussian_filter(hu, sigma=(0.5, 0.5, 0), truncate=2.5)
    if factor > 1:
        hu = _upsample_axis(_upsample_axis(hu, factor, 0), factor, 1)
    noise = rng.standard_normal(hu.shape, dtype=np.float32)
    noise[1:] += noise[:-1]  # [1, 1] box filter along X and Y: noise texture of a CT kernel
    noise[:, 1:] += noise[:, :-1]
    # the two box filters double the standard deviation. Air (below -990 HU: outside the body
    # and in the airways) is left noise-free: it changes nothing visible and keeps files ~30 %
    # smaller, since gzip cannot compress noise
    noise *= np.where(hu > -990.0, np.float32(P["noise_hu"] / 2.0), np.float32(0.0))
    hu += noise
    del noise
    np.rint(hu, out=hu)
    np.clip(hu, STORE_HU_MIN, STORE_HU_MAX, out=hu)
    # outside the circular reconstruction field the scanner stores a constant
    c = (np.arange(size) + 0.5 - size / 2) / (size / 2)
    hu[c[:, None] ** 2 + c[None, :] ** 2 > 1.0] = STORE_HU_MIN
    data = hu.astype(np.int16)

    affine = np.diag([-px, -px, thick, 1.0])
    affine[:3, 3] = [px * (size - 1) / 2, px * (size - 1) / 2, round(-_u(rng, 150, 400), 1)]
    info = {
        "version": PHANTOM_VERSION,
        "abnormal": bool(abnormal),
        "severity": severity,
        "n_lesions": len(lesions),
        "lesion_fraction": lesion_fraction,
        "lung_volume_ml": lung_voxels * pxw * pxw * thick / 1000.0,
        "shape": tuple(int(x) for x in data.shape),
        "n_slices": int(n),
        "spacing_mm": (float(px), float(px), float(thick)),
        "fov_mm": float(P["fov_mm"]),
        "slice_thickness_mm": float(thick),
        "noise_hu": float(P["noise_hu"]),
        "lung_hu": float(P["lung_hu"]),
        "dependent_hu": float(P["dep_hu"]),
    }
    return data, affine, info


def _paint_slices(P: dict[str, Any], u: np.ndarray, v: np.ndarray, w: np.ndarray):
    """Paint every axial slice; returns HU (float32) and tissue labels (uint8), (nw, nw, n).

    Lung voxels get the parenchyma density without texture; mediastinal fat is labelled apart so
    that vessels can run through it.
    """
    nw, n = len(u), len(w)
    pxw = float(u[1] - u[0])
    thick = P["thick"]
    cu, cv = P["cu"], P["cv"]
    a_t, b_ta, b_tp = P["a_t"], P["b_ta"], P["b_tp"]
    U = u[:, None]
    V = v[None, :]
    du, dv = U - cu, V - cv
    rho = np.sqrt(du * du + dv * dv) + 1e-3
    cos_post = dv / rho  # +1 towards the back, -1 towards the front
    phi = np.arccos(np.clip(cos_post, -1, 1))  # 0 posterior midline .. pi anterior midline
    R1 = 1.0 / np.sqrt((du / rho / a_t) ** 2 + (dv / rho / np.where(dv > 0, b_tp, b_ta)) ** 2)
    theta = np.arctan2(dv, du)  # -pi/2: anterior midline

    def harmonics(amp, phase):
        return 1.0 + sum(a * np.cos((k + 2) * theta + ph)
                         for k, (a, ph) in enumerate(zip(amp, phase)))

    def bumps(height, centre_deg, width_deg):
        out = np.zeros_like(theta)
        for sgn in (-1.0, 1.0):
            dth = np.angle(np.exp(1j * (theta - np.radians(-90.0 + sgn * centre_deg))))
            out += height * np.exp(-0.5 * (dth / np.radians(width_deg)) ** 2)
        return out

    R1 = R1 * harmonics(P["cav_harm"], P["cav_phase"])

    # constant along z: air, optional table, body outline (fat), muscle
    base = np.full((nw, nw), _AIR, dtype=np.float32)
    if P["table"]:
        top = cv + P["b_bp"] + 1.5 - 25.0 * (du / 220.0) ** 2
        plate = (V >= top) & (V <= top + 6.0) & (np.abs(du) < 225)
        lower = (V >= top + 48.0) & (V <= top + 52.0) & (np.abs(du) < 170)
        base[plate | lower] = P["table_hu"]
    ex = np.where(dv > 0, 2.4, 2.0)  # flatter back
    b_body = np.where(dv > 0, P["b_bp"], P["b_ba"])
    r_body = (np.abs(du / P["a_b"]) ** ex + np.abs(dv / b_body) ** ex) ** (1.0 / ex)
    r_body = r_body / (harmonics(P["body_harm"], P["body_phase"]) + bumps(P["bulge"], 45, 18)
                       + bumps(P["pectoral"], 35, 20))
    f_body = _soft_inside(r_body, rho, pxw)
    r_musc = np.sqrt((du / (a_t + P["muscle_l"])) ** 2
                     + (dv / np.where(dv > 0, b_tp + P["muscle_p"], b_ta + P["muscle_a"])) ** 2)
    r_musc = r_musc / (harmonics(P["body_harm"], P["body_phase"]) + bumps(P["pectoral"], 35, 20))
    f_musc = _soft_inside(r_musc, rho, pxw) * f_body
    base += f_body * (P["fat_hu"] - base)
    base += f_musc * (P["muscle_hu"] - base)
    d0 = rho - R1
    # fat plane under the pectoral muscles and between the back muscles
    base[(d0 > P["rib_w"] + 5.0) & (d0 < P["rib_w"] + 8.0) & (phi > 0.62 * np.pi)
         & (f_musc > 0.5)] = P["fat_hu"]
    base[(np.abs(du) < 3.0) & (dv > b_tp + 30.0) & (f_musc > 0.5)] = P["fat_hu"]
    base[(d0 > P["rib_w"] + 17.0) & (d0 < P["rib_w"] + 20.0) & (phi < 0.3 * np.pi)
         & (np.abs(du) > 12.0) & (f_musc > 0.5)] = P["fat_hu"]
    base[(d0 > P["rib_w"] + 5.0) & (d0 < P["rib_w"] + 7.5) & (phi > 0.3 * np.pi)
         & (phi < 0.6 * np.pi) & (f_musc > 0.5)] = P["fat_hu"]
    base_lab = np.where(f_body > 0.5, _BODY, _OUT).astype(np.uint8)
    body = f_body > 0.5

    # height (mm above w = 0) of the diaphragm domes at each in-plane point
    def dome(height, ucen, vcen):
        q = 1.0 - ((U - ucen) / (0.6 * a_t)) ** 2 - ((V - vcen) / (0.9 * b_tp)) ** 2
        return height * np.clip(q, 0.0, 1.0) ** 0.8

    dome_map = np.where(U < cu, dome(P["dome_r"], cu - 0.42 * a_t, cv - 0.2 * b_ta),
                        dome(P["dome_l"], cu + 0.45 * a_t, cv - 0.2 * b_ta)).astype(np.float32)

    lung_h = P["lung_h"]
    r_vb = P["r_vb"]
    v_vb = cv + b_tp - 0.5 * r_vb
    v_front = v_vb - r_vb
    v_canal = v_vb + r_vb + 8.0
    r_tr = P["r_trachea"]
    v_tr = v_front - r_tr - 9.0
    w_hilum = P["hilum"] * lung_h
    w_car = w_hilum + P["carina_mm"]
    w_arch = P["arch"] * lung_h
    r_ao = P["r_aorta"]
    med_a = P["med_a"] * a_t
    hc = (cu + P["heart_du"] * a_t, cv - 0.3 * b_ta, P["dome_l"] + 0.3 * P["heart_c"])
    p_asc = (cu - 0.04 * a_t, cv - 0.3 * b_ta)
    r_d = 0.8 * r_ao
    p_desc = (cu + 0.15 * a_t, v_front + 0.2 * r_d)
    P["landmarks"] = dict(v_tr=v_tr, w_car=w_car, w_hilum=w_hilum, med_a=med_a)
    bone = P["cortex_hu"]

    hu3 = np.empty((nw, nw, n), dtype=np.float32)
    lab3 = np.empty((nw, nw, n), dtype=np.uint8)
    for k in range(n):
        wk = float(w[k])
        s = wk / lung_h
        hu2 = base.copy()
        lab2 = base_lab.copy()
        p = _cavity_scale(s)
        cav = (rho < p * R1) & body
        above = wk > dome_map
        lungz = cav & above
        abd = cav & ~above
        hu2[lungz] = 0.0
        lab2[lungz] = _LUNG
        if abd.any():  # upper abdomen below the domes
            hu2[abd] = P["fat_hu"] + 30.0
            _paint(hu2, lab2, _ellipse(u, v, cu - 0.3 * a_t, cv, 0.75 * a_t, 0.95 * b_tp),
                   P["liver_hu"], _BODY, within=abd)
            stomach = _ellipse(u, v, cu + 0.42 * a_t, cv - 0.25 * b_ta, 0.36 * a_t, 0.5 * b_ta)
            _paint(hu2, lab2, stomach, 22.0, _BODY, within=abd)
            # gas rises to the front of the stomach (the patient lies supine)
            _paint(hu2, lab2, _box(u, v, cu, cu + a_t, cv - 2 * b_ta, cv - 0.45 * b_ta), _AIR,
                   _BODY, within=(lab2 == _BODY) & (np.abs(hu2 - 22.0) < 1.0))
            _paint(hu2, lab2, _ellipse(u, v, cu + 0.62 * a_t, cv + 0.5 * b_tp, 0.26 * a_t,
                                       0.36 * b_tp), P["spleen_hu"], _BODY, within=abd)
            hu2[abd & (dome_map - wk < 5.0)] = P["muscle_hu"]  # diaphragm
        if p > 0:
            # ribs and costal cartilage: bands outside the cavity that descend anteriorly
            d = rho - p * R1
            band = (d > 1.5) & (d < 1.5 + P["rib_w"]) & (phi > 0.1 * np.pi) & (phi < 0.92 * np.pi)
            band &= body
            if wk > -50.0 and band.any():
                ii, jj = np.nonzero(band)
                ph = phi[ii, jj]
                g = ((ph - 0.1 * np.pi) / (0.82 * np.pi)) ** 1.3
                z = wk + P["rib_drop"] * g - P["rib_phase"] * P["rib_pitch"]
                dist = z - np.round(z / P["rib_pitch"]) * P["rib_pitch"]
                fr = _slab_overlap(dist, P["rib_h"], thick).astype(np.float32)
                dd = d[ii, jj]
                edge = (dd < 2.8) | (dd > P["rib_w"] + 0.2)
                val = np.where(ph > 0.8 * np.pi, 120.0, np.where(edge, bone, P["rib_hu"]))
                hu2[ii, jj] += fr * (val - hu2[ii, jj])
            if s > 0.5:  # scapulae
                sc = (d > P["rib_w"] + 10.0) & (d < P["rib_w"] + 14.5) & body
                sc &= (phi > 0.17 * np.pi) & (phi < 0.40 * np.pi)
                hu2[sc] = 0.5 * (bone + P["rib_hu"])
            if 0.2 < s < 1.02:  # sternum and manubrium
                half_w, half_h = (12.0, 5.5) if s < 0.82 else (20.0, 7.0)
                vs = cv - p * b_ta - 6.0
                _paint(hu2, lab2, _ellipse(u, v, cu, vs, half_w, half_h), bone, _BODY)
                _paint(hu2, lab2, _ellipse(u, v, cu, vs, half_w - 2, half_h - 2), P["vb_hu"],
                       _BODY)
            if s > 0.93:  # clavicles
                for sgn in (-1.0, 1.0):
                    ends = ((cu + sgn * 22, cv - b_ta - 12),
                            (cu + sgn * 0.8 * a_t, cv - 0.8 * b_ta))
                    _paint(hu2, lab2, _capsule(u, v, *ends, 5.5), bone, _BODY)
                    _paint(hu2, lab2, _capsule(u, v, *ends, 3.8), P["vb_hu"], _BODY)
            # mediastinal fat between the lungs
            _paint(hu2, lab2, _ellipse(u, v, cu + 0.03 * a_t, cv - 0.02 * b_ta, med_a,
                                       0.95 * b_ta, scale=min(1.0, 0.4 + p)),
                   P["fat_hu"], _MEDFAT, within=lungz)
            _paint(hu2, lab2, _box(u, v, cu - 0.1 * a_t, cu + 0.22 * a_t, v_front - 26,
                                   v_front + 8), P["fat_hu"], _MEDFAT, within=lungz)
        # heart in its pericardial fat
        dz = (wk - hc[2]) / P["heart_c"]
        if abs(dz) < 1.0:
            sc_h = math.sqrt(1.0 - dz * dz)
            _paint(hu2, lab2, _rot_ellipse(u, v, hc[0], hc[1], P["heart_a"], P["heart_b"],
                                           P["heart_angle"], scale=sc_h * 1.08 + 0.03),
                   P["fat_hu"], _MEDFAT, within=lungz)
            _paint(hu2, lab2, _rot_ellipse(u, v, hc[0], hc[1], P["heart_a"], P["heart_b"],
                                           P["heart_angle"], scale=sc_h), P["blood_hu"], _BODY,
                   within=above)
        # great vessels
        if hc[2] + 0.4 * P["heart_c"] < wk < w_arch:
            _paint(hu2, lab2, _ellipse(u, v, *p_asc, r_ao, r_ao), P["blood_hu"], _BODY)
        if hc[2] + 0.35 * P["heart_c"] < wk < w_hilum + 12:
            _paint(hu2, lab2, _ellipse(u, v, cu + 0.13 * a_t, cv - 0.34 * b_ta, 13, 13),
                   P["blood_hu"], _BODY)
        if hc[2] + 0.5 * P["heart_c"] < wk < 0.93 * lung_h:
            _paint(hu2, lab2, _ellipse(u, v, cu - 0.19 * a_t, cv - 0.18 * b_ta, 10, 10),
                   P["blood_hu"], _BODY)
        if abs(wk - w_arch) < r_ao:
            half = math.sqrt(1.0 - ((wk - w_arch) / r_ao) ** 2) * r_ao
            _paint(hu2, lab2, _capsule(u, v, p_asc, p_desc, half), P["blood_hu"], _BODY)
        if wk > w_arch + 0.5 * r_ao:
            for ou, ov in ((-0.12, -0.26), (0.03, -0.3), (0.12, -0.2)):
                _paint(hu2, lab2, _ellipse(u, v, cu + ou * a_t, cv + ov * b_ta, 6, 6),
                       P["blood_hu"], _BODY)
        if wk < w_arch:  # descending aorta
            _paint(hu2, lab2, _ellipse(u, v, *p_desc, r_d, r_d), P["blood_hu"], _BODY)
        # oesophagus
        _paint(hu2, lab2, _ellipse(u, v, cu + 0.05 * a_t, v_front - 8.0, 7.0, 6.0),
               P["muscle_hu"], _BODY)
        # trachea, then the main bronchi between carina and hila (wall, then air)
        if wk >= w_car:
            _paint(hu2, lab2, _ellipse(u, v, cu, v_tr, r_tr + 2, r_tr + 2), 30.0, _BODY)
            _paint(hu2, lab2, _ellipse(u, v, cu, v_tr, r_tr, r_tr), _AIR, _BODY)
        elif wk >= w_hilum - 5:
            t = (w_car - wk) / (w_car - w_hilum + 5)
            rb = 0.72 * r_tr
            for sgn in (-1.0, 1.0):
                c = (cu + sgn * t * (med_a + 10.0), v_tr + t * (cv - 0.05 * b_ta - v_tr))
                _paint(hu2, lab2, _ellipse(u, v, *c, rb + 1.8, rb + 1.8), 30.0, _BODY)
                _paint(hu2, lab2, _ellipse(u, v, *c, rb, rb), _AIR, _BODY)
        # spine: vertebral body (cortex, cancellous bone, discs), arch, processes, canal
        zv = wk - P["vert_phase"] * P["vert_pitch"]
        ddisc = zv - round(zv / P["vert_pitch"]) * P["vert_pitch"]
        fdisc = float(_slab_overlap(ddisc, 3.0, thick))
        _paint(hu2, lab2, _ellipse(u, v, cu, v_vb, r_vb, r_vb), bone + fdisc * (90 - bone), _BODY)
        _paint(hu2, lab2, _ellipse(u, v, cu, v_vb, r_vb - 2.2, r_vb - 2.2),
               P["vb_hu"] + fdisc * (90 - P["vb_hu"]), _BODY)
        _paint(hu2, lab2, _ellipse(u, v, cu, v_canal, 12.0, 11.0), bone, _BODY)
        _paint(hu2, lab2, _capsule(u, v, (cu, v_canal + 8), (cu, v_canal + 24), 3.2), bone, _BODY)
        for sgn in (-1.0, 1.0):
            _paint(hu2, lab2, _capsule(u, v, (cu + sgn * 8, v_canal - 3),
                                       (cu + sgn * 27, v_canal + 4), 3.5),
                   0.5 * (bone + P["vb_hu"]), _BODY)
        _paint(hu2, lab2, _ellipse(u, v, cu, v_canal, 7.5, 7.0), 15.0, _BODY)
        # parenchyma: inspiration level, antero-posterior gradient, dependent density
        lz = lab2 == _LUNG
        if lz.any():
            par = P["lung_hu"] + P["ap_grad_hu"] * (dv / b_tp)
            if P["dep_hu"] > 0 and p > 0:
                depth = np.clip(p * R1 - rho, 0.0, None)
                wpost = np.clip((cos_post - 0.25) / 0.5, 0.0, 1.0)
                par = par + P["dep_hu"] * wpost * np.exp(-depth / P["dep_mm"])
            hu2[lz] = np.broadcast_to(par, hu2.shape)[lz]
        hu3[:, :, k] = hu2
        lab3[:, :, k] = lab2
    return hu3, lab3


def _trees(P: dict[str, Any], rng: np.random.Generator, inside, roots):
    """Pulmonary artery and vein trees of both lungs, and bronchi beside the larger arteries.

    ``roots(sgn, w_mm)`` gives the hilum point (mm) of the lung on side ``sgn`` (+1 left,
    -1 right) at height ``w_mm``.
    """
    L = P["landmarks"]
    cu, cv, b_ta = P["cu"], P["cv"], P["b_ta"]
    ves: list[list[np.ndarray]] = [[], [], []]
    air: list[list[np.ndarray]] = [[], [], []]
    base = np.array([[0.1, 0.0, 1.0], [0.6, -0.2, 0.8], [1.0, 0.0, 0.1], [0.6, -0.8, -0.2],
                     [0.5, 0.6, -0.7], [0.4, 0.1, -1.0], [0.3, 0.9, 0.1], [0.7, -0.5, 0.5],
                     [0.2, -0.9, 0.4], [0.8, 0.5, 0.3], [0.9, -0.3, -0.6], [0.2, 0.7, 0.8]])
    for sgn in (-1.0, 1.0):
        for kind, dw, r0 in (("artery", 4.0, 4.2), ("vein", -22.0, 3.8)):
            root = roots(sgn, L["w_hilum"] + dw)
            dirs = base * np.array([sgn, 1.0, 1.0]) + rng.normal(scale=0.2, size=base.shape)
            dirs = _normalise(dirs)
            starts = np.repeat(root[None], len(dirs), axis=0)
            radii = r0 * rng.uniform(0.75, 1.1, size=len(dirs))
            s0, s1, r = _grow_tree(rng, starts, dirs, radii, hilum=root, inside=inside)
            trunk_start = np.array([[cu + sgn * 6.0, cv - 0.15 * b_ta, root[2] + 6.0]])
            for lst, x in zip(ves, (s0, s1, r)):
                lst.append(x)
            for lst, x in zip(ves, (trunk_start, root[None], np.array([1.8 * r0]))):
                lst.append(x)
            if kind == "artery":
                big = r >= 2.0
                e1, _ = _orthonormal(_normalise(s1[big] - s0[big]))
                off = e1 * (r[big] * 1.8 + 1.0)[:, None]
                for lst, x in zip(air, (s0[big] + off, s1[big] + off, 0.7 * r[big])):
                    lst.append(x)
    return tuple(np.concatenate(x) for x in ves), tuple(np.concatenate(x) for x in air)


def _add_lesions(H, lung, lesions, P, origin, pxw) -> np.ndarray:
    """Blend ground-glass opacities (and consolidation cores) into the parenchyma ``H`` in place;
    returns the boolean mask of voxels inside a lesion."""
    nx, ny, n = H.shape
    thick = P["thick"]
    u = origin[0] + np.arange(nx) * pxw
    v = origin[1] + np.arange(ny) * pxw
    w = origin[2] + np.arange(n) * thick
    mask = np.zeros(H.shape, dtype=bool)
    # peripheral, posterior and basal preference: distance to the lung border on a coarse grid
    st = max(1, round(4.0 / pxw))
    coarse = lung[::st, ::st, :]
    if not coarse.any():
        return mask
    dist = ndimage.distance_transform_edt(coarse, sampling=(st * pxw, st * pxw, thick))
    ci, cj, ck = np.nonzero(coarse)
    uu, vv, ww = u[ci * st], v[cj * st], w[ck]
    post = np.clip((vv - P["cv"]) / P["b_tp"] + 0.5, 0.0, 1.5)
    low = np.clip(1.2 - ww / P["lung_h"], 0.2, 1.2)
    lateral = np.abs(uu - P["cu"]) / P["a_t"]
    weight = np.exp(-dist[ci, cj, ck] / 12.0) * (0.3 + post) * (0.2 + lateral) * low
    for les in lesions:
        wsel = weight * ((les["side"] == 0) | (np.sign(uu - P["cu"]) == les["side"]))
        total = wsel.sum()
        if total <= 0:
            continue
        idx = _pick(les, wsel / total)
        c = np.array([uu[idx], vv[idx], ww[idx]])
        ax = les["radius_mm"] * les["axes"]
        ext = 1.45 * ax.max()
        si, sj = _span(u, c[0] - ext, c[0] + ext), _span(v, c[1] - ext, c[1] + ext)
        sk = _span(w, c[2] - 1.45 * ax[2] - thick / 2, c[2] + 1.45 * ax[2] + thick / 2)
        if si.stop <= si.start or sj.stop <= sj.start or sk.stop <= sk.start:
            continue
        x = (u[si] - c[0]).astype(np.float32)[:, None, None]
        y = (v[sj] - c[1]).astype(np.float32)[None, :, None]
        z = (w[sk] - c[2]).astype(np.float32)[None, None, :]
        ca, sa = math.cos(les["angle"]), math.sin(les["angle"])
        xr = (x * ca - y * sa) / ax[0]
        yr = (x * sa + y * ca) / ax[1]
        zr = z / ax[2]
        wv = les["waves"]
        # irregular outline: three random low-frequency waves on the normalised radius
        r = (np.sqrt(xr * xr + yr * yr + zr * zr)
             + 0.12 * np.sin(2.3 * (wv[0, 0] * xr + wv[0, 1] * yr + wv[0, 2] * zr) + wv[0, 3])
             + 0.10 * np.sin(3.7 * (wv[1, 0] * xr + wv[1, 1] * yr + wv[1, 2] * zr) + wv[1, 3])
             + 0.08 * np.sin(5.9 * (wv[2, 0] * xr + wv[2, 1] * yr) + wv[2, 3]))
        alpha = np.clip((1.1 - r) / 0.45, 0.0, 1.0)
        alpha = alpha * alpha * (3 - 2 * alpha)  # smoothstep: ill-defined margins
        m = lung[si, sj, sk]
        alpha = (alpha * les["amp"] * m).astype(np.float32)
        block = H[si, sj, sk]
        block += alpha * (les["hu"] - block)
        if les["consolidation"]:
            beta = np.clip((0.5 - r) / 0.2, 0.0, 1.0).astype(np.float32) * m
            block += beta * (les["cons_hu"] - block)
        mask[si, sj, sk] |= (alpha > 0.35) & m
    return mask


def _pick(les: dict[str, Any], p: np.ndarray) -> int:
    """Index drawn with probabilities ``p`` using the lesion's own uniform number ``pick``."""
    return int(min(np.searchsorted(np.cumsum(p), les["pick"]), len(p) - 1))


# --------------------------------------------------------------------------- the dataset


def study_paths(
    out: str | os.PathLike[str], *, normal: int, abnormal: int
) -> list[tuple[Path, int, int]]:
    """Where :func:`generate_dataset` writes each study: (path, label, index within class).

    Numbering continues across classes like MosMedData: normal studies are
    ``CT-0/study_0001 … study_{normal}``, abnormal ones ``CT-23/study_{normal+1} …``.

    Examples
    --------
    >>> for path, label, index in study_paths("d", normal=2, abnormal=1):
    ...     print(path.as_posix(), label, index)
    d/CT-0/study_0001.nii.gz 0 1
    d/CT-0/study_0002.nii.gz 0 2
    d/CT-23/study_0003.nii.gz 1 1
    """
    root = Path(out)
    width = max(4, len(str(normal + abnormal)))
    rows = []
    number = 0
    for label, count in ((0, normal), (1, abnormal)):
        for i in range(1, count + 1):
            number += 1
            name = f"study_{number:0{width}d}.nii.gz"
            rows.append((root / CLASS_FOLDERS[label] / name, label, i))
    return rows


def _write_study(path: str, label: int, index: int, seed: int, size: int) -> dict[str, Any]:
    """Worker: generate one study from (seed, label, index) and write it atomically."""
    import nibabel as nib

    rng = np.random.default_rng([seed, label, index])
    data, affine, info = make_phantom(abnormal=bool(label), rng=rng, size=size)
    img = nib.Nifti1Image(data, affine)
    img.header.set_data_dtype(np.int16)
    img.header.set_xyzt_units("mm", "sec")
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    img.header["descrip"] = f"ctutils synthetic phantom v{PHANTOM_VERSION} (not a patient)".encode()
    with atomic_path(path) as tmp:
        nib.save(img, tmp)
    info["path"] = Path(path).as_posix()
    info["label"] = int(label)
    return info


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def generate_dataset(
    out: str | os.PathLike[str],
    *,
    normal: int,
    abnormal: int,
    seed: int,
    size: int = 512,
    workers: int | None = None,
    progress: bool = True,
) -> list[Path]:
    """Write a synthetic MosMedData-shaped dataset of chest-CT phantoms.

    Layout: ``<out>/CT-0/study_0001.nii.gz … study_{normal}`` (label 0) and
    ``<out>/CT-23/study_{normal+1} …`` (label 1), int16 HU with a real affine
    (axes L, P, S) and voxel size, plus ``<out>/synthetic.json`` (parameters, version and per-study
    facts such as the lesion fraction). Study *i* of class *c* depends only on ``(seed, c, i)``, so
    the files are the same whatever ``workers`` is, and a larger dataset with the same seed starts
    with the same studies. Every file is written atomically. A rerun with the same parameters skips
    the studies that exist; with other parameters the folder is regenerated (stale
    ``study_*.nii.gz`` files are removed).

    Parameters
    ----------
    out : path
        Dataset root; created if missing.
    normal, abnormal : int
        Number of studies per class (>= 0).
    seed : int
        Dataset seed (>= 0).
    size : int, default 512
        In-plane size in voxels (the Quick profile of the course uses 256).
    workers : int or None
        Processes; None uses every available CPU core, 1 runs in this process.
    progress : bool, default True
        Show a tqdm progress bar.

    Returns
    -------
    list of pathlib.Path
        Every study of the dataset, normal first, in numbering order.

    Raises
    ------
    ValueError
        For a negative count or seed, ``size`` < 32, ``workers`` < 1, or when ``out`` already holds
        study files that this generator did not write (no ``synthetic.json``) — real data is never
        overwritten.
    """
    normal = _check_int("normal", normal, 0)
    abnormal = _check_int("abnormal", abnormal, 0)
    seed = _check_int("seed", seed, 0)
    size = _check_int("size", size, 32)
    if workers is not None:
        workers = _check_int("workers", workers, 1)
    root = Path(out)
    meta_path = root / METADATA_NAME
    params = {"generator": "ctutils.phantoms", "version": PHANTOM_VERSION, "seed": seed,
              "normal": normal, "abnormal": abnormal, "size": size}
    pattern = re.compile(r"study_\d+\.nii\.gz")
    existing = [p for folder in CLASS_FOLDERS.values() if (root / folder).is_dir()
                for p in (root / folder).iterdir() if pattern.fullmatch(p.name)]
    old: dict[str, Any] = {}
    if meta_path.exists():
        try:
            old = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{meta_path}: unreadable synthetic-dataset metadata ({err})") from err
    elif existing:
        raise ValueError(
            f"{root}: holds {len(existing)} study files but no {METADATA_NAME}; refusing to "
            "overwrite data that the phantom generator did not write (choose another --out)"
        )
    plan = study_paths(root, normal=normal, abnormal=abnormal)
    same = bool(old) and all(old.get(k) == v for k, v in params.items())
    old_info = {Path(s["path"]).name: s for s in old.get("studies", [])} if same else {}
    wanted = {p for p, _, _ in plan}
    for p in existing:  # stale files from other parameters or a larger dataset
        if not same or p not in wanted:
            p.unlink()
    todo = [(p, lab, i) for p, lab, i in plan if not (same and p.exists())]
    infos: dict[Path, dict[str, Any]] = {}
    for p, _, _ in plan:
        if p.exists() and p.name in old_info:
            infos[p] = old_info[p.name]

    def record(complete: bool) -> None:
        studies = [_jsonable({**infos.get(p, {}), "path": p.relative_to(root).as_posix(),
                              "label": lab})
                   for p, lab, _ in plan if complete or p in infos]
        _write_json(meta_path, {**params, "complete": complete, "studies": studies})

    record(False)  # from here on the folder is ours, even if this run is interrupted
    from ctutils.frontend import progress_bar

    bar = progress_bar(total=len(todo), desc=f"phantoms {size}px", unit="study", disable=not progress)
    try:
        if workers is None:
            workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
                os.cpu_count() or 1)
        workers = max(1, min(workers, len(todo)))
        if workers == 1:
            for p, lab, i in todo:
                infos[p] = _write_study(str(p), lab, i, seed, size)
                bar.update()
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = {pool.submit(_write_study, str(p), lab, i, seed, size): p
                           for p, lab, i in todo}
                for fut in as_completed(futures):
                    infos[futures[fut]] = fut.result()
                    bar.update()
    except BaseException:
        record(False)  # keep the facts about the studies already written for a rerun
        raise
    finally:
        bar.close()
    record(True)
    return [p for p, _, _ in plan]


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(x) for x in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_jsonable(payload), indent=1) + "\n")

