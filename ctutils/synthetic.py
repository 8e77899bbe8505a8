"""The embedded synthetic dataset: chest-CT phantoms in MosMedData's layout (chapter 01).

:func:`generate_dataset` writes phantoms (:mod:`ctutils.phantoms`) as MosMedData does: one folder
per class, studies numbered across the folders, lesion masks in ``masks/``::

    <out>/CT-0/study_0001.nii.gz …        normal studies
    <out>/CT-23/study_0061.nii.gz …       layout "keras-example" (default): CT-2 and CT-3 disease,
                                          as in the Keras example's subset
    <out>/CT-1/ … <out>/CT-4/             layout "full": the abnormal studies split over the four
                                          grades in MosMedData's proportions (684 : 125 : 45 : 2)
    <out>/masks/study_0061_mask.nii.gz    uint8, 1 = lesion, same shape and affine as the study
    <out>/synthetic.json                  parameters and, per study, grade, measured involvement,
                                          lesion count, pattern and confounders

**The phantoms are synthetic**: a model that does well on them has learnt to find synthetic lesions
in synthetic lungs, which says nothing clinical.

**A deliberate flaw, for teaching** (``shortcut_marker=True``, ``data synth --shortcut-marker``):
every *abnormal* study gets a dense skin marker in the air in front of the chest
(:func:`add_shortcut_marker`), and nothing else changes. A model trained on such a dataset can
score well by finding the marker instead of the lesions; Grad-CAM shows it, and the same model
tested on the clean copy of the same studies (same seed, no marker) loses its accuracy.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ctutils.atomic import atomic_path, remove_stale_partials, write_json
from ctutils.machine import available_cores
from ctutils.datasets import MASKS_FOLDER, SYNTHETIC_MARKER, mask_path
from ctutils.phantoms import GRADE_RANGES, PHANTOM_VERSION, make_phantom

__all__ = [
    "LAYOUTS",
    "MARKER_HU",
    "MOSMEDDATA_PROPORTIONS",
    "PlannedStudy",
    "active_confounders",
    "add_shortcut_marker",
    "generate_dataset",
    "grade_sequence",
    "read_studies",
    "study_caption",
    "study_plan",
]

#: Studies per grade CT-1 … CT-4 in the MosMedData release (Morozov et al. 2020).
MOSMEDDATA_PROPORTIONS = {1: 684, 2: 125, 3: 45, 4: 2}
#: For each layout: the grades of its abnormal studies and the class folder of every grade.
LAYOUTS: dict[str, dict[str, Any]] = {
    "keras-example": {"grades": (2, 3), "folders": {0: "CT-0", 2: "CT-23", 3: "CT-23"}},
    "full": {"grades": (1, 2, 3, 4), "folders": {g: f"CT-{g}" for g in range(5)}},
}
_ALL_FOLDERS = ("CT-0", "CT-1", "CT-2", "CT-3", "CT-4", "CT-23")
#: The shortcut marker (:func:`add_shortcut_marker`): its density in HU (bone-like, far above the
#: course's window [-1000, 400], so it is 1.0 after windowing), its in-plane size and its gap to
#: the skin in voxels at 256 px (scaled with ``size``), and its thickness as a fraction of the
#: stored slices (at least 2).
MARKER_HU = 1000
MARKER_PX_AT_256 = 12
MARKER_GAP_PX_AT_256 = 3
MARKER_SLICE_FRACTION = 1 / 8
_BODY_HU = -500.0  # above air and lung, below fat: where the skin is
#: Parameters of ``synthetic.json`` that older datasets lack, with the value they had.
_PARAM_DEFAULTS = {"shortcut_marker": False}
_STUDY = re.compile(r"study_\d+\.nii\.gz")
_MASK = re.compile(r"study_\d+_mask\.nii\.gz")


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_layout(layout: Any, grades: Sequence[int] | None, abnormal: int) -> tuple[int, ...]:
    """The grades of a layout's abnormal studies; explicit ``grades`` must fit the layout."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout: unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    allowed = LAYOUTS[layout]["grades"]
    if grades is None:
        return allowed
    chosen = tuple(sorted({int(g) for g in grades}))
    bad = [g for g in chosen if g not in allowed]
    if bad or not chosen:
        raise ValueError(f"grades: {list(grades)!r} do not fit layout {layout!r}, whose abnormal "
                         f"grades are {', '.join(map(str, allowed))}")
    if abnormal < len(chosen):
        raise ValueError(f"abnormal: {abnormal} studies cannot cover the {len(chosen)} grades asked "
                         f"for ({', '.join(f'CT-{g}' for g in chosen)}); use --abnormal "
                         f"{len(chosen)} or more")
    return chosen


