"""One synthetic chest CT in Hounsfield units, with its lesion and lung masks (chapter 01).

The course's embedded dataset (:mod:`ctutils.synthetic`) is made of these phantoms when the real
MosMedData cannot be downloaded. **They are synthetic**: procedural anatomy, not patients. See
``docs/phantoms.md`` for the design, the grading, the calibration against a real chest CT and the
accuracy of a one-feature baseline (:mod:`ctutils.baseline`).

Geometry. Volumes are stored like the real CT in ``data/real-ct``: array axes (X, Y, Z) run towards
the patient's Left, Posterior and Superior (``nibabel.aff2axcodes`` gives ``('L', 'P', 'S')``), the
affine is ``diag(-dx, -dy, dz)`` plus an origin, so ``nibabel.as_closest_canonical`` returns RAS.
Internally the anatomy is drawn in millimetres with ``u`` towards the patient's left, ``v``
towards posterior and ``w`` towards superior, which are exactly the stored array directions.

How a phantom is made (vectorised; one Python loop over slices, none over voxels):

1. sample the study: :class:`Anatomy` (body, organs, densities, inspiration level, dependent
   density and atelectasis), :class:`Acquisition` (slices, field of view, reconstruction kernel,
   noise, calibration offset, coverage, breathing motion) and, for a graded study,
   :class:`Disease` (target involvement, foci, pattern);
2. paint each axial slice at a working resolution (``size`` / 2 for ``size`` >= 384, else
   ``size``), one painter per structure: chest wall, abdomen, ribs, sternum, clavicles and
   scapulae, mediastinum, heart, great vessels, airways, spine, lung parenchyma;
3. add texture and other findings to the lungs, paint the disease (ground glass, crazy paving,
   consolidation) so that exactly the target share of the lung is involved, then the procedural
   vessel and airway trees (vessels stay visible through ground glass);
4. reconstruct: breathing-motion ghosting, kernel blur or edge enhancement, upsampling to
   ``size``, spatially correlated noise, calibration offset, int16 in [-1024, 3071]; keep only
   the slices of the scan's coverage.

Grades follow MosMedData (Morozov et al. 2020): involvement = lesion voxels / lung-parenchyma
voxels, both from the generator's own masks; CT-1 below 25 %, CT-2 25-50 %, CT-3 50-75 %,
CT-4 75 % and more (:data:`GRADE_RANGES`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = [
    "PHANTOM_VERSION",
    "GRADE_RANGES",
    "KERNELS",
    "Acquisition",
    "Anatomy",
    "Disease",
    "Finding",
    "Focus",
    "Phantom",
    "grade_of",
    "make_phantom",
    "sample_acquisition",
    "sample_anatomy",
    "sample_disease",
]

#: Bumped whenever the generator's output changes; recorded in ``synthetic.json``.
PHANTOM_VERSION = 2
STORE_HU_MIN, STORE_HU_MAX = -1024, 3071
#: Involvement range of each MosMedData grade, as a fraction of the lung parenchyma: [low, high),
#: and [0.75, 1.0] for CT-4 (:func:`grade_of`).
GRADE_RANGES: dict[int, tuple[float, float]] = {
    0: (0.0, 0.0), 1: (0.0, 0.25), 2: (0.25, 0.50), 3: (0.50, 0.75), 4: (0.75, 1.0),
}
#: Reconstruction kernels: in-plane blur (working voxels), edge enhancement, noise range (HU).
KERNELS: dict[str, dict[str, Any]] = {
    "smooth": {"blur_px": 0.75, "sharpen": 0.0, "noise_hu": (5.0, 14.0), "box_filters": 2},
    "standard": {"blur_px": 0.5, "sharpen": 0.0, "noise_hu": (8.0, 20.0), "box_filters": 1},
    "sharp": {"blur_px": 0.35, "sharpen": 0.35, "noise_hu": (12.0, 24.0), "box_filters": 0},
}

_AIR = -1000.0
# labels of the per-voxel tissue map used while painting
_OUT, _BODY, _LUNG, _MEDFAT = 0, 1, 2, 3


def grade_of(involvement: float) -> int:
    """MosMedData grade of a study whose lesions cover ``involvement`` (0..1) of the lungs.

    Examples
    --------
    >>> [grade_of(f) for f in (0.0, 0.01, 0.249, 0.25, 0.5, 0.74, 0.75, 1.0)]
    [0, 1, 1, 2, 3, 3, 4, 4]
    """
    if not 0.0 <= involvement <= 1.0:
        raise ValueError(f"involvement: expected a fraction in [0, 1], got {involvement!r}")
    if involvement == 0.0:
        return 0
    return next(g for g in (1, 2, 3) if involvement < GRADE_RANGES[g][1]) if involvement < 0.75 else 4


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Finding:
    """A finding other than pneumonia (not a lesion of the mask): a small solid nodule, or a
    plate-like band of atelectasis or scar.

    ``pick`` (0..1) selects its centre among the lung voxels (of the lower half for a band);
    ``half_axes_mm`` are in-plane length, in-plane thickness and craniocaudal extent (equal for a
    nodule); ``angle_rad`` turns it in-plane.
    """

    pick: float
    half_axes_mm: tuple[float, float, float]
    angle_rad: float
    density_hu: float


@dataclass(frozen=True)
class Anatomy:
    """The patient: sizes in mm, densities in HU, angles in radians, ``*_rel`` fractions.

    The thoracic cavity (inside the ribs) is an ellipse of half width ``cavity_half_width_mm`` and
    half depth ``cavity_half_depth_mm`` (5 % less in front, 5 % more behind), centred at
    (``centre_u_mm``, ``centre_v_mm``). Heights ``w`` run from the deepest costophrenic recess
    (0) to the lung apex (``lung_height_mm``).
    """

    cavity_half_width_mm: float
    cavity_half_depth_mm: float
    fat_anterior_mm: float
    fat_lateral_mm: float
    fat_posterior_mm: float
    muscle_anterior_mm: float
    muscle_lateral_mm: float
    muscle_posterior_mm: float
    body_harmonics_rel: tuple[float, ...]
    body_phases_rad: tuple[float, ...]
    cavity_harmonics_rel: tuple[float, ...]
    cavity_phases_rad: tuple[float, ...]
    breast_bulge_rel: float
    pectoral_bulge_rel: float
    centre_u_mm: float
    centre_v_mm: float
    lung_height_mm: float
    dome_right_mm: float
    dome_left_mm: float
    fat_hu: float
    muscle_hu: float
    contrast: bool
    blood_hu: float
    liver_hu: float
    spleen_hu: float
    marrow_hu: float
    cortex_hu: float
    rib_hu: float
    expiratory: bool
    lung_hu: float
    ap_gradient_hu: float
    dependent_hu: float
    dependent_depth_mm: float
    atelectasis_mm: float
    atelectasis_hu: float
    texture_hu: float
    grain_hu: float
    nodules: tuple[Finding, ...]
    scars: tuple[Finding, ...]
    heart_half_axes_mm: tuple[float, float, float]
    heart_angle_rad: float
    heart_offset_rel: float
    aorta_radius_mm: float
    trachea_radius_mm: float
    vertebra_radius_mm: float
    mediastinum_half_width_rel: float
    arch_height_rel: float
    hilum_height_rel: float
    carina_above_hilum_mm: float
    rib_pitch_mm: float
    rib_drop_mm: float
    rib_width_mm: float
    rib_height_mm: float
    rib_phase_rel: float
    vertebra_pitch_mm: float
    vertebra_phase_rel: float

    @property
    def cavity_anterior_mm(self) -> float:
        return 0.95 * self.cavity_half_depth_mm

    @property
    def cavity_posterior_mm(self) -> float:
        return 1.05 * self.cavity_half_depth_mm

    @property
    def body_half_width_mm(self) -> float:
        return self.cavity_half_width_mm + self.muscle_lateral_mm + self.fat_lateral_mm

    @property
    def body_anterior_mm(self) -> float:
        return self.cavity_anterior_mm + self.muscle_anterior_mm + self.fat_anterior_mm

    @property
    def body_posterior_mm(self) -> float:
        return self.cavity_posterior_mm + self.muscle_posterior_mm + self.fat_posterior_mm


@dataclass(frozen=True)
class Acquisition:
    """The scanner and the scan: sizes in mm, densities in HU.

    ``n_slices`` slices of ``slice_thickness_mm`` cover the chest from ``margin_bottom_mm`` below
    the costophrenic recess to ``margin_top_mm`` above the apex; only ``kept_slices`` (start,
    stop) are stored: ``coverage`` "full", or "no-apex" / "no-base" for scans that miss part of
    the lungs. ``motion_slices`` (start, stop; empty for none) are ghosted by a breathing motion of
    ``motion_mm``. ``calibration_offset_hu`` is a calibration offset of the whole body (site difference).
    """

    n_slices: int
    slice_thickness_mm: float
    margin_bottom_mm: float
    margin_top_mm: float
    fov_mm: float
    z_origin_mm: float
    kernel: str
    noise_hu: float
    calibration_offset_hu: float
    table: bool
    table_hu: float
    coverage: str
    kept_slices: tuple[int, int]
    motion_slices: tuple[int, int]
    motion_mm: float


@dataclass(frozen=True)
class Focus:
    """One focus of disease: a soft irregular ellipsoid whose centre is drawn in the lungs.

    ``pick`` (0..1) selects the centre among lung positions weighted towards the periphery, the
    back and the bases; ``side`` is +1 (left lung), -1 (right) or 0 (either). ``waves`` (3 × 4)
    make the outline irregular.
    """

    pick: float
    side: float
    radius_mm: float
    axes_rel: tuple[float, float, float]
    angle_rad: float
    weight: float
    waves: tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class Disease:
    """Viral pneumonia of one MosMedData grade (1-4).

    ``target_involvement`` is the share of the lung parenchyma that the lesion mask covers,
    inside the grade's range. The disease field is the sum of the ``foci`` plus, weighted by
    ``confluence``, a smooth random field near the pleura (confluent, diffuse disease); the
    voxels where it is highest become lesion. Lesions are blended towards the patient's lung density
    plus ``ggo_above_lung_hu`` (so that they are denser than the lung around them, expiratory or not)
    with strength ``opacity``; the densest ``consolidation_fraction`` of them towards ``consolidation_hu``;
    ``crazy_paving`` adds a polygonal network of thickened septa.
    """

    grade: int
    target_involvement: float
    pattern: str
    foci: tuple[Focus, ...]
    confluence: float
    ggo_above_lung_hu: float
    opacity: float
    consolidation_fraction: float
    consolidation_hu: float
    crazy_paving: bool


def _u(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def _tuple(values: np.ndarray) -> tuple[float, ...]:
    return tuple(float(x) for x in values)


def _sample_findings(rng: np.random.Generator, probability: float, count: tuple[int, int],
                     kind: str) -> tuple[Finding, ...]:
    """With ``probability``, ``count`` [low, high) nodules (radius 2.5-7 mm, -30-70 HU) or scars
    and plate-like atelectasis (15-40 mm long, 1-2.5 mm thick, -350 to -50 HU)."""
    if rng.random() >= probability:
        return ()
    out = []
    for _ in range(int(rng.integers(*count))):
        if kind == "nodule":
            r = _u(rng, 2.5, 7.0)
            out.append(Finding(pick=_u(rng, 0, 1), half_axes_mm=(r, r, r), angle_rad=0.0,
                               density_hu=_u(rng, -30, 70)))
        else:
            out.append(Finding(pick=_u(rng, 0, 1),
                               half_axes_mm=(_u(rng, 15, 40), _u(rng, 1.0, 2.5), _u(rng, 6, 15)),
                               angle_rad=_u(rng, 0, math.pi), density_hu=_u(rng, -350, -50)))
    return tuple(out)


def sample_anatomy(rng: np.random.Generator) -> Anatomy:
    """Draw a patient: chest size and shape, organs, tissue densities and the lung state.

    10 % of studies are expiratory (denser, shorter lungs: a diffuse density that mimics ground
    glass); 25 % are enhanced by intravenous contrast (blood 90-170 HU instead of 32-48 HU,
    vessels brighter); 25 % have dependent atelectasis (a dense band at the posterior lung bases); 55 % have
    milder dependent density. Findings other than pneumonia, in both classes: small solid nodules
    in 30 % of studies, scars or plate-like atelectasis in the lower lungs in 30 %.
    """
    a_t = _u(rng, 105, 135)
    habitus = _u(rng, 0.4, 0.9)
    expiratory = bool(rng.random() < 0.10)
    contrast = bool(rng.random() < 0.25)
    lung_h = _u(rng, 200, 250) * (_u(rng, 0.8, 0.9) if expiratory else 1.0)
    dome_r = _u(rng, 40, 65) * lung_h / 225 * (1.2 if expiratory else 1.0)
    b_t = a_t * _u(rng, 0.56, 0.68)
    fat_a, fat_l, fat_p = (habitus * _u(rng, 15, 45), habitus * _u(rng, 12, 40),
                           habitus * _u(rng, 10, 25))
    mus_a, mus_l, mus_p = _u(rng, 9, 15), _u(rng, 7, 12), _u(rng, 24, 33)
    # the cavity sits where the body's front and back thicknesses put it
    centre_v = _u(rng, -8, 14) + 0.5 * ((0.95 * b_t + mus_a + fat_a) - (1.05 * b_t + mus_p + fat_p))
    return Anatomy(
        cavity_half_width_mm=a_t, cavity_half_depth_mm=b_t,
        fat_anterior_mm=fat_a, fat_lateral_mm=fat_l, fat_posterior_mm=fat_p,
        muscle_anterior_mm=mus_a, muscle_lateral_mm=mus_l, muscle_posterior_mm=mus_p,
        body_harmonics_rel=_tuple(rng.uniform(0.0, 0.02, size=4)),
        body_phases_rad=_tuple(rng.uniform(0, 2 * math.pi, size=4)),
        cavity_harmonics_rel=_tuple(rng.uniform(0.0, 0.012, size=4)),
        cavity_phases_rad=_tuple(rng.uniform(0, 2 * math.pi, size=4)),
        breast_bulge_rel=habitus * _u(rng, 0.0, 0.08), pectoral_bulge_rel=_u(rng, 0.0, 0.04),
        centre_u_mm=_u(rng, -12, 12), centre_v_mm=centre_v,
        lung_height_mm=lung_h, dome_right_mm=dome_r, dome_left_mm=dome_r - _u(rng, 5, 22),
        fat_hu=_u(rng, -112, -88), muscle_hu=_u(rng, 38, 56),
        contrast=contrast, blood_hu=_u(rng, 90, 170) if contrast else _u(rng, 32, 48),
        liver_hu=_u(rng, 50, 66), spleen_hu=_u(rng, 40, 52), marrow_hu=_u(rng, 160, 280),
        cortex_hu=_u(rng, 650, 1100), rib_hu=_u(rng, 350, 550),
        expiratory=expiratory,
        lung_hu=_u(rng, -790, -720) if expiratory else _u(rng, -895, -850),
        ap_gradient_hu=_u(rng, 30, 90) if expiratory else _u(rng, 5, 50),
        dependent_hu=_u(rng, 40, 200) if rng.random() < 0.55 else 0.0,
        dependent_depth_mm=_u(rng, 3, 10),
        atelectasis_mm=_u(rng, 4, 14) if rng.random() < 0.25 else 0.0,
        atelectasis_hu=_u(rng, -150, 20),
        texture_hu=_u(rng, 15, 30), grain_hu=_u(rng, 18, 32),
        nodules=_sample_findings(rng, 0.3, (1, 5), "nodule"),
        scars=_sample_findings(rng, 0.3, (1, 4), "scar"),
        heart_half_axes_mm=(_u(rng, 45, 55), _u(rng, 34, 42), _u(rng, 43, 53)),
        heart_angle_rad=math.radians(_u(rng, 25, 45)), heart_offset_rel=_u(rng, 0.16, 0.28),
        aorta_radius_mm=_u(rng, 12, 17), trachea_radius_mm=_u(rng, 7.5, 10.5),
        vertebra_radius_mm=_u(rng, 14, 18), mediastinum_half_width_rel=_u(rng, 0.2, 0.26),
        arch_height_rel=_u(rng, 0.66, 0.73), hilum_height_rel=_u(rng, 0.48, 0.56),
        carina_above_hilum_mm=_u(rng, 12, 28), rib_pitch_mm=_u(rng, 26, 32),
        rib_drop_mm=_u(rng, 90, 130), rib_width_mm=_u(rng, 4.0, 6.0),
        rib_height_mm=_u(rng, 3.5, 5.0), rib_phase_rel=_u(rng, 0, 1),
        vertebra_pitch_mm=_u(rng, 24, 30), vertebra_phase_rel=_u(rng, 0, 1),
    )


def sample_acquisition(
    rng: np.random.Generator, anatomy: Anatomy, *, n_slices: int | None = None
) -> Acquisition:
    """Draw the scan: slices, field of view, kernel, noise, calibration, coverage, motion.

    Kernels: 30 % smooth, 45 % standard, 25 % sharp (with their own noise ranges,
    :data:`KERNELS`). 15 % of scans miss the lung apex or base (by 12-30 % of the lung height);
    20 % show breathing motion over 3-8 slices near the bases.
    """
    n = int(rng.integers(30, 71)) if n_slices is None else int(n_slices)
    half = min(205.0, max(155.0, anatomy.body_half_width_mm + abs(anatomy.centre_u_mm)
                          + _u(rng, 2, 18)))
    margin_bottom, margin_top = _u(rng, 0, 25), _u(rng, 0, 6)
    thick = (anatomy.lung_height_mm + margin_bottom + margin_top) / n
    kernel = str(rng.choice(list(KERNELS), p=[0.30, 0.45, 0.25]))
    coverage = str(rng.choice(["full", "no-apex", "no-base"], p=[0.85, 0.075, 0.075]))
    cut = int(round(_u(rng, 0.12, 0.30) * anatomy.lung_height_mm / thick))
    if coverage == "no-apex":
        kept = (0, n - int(round(margin_top / thick)) - cut)
    elif coverage == "no-base":
        kept = (int(round(margin_bottom / thick)) + cut, n)
    else:
        kept = (0, n)
    if kept[1] - kept[0] < 2:  # a tiny n_slices (tests) keeps everything
        kept, coverage = (0, n), "full"
    motion = bool(rng.random() < 0.20)
    length = int(rng.integers(3, 9))
    first = int(round((margin_bottom + _u(rng, 0.0, 0.35) * anatomy.lung_height_mm) / thick))
    motion_slices = (max(first, kept[0]), min(first + length, kept[1])) if motion else (0, 0)
    if motion_slices[1] <= motion_slices[0]:  # ghosted slices outside the stored ones: no motion
        motion, motion_slices = False, (0, 0)
    return Acquisition(
        n_slices=n, slice_thickness_mm=thick, margin_bottom_mm=margin_bottom,
        margin_top_mm=margin_top, fov_mm=2.0 * half, z_origin_mm=round(-_u(rng, 150, 400), 1),
        kernel=kernel, noise_hu=_u(rng, *KERNELS[kernel]["noise_hu"]),
        calibration_offset_hu=_u(rng, -12, 12), table=bool(rng.random() < 0.7), table_hu=_u(rng, 80, 300),
        coverage=coverage, kept_slices=kept, motion_slices=motion_slices,
        motion_mm=_u(rng, 3, 8) if motion else 0.0,
    )


_GRADE_DISEASE = {  # foci [low, high), radius mm, bilateral probability, confluence,
    # ground glass above the patient's own lung density (HU), opacity
    1: ((1, 6), (8, 24), 0.5, (0.0, 0.0), (150, 310), (0.45, 0.95)),
    2: ((4, 11), (15, 40), 0.95, (0.2, 0.5), (130, 390), (0.4, 1.0)),
    3: ((6, 15), (18, 45), 1.0, (0.4, 0.8), (150, 410), (0.45, 1.0)),
    4: ((8, 19), (20, 50), 1.0, (0.8, 1.2), (270, 450), (0.8, 1.0)),
}


def sample_disease(rng: np.random.Generator, grade: int) -> Disease:
    """Draw the disease of one grade (1-4) as radiology describes COVID-19 pneumonia.

    CT-1: 1-5 focal, peripheral, often posterior and basal ground-glass opacities, some of them
    faint; involvement 1-23 % (log-uniform, so many studies are subtle). CT-2 and CT-3:
    multifocal, bilateral opacities becoming confluent, crazy paving in about half, some
    consolidation. CT-4: diffuse involvement with consolidation.
    """
    if grade not in (1, 2, 3, 4):
        raise ValueError(f"grade: expected 1, 2, 3 or 4 for a diseased study, got {grade!r}")
    (n_lo, n_hi), radius, p_bilateral, conf, ggo, opacity = _GRADE_DISEASE[grade]
    if grade == 1:
        target = 10 ** _u(rng, math.log10(0.01), math.log10(0.23))
    else:
        low, high = GRADE_RANGES[grade]
        target = _u(rng, low + 0.02, high - (0.07 if grade == 4 else 0.02))
    bilateral = rng.random() < p_bilateral
    side = 1.0 if rng.random() < 0.5 else -1.0
    foci = tuple(
        Focus(pick=_u(rng, 0, 1), side=0.0 if bilateral else side, radius_mm=_u(rng, *radius),
              axes_rel=_tuple(rng.uniform(0.7, 1.3, size=3) * np.array([1.0, 1.0, 0.9])),
              angle_rad=_u(rng, 0, math.pi), weight=_u(rng, 0.5, 1.0),
              waves=tuple(_tuple(row) for row in rng.normal(size=(3, 4))))
        for _ in range(int(rng.integers(n_lo, n_hi)))
    )
    cons = {1: 0.0, 2: _u(rng, 0.0, 0.15), 3: _u(rng, 0.05, 0.25), 4: _u(rng, 0.2, 0.5)}[grade]
    crazy = grade >= 2 and bool(rng.random() < 0.5)
    if grade == 1:
        pattern = "focal ground glass"
    elif grade == 4:
        pattern = "diffuse ground glass with consolidation"
    else:
        pattern = "multifocal ground glass" + (", crazy paving" if crazy else "") + (
            ", consolidation" if cons >= 0.05 else "")
    return Disease(
        grade=grade, target_involvement=float(target), pattern=pattern, foci=foci,
        confluence=_u(rng, *conf), ggo_above_lung_hu=_u(rng, *ggo), opacity=_u(rng, *opacity),
        consolidation_fraction=cons, consolidation_hu=_u(rng, -80, 30), crazy_paving=crazy,
    )


# --------------------------------------------------------------------------- 2-D shapes

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


def _paint_into(hu, lab, region, value, label, *, within=None):
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



# --------------------------------------------------------------------------- slice painters


@dataclass(frozen=True)
class _Grid:
    """In-plane coordinates of the working grid (mm, (nw,) and broadcastable (nw, nw) maps).

    ``rho`` is the distance from the cavity centre, ``cos_post`` +1 towards the back, ``phi``
    0 at the posterior and pi at the anterior midline, ``theta`` the polar angle, ``cavity_r`` the
    cavity's radius in the direction of each point.
    """

    u: np.ndarray
    v: np.ndarray
    U: np.ndarray
    V: np.ndarray
    du: np.ndarray
    dv: np.ndarray
    rho: np.ndarray
    cos_post: np.ndarray
    phi: np.ndarray
    theta: np.ndarray
    cavity_r: np.ndarray
    px: float


def _harmonics(theta: np.ndarray, amps: tuple[float, ...], phases: tuple[float, ...]) -> np.ndarray:
    return 1.0 + sum(a * np.cos((k + 2) * theta + ph) for k, (a, ph) in enumerate(zip(amps, phases)))


def _bumps(theta: np.ndarray, height: float, centre_deg: float, width_deg: float) -> np.ndarray:
    """Two symmetric bulges of the outline, ``centre_deg`` either side of the anterior midline."""
    out = np.zeros_like(theta)
    for sgn in (-1.0, 1.0):
        dth = np.angle(np.exp(1j * (theta - np.radians(-90.0 + sgn * centre_deg))))
        out += height * np.exp(-0.5 * (dth / np.radians(width_deg)) ** 2)
    return out


def _grid(a: Anatomy, u: np.ndarray, v: np.ndarray) -> _Grid:
    U, V = u[:, None], v[None, :]
    du, dv = U - a.centre_u_mm, V - a.centre_v_mm
    rho = np.sqrt(du * du + dv * dv) + 1e-3
    cos_post = dv / rho
    theta = np.arctan2(dv, du)  # -pi/2: anterior midline
    depth = np.where(dv > 0, a.cavity_posterior_mm, a.cavity_anterior_mm)
    cavity_r = 1.0 / np.sqrt((du / rho / a.cavity_half_width_mm) ** 2 + (dv / rho / depth) ** 2)
    cavity_r = cavity_r * _harmonics(theta, a.cavity_harmonics_rel, a.cavity_phases_rad)
    return _Grid(u=u, v=v, U=U, V=V, du=du, dv=dv, rho=rho, cos_post=cos_post,
                 phi=np.arccos(np.clip(cos_post, -1, 1)), theta=theta, cavity_r=cavity_r,
                 px=float(u[1] - u[0]))


@dataclass(frozen=True)
class _Landmarks:
    """Positions (mm) derived from the anatomy that several painters share."""

    v_vertebra: float
    v_front: float
    v_canal: float
    v_trachea: float
    w_hilum: float
    w_carina: float
    w_arch: float
    mediastinum_half_width_mm: float
    heart_centre: tuple[float, float, float]
    ascending: tuple[float, float]
    descending: tuple[float, float]
    descending_radius_mm: float


def _landmarks(a: Anatomy) -> _Landmarks:
    cu, cv = a.centre_u_mm, a.centre_v_mm
    a_t, b_ta = a.cavity_half_width_mm, a.cavity_anterior_mm
    v_vb = cv + a.cavity_posterior_mm - 0.5 * a.vertebra_radius_mm
    v_front = v_vb - a.vertebra_radius_mm
    w_hilum = a.hilum_height_rel * a.lung_height_mm
    r_d = 0.8 * a.aorta_radius_mm
    return _Landmarks(
        v_vertebra=v_vb, v_front=v_front, v_canal=v_vb + a.vertebra_radius_mm + 8.0,
        v_trachea=v_front - a.trachea_radius_mm - 9.0, w_hilum=w_hilum,
        w_carina=w_hilum + a.carina_above_hilum_mm, w_arch=a.arch_height_rel * a.lung_height_mm,
        mediastinum_half_width_mm=a.mediastinum_half_width_rel * a_t,
        heart_centre=(cu + a.heart_offset_rel * a_t, cv - 0.3 * b_ta,
                      a.dome_left_mm + 0.3 * a.heart_half_axes_mm[2]),
        ascending=(cu - 0.04 * a_t, cv - 0.3 * b_ta),
        descending=(cu + 0.15 * a_t, v_front + 0.2 * r_d), descending_radius_mm=r_d,
    )


@dataclass
class _Slice:
    """One axial slice being painted: painters write into ``hu`` and ``lab`` (and nothing else).

    ``w_mm`` is its height, ``height_rel`` = ``w_mm`` / lung height, ``cavity_scale`` the in-plane
    size of the cavity there (0 above the apex), ``lung``/``abdomen`` the cavity above/below the
    diaphragm.
    """

    hu: np.ndarray
    lab: np.ndarray
    w_mm: float
    height_rel: float
    cavity_scale: float
    thickness_mm: float
    lung: np.ndarray
    abdomen: np.ndarray


def _paint(c: _Slice, region, value: float, label: int, *, within: np.ndarray | None = None) -> None:
    _paint_into(c.hu, c.lab, region, value, label, within=within)


def _paint_chest_wall(a: Anatomy, acq: Acquisition, g: _Grid) -> tuple[np.ndarray, np.ndarray]:
    """The part of every slice that does not change along z: air, table, fat, muscle, fat planes.

    Returns HU (float32) and tissue labels (uint8), (nw, nw).
    """
    du, dv, rho, phi = g.du, g.dv, g.rho, g.phi
    hu = np.full((len(g.u), len(g.v)), _AIR, dtype=np.float32)
    if acq.table:
        top = a.centre_v_mm + a.body_posterior_mm + 1.5 - 25.0 * (du / 220.0) ** 2
        plate = (g.V >= top) & (g.V <= top + 6.0) & (np.abs(du) < 225)
        lower = (g.V >= top + 48.0) & (g.V <= top + 52.0) & (np.abs(du) < 170)
        hu[plate | lower] = acq.table_hu
    ex = np.where(dv > 0, 2.4, 2.0)  # flatter back
    depth = np.where(dv > 0, a.body_posterior_mm, a.body_anterior_mm)
    r_body = (np.abs(du / a.body_half_width_mm) ** ex + np.abs(dv / depth) ** ex) ** (1.0 / ex)
    shape = _harmonics(g.theta, a.body_harmonics_rel, a.body_phases_rad)
    pectoral = _bumps(g.theta, a.pectoral_bulge_rel, 35, 20)
    r_body = r_body / (shape + _bumps(g.theta, a.breast_bulge_rel, 45, 18) + pectoral)
    f_body = _soft_inside(r_body, rho, g.px)
    r_musc = np.sqrt((du / (a.cavity_half_width_mm + a.muscle_lateral_mm)) ** 2
                     + (dv / np.where(dv > 0, a.cavity_posterior_mm + a.muscle_posterior_mm,
                                      a.cavity_anterior_mm + a.muscle_anterior_mm)) ** 2)
    f_musc = _soft_inside(r_musc / (shape + pectoral), rho, g.px) * f_body
    hu += f_body * (a.fat_hu - hu)
    hu += f_musc * (a.muscle_hu - hu)
    # fat planes under the pectoral muscles, between the back muscles and around the scapulae
    d0, rw, musc = rho - g.cavity_r, a.rib_width_mm, f_musc > 0.5
    hu[(d0 > rw + 5.0) & (d0 < rw + 8.0) & (phi > 0.62 * np.pi) & musc] = a.fat_hu
    hu[(np.abs(du) < 3.0) & (dv > a.cavity_posterior_mm + 30.0) & musc] = a.fat_hu
    hu[(d0 > rw + 17.0) & (d0 < rw + 20.0) & (phi < 0.3 * np.pi) & (np.abs(du) > 12.0)
       & musc] = a.fat_hu
    hu[(d0 > rw + 5.0) & (d0 < rw + 7.5) & (phi > 0.3 * np.pi) & (phi < 0.6 * np.pi)
       & musc] = a.fat_hu
    return hu, np.where(f_body > 0.5, _BODY, _OUT).astype(np.uint8)


def _dome_map(a: Anatomy, g: _Grid) -> np.ndarray:
    """Height (mm above w = 0) of the diaphragm domes at each in-plane point (right higher)."""
    a_t, b_tp = a.cavity_half_width_mm, a.cavity_posterior_mm
    cu, cv, b_ta = a.centre_u_mm, a.centre_v_mm, a.cavity_anterior_mm

    def dome(height: float, ucen: float, vcen: float) -> np.ndarray:
        q = 1.0 - ((g.U - ucen) / (0.6 * a_t)) ** 2 - ((g.V - vcen) / (0.9 * b_tp)) ** 2
        return height * np.clip(q, 0.0, 1.0) ** 0.8

    return np.where(g.U < cu, dome(a.dome_right_mm, cu - 0.42 * a_t, cv - 0.2 * b_ta),
                    dome(a.dome_left_mm, cu + 0.45 * a_t, cv - 0.2 * b_ta)).astype(np.float32)


def _paint_abdomen(c: _Slice, a: Anatomy, g: _Grid, dome_map: np.ndarray) -> None:
    """Upper abdomen below the domes: liver, stomach with an air-fluid level, spleen, diaphragm."""
    abd = c.abdomen
    if not abd.any():
        return
    u, v, cu, cv = g.u, g.v, a.centre_u_mm, a.centre_v_mm
    a_t, b_ta, b_tp = a.cavity_half_width_mm, a.cavity_anterior_mm, a.cavity_posterior_mm
    c.hu[abd] = a.fat_hu + 30.0
    _paint(c, _ellipse(u, v, cu - 0.3 * a_t, cv, 0.75 * a_t, 0.95 * b_tp), a.liver_hu, _BODY,
           within=abd)
    stomach = _ellipse(u, v, cu + 0.42 * a_t, cv - 0.25 * b_ta, 0.36 * a_t, 0.5 * b_ta)
    _paint(c, stomach, 22.0, _BODY, within=abd)
    # gas rises to the front of the stomach (the patient lies supine)
    _paint(c, _box(u, v, cu, cu + a_t, cv - 2 * b_ta, cv - 0.45 * b_ta), _AIR, _BODY,
           within=(c.lab == _BODY) & (np.abs(c.hu - 22.0) < 1.0))
    _paint(c, _ellipse(u, v, cu + 0.62 * a_t, cv + 0.5 * b_tp, 0.26 * a_t, 0.36 * b_tp),
           a.spleen_hu, _BODY, within=abd)
    c.hu[abd & (dome_map - c.w_mm < 5.0)] = a.muscle_hu  # diaphragm


def _paint_ribs(c: _Slice, a: Anatomy, g: _Grid, body: np.ndarray) -> None:
    """Ribs and costal cartilage: bands just outside the cavity that descend anteriorly."""
    d = g.rho - c.cavity_scale * g.cavity_r
    band = (d > 1.5) & (d < 1.5 + a.rib_width_mm) & (g.phi > 0.1 * np.pi) & (g.phi < 0.92 * np.pi)
    band &= body
    if c.w_mm <= -50.0 or not band.any():
        return
    ii, jj = np.nonzero(band)
    ph = g.phi[ii, jj]
    along = ((ph - 0.1 * np.pi) / (0.82 * np.pi)) ** 1.3
    z = c.w_mm + a.rib_drop_mm * along - a.rib_phase_rel * a.rib_pitch_mm
    dist = z - np.round(z / a.rib_pitch_mm) * a.rib_pitch_mm
    fraction = _slab_overlap(dist, a.rib_height_mm, c.thickness_mm).astype(np.float32)
    dd = d[ii, jj]
    edge = (dd < 2.8) | (dd > a.rib_width_mm + 0.2)
    value = np.where(ph > 0.8 * np.pi, 120.0, np.where(edge, a.cortex_hu, a.rib_hu))
    c.hu[ii, jj] += fraction * (value - c.hu[ii, jj])


def _paint_chest_bones(c: _Slice, a: Anatomy, g: _Grid, body: np.ndarray) -> None:
    """Scapulae, sternum and manubrium, clavicles (by height in the chest)."""
    s, p, u, v = c.height_rel, c.cavity_scale, g.u, g.v
    cu, cv, a_t, b_ta = a.centre_u_mm, a.centre_v_mm, a.cavity_half_width_mm, a.cavity_anterior_mm
    bone, marrow = a.cortex_hu, a.marrow_hu
    if s > 0.5:  # scapulae
        d = g.rho - p * g.cavity_r
        blade = (d > a.rib_width_mm + 10.0) & (d < a.rib_width_mm + 14.5) & body
        blade &= (g.phi > 0.17 * np.pi) & (g.phi < 0.40 * np.pi)
        c.hu[blade] = 0.5 * (bone + a.rib_hu)
    if 0.2 < s < 1.02:  # sternum and manubrium
        half_w, half_h = (12.0, 5.5) if s < 0.82 else (20.0, 7.0)
        vs = cv - p * b_ta - 6.0
        _paint(c, _ellipse(u, v, cu, vs, half_w, half_h), bone, _BODY)
        _paint(c, _ellipse(u, v, cu, vs, half_w - 2, half_h - 2), marrow, _BODY)
    if s > 0.93:  # clavicles
        for sgn in (-1.0, 1.0):
            ends = ((cu + sgn * 22, cv - b_ta - 12), (cu + sgn * 0.8 * a_t, cv - 0.8 * b_ta))
            _paint(c, _capsule(u, v, *ends, 5.5), bone, _BODY)
            _paint(c, _capsule(u, v, *ends, 3.8), marrow, _BODY)


def _paint_mediastinum(c: _Slice, a: Anatomy, g: _Grid, L: _Landmarks) -> None:
    """Mediastinal fat between the lungs (labelled apart, so that vessels can run through it)."""
    cu, cv, a_t, b_ta = a.centre_u_mm, a.centre_v_mm, a.cavity_half_width_mm, a.cavity_anterior_mm
    _paint(c, _ellipse(g.u, g.v, cu + 0.03 * a_t, cv - 0.02 * b_ta, L.mediastinum_half_width_mm,
                       0.95 * b_ta, scale=min(1.0, 0.4 + c.cavity_scale)),
           a.fat_hu, _MEDFAT, within=c.lung)
    _paint(c, _box(g.u, g.v, cu - 0.1 * a_t, cu + 0.22 * a_t, L.v_front - 26, L.v_front + 8),
           a.fat_hu, _MEDFAT, within=c.lung)


def _paint_heart(c: _Slice, a: Anatomy, g: _Grid, L: _Landmarks, above: np.ndarray) -> None:
    """The heart, an ellipsoid turned towards the left, in its pericardial fat."""
    ha, hb, hc = a.heart_half_axes_mm
    dz = (c.w_mm - L.heart_centre[2]) / hc
    if abs(dz) >= 1.0:
        return
    scale = math.sqrt(1.0 - dz * dz)
    centre = L.heart_centre[:2]
    _paint(c, _rot_ellipse(g.u, g.v, *centre, ha, hb, a.heart_angle_rad, scale=scale * 1.08 + 0.03),
           a.fat_hu, _MEDFAT, within=c.lung)
    _paint(c, _rot_ellipse(g.u, g.v, *centre, ha, hb, a.heart_angle_rad, scale=scale),
           a.blood_hu, _BODY, within=above)


def _paint_great_vessels(c: _Slice, a: Anatomy, g: _Grid, L: _Landmarks) -> None:
    """Ascending aorta, pulmonary trunk, superior vena cava, arch, arch branches, descending aorta."""
    u, v, wk, blood = g.u, g.v, c.w_mm, a.blood_hu
    cu, cv, a_t, b_ta = a.centre_u_mm, a.centre_v_mm, a.cavity_half_width_mm, a.cavity_anterior_mm
    r_ao, hz, hc = a.aorta_radius_mm, L.heart_centre[2], a.heart_half_axes_mm[2]
    if hz + 0.4 * hc < wk < L.w_arch:
        _paint(c, _ellipse(u, v, *L.ascending, r_ao, r_ao), blood, _BODY)
    if hz + 0.35 * hc < wk < L.w_hilum + 12:
        _paint(c, _ellipse(u, v, cu + 0.13 * a_t, cv - 0.34 * b_ta, 13, 13), blood, _BODY)
    if hz + 0.5 * hc < wk < 0.93 * a.lung_height_mm:
        _paint(c, _ellipse(u, v, cu - 0.19 * a_t, cv - 0.18 * b_ta, 10, 10), blood, _BODY)
    if abs(wk - L.w_arch) < r_ao:
        half = math.sqrt(1.0 - ((wk - L.w_arch) / r_ao) ** 2) * r_ao
        _paint(c, _capsule(u, v, L.ascending, L.descending, half), blood, _BODY)
    if wk > L.w_arch + 0.5 * r_ao:
        for ou, ov in ((-0.12, -0.26), (0.03, -0.3), (0.12, -0.2)):
            _paint(c, _ellipse(u, v, cu + ou * a_t, cv + ov * b_ta, 6, 6), blood, _BODY)
    if wk < L.w_arch:
        r_d = L.descending_radius_mm
        _paint(c, _ellipse(u, v, *L.descending, r_d, r_d), blood, _BODY)


def _paint_oesophagus(c: _Slice, a: Anatomy, g: _Grid, L: _Landmarks) -> None:
    _paint(c, _ellipse(g.u, g.v, a.centre_u_mm + 0.05 * a.cavity_half_width_mm, L.v_front - 8.0,
                       7.0, 6.0), a.muscle_hu, _BODY)


def _paint_airways(c: _Slice, a: Anatomy, g: _Grid, L: _Landmarks) -> None:
    """Trachea above the carina, then the main bronchi down to the hila (wall, then air)."""
    u, v, cu, wk, r_tr = g.u, g.v, a.centre_u_mm, c.w_mm, a.trachea_radius_mm
    if wk >= L.w_carina:
        _paint(c, _ellipse(u, v, cu, L.v_trachea, r_tr + 2, r_tr + 2), 30.0, _BODY)
        _paint(c, _ellipse(u, v, cu, L.v_trachea, r_tr, r_tr), _AIR, _BODY)
    elif wk >= L.w_hilum - 5:
        t = (L.w_carina - wk) / (L.w_carina - L.w_hilum + 5)
        rb = 0.72 * r_tr
        target_v = a.centre_v_mm - 0.05 * a.cavity_anterior_mm
        for sgn in (-1.0, 1.0):
            centre = (cu + sgn * t * (L.mediastinum_half_width_mm + 10.0),
                      L.v_trachea + t * (target_v - L.v_trachea))
            _paint(c, _ellipse(u, v, *centre, rb + 1.8, rb + 1.8), 30.0, _BODY)
            _paint(c, _ellipse(u, v, *centre, rb, rb), _AIR, _BODY)


def _paint_spine(c: _Slice, a: Anatomy, g: _Grid, L: _Landmarks) -> None:
    """Vertebral body (cortex, cancellous bone, discs), arch, processes and canal."""
    u, v, cu, r_vb = g.u, g.v, a.centre_u_mm, a.vertebra_radius_mm
    bone, marrow = a.cortex_hu, a.marrow_hu
    zv = c.w_mm - a.vertebra_phase_rel * a.vertebra_pitch_mm
    ddisc = zv - round(zv / a.vertebra_pitch_mm) * a.vertebra_pitch_mm
    fdisc = float(_slab_overlap(ddisc, 3.0, c.thickness_mm))
    _paint(c, _ellipse(u, v, cu, L.v_vertebra, r_vb, r_vb), bone + fdisc * (90 - bone), _BODY)
    _paint(c, _ellipse(u, v, cu, L.v_vertebra, r_vb - 2.2, r_vb - 2.2),
           marrow + fdisc * (90 - marrow), _BODY)
    _paint(c, _ellipse(u, v, cu, L.v_canal, 12.0, 11.0), bone, _BODY)
    _paint(c, _capsule(u, v, (cu, L.v_canal + 8), (cu, L.v_canal + 24), 3.2), bone, _BODY)
    for sgn in (-1.0, 1.0):
        _paint(c, _capsule(u, v, (cu + sgn * 8, L.v_canal - 3), (cu + sgn * 27, L.v_canal + 4),
                           3.5), 0.5 * (bone + marrow), _BODY)
    _paint(c, _ellipse(u, v, cu, L.v_canal, 7.5, 7.0), 15.0, _BODY)


def _paint_parenchyma(c: _Slice, a: Anatomy, g: _Grid) -> None:
    """Lung density: inspiration level, antero-posterior gradient, dependent density, and
    dependent atelectasis (a dense subpleural band at the back of the lower lungs)."""
    lung = c.lab == _LUNG
    if not lung.any():
        return
    par = a.lung_hu + a.ap_gradient_hu * (g.dv / a.cavity_posterior_mm)
    if c.cavity_scale > 0 and (a.dependent_hu > 0 or a.atelectasis_mm > 0):
        depth = np.clip(c.cavity_scale * g.cavity_r - g.rho, 0.0, None)
        back = np.clip((g.cos_post - 0.25) / 0.5, 0.0, 1.0)
        par = par + a.dependent_hu * back * np.exp(-depth / a.dependent_depth_mm)
        band = a.atelectasis_mm * float(np.clip((0.5 - c.height_rel) / 0.3, 0.0, 1.0))
        if band > 0:
            inside = np.clip((band - depth) / 2.0 + 0.5, 0.0, 1.0) * np.clip(
                (g.cos_post - 0.55) / 0.25, 0.0, 1.0)
            par = par + inside * (a.atelectasis_hu - par)
    c.hu[lung] = np.broadcast_to(par, c.hu.shape)[lung]


def paint_slices(a: Anatomy, acq: Acquisition, u: np.ndarray, v: np.ndarray,
                 w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paint every axial slice; returns HU (float32) and tissue labels (uint8), (nw, nw, n).

    Lung voxels get the parenchyma density without texture; mediastinal fat is labelled apart so
    that vessels can run through it.
    """
    g = _grid(a, u, v)
    L = _landmarks(a)
    base_hu, base_lab = _paint_chest_wall(a, acq, g)
    body = base_lab == _BODY
    dome_map = _dome_map(a, g)
    hu3 = np.empty((len(u), len(v), len(w)), dtype=np.float32)
    lab3 = np.empty(hu3.shape, dtype=np.uint8)
    for k, wk in enumerate(w.tolist()):
        s = wk / a.lung_height_mm
        p = _cavity_scale(s)
        cavity = (g.rho < p * g.cavity_r) & body
        above = wk > dome_map
        c = _Slice(hu=base_hu.copy(), lab=base_lab.copy(), w_mm=wk, height_rel=s,
                   cavity_scale=p, thickness_mm=acq.slice_thickness_mm, lung=cavity & above,
                   abdomen=cavity & ~above)
        c.hu[c.lung] = 0.0
        c.lab[c.lung] = _LUNG
        _paint_abdomen(c, a, g, dome_map)
        if p > 0:
            _paint_ribs(c, a, g, body)
            _paint_chest_bones(c, a, g, body)
            _paint_mediastinum(c, a, g, L)
        _paint_heart(c, a, g, L, above)
        _paint_great_vessels(c, a, g, L)
        _paint_oesophagus(c, a, g, L)
        _paint_airways(c, a, g, L)
        _paint_spine(c, a, g, L)
        _paint_parenchyma(c, a, g)
        hu3[:, :, k] = c.hu
        lab3[:, :, k] = c.lab
    return hu3, lab3


