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

from ctutils.atomic import atomic_path
from ctutils.datasets import MASKS_FOLDER, SYNTHETIC_MARKER, mask_path
from ctutils.phantoms import GRADE_RANGES, PHANTOM_VERSION, make_phantom

__all__ = [
    "LAYOUTS",
    "MOSMEDDATA_PROPORTIONS",
    "PlannedStudy",
    "active_confounders",
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


def _write_study(study: PlannedStudy, seed: int, size: int) -> dict[str, Any]:
    """Worker: generate one study from (seed, label, index) and its grade; write it (and its mask)
    atomically; return its facts for ``synthetic.json``."""
    rng = np.random.default_rng([seed, study.label, study.index])
    p = make_phantom(grade=study.grade, rng=rng, size=size)
    note = f"ctutils synthetic phantom v{PHANTOM_VERSION} (not a patient)"
    if study.mask is not None:  # the mask first: a study file on disk always has its mask
        _save_nifti(study.mask, p.lesion_mask.astype(np.uint8), p.affine, f"lesion mask, {note}")
    _save_nifti(study.path, p.data, p.affine, note)
    return {**p.info, "folder": study.folder}


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


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_jsonable(payload), indent=1) + "\n")


def _run(todo: list[PlannedStudy], seed: int, size: int, workers: int | None, progress: bool,
         done: dict[Path, dict[str, Any]]) -> None:
    """Generate ``todo`` in ``workers`` processes, recording each finished study in ``done``."""
    from ctutils.frontend import progress_bar

    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
    workers = max(1, min(workers, len(todo)))
    with progress_bar(total=len(todo), desc=f"phantoms {size}px", unit="study",
                      disable=not progress) as bar:
        if workers == 1:
            for study in todo:
                done[study.path] = _write_study(study, seed, size)
                bar.update()
            return
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        try:
            futures = {pool.submit(_write_study, s, seed, size): s for s in todo}
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
    chosen = _check_layout(layout, grades, abnormal)
    root = Path(out)
    params = {"generator": "ctutils.phantoms", "version": PHANTOM_VERSION, "seed": seed,
              "normal": normal, "abnormal": abnormal, "size": size, "layout": layout,
              "grades": list(chosen)}
    existing = _existing_files(root)
    old = _read_metadata(root, existing)
    plan = study_plan(root, normal=normal, abnormal=abnormal, layout=layout, grades=grades)
    same = bool(old) and all(old.get(k) == v for k, v in params.items())
    wanted = {s.path for s in plan} | {s.mask for s in plan if s.mask is not None}
    for p in existing:  # stale files from other parameters or a larger dataset
        if not same or p not in wanted:
            p.unlink()
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
                    "mask": s.mask.relative_to(root) if s.mask else None}
                   for s in plan if s.path in done]
        _write_json(root / SYNTHETIC_MARKER, {**params, "complete": complete,
                                            "grade_ranges": GRADE_RANGES, "studies": studies})

    record(False)  # from here on the folder is ours, even if this run is interrupted
    try:
        _run([s for s in plan if s.path not in done], seed, size, workers, progress, done)
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