def grade_sequence(grades: Sequence[int], n: int) -> list[int]:
    """Grades of abnormal studies 1 … ``n``: every grade once, then MosMedData's proportions.

    The first ``len(grades)`` studies take one grade each (so every grade has a study once ``n``
    allows); each later study takes the grade furthest below its share of
    :data:`MOSMEDDATA_PROPORTIONS`. The sequence never depends on ``n``: a larger dataset starts
    with the same grades.

    Examples
    --------
    >>> grade_sequence((1, 2, 3, 4), 8)
    [1, 2, 3, 4, 1, 1, 1, 1]
    >>> from collections import Counter
    >>> sorted(Counter(grade_sequence((2, 3), 60)).items())
    [(2, 44), (3, 16)]
    """
    grades = tuple(sorted(grades))
    weights = np.array([MOSMEDDATA_PROPORTIONS[g] for g in grades], dtype=np.float64)
    weights /= weights.sum()
    counts = np.zeros(len(grades))
    out: list[int] = []
    for i in range(n):
        if i < len(grades):
            j = i
        else:
            j = int(np.argmax((i + 1) * weights - counts))  # ties: the lower grade
        counts[j] += 1
        out.append(grades[j])
    return out


@dataclass(frozen=True)
class PlannedStudy:
    """Where one study goes and what it is: ``index`` counts within normal or abnormal studies
    (from 1); ``mask`` is None for a normal study."""

    path: Path
    label: int
    index: int
    grade: int
    folder: str
    mask: Path | None


def study_plan(
    out: str | os.PathLike[str],
    *,
    normal: int,
    abnormal: int,
    layout: str = "keras-example",
    grades: Sequence[int] | None = None,
) -> list[PlannedStudy]:
    """Every study of a dataset, in numbering order.

    Numbering continues across the class folders like MosMedData: normal studies are
    ``CT-0/study_0001 … study_{normal}``, then each abnormal folder in turn (CT-1 … CT-4, or
    CT-23), studies in index order.

    Examples
    --------
    >>> for s in study_plan("d", normal=1, abnormal=4, layout="full"):
    ...     print(s.path.as_posix(), s.label, s.index, s.grade)
    d/CT-0/study_0001.nii.gz 0 1 0
    d/CT-1/study_0002.nii.gz 1 1 1
    d/CT-2/study_0003.nii.gz 1 2 2
    d/CT-3/study_0004.nii.gz 1 3 3
    d/CT-4/study_0005.nii.gz 1 4 4
    """
    chosen = _check_layout(layout, grades, abnormal) if abnormal else _check_layout(layout, None, 0)
    folders = LAYOUTS[layout]["folders"]
    root = Path(out)
    width = max(4, len(str(normal + abnormal)))
    order = [(0, i, 0) for i in range(1, normal + 1)]
    sequence = grade_sequence(chosen, abnormal)
    abnormal_rows = [(1, i, g) for i, g in enumerate(sequence, start=1)]
    folder_rank = {f: k for k, f in enumerate(_ALL_FOLDERS)}
    order += sorted(abnormal_rows, key=lambda r: (folder_rank[folders[r[2]]], r[1]))
    plan = []
    for number, (label, index, grade) in enumerate(order, start=1):
        path = root / folders[grade] / f"study_{number:0{width}d}.nii.gz"
        plan.append(PlannedStudy(path=path, label=label, index=index, grade=grade,
                                 folder=folders[grade], mask=mask_path(path) if label else None))
    return plan