# --------------------------------------------------------------------------- vessel and airway trees

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




def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


# --------------------------------------------------------------------------- lungs


@dataclass(frozen=True)
class _LungBox:
    """The bounding box of lungs and mediastinal fat (where texture, disease and trees go).

    ``box`` indexes the full working grid; ``origin`` is the centre of its voxel (0, 0, 0) in mm.
    """

    box: tuple[slice, slice, slice]
    lung: np.ndarray
    region: np.ndarray
    origin: np.ndarray
    voxel_mm: tuple[float, float, float]


def _lung_box(lab: np.ndarray, u: np.ndarray, v: np.ndarray, w: np.ndarray,
              thick: float) -> _LungBox | None:
    region_full = (lab == _LUNG) | (lab == _MEDFAT)
    if not region_full.any():
        return None
    ranges = [np.flatnonzero(region_full.any(axis=tuple(a for a in range(3) if a != ax)))
              for ax in range(2)]
    box = (*(slice(max(0, int(r[0]) - 3), int(r[-1]) + 4) for r in ranges), slice(0, len(w)))
    origin = np.array([u[box[0].start], v[box[1].start], w[0]], dtype=np.float64)
    pxw = float(u[1] - u[0])
    return _LungBox(box=box, lung=lab[box] == _LUNG, region=region_full[box], origin=origin,
                    voxel_mm=(pxw, pxw, thick))


