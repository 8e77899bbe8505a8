"""A cache of preprocessed volumes: preprocess a dataset once, read it memory-mapped ever after.

Layout of a cache folder (chapter 02)::

    CACHE/volumes.npy     (N, X, Y, Z) float32 in [0, 1]; np.load(..., mmap_mode="r")
    CACHE/manifest.csv    one row per source scan, skipped ones included:
                          path, label, class_name, split, index, error, original_shape, spacing_mm,
                          mask, mask_error
    CACHE/masks.npy       (N, X, Y, Z) float16 in [0, 1], only when the dataset has lesion masks
                          (``<src>/masks/study_XXXX_mask.nii.gz``, MosMedData's layout): each
                          mask resized like its scan, rows aligned with ``volumes.npy``; zeros
                          where ``mask`` is empty (no mask, or ``mask_error`` says why it was
                          skipped)
    CACHE/cache.json      preprocessing config, cache key, class names, counts — written last

``index`` is the scan's row in ``volumes.npy`` (empty for a skipped scan); ``error`` is empty
unless the scan was skipped. The cache key hashes the preprocessing parameters, the label
mapping, the split seed and every source file's path, size and modification time: a rerun with
the same inputs does no work, and anything changed builds a new cache.

Writes are atomic. Volumes are streamed into a temporary ``.npy`` file, one scan at a time, each
through a memory map (:func:`numpy.lib.format.open_memmap`) opened for that row and closed
right after: pages written through a map that stays open stay counted in the process's memory,
closing it after each row keeps memory bounded whatever the number of scans. The final files
only appear under their names once complete, and ``cache.json`` (the marker that the cache is
valid) is removed first and written last. Temporary files that a killed run left behind
(``.partial-<pid>-…``, see :func:`ctutils.atomic.remove_stale_partials`) are removed by the
next build; those of a build still running on the same cache are kept.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import csv
import hashlib
import json
import multiprocessing
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ctutils.atomic import atomic_path, partial_name, remove_stale_partials, write_json
from ctutils.machine import available_cores
from ctutils.datasets import mask_path
from ctutils.preprocess import PreprocessConfig, preprocess_file, preprocess_mask
from ctutils.splits import SPLITS, stratified_split

__all__ = ["CACHE_VERSION", "Cache", "CacheError", "build_cache", "open_cache", "write_cache"]

CACHE_VERSION = 1
VOLUMES = "volumes.npy"
MASKS = "masks.npy"
MANIFEST = "manifest.csv"
INFO = "cache.json"
COLUMNS = ("path", "label", "class_name", "split", "index", "error", "original_shape", "spacing_mm", "mask", "mask_error")


class CacheError(ValueError):
    """A cache folder is missing, incomplete or inconsistent; the message names the file."""


@dataclass(frozen=True)
class Cache:
    """An opened cache (see the module docstring for the files).

    Attributes
    ----------
    root : Path
        The cache folder.
    volumes : np.ndarray
        Read-only memory map (N, X, Y, Z) float32.
    records : list of dict
        Manifest rows (str values; ``index`` as int or None, ``label`` as int).
    config : PreprocessConfig
        How the volumes were made.
    class_names : tuple of str
        Name of label k at position k.
    info : dict
        Contents of ``cache.json``.
    masks : np.ndarray or None
        Read-only memory map (N, X, Y, Z) float16 of the lesion masks, rows aligned with
        :attr:`volumes`; None when the dataset had no masks.
    """

    root: Path
    volumes: np.ndarray
    records: list[dict[str, Any]]
    config: PreprocessConfig
    class_names: tuple[str, ...]
    info: dict[str, Any]
    masks: np.ndarray | None = None

    def _rows(self, split: str | None) -> list[dict[str, Any]]:
        if split is not None and split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        rows = [r for r in self.records if r["index"] is not None and (split is None or r["split"] == split)]
        return sorted(rows, key=lambda r: r["index"])

    def indices(self, split: str | None = None) -> np.ndarray:
        """Rows of :attr:`volumes` in ``split`` (all kept scans when None), ascending."""
        return np.array([r["index"] for r in self._rows(split)], dtype=np.int64)

    def labels(self, split: str | None = None) -> np.ndarray:
        """Labels aligned with :meth:`indices`."""
        return np.array([r["label"] for r in self._rows(split)], dtype=np.int64)

    def paths(self, split: str | None = None) -> list[Path]:
        """Source files aligned with :meth:`indices`."""
        return [Path(r["path"]) for r in self._rows(split)]

    def has_mask(self, split: str | None = None) -> np.ndarray:
        """True where the row aligned with :meth:`indices` has a lesion mask in :attr:`masks`."""
        return np.array([r.get("mask") == "1" for r in self._rows(split)], dtype=bool)

    @property
    def skipped(self) -> list[dict[str, Any]]:
        """Manifest rows of scans that could not be preprocessed."""
        return [r for r in self.records if r["index"] is None]

    def __len__(self) -> int:
        return int(self.volumes.shape[0])


def _read_manifest(path: Path) -> list[dict[str, Any]]:
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in ("path", "label", "split", "index", "error") if c not in (reader.fieldnames or [])]
            if missing:
                raise CacheError(f"{path}: manifest lacks the column(s) {', '.join(missing)}")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise CacheError(f"{path}: cannot read the manifest ({error})") from error
    records = []
    for number, row in enumerate(rows, start=2):
        try:
            row["index"] = int(row["index"]) if row["index"] not in ("", None) else None
            row["label"] = int(row["label"])
        except (TypeError, ValueError) as error:
            raise CacheError(f"{path}: line {number}: label and index must be integers ({error})") from error
        records.append(row)
    return records


def open_cache(root: str | os.PathLike[str]) -> Cache:
    """Open a cache folder made by :func:`build_cache` or :func:`write_cache`.

    Raises
    ------
    CacheError
        Naming the file, when a file is missing or when volumes, manifest and ``cache.json``
        disagree (count, shape, dtype, labels, indices).
    """
    root = Path(root)
    info_path, volumes_path, manifest_path = root / INFO, root / VOLUMES, root / MANIFEST
    if not root.is_dir():
        raise CacheError(f"{root}: no such cache folder (make one with `python -m ctutils data preprocess`)")
    for path in (info_path, volumes_path, manifest_path):
        if not path.is_file():
            raise CacheError(f"{path}: missing; the cache is incomplete, rebuild it with `python -m ctutils data preprocess`")
    try:
        info = json.loads(info_path.read_text())
        config = PreprocessConfig.from_dict(info["config"])
        class_names = tuple(info["class_names"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CacheError(f"{info_path}: not a valid cache description ({error})") from error
    try:
        volumes = np.load(volumes_path, mmap_mode="r")
    except (OSError, ValueError) as error:
        raise CacheError(f"{volumes_path}: cannot read the volumes ({error})") from error
    expected = (int(info.get("n_volumes", -1)), *config.shape)
    if volumes.ndim != 4 or tuple(volumes.shape) != expected or volumes.dtype != np.float32:
        raise CacheError(
            f"{volumes_path}: holds {volumes.dtype} {tuple(volumes.shape)}, but {info_path.name} "
            f"describes float32 {expected}"
        )
    records = _read_manifest(manifest_path)
    indices = sorted(r["index"] for r in records if r["index"] is not None)
    if indices != list(range(len(volumes))):
        raise CacheError(
            f"{manifest_path}: its index column covers {len(indices)} rows, but {volumes_path.name} "
            f"holds {len(volumes)} volumes (each row 0…N-1 must appear once)"
        )
    for record in records:
        if record["index"] is not None and not 0 <= record["label"] < len(class_names):
            raise CacheError(
                f"{manifest_path}: label {record['label']} of {record['path']} is not one of "
                f"0…{len(class_names) - 1} ({', '.join(class_names)})"
            )
        if record["index"] is not None and record["split"] not in SPLITS:
            raise CacheError(f"{manifest_path}: split {record['split']!r} of {record['path']} is not one of {SPLITS}")
    masks = None
    if info.get("masks"):
        masks_path = root / MASKS
        try:
            masks = np.load(masks_path, mmap_mode="r")
        except (OSError, ValueError) as error:
            raise CacheError(f"{masks_path}: cannot read the lesion masks ({error})") from error
        if masks.shape != volumes.shape or masks.dtype != np.float16:
            raise CacheError(f"{masks_path}: holds {masks.dtype} {tuple(masks.shape)}, expected float16 {tuple(volumes.shape)}")
    return Cache(root=root, volumes=volumes, records=records, config=config, class_names=class_names, info=info, masks=masks)


def _write_manifest(path: Path, records: Iterable[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
            writer.writeheader()
            for record in records:
                writer.writerow({k: "" if record.get(k) is None else record[k] for k in COLUMNS})


def _install(root: Path, volumes_tmp: Path, records: list[dict[str, Any]], info: dict[str, Any], masks_tmp: Path | None = None) -> None:
    """Move finished volumes (and masks) files into place, then the manifest, then the marker."""
    root.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        (root / INFO).unlink()  # the old cache is invalid from here on
    os.replace(volumes_tmp, root / VOLUMES)
    if masks_tmp is not None:
        os.replace(masks_tmp, root / MASKS)
    else:
        with contextlib.suppress(FileNotFoundError):
            (root / MASKS).unlink()
    _write_manifest(root / MANIFEST, records)
    write_json(root / INFO, info)


def write_cache(
    root: str | os.PathLike[str],
    volumes: np.ndarray,
    labels: Sequence[int],
    *,
    splits: Sequence[str],
    config: PreprocessConfig,
    paths: Sequence[str] | None = None,
    class_names: Sequence[str] = ("normal", "abnormal"),
) -> Cache:
    """Write in-memory volumes as a cache (for tests, exercises and small data).

    Parameters
    ----------
    root : path-like
        Cache folder (created).
    volumes : np.ndarray
        (N, X, Y, Z), converted to float32; ``(X, Y, Z)`` must equal ``config.shape``.
    labels, splits : sequences of length N
        Integer labels and "train" / "val" / "test".
    config : PreprocessConfig, keyword-only
    paths : sequence of str, optional
        Source paths for the manifest (default ``volume_0000`` …).
    class_names : sequence of str
        Name of label k at position k.
    """
    root = Path(root)
    volumes = np.asarray(volumes, dtype=np.float32)
    n = len(volumes)
    if volumes.ndim != 4 or tuple(volumes.shape[1:]) != config.shape:
        raise ValueError(f"{root}: volumes of shape {volumes.shape} do not match config.shape {config.shape}")
    if len(labels) != n or len(splits) != n:
        raise ValueError(f"{root}: got {n} volumes, {len(labels)} labels and {len(splits)} splits")
    bad_splits = sorted({str(s) for s in splits} - set(SPLITS))
    if bad_splits:
        raise ValueError(f"{root}: unknown split(s) {', '.join(bad_splits)}; use {', '.join(SPLITS)}")
    bad_labels = sorted({int(y) for y in labels if not 0 <= int(y) < len(class_names)})
    if bad_labels:
        raise ValueError(f"{root}: label(s) {bad_labels} outside 0…{len(class_names) - 1} ({', '.join(class_names)})")
    paths = list(paths) if paths is not None else [f"volume_{i:04d}" for i in range(n)]
    records = [
        {"path": p, "label": int(y), "class_name": class_names[int(y)], "split": s, "index": i, "error": ""}
        for i, (p, y, s) in enumerate(zip(paths, labels, splits))
    ]
    root.mkdir(parents=True, exist_ok=True)
    tmp = partial_name(root / VOLUMES)
    try:
        np.save(tmp, volumes)
        digest = hashlib.sha256(json.dumps([config.to_dict(), [int(y) for y in labels], list(splits), list(paths)]).encode())
        digest.update(np.ascontiguousarray(volumes).data)
        info = _info(config, class_names, records, key=f"in-memory-{digest.hexdigest()[:16]}", source=None)
        _install(root, tmp, records, info)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return open_cache(root)


def _info(config: PreprocessConfig, class_names: Sequence[str], records: list[dict[str, Any]], *, key: str, source: str | None) -> dict[str, Any]:
    kept = [r for r in records if r["index"] is not None]
    return {
        "cache_version": CACHE_VERSION,
        "key": key,
        "source": source,
        "config": config.to_dict(),
        "class_names": list(class_names),
        "n_volumes": len(kept),
        "n_skipped": len(records) - len(kept),
        "counts": {s: {name: sum(1 for r in kept if r["split"] == s and r["class_name"] == name) for name in class_names} for s in SPLITS},
    }


def _cache_key(config: PreprocessConfig, scans: Sequence[Any], root: Path, *, mapping: str, seed: int, fractions: Sequence[float]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"version": CACHE_VERSION, "config": config.to_dict(), "mapping": mapping, "seed": seed, "fractions": list(fractions)}, sort_keys=True).encode())
    for scan in scans:
        stat = scan.path.stat()
        digest.update(f"{scan.path.resolve()}\0{scan.label}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        mask = mask_path(scan.path)
        if mask.is_file():
            stat = mask.stat()
            digest.update(f"mask\0{mask.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def _cached(root: Path, key: str) -> Cache | None:
    try:
        cache = open_cache(root)
    except CacheError:
        return None
    return cache if cache.info.get("key") == key else None


class _Rows:
    """A ``.npy`` file being filled one row at a time, in bounded memory.

    :func:`numpy.lib.format.open_memmap` writes the header (the one :func:`numpy.save` writes)
    and sizes the file; each row is then written through a map of the file that is closed
    (unmapped) right after. A map kept open for the whole build keeps every page written through
    it in the process's resident memory, flushed or not (measured with 200 rows of
    64 x 64 x 32 float32, 100 MiB: +107 MiB peak with one map, flushed after each row or not;
    +8 MiB with a map per row, as with plain file writes). Closing a map writes nothing back
    itself: the written pages are the file's, in the page cache, as after a ``write``.
    """

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: type) -> None:
        self.path, self.shape, self.dtype = path, shape, np.dtype(dtype)
        np.lib.format.open_memmap(path, mode="w+", dtype=self.dtype, shape=shape)  # unmapped at once: not kept

    def write(self, row: int, array: np.ndarray) -> None:
        rows = np.lib.format.open_memmap(self.path, mode="r+")
        rows[row] = array
        del rows  # unmaps the file now (the map goes with its last reference)

    def keep(self, rows: Sequence[int], final: Path) -> None:
        """Write ``final`` holding only ``rows``, in that order, one row at a time (bounded memory)."""
        if len(rows) == self.shape[0]:
            os.replace(self.path, final)
            return
        out = _Rows(final, (len(rows), *self.shape[1:]), self.dtype.type)
        for row, position in enumerate(rows):
            source = np.load(self.path, mmap_mode="r")
            out.write(row, source[position])
            del source  # as in write: one row's pages mapped at a time


def _work(task: tuple[int, str, PreprocessConfig, str | None]) -> tuple[int, np.ndarray | None, dict[str, str], np.ndarray | None]:
    """Preprocess one scan (and its mask) in a worker; an error becomes a message, not a crash of
    the batch. A bad mask is reported in ``mask_error`` and skipped; the scan is kept."""
    position, path, config, mask = task
    try:
        array, volume = preprocess_file(path, config=config)
    except Exception as error:  # noqa: BLE001 - any failure of one scan is reported, the batch goes on
        reason = str(error).removeprefix(f"{path}: ")
        if not isinstance(error, ValueError):
            reason = f"{type(error).__name__}: {reason}"
        return position, None, {"error": reason}, None
    meta = {
        "original_shape": "x".join(str(n) for n in volume.original_shape),
        "spacing_mm": "x".join(f"{s:.4g}" for s in volume.spacing_mm),
    }
    mask_array = None
    if mask is not None:
        try:
            mask_array = preprocess_mask(mask, volume=volume, config=config)
            meta["mask"] = "1"
        except ValueError as error:
            meta["mask_error"] = str(error)
    return position, array, meta, mask_array


def _run(tasks: list[tuple[int, str, PreprocessConfig, str | None]], workers: int) -> Iterable[tuple[int, np.ndarray | None, dict[str, str], np.ndarray | None]]:
    """Yield results as they finish, with at most ``2 * workers`` scans in flight."""
    if workers <= 1:
        yield from map(_work, tasks)
        return
    # "spawn", not fork: the caller may already run TensorFlow's threads (chapters 03-06), and
    # forking a multi-threaded process can deadlock.
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending: set[cf.Future] = set()
        queue = iter(tasks)
        for task in queue:
            pending.add(pool.submit(_work, task))
            if len(pending) >= 2 * workers:
                done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        for future in cf.as_completed(pending):
            yield future.result()


def _preprocess_rows(tasks: list[tuple[int, str, PreprocessConfig, str | None]], workers: int, records: list[dict[str, Any]],
                     staging: dict[str, _Rows], *, strict: bool, progress: bool) -> None:
    """Run the tasks, writing each scan's row (and mask row) at its position and its facts into ``records``."""
    bar = _progress(len(tasks), enabled=progress)
    try:
        for position, array, meta, mask in _run(tasks, workers):
            records[position].update(meta)
            path = tasks[position][1]
            if array is None:
                message = f"{path}: {meta['error']}"
                if strict:
                    raise PreprocessError(message)
                _report(bar, f"skipped {message}")
            else:
                staging["volumes"].write(position, array)
                if mask is not None:
                    staging["masks"].write(position, mask)
                elif meta.get("mask_error"):
                    _report(bar, f"skipped the mask of {path}: {meta['mask_error']}")
            bar.update(1)
    finally:
        bar.close()