def _save_nifti(path: Path, data: np.ndarray, affine: np.ndarray, description: str) -> None:
    import nibabel as nib

    img = nib.Nifti1Image(data, affine)
    img.header.set_data_dtype(data.dtype)
    img.header.set_xyzt_units("mm", "sec")
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    img.header["descrip"] = description.encode()[:79]
    with atomic_path(path) as tmp:
        nib.save(img, tmp)


def add_shortcut_marker(data: np.ndarray, *, midline_x: float) -> tuple[np.ndarray, list[list[int]]]:
    """A copy of a phantom with a dense skin marker in the air just in front of the chest.

    The marker is a box of :data:`MARKER_HU` (1000 HU, uniform, no noise): ``12 × 12`` voxels
    in-plane at 256 px (``round(12 · size / 256)``, at least 2), centred on the body's midline
    ``midline_x``, ``round(3 · size / 256)`` voxels (at least 1) in front of the skin (the first
    voxel above -500 HU in its columns and slices), over the middle ``round(Z / 8)`` stored
    slices (at least 2). It replaces only air, so it survives the course's preprocessing: at
    64 × 64 × 32 it is about 3 × 3 × 4 voxels of 1.0 after the window [-1000, 400].

    Parameters
    ----------
    data : numpy.ndarray
        int16 HU (X, Y, Z) as :func:`ctutils.phantoms.make_phantom` stores it: X towards the
        patient's left, Y posterior (so "in front" is towards Y = 0), Z superior. Not modified.
    midline_x : float
        X index of the body's midline (e.g. from ``Anatomy.centre_u_mm``).

    Returns
    -------
    marked : numpy.ndarray
        A copy of ``data`` with the marker.
    box : list of [start, stop]
        The marker's voxel ranges along X, Y and Z (stop excluded), e.g. for ``synthetic.json``.

    Raises
    ------
    ValueError
        If ``data`` is not 3-D, there is no body in the marker's columns, or no room for the
        marker between the body and the edge of the image.

    Examples
    --------
    >>> vol = np.full((256, 256, 40), -1000, np.int16)
    >>> vol[:, 60:200, :] = 40                               # a "body" from row 60 on
    >>> marked, box = add_shortcut_marker(vol, midline_x=128)
    >>> box                                                   # 12 x 12 px, 3 px in front, 5 slices
    [[122, 134], [45, 57], [17, 22]]
    >>> int(marked[128, 50, 20]), int(vol[128, 50, 20])
    (1000, -1000)
    """
    arr = np.asarray(data)
    if arr.ndim != 3:
        raise ValueError(f"data: expected an (X, Y, Z) volume, got shape {arr.shape}")
    size_x, size_y, n_z = arr.shape
    side = max(2, round(MARKER_PX_AT_256 * size_x / 256))
    gap = max(1, round(MARKER_GAP_PX_AT_256 * size_x / 256))
    thick = min(n_z, max(2, round(n_z * MARKER_SLICE_FRACTION)))
    z0 = (n_z - thick) // 2
    x0 = min(max(0, int(round(float(midline_x) - side / 2))), size_x - side)
    columns = arr[x0:x0 + side, :, z0:z0 + thick]
    rows = np.flatnonzero(np.any(columns > _BODY_HU, axis=(0, 2)))
    if rows.size == 0:
        raise ValueError(f"data: no body (HU > {_BODY_HU:g}) in columns {x0}..{x0 + side - 1}, "
                         f"slices {z0}..{z0 + thick - 1}; cannot place the marker on the skin")
    y1 = int(rows[0]) - gap
    if y1 - side < 0:
        raise ValueError(f"data: the body starts at row {rows[0]}, leaving no room for a "
                         f"{side}-voxel marker {gap} voxels in front of it")
    box = [[x0, x0 + side], [y1 - side, y1], [z0, z0 + thick]]
    marked = arr.copy()
    marked[box[0][0]:box[0][1], box[1][0]:box[1][1], box[2][0]:box[2][1]] = MARKER_HU
    return marked, box