def _add_texture(H: np.ndarray, lung: np.ndarray, a: Anatomy, rng: np.random.Generator) -> None:
    """Smooth density variation plus fine grain in the lungs (in place)."""
    tex = _smooth_field(rng, lung.shape, cell=8, sigma=1.2) * a.texture_hu
    tex += _smooth_field(rng, lung.shape, cell=1, sigma=0.8) * a.grain_hu
    H[lung] += tex[lung]


def _add_other_findings(H: np.ndarray, lung: np.ndarray, a: Anatomy, origin: np.ndarray,
                        voxel_mm: tuple[float, float, float]) -> None:
    """Paint the nodules and scars of ``a`` into the lungs (in place; soft edges of ~1 mm)."""
    step = np.asarray(voxel_mm)
    lower = lung.copy()
    lower[:, :, int(lung.shape[2] * 0.55):] = False
    for finding, region in [(f, lung) for f in a.nodules] + [(f, lower) for f in a.scars]:
        where = np.flatnonzero(region)
        if where.size == 0:
            continue
        centre_ijk = np.unravel_index(where[min(int(finding.pick * where.size), where.size - 1)],
                                      lung.shape)
        ext = np.ceil((max(finding.half_axes_mm) + 2.0) / step).astype(int)
        box = tuple(slice(max(0, c - e), c + e + 1) for c, e in zip(centre_ijk, ext))
        x, y, z = (((np.arange(b.start, min(b.stop, n)) - c) * st).astype(np.float32).reshape(
            [-1 if i == ax else 1 for i in range(3)])
            for ax, (b, c, st, n) in enumerate(zip(box, centre_ijk, step, lung.shape)))
        ca, sa = math.cos(finding.angle_rad), math.sin(finding.angle_rad)
        ax_u, ax_v, ax_w = finding.half_axes_mm
        r = np.sqrt(((x * ca - y * sa) / ax_u) ** 2 + ((x * sa + y * ca) / ax_v) ** 2 + (z / ax_w) ** 2)
        alpha = _smoothstep((1.0 - r) * min(finding.half_axes_mm) + 0.5) * lung[box]
        H[box] += alpha * (finding.density_hu - H[box])