class PreprocessError(ValueError):
    """Raised by ``build_cache(strict=True)`` for the first scan that fails."""


def build_cache(
    src_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    config: PreprocessConfig | None = None,
    dataset: str | None = None,
    mapping: str | None = None,
    workers: int | None = None,
    strict: bool = False,
    seed: int = 0,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    progress: bool = True,
) -> Cache:
    """Preprocess every scan of a dataset folder into a cache, in parallel; reuse it if current.

    Parameters
    ----------
    src_dir : path-like
        Folder with MosMedData-style class folders (``CT-0``, ``CT-23`` …).
    out_dir : path-like
        Cache folder; see the module docstring.
    config : PreprocessConfig, keyword-only
        Preprocessing steps (default ``PreprocessConfig()``).
    dataset, mapping : str, optional
        Registry name and label mapping (default: detected from the folder names).
    workers : int, optional
        Processes to use (default: all CPU cores); 1 runs in this process.
    strict : bool
        Stop at the first bad scan found (raise :class:`PreprocessError`) instead of skipping it;
        with several workers that is the first to fail, not necessarily the first in order.
    seed, fractions :
        The stratified split (see :func:`ctutils.splits.stratified_split`).
    progress : bool
        Show a tqdm progress bar and report skipped scans on stderr.

    Returns
    -------
    Cache
        The opened cache; ``Cache.info["reused"]`` is True when nothing had to be done.
    """
    from ctutils.datasets import get_dataset, list_scans  # datasets imports nothing heavy

    config = config or PreprocessConfig()
    src, out = Path(src_dir), Path(out_dir)
    remove_stale_partials(out)  # what a killed build left; a build still running keeps its files
    spec = get_dataset(dataset) if dataset is not None else None
    scans = list_scans(src, spec=spec, mapping=mapping)
    mapping_name = mapping or "default"
    class_names = _class_names(scans, spec, mapping, src)
    key = _cache_key(config, scans, src, mapping=mapping_name, seed=seed, fractions=fractions)
    existing = _cached(out, key)
    if existing is not None:
        existing.info["reused"] = True
        if progress:
            from ctutils.frontend import display_path

            print(f"{display_path(out)}: cache is up to date ({len(existing)} volumes); nothing to do")
        return existing

    out.mkdir(parents=True, exist_ok=True)
    _build(
        src, out, scans, config=config, class_names=class_names, key=key, workers=workers or available_cores(),
        strict=strict, progress=progress, split_info={"mapping": mapping_name, "seed": seed, "fractions": list(fractions)},
    )
    cache = open_cache(out)
    cache.info["reused"] = False
    if progress and cache.skipped:
        print(f"{out}: {len(cache)} volumes cached, {len(cache.skipped)} scan(s) skipped (see the manifest's error column)", file=sys.stderr)
    return cache