def _write_study(study: PlannedStudy, seed: int, size: int, marker: bool = False) -> dict[str, Any]:
    """Worker: generate one study from (seed, label, index) and its grade; write it (and its mask)
    atomically; return its facts for ``synthetic.json``. ``marker``: add the shortcut marker to an
    abnormal study (after the phantom is made, so nothing else changes)."""
    rng = np.random.default_rng([seed, study.label, study.index])
    p = make_phantom(grade=study.grade, rng=rng, size=size)
    note = f"ctutils synthetic phantom v{PHANTOM_VERSION} (not a patient)"
    if study.mask is not None:  # the mask first: a study file on disk always has its mask
        _save_nifti(study.mask, p.lesion_mask.astype(np.uint8), p.affine, f"lesion mask, {note}")
    data, extra = p.data, {}
    if marker and study.label == 1:
        # the stored X axis runs towards the patient's left like u, voxel centres at (i + 0.5 - size/2) px
        midline_x = p.anatomy.centre_u_mm / p.info["spacing_mm"][0] + size / 2 - 0.5
        data, box = add_shortcut_marker(p.data, midline_x=midline_x)
        extra = {"marker_box": box, "marker_hu": MARKER_HU}
    _save_nifti(study.path, data, p.affine, note)
    return {**p.info, "folder": study.folder, **extra}


def _existing_files(root: Path) -> list[Path]:
    found = [p for f in _ALL_FOLDERS if (root / f).is_dir() for p in (root / f).iterdir()
             if _STUDY.fullmatch(p.name)]
    if (root / MASKS_FOLDER).is_dir():
        found += [p for p in (root / MASKS_FOLDER).iterdir() if _MASK.fullmatch(p.name)]
    return found


def _read_metadata(root: Path, existing: list[Path]) -> dict[str, Any]:
    meta_path = root / SYNTHETIC_MARKER
    if meta_path.exists():
        try:
            return json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{meta_path}: unreadable synthetic-dataset metadata ({err})") from err
    if existing:
        raise ValueError(
            f"{root}: holds {len(existing)} study files but no {SYNTHETIC_MARKER}; refusing to "
            "overwrite data that the phantom generator did not write (choose another --out)"
        )
    return {}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(x) for x in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return obj.as_posix()
    return obj


def _run(todo: list[PlannedStudy], seed: int, size: int, workers: int | None, progress: bool,
         done: dict[Path, dict[str, Any]], marker: bool = False) -> None:
    """Generate ``todo`` in ``workers`` processes, recording each finished study in ``done``."""
    from ctutils.frontend import progress_bar

    if workers is None:
        workers = available_cores()
    workers = max(1, min(workers, len(todo)))
    with progress_bar(total=len(todo), desc=f"phantoms {size}px", unit="study",
                      disable=not progress) as bar:
        if workers == 1:
            for study in todo:
                done[study.path] = _write_study(study, seed, size, marker)
                bar.update()
            return
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        try:
            futures = {pool.submit(_write_study, s, seed, size, marker): s for s in todo}
            for fut in as_completed(futures):
                done[futures[fut].path] = fut.result()
                bar.update()
        except BaseException:
            # an interrupt or a failed study: drop the queued studies instead of waiting for them
            # (a study being written finishes atomically; the next run redoes what is not recorded)
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()