def _periphery(coarse: np.ndarray, a: Anatomy, coords: tuple[np.ndarray, ...],
               dist: np.ndarray) -> np.ndarray:
    """Where viral pneumonia starts: near the pleura (``dist``: mm to the lung's border), at the
    back, laterally and at the bases."""
    uu, vv, ww = coords
    post = np.clip((vv - a.centre_v_mm) / a.cavity_posterior_mm + 0.5, 0.0, 1.5)
    low = np.clip(1.2 - ww / a.lung_height_mm, 0.2, 1.2)
    lateral = np.abs(uu - a.centre_u_mm) / a.cavity_half_width_mm
    return (np.exp(-dist / 8.0) * (0.3 + post) * (0.2 + lateral) * low * coarse).astype(np.float32)


def _focus(f: Focus, coords: tuple[np.ndarray, ...], centre: np.ndarray) -> np.ndarray:
    """The soft irregular ellipsoid of one focus on the coarse grid (1 at its centre)."""
    x, y, z = (c - m for c, m in zip(coords, centre))
    ax = f.radius_mm * np.asarray(f.axes_rel)
    ca, sa = math.cos(f.angle_rad), math.sin(f.angle_rad)
    xr, yr, zr = (x * ca - y * sa) / ax[0], (x * sa + y * ca) / ax[1], z / ax[2]
    wv = np.asarray(f.waves)
    r = (np.sqrt(xr * xr + yr * yr + zr * zr)
         + 0.12 * np.sin(2.3 * (wv[0, 0] * xr + wv[0, 1] * yr + wv[0, 2] * zr) + wv[0, 3])
         + 0.10 * np.sin(3.7 * (wv[1, 0] * xr + wv[1, 1] * yr + wv[1, 2] * zr) + wv[1, 3])
         + 0.08 * np.sin(5.9 * (wv[2, 0] * xr + wv[2, 1] * yr) + wv[2, 3]))
    return np.exp(-np.maximum(r, 0.0) ** 2).astype(np.float32)