def _build(src: Path, out: Path, scans: Sequence[Any], *, config: PreprocessConfig, class_names: Sequence[str], key: str,
           workers: int, strict: bool, progress: bool, split_info: dict[str, Any]) -> None:
    """Preprocess ``scans`` into temporary files in ``out``, split the kept ones, install the cache.

    ``split_info`` holds the mapping name, the split's seed and fractions (recorded in ``cache.json``).
    """
    records: list[dict[str, Any]] = [
        {"path": str(s.path.resolve()), "label": s.label, "class_name": s.class_name, "split": "", "index": None, "error": ""}
        for s in scans
    ]
    masks = [mask_path(s.path) for s in scans]
    with_masks = any(m.is_file() for m in masks)
    tasks = [(i, str(s.path), config, str(m) if m.is_file() else None) for i, (s, m) in enumerate(zip(scans, masks))]
    files = {"volumes": (VOLUMES, np.float32), **({"masks": (MASKS, np.float16)} if with_masks else {})}
    staging = {name: _Rows(partial_name(out / file), (len(scans), *config.shape), dtype) for name, (file, dtype) in files.items()}
    finals = {name: partial_name(out / file) for name, (file, _) in files.items()}
    try:
        _preprocess_rows(tasks, workers, records, staging, strict=strict, progress=progress)
        kept = [i for i, r in enumerate(records) if not r["error"]]
        if not kept:
            raise PreprocessError(f"{src}: none of the {len(scans)} scans could be preprocessed; see the errors above")
        for row, position in enumerate(kept):
            records[position]["index"] = row
        for name, rows in staging.items():
            rows.keep(kept, finals[name])
        _assign_splits(records, kept, [scans[i].path.relative_to(src) for i in kept], seed=split_info["seed"], fractions=split_info["fractions"])
        info = _info(config, class_names, records, key=key, source=str(src.resolve()))
        info.update({**split_info, "masks": with_masks})
        _install(out, finals["volumes"], records, info, finals.get("masks"))
    finally:
        for path in [r.path for r in staging.values()] + list(finals.values()):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _assign_splits(records: list[dict[str, Any]], kept: Sequence[int], rel_paths: Sequence[Path], *, seed: int,
                   fractions: Sequence[float]) -> None:
    """Write the stratified split of the kept scans (keyed by their paths inside the dataset) into ``records``."""
    labels = [records[i]["label"] for i in kept]
    splits = stratified_split(labels, keys=[str(p) for p in rel_paths], seed=seed, fractions=fractions)
    for position, split in zip(kept, splits):
        records[position]["split"] = split


def _class_names(scans: Sequence[Any], spec: Any, mapping: str | None, src: Path) -> tuple[str, ...]:
    if spec is not None:
        return tuple(spec.names(mapping))
    from ctutils.datasets import detect_dataset

    return tuple(detect_dataset(src).names(mapping))


def _progress(total: int, *, enabled: bool):  # noqa: ANN202 - a tqdm bar
    from ctutils.frontend import progress_bar

    return progress_bar(total=total, desc="preprocess", unit="scan", disable=not enabled, file=sys.stderr)


def _report(bar: Any, message: str) -> None:
    if bar.disable:
        return
    bar.write(message, file=sys.stderr)