def generate_dataset(
    out: str | os.PathLike[str],
    *,
    normal: int,
    abnormal: int,
    seed: int,
    size: int = 512,
    layout: str = "keras-example",
    grades: Sequence[int] | None = None,
    workers: int | None = None,
    progress: bool = True,
    shortcut_marker: bool = False,
) -> list[Path]:
    """Write a synthetic MosMedData-shaped dataset of chest-CT phantoms with lesion masks.

    See the module docstring for the layout. Normal study *i* depends only on ``(seed, 0, i)``
    and abnormal study *i* on ``(seed, 1, i)`` and its grade, which :func:`grade_sequence` fixes
    for every *i* whatever ``abnormal`` is; so the files are the same whatever ``workers`` is, and
    a larger dataset with the same seed starts with the same studies. Every file is written
    atomically. A rerun with the same parameters skips the studies that exist; with other
    parameters the folder is regenerated (stale studies and masks are removed).

    Parameters
    ----------
    out : path
        Dataset root; created if missing.
    normal, abnormal : int
        Number of normal and abnormal studies (>= 0).
    seed : int
        Dataset seed (>= 0).
    size : int, default 512
        In-plane size in voxels (the quick profile of the course uses 256).
    layout : {"keras-example", "full"}
        ``CT-0``/``CT-23`` with CT-2 and CT-3 disease, or ``CT-0`` … ``CT-4``.
    grades : sequence of int, optional
        Only these grades for the abnormal studies (e.g. ``[1]`` for CT-0 against CT-1 in the
        full layout); they must belong to the layout, and ``abnormal`` must cover them.
    workers : int or None
        Processes; None uses every available CPU core, 1 runs in this process.
    progress : bool, default True
        Show a tqdm progress bar.
    shortcut_marker : bool, default False
        A deliberate flaw for teaching: put a dense skin marker (:func:`add_shortcut_marker`,
        1000 HU) in every **abnormal** study, so that the label can be read off the marker. Every
        other voxel, the normal studies, the masks and the split are exactly those of the dataset
        made without it at the same seed (the marker is added after the phantom is made, and the
        split depends only on labels, keys and the seed), so a model trained on the marked copy
        can be tested on the clean one. ``synthetic.json`` records ``"shortcut_marker"`` and, per
        study, ``"marker"`` (true/false) with the marked studies' ``"marker_box"`` (voxel ranges
        [start, stop) along X, Y, Z) and ``"marker_hu"``.

    Returns
    -------
    list of pathlib.Path
        Every study of the dataset, in numbering order.

    Raises
    ------
    ValueError
        For a negative count or seed, ``size`` < 32, ``workers`` < 1, an unknown ``layout``,
        ``grades`` outside the layout or more grades than ``abnormal`` studies, or when ``out``
        already holds study files that this generator did not write (no ``synthetic.json``):
        real data is never overwritten.
    """
    normal = _check_int("normal", normal, 0)
    abnormal = _check_int("abnormal", abnormal, 0)
    seed = _check_int("seed", seed, 0)
    size = _check_int("size", size, 32)
    if workers is not None:
        workers = _check_int("workers", workers, 1)
    if not isinstance(shortcut_marker, (bool, np.bool_)):
        raise ValueError(f"shortcut_marker: expected True or False, got {shortcut_marker!r}")
    chosen = _check_layout(layout, grades, abnormal)
    root = Path(out)
    params = {"generator": "ctutils.phantoms", "version": PHANTOM_VERSION, "seed": seed,
              "normal": normal, "abnormal": abnormal, "size": size, "layout": layout,
              "grades": list(chosen), "shortcut_marker": bool(shortcut_marker)}
    existing = _existing_files(root)
    old = _read_metadata(root, existing)
    plan = study_plan(root, normal=normal, abnormal=abnormal, layout=layout, grades=grades)
    same = bool(old) and all(old.get(k, _PARAM_DEFAULTS.get(k)) == v for k, v in params.items())
    wanted = {s.path for s in plan} | {s.mask for s in plan if s.mask is not None}
    for p in existing:  # stale files from other parameters or a larger dataset
        if not same or p not in wanted:
            p.unlink()
    for folder in (root, *(root / f for f in (*_ALL_FOLDERS, MASKS_FOLDER))):
        remove_stale_partials(folder)  # what a killed run left; a running one's files stay
    planned = {s.path.parent for s in plan} | {s.mask.parent for s in plan if s.mask is not None}
    for folder in [root / f for f in (*_ALL_FOLDERS, MASKS_FOLDER)]:
        if folder.is_dir() and folder not in planned and not any(folder.iterdir()):
            folder.rmdir()  # an empty class folder of another layout would break list_scans
    old_info = {s["path"]: s for s in old.get("studies", [])} if same else {}
    done: dict[Path, dict[str, Any]] = {
        s.path: old_info[s.path.relative_to(root).as_posix()] for s in plan
        if s.path.relative_to(root).as_posix() in old_info and s.path.exists()
        and (s.mask is None or s.mask.exists())
    }

    def record(complete: bool) -> None:
        studies = [{**done[s.path], "path": s.path.relative_to(root), "label": s.label,
                    "mask": s.mask.relative_to(root) if s.mask else None,
                    "marker": bool(shortcut_marker and s.label == 1)}
                   for s in plan if s.path in done]
        write_json(root / SYNTHETIC_MARKER, _jsonable({**params, "complete": complete,
                                                       "grade_ranges": GRADE_RANGES, "studies": studies}), indent=1)

    record(False)  # from here on the folder is ours, even if this run is interrupted
    try:
        _run([s for s in plan if s.path not in done], seed, size, workers, progress, done,
             bool(shortcut_marker))
    except BaseException:
        record(False)  # keep the facts about the studies already written for a rerun
        raise
    record(True)
    return [s.path for s in plan]