def _disease_field(lung: np.ndarray, d: Disease, a: Anatomy, origin: np.ndarray,
                   voxel_mm: tuple[float, float, float], field_seed: int) -> np.ndarray:
    """The disease field on the lung box (float32): high where lesions are; 0 outside the lungs.

    Computed on a grid of about 4 mm in-plane and upsampled linearly: foci centred at lung
    positions drawn with the :func:`_periphery` weights and damped away from the pleura, plus ``confluence`` times a smooth random
    field near the pleura, plus a tiny peripheral term that breaks ties.
    """
    pxw, _, thick = voxel_mm
    st = max(1, round(4.0 / pxw))
    coarse = lung[::st, ::st, :]
    spacing = (st * pxw, st * pxw, thick)
    coords = tuple(
        (origin[ax] + np.arange(coarse.shape[ax]) * spacing[ax]).astype(np.float32).reshape(
            [-1 if i == ax else 1 for i in range(3)]) for ax in range(3))
    dist = ndimage.distance_transform_edt(coarse, sampling=spacing)
    periphery = _periphery(coarse, a, coords, dist)
    field = 1e-4 * periphery / max(float(periphery.max()), 1e-6)
    ci, cj, ck = np.nonzero(coarse)
    weights = periphery[ci, cj, ck]
    left = np.sign(coords[0].ravel()[ci] - a.centre_u_mm)
    for f in d.foci:
        p = weights * ((f.side == 0) | (left == f.side))
        if p.sum() <= 0:
            continue
        i = int(min(np.searchsorted(np.cumsum(p / p.sum()), f.pick), len(p) - 1))
        centre = np.array([coords[0].ravel()[ci[i]], coords[1].ravel()[cj[i]],
                           coords[2].ravel()[ck[i]]])
        field += f.weight * _focus(f, coords, centre)
    field *= 0.15 + 0.85 * np.exp(-dist / 10.0)  # lesions hug the pleura (subpleural)
    if d.confluence > 0:
        rng = np.random.default_rng(field_seed)
        g = _smooth_field(rng, coarse.shape, cell=1, sigma=max(1.0, 16.0 / spacing[0]))
        near = np.sqrt(periphery / max(float(periphery.max()), 1e-6))
        field += d.confluence * near / (1.0 + np.exp(-2.0 * g))
    field *= coarse
    if st > 1:
        field = _upsample_axis(_upsample_axis(field, st, 0), st, 1)
    return np.ascontiguousarray(field[: lung.shape[0], : lung.shape[1]])


def _paint_disease(H: np.ndarray, lung: np.ndarray, d: Disease, *, a: Anatomy, origin: np.ndarray,
                  voxel_mm: tuple[float, float, float], kept_slices: tuple[int, int],
                  field_seed: int) -> np.ndarray:
    """Blend the disease into the parenchyma ``H`` (in place) and return the lesion mask.

    The mask is exactly the ``round(target_involvement * n)`` lung voxels of the kept slices where
    the disease field (:func:`_disease_field`) is highest, so the measured involvement is the
    target. Lesions are ground glass with ill-defined margins (the opacity fades over the
    field's values just below the threshold; vessels painted afterwards stay visible),
    optionally crazy paving (a network of thickened septa inside the lesions) and consolidation
    (the densest part of the field).
    """
    zone = lung.copy()
    zone[:, :, : kept_slices[0]] = False
    zone[:, :, kept_slices[1]:] = False
    field = _disease_field(lung, d, a, origin, voxel_mm, field_seed)
    values = field[zone]
    n = values.size
    k = int(np.clip(round(d.target_involvement * n), 1, max(n - 1, 1)))
    order = np.argpartition(values, n - k)
    top = np.zeros(n, dtype=bool)
    top[order[n - k:]] = True
    mask = np.zeros(lung.shape, dtype=bool)
    mask[zone] = top
    threshold = float(values[order[n - k]])
    spread = max(float(values.std()), 1e-6)
    alpha = _smoothstep((field - threshold) / (0.6 * spread) + 0.5) * zone
    rng = np.random.default_rng(field_seed + 1)
    uneven = np.clip(1.0 + 0.2 * _smooth_field(rng, lung.shape, cell=2, sigma=1.0), 0.6, 1.4)
    H += alpha * d.opacity * uneven * (a.lung_hu + d.ggo_above_lung_hu - H)
    if d.crazy_paving:
        cell = max(1, round(3.0 / voxel_mm[0]))
        septa = np.clip(1.0 - np.abs(_smooth_field(rng, lung.shape, cell=cell, sigma=0.8)) / 0.25,
                        0.0, 1.0) ** 2
        H += septa * np.clip(2.0 * alpha - 1.0, 0.0, 1.0) * 110.0
    if d.consolidation_fraction > 0:
        core = float(np.quantile(field[mask], 1.0 - d.consolidation_fraction))
        beta = _smoothstep((field - core) / (0.3 * spread) + 0.5) * mask
        H += beta * (d.consolidation_hu - H)
    return mask