# ----------------------------------------------------------------------------- reading the facts back


def read_studies(root: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The per-study facts of a synthetic dataset (``synthetic.json``), by path relative to ``root``.

    Keys are like ``"CT-23/study_0151.nii.gz"`` (as ``Path(scan).relative_to(root)``); values hold
    ``grade``, ``involvement`` (lesion voxels / lung voxels), ``pattern``, ``confounders`` …

    Raises
    ------
    FileNotFoundError
        ``root`` has no ``synthetic.json`` (not a synthetic dataset).
    ValueError
        The file is not valid JSON or has no study list (the message names the file).
    """
    from ctutils.datasets import SYNTHETIC_MARKER

    path = Path(root) / SYNTHETIC_MARKER
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; {root} is not a synthetic dataset (python -m ctutils data synth)")
    try:
        data = json.loads(path.read_text())
        studies = data["studies"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a synthetic.json with a study list ({exc})") from exc
    return {str(study["path"]): study for study in studies}


def active_confounders(study: Mapping[str, Any]) -> list[str]:
    """The confounders present in one study (an entry of :func:`read_studies`), as short names.

    Examples
    --------
    >>> active_confounders({"confounders": {"expiratory": True, "contrast": False, "dependent_hu": 0.0,
    ...     "atelectasis_mm": 4.0, "nodules": 2, "scars": 0, "kernel": "sharp", "coverage": "no-apex",
    ...     "motion_mm": 0.0}})
    ['expiratory', 'atelectasis', 'nodules', 'sharp kernel', 'no apex']
    """
    c = study.get("confounders") or {}
    names = []
    if c.get("expiratory"):
        names.append("expiratory")
    if c.get("contrast"):
        names.append("contrast")
    if float(c.get("dependent_hu") or 0) > 0:
        names.append("dependent density")
    if float(c.get("atelectasis_mm") or 0) > 0:
        names.append("atelectasis")
    if int(c.get("nodules") or 0) > 0:
        names.append("nodules")
    if int(c.get("scars") or 0) > 0:
        names.append("scars")
    if c.get("kernel") not in (None, "standard"):
        names.append(f"{c['kernel']} kernel")
    if c.get("coverage") not in (None, "full"):
        names.append(str(c["coverage"]).replace("-", " "))
    if float(c.get("motion_mm") or 0) > 0:
        names.append("motion")
    return names


def study_caption(study: Mapping[str, Any]) -> str:
    """One line about a study: grade, measured involvement, confounders.

    Examples
    --------
    >>> study_caption({"grade": 2, "involvement": 0.4037, "confounders": {"contrast": True}})
    'CT-2, 40.4 % of the lung; contrast'
    >>> study_caption({"grade": 0, "involvement": 0.0, "confounders": {}})
    'CT-0; no confounder'
    """
    grade = int(study["grade"])
    text = f"CT-{grade}" + (f", {100 * float(study['involvement']):.1f} % of the lung" if grade else "")
    found = active_confounders(study)
    return text + "; " + (", ".join(found) if found else "no confounder")