def _trees(a: Anatomy, L: _Landmarks, rng: np.random.Generator, inside, roots):
    """Pulmonary artery and vein trees of both lungs, and bronchi beside the larger arteries.

    ``roots(sgn, w_mm)`` gives the hilum point (mm) of the lung on side ``sgn`` (+1 left,
    -1 right) at height ``w_mm``.
    """
    cu, cv, b_ta = a.centre_u_mm, a.centre_v_mm, a.cavity_anterior_mm
    ves: list[list[np.ndarray]] = [[], [], []]
    air: list[list[np.ndarray]] = [[], [], []]
    base = np.array([[0.1, 0.0, 1.0], [0.6, -0.2, 0.8], [1.0, 0.0, 0.1], [0.6, -0.8, -0.2],
                     [0.5, 0.6, -0.7], [0.4, 0.1, -1.0], [0.3, 0.9, 0.1], [0.7, -0.5, 0.5],
                     [0.2, -0.9, 0.4], [0.8, 0.5, 0.3], [0.9, -0.3, -0.6], [0.2, 0.7, 0.8]])
    for sgn in (-1.0, 1.0):
        for kind, dw, r0 in (("artery", 4.0, 4.2), ("vein", -22.0, 3.8)):
            root = roots(sgn, L.w_hilum + dw)
            dirs = _normalise(base * np.array([sgn, 1.0, 1.0])
                              + rng.normal(scale=0.2, size=base.shape))
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


def _add_trees(H: np.ndarray, lb: _LungBox, a: Anatomy, rng: np.random.Generator) -> None:
    """Grow the vessel and airway trees inside the lung box and blend them into ``H`` (in place):
    vessels with blood density (through lung and mediastinal fat), airways as air with walls."""
    pxw, _, thick = lb.voxel_mm
    shape, origin = lb.lung.shape, lb.origin
    step = np.array(lb.voxel_mm)

    def inside(pts: np.ndarray) -> np.ndarray:
        ijk = np.floor((pts - origin) / step + 0.5).astype(np.int64)
        ok = np.all((ijk >= 0) & (ijk < np.array(shape)), axis=1)
        res = np.zeros(len(pts), dtype=bool)
        res[ok] = lb.region[tuple(ijk[ok].T)]
        return res

    uc = origin[0] + np.arange(shape[0]) * pxw
    vc = origin[1] + np.arange(shape[1]) * pxw

    def roots(sgn: float, w_mm: float) -> np.ndarray:
        # the most medial lung voxel near the hilum's antero-posterior level, on that side
        k = int(np.clip(round((w_mm - origin[2]) / thick), 0, shape[2] - 1))
        ii, jj = np.nonzero(lb.lung[:, :, k])
        sel = (np.sign(uc[ii] - a.centre_u_mm) == sgn) & (np.abs(vc[jj] - a.centre_v_mm) < 20.0)
        if not sel.any():
            return np.array([a.centre_u_mm + sgn * 40.0, a.centre_v_mm, w_mm])
        i = np.argmin(np.abs(uc[ii[sel]] - a.centre_u_mm))
        return np.array([uc[ii[sel][i]] + sgn * 3.0, vc[jj[sel][i]], origin[2] + k * thick])

    vessels, airways = _trees(a, _landmarks(a), rng, inside, roots)
    kw = dict(shape=shape, origin=origin, voxel_mm=(pxw, thick))
    frac = _tube_fraction(_splat_tubes(vessels, **kw), px=pxw)
    if frac is not None:
        frac *= lb.region
        H += frac * (a.blood_hu - H)
    groups = _splat_tubes(airways, **kw, edges=(0.0, 2.0, np.inf))
    wall = _tube_fraction(groups, px=pxw, scale=1.35)
    if wall is not None:
        wall *= lb.lung
        H += wall * (20.0 - H)
        lumen = _tube_fraction(groups, px=pxw)
        lumen *= lb.lung
        H += lumen * (_AIR - H)


# --------------------------------------------------------------------------- reconstruction


def _breathing_motion(hu: np.ndarray, acq: Acquisition, pxw: float) -> None:
    """Ghosting of the slices scanned while the patient breathed: each is averaged with a copy of
    itself moved ``motion_mm`` towards the back (in place)."""
    k0, k1 = acq.motion_slices
    for k in range(k0, k1):
        moved = ndimage.shift(hu[:, :, k], (0.0, acq.motion_mm / pxw), order=1, mode="nearest")
        hu[:, :, k] = 0.5 * (hu[:, :, k] + moved)


def _reconstruct(hu: np.ndarray, acq: Acquisition, rng: np.random.Generator, *, factor: int,
                 size: int) -> np.ndarray:
    """Kernel, upsampling, calibration offset and noise; returns int16 HU of (size, size, n).

    Noise is Gaussian, spatially correlated by the kernel's box filters (none for sharp kernels,
    whose edge enhancement also overshoots at edges), with standard deviation ``noise_hu`` in the
    body. Air (below -990 HU: outside the body, airways) is left noise-free: gzip cannot compress
    noise, and it changes nothing visible.
    """
    kernel = KERNELS[acq.kernel]
    blur = kernel["blur_px"]
    hu = ndimage.gaussian_filter(hu, sigma=(blur, blur, 0), truncate=2.5)
    if kernel["sharpen"]:
        hu += kernel["sharpen"] * (hu - ndimage.gaussian_filter(hu, sigma=(1.5, 1.5, 0)))
    if factor > 1:
        hu = _upsample_axis(_upsample_axis(hu, factor, 0), factor, 1)
    body = hu > -990.0
    noise = rng.standard_normal(hu.shape, dtype=np.float32)
    for _ in range(kernel["box_filters"]):  # [1, 1] box filters along X and Y
        noise[1:] += noise[:-1]
        noise[:, 1:] += noise[:, :-1]
    gain = {0: 1.0, 1: 2.0, 2: 6.0}[kernel["box_filters"]]  # the filters' effect on the std
    noise *= np.float32(acq.noise_hu / gain)
    hu += np.where(body, noise + np.float32(acq.calibration_offset_hu), np.float32(0.0))
    del noise
    np.rint(hu, out=hu)
    np.clip(hu, STORE_HU_MIN, STORE_HU_MAX, out=hu)
    # outside the circular reconstruction field the scanner stores a constant
    c = (np.arange(size) + 0.5 - size / 2) / (size / 2)
    hu[c[:, None] ** 2 + c[None, :] ** 2 > 1.0] = STORE_HU_MIN
    return hu.astype(np.int16)


# --------------------------------------------------------------------------- the phantom


@dataclass(frozen=True)
class Phantom:
    """A synthetic chest CT and everything known about it.

    Attributes
    ----------
    data : numpy.ndarray
        int16 HU, shape (``size``, ``size``, Z), axes towards the patient's Left, Posterior and
        Superior, values in [-1024, 3071].
    affine : numpy.ndarray
        float64 (4, 4) voxel-to-world (RAS+, mm) matrix ``diag(-dx, -dy, dz)`` plus an origin;
        ``nibabel.aff2axcodes(affine) == ('L', 'P', 'S')``.
    lesion_mask, lung_mask : numpy.ndarray
        bool, the shape of ``data``: voxels inside a lesion (ground glass or consolidation) and
        lung-parenchyma voxels. ``involvement == lesion_mask.sum() / lung_mask.sum()``.
    info : dict
        JSON-ready facts: ``grade``, ``involvement`` (measured), ``target_involvement``,
        ``n_lesions`` (connected lesions of 0.05 ml or more), ``pattern``, ``confounders`` (``expiratory``,
        ``contrast``, ``lung_hu``, ``dependent_hu``, ``atelectasis_mm``, ``kernel``, ``noise_hu``,
        ``calibration_offset_hu``, ``coverage``, ``motion_mm``, ``table``), ``shape``, ``n_slices``,
        ``spacing_mm``, ``fov_mm``, ``slice_thickness_mm``, ``lung_volume_ml`` and the
        generator ``version``.
    anatomy, acquisition, disease :
        The sampled parameters (``disease`` is None for a normal study).
    """

    data: np.ndarray
    affine: np.ndarray
    lesion_mask: np.ndarray
    lung_mask: np.ndarray
    info: dict[str, Any]
    anatomy: Anatomy
    acquisition: Acquisition
    disease: Disease | None


def _check_arguments(grade: Any, rng: Any, size: Any, n_slices: Any) -> None:
    def is_int(x: Any) -> bool:
        return not isinstance(x, bool) and isinstance(x, (int, np.integer))

    if not is_int(grade) or grade not in GRADE_RANGES:
        raise ValueError(f"grade: expected 0 (normal) or a MosMedData grade 1-4, got {grade!r}")
    if not is_int(size) or size < 32:
        raise ValueError(f"size: expected an integer >= 32 voxels, got {size!r}")
    if n_slices is not None and (not is_int(n_slices) or n_slices < 2):
        raise ValueError(f"n_slices: expected an integer >= 2 or None, got {n_slices!r}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")


def _upsample_mask(mask: np.ndarray, factor: int) -> np.ndarray:
    return mask if factor == 1 else np.repeat(np.repeat(mask, factor, axis=0), factor, axis=1)


def make_phantom(
    *,
    grade: int = 0,
    rng: np.random.Generator,
    size: int = 512,
    n_slices: int | None = None,
) -> Phantom:
    """Make one synthetic chest CT in Hounsfield units, with its lesion and lung masks.

    Parameters
    ----------
    grade : {0, 1, 2, 3, 4}, default 0
        0: no disease. 1-4: viral pneumonia whose measured involvement lies in the MosMedData
        grade's range (:data:`GRADE_RANGES`).
    rng : numpy.random.Generator
        Source of every random choice: the same generator state gives the same phantom. A normal
        and a diseased phantom made from the same state share all their anatomy.
    size : int, default 512
        In-plane size in voxels (X = Y = ``size``). The field of view stays 310-410 mm, so the
        in-plane voxel size is about 0.6-0.8 mm at 512 and scales as ``1 / size``.
    n_slices : int or None
        Number of axial slices painted (Z); drawn from 30-70 when None. They cover the chest from
        the upper abdomen to the lung apices, so the slice thickness is that coverage divided by
        ``n_slices``; a scan with partial coverage stores fewer.

    Returns
    -------
    Phantom

    Raises
    ------
    ValueError
        If ``grade`` is not 0-4, ``size`` < 32, ``n_slices`` < 2 or ``rng`` is not a numpy
        Generator.

    Examples
    --------
    >>> import nibabel as nib
    >>> p = make_phantom(grade=2, rng=np.random.default_rng(0), size=64, n_slices=8)
    >>> p.data.shape[:2], p.data.dtype.name, nib.aff2axcodes(p.affine), p.info["grade"]
    ((64, 64), 'int16', ('L', 'P', 'S'), 2)
    >>> bool(0.25 <= p.lesion_mask.sum() / p.lung_mask.sum() < 0.50)
    True
    """
    _check_arguments(grade, rng, size, n_slices)
    size, grade = int(size), int(grade)
    anatomy = sample_anatomy(rng)
    acq = sample_acquisition(rng, anatomy, n_slices=n_slices)
    # the disease comes from its own generator, drawn whatever the grade: same anatomy
    disease_seed = int(rng.integers(0, 2**62))
    disease = sample_disease(np.random.default_rng(disease_seed), grade) if grade else None

    n, thick = acq.n_slices, acq.slice_thickness_mm
    px = acq.fov_mm / size
    factor = 2 if size >= 384 and size % 2 == 0 else 1
    pxw = px * factor
    u = ((np.arange(size // factor) + 0.5 - size / factor / 2) * pxw).astype(np.float32)
    w = (-acq.margin_bottom_mm + (np.arange(n) + 0.5) * thick).astype(np.float32)
    hu, lab = paint_slices(anatomy, acq, u, u.copy(), w)
    lesion = np.zeros(hu.shape, dtype=bool)
    lb = _lung_box(lab, u, u, w, thick)
    if lb is not None:
        H = hu[lb.box]  # a view: edits go into ``hu``
        _add_texture(H, lb.lung, anatomy, rng)
        _add_other_findings(H, lb.lung, anatomy, lb.origin, lb.voxel_mm)
        if disease is not None:
            lesion[lb.box] = _paint_disease(H, lb.lung, disease, a=anatomy, origin=lb.origin,
                                           voxel_mm=lb.voxel_mm, kept_slices=acq.kept_slices,
                                           field_seed=disease_seed)
        _add_trees(H, lb, anatomy, rng)
    _breathing_motion(hu, acq, pxw)
    data = _reconstruct(hu, acq, rng, factor=factor, size=size)

    k0, k1 = acq.kept_slices
    lung = lab[:, :, k0:k1] == _LUNG
    lesion = lesion[:, :, k0:k1]
    affine = np.diag([-px, -px, thick, 1.0])
    affine[:3, 3] = [px * (size - 1) / 2, px * (size - 1) / 2, acq.z_origin_mm + k0 * thick]
    info = _phantom_info(grade, lesion, lung, anatomy, acq, disease, pxw)
    info.update(shape=(size, size, k1 - k0), spacing_mm=(float(px), float(px), float(thick)))
    return Phantom(data=np.ascontiguousarray(data[:, :, k0:k1]), affine=affine,
                   lesion_mask=_upsample_mask(lesion, factor), lung_mask=_upsample_mask(lung, factor),
                   info=info, anatomy=anatomy, acquisition=acq, disease=disease)


def _count_lesions(lesion: np.ndarray, *, voxel_ml: float, min_ml: float = 0.05) -> int:
    """Connected lesions of at least ``min_ml`` millilitres (smaller specks at the lesions'
    margins are parts of a lesion, not lesions)."""
    labels, n = ndimage.label(lesion)
    if n == 0:
        return 0
    sizes = np.bincount(labels.ravel())[1:] * voxel_ml
    return int(np.count_nonzero(sizes >= min_ml))


def _phantom_info(grade: int, lesion: np.ndarray, lung: np.ndarray, a: Anatomy,
                  acq: Acquisition, d: Disease | None, pxw: float) -> dict[str, Any]:
    """The JSON-ready facts of :class:`Phantom` measured on the working-resolution masks."""
    n_lung = int(np.count_nonzero(lung))
    involvement = float(np.count_nonzero(lesion)) / max(n_lung, 1)
    if grade and grade_of(involvement) != grade:  # paint_disease picks exactly the target share
        raise RuntimeError(f"grade {grade} study measured {involvement:.4f} involvement, outside "
                           f"{GRADE_RANGES[grade]}")
    return {
        "version": PHANTOM_VERSION,
        "grade": grade,
        "abnormal": grade > 0,
        "involvement": involvement,
        "target_involvement": d.target_involvement if d else 0.0,
        "n_lesions": _count_lesions(lesion, voxel_ml=pxw * pxw * acq.slice_thickness_mm / 1000.0),
        "pattern": d.pattern if d else "none",
        "confounders": {
            "expiratory": a.expiratory, "contrast": a.contrast, "lung_hu": a.lung_hu, "dependent_hu": a.dependent_hu,
            "atelectasis_mm": a.atelectasis_mm, "nodules": len(a.nodules), "scars": len(a.scars), "kernel": acq.kernel, "noise_hu": acq.noise_hu,
            "calibration_offset_hu": acq.calibration_offset_hu, "coverage": acq.coverage, "motion_mm": acq.motion_mm,
            "table": acq.table,
        },
        "n_slices": acq.kept_slices[1] - acq.kept_slices[0],
        "fov_mm": acq.fov_mm,
        "slice_thickness_mm": acq.slice_thickness_mm,
        "lung_volume_ml": n_lung * pxw * pxw * acq.slice_thickness_mm / 1000.0,
    }
