"""Dataset registry and scan listing (chapter 1, "The data").

The registry (``ctutils/registry.json``, or another file passed as ``registry=``) describes each
dataset the course knows: where it comes from, its licence, its class folders and how folders map to
labels. A dataset on disk always has the MosMedData layout: one folder per class, holding one
``.nii`` or ``.nii.gz`` file per study::

    <root>/CT-0/study_0001.nii.gz      label 0, "normal"
    <root>/CT-23/study_0940.nii.gz     label 1, "abnormal"

:func:`list_scans` lists them in an order that never depends on the file system: by the class
folder's position in the registry entry, then by file name.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "DatasetError",
    "DatasetSpec",
    "KINDS",
    "RemoteFile",
    "Scan",
    "class_counts",
    "default_registry_path",
    "detect_dataset",
    "expected_layout",
    "get_dataset",
    "is_scan_file",
    "list_scans",
    "load_registry",
    "MASKS_FOLDER",
    "mask_path",
    "scan_files",
    "SYNTHETIC_MARKER",
]

KINDS = ("download", "manual", "synthetic")
"""Dataset kinds: fetched by :func:`ctutils.download.download_dataset`, placed by hand, generated."""

_SCAN_SUFFIXES = (".nii", ".nii.gz")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")

_ENTRY_REQUIRED = {
    "name", "description", "kind", "files", "class_folders", "label_mappings",
    "default_mapping", "class_names",
}
_ENTRY_OPTIONAL = {"licence", "homepage", "citation", "expected_counts", "notes", "layouts"}
#: MosMedData keeps lesion masks beside the class folders: ``<root>/masks/<study>_mask.nii.gz``.
MASKS_FOLDER = "masks"
#: The file the phantom generator writes at the root of a synthetic dataset.
SYNTHETIC_MARKER = "synthetic.json"
_FILE_REQUIRED = {"url", "filename", "size", "sha256", "folder"}


class DatasetError(ValueError):
    """A registry, dataset folder or class folder is missing or malformed; the message names it."""


@dataclass(frozen=True)
class RemoteFile:
    """One archive of a downloadable dataset.

    Attributes
    ----------
    url : str
        Where to fetch it (``http://`` or ``https://``).
    filename : str
        Plain file name it is saved under, in ``<dest>/.downloads/``.
    size : int or None
        Expected size in bytes; ``None`` if unknown (the server's ``Content-Length`` is used).
    sha256 : str or None
        Expected SHA-256 (64 lower-case hex digits); ``None`` if unknown, in which case the value
        of the first verified download is recorded and checked afterwards.
    folder : str
        The class folder the archive provides: its scans end up in ``<dest>/<folder>/``.
    """

    url: str
    filename: str
    size: int | None
    sha256: str | None
    folder: str


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset of the registry.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"mosmeddata-ct0-ct23"``.
    description : str
        One or two sentences.
    kind : {"download", "manual", "synthetic"}
        How the data gets onto the disk.
    licence, homepage, citation : str or None
        Provenance.
    files : tuple of RemoteFile
        Archives to download (empty unless ``kind == "download"``).
    class_folders : tuple of str
        Class folder names in their canonical order; scans are listed in this order.
    label_mappings : dict of str to dict of str to int
        For each mapping name (``"binary"``, ``"severity"``), class folder → integer label.
        Labels are ``0 … K-1``. A folder absent from a mapping is not used by it.
    default_mapping : str
        Mapping used when none is asked for.
    class_names : dict of str to tuple of str
        For each mapping, the name of label ``k`` at position ``k``.
    expected_counts : dict of str to int or None
        Number of studies per class folder in the published dataset, if fixed.
    layouts : dict of str to tuple of str, or None
        For a dataset that comes in several layouts (the synthetic one: ``keras-example`` with
        CT-0 and CT-23, ``full`` with CT-0 … CT-4), the class folders of each; a folder on disk
        holds one of them (:meth:`layout_of`). None: one layout, ``class_folders``.
    source : Path or None
        Registry file the entry was read from (for error messages).
    """

    name: str
    description: str
    kind: str
    licence: str | None
    homepage: str | None
    citation: str | None
    files: tuple[RemoteFile, ...]
    class_folders: tuple[str, ...]
    label_mappings: dict[str, dict[str, int]]
    default_mapping: str
    class_names: dict[str, tuple[str, ...]]
    expected_counts: dict[str, int] | None = None
    layouts: dict[str, tuple[str, ...]] | None = None
    source: Path | None = field(default=None, compare=False)

    def __hash__(self) -> int:  # the dict fields are never mutated; hash the identity fields
        return hash((self.name, self.kind, self.class_folders))

    def _mapping_name(self, mapping: str | None) -> str:
        name = self.default_mapping if mapping is None else mapping
        if name not in self.label_mappings:
            raise DatasetError(
                f"dataset {self.name!r} has no label mapping {name!r}; "
                f"known: {', '.join(sorted(self.label_mappings))}"
            )
        return name

    def classes(self, mapping: str | None = None) -> dict[str, int]:
        """Class folder → label for ``mapping`` (default: :attr:`default_mapping`), in folder order.

        Examples
        --------
        >>> get_dataset("mosmeddata-full").classes("severity")["CT-3"]
        3
        """
        table = self.label_mappings[self._mapping_name(mapping)]
        return {folder: table[folder] for folder in self.class_folders if folder in table}

    def layout_of(self, root: str | os.PathLike[str]) -> tuple[str, tuple[str, ...]]:
        """The layout (name, class folders) of a dataset folder: the first of :attr:`layouts`
        that contains every class folder present (``("default", class_folders)`` without layouts).

        Raises
        ------
        DatasetError
            The folders present fit no single layout (e.g. both ``CT-23`` and ``CT-1``).
        """
        if not self.layouts:
            return "default", self.class_folders
        present = {p.name for p in Path(root).iterdir() if p.is_dir()} & set(self.class_folders)
        for name, folders in self.layouts.items():
            if present <= set(folders):
                return name, folders
        known = "; ".join(f"{n}: {', '.join(f)}" for n, f in self.layouts.items())
        raise DatasetError(
            f"{root}: the class folders {', '.join(sorted(present))} fit no layout of dataset "
            f"{self.name!r} ({known})"
        )

    def names(self, mapping: str | None = None) -> tuple[str, ...]:
        """Class names of ``mapping``: position ``k`` names label ``k``.

        Examples
        --------
        >>> get_dataset("mosmeddata-full").names()
        ('normal', 'abnormal')
        """
        return self.class_names[self._mapping_name(mapping)]


@dataclass(frozen=True)
class Scan:
    """One study on disk.

    Attributes
    ----------
    path : Path
        The ``.nii`` / ``.nii.gz`` file.
    label : int
        Integer label under the mapping it was listed with.
    class_name : str
        Name of ``label`` (``"normal"`` / ``"abnormal"`` for the binary mapping).
    folder : str
        Class folder it was found in (``"CT-0"`` …), whatever the mapping.
    """

    path: Path
    label: int
    class_name: str
    folder: str


# --------------------------------------------------------------------------- registry


def default_registry_path() -> Path:
    """Path of the registry shipped with the package (``ctutils/registry.json``)."""
    return Path(str(resources.files("ctutils").joinpath("registry.json")))


def _fail(where: str, problem: str) -> DatasetError:
    return DatasetError(f"{where}: {problem}")


def _check_keys(where: str, obj: Mapping[str, Any], required: set[str], optional: set[str]) -> None:
    missing = sorted(required - set(obj))
    if missing:
        raise _fail(where, f"missing field(s) {', '.join(missing)}")
    unknown = sorted(set(obj) - required - optional)
    if unknown:
        raise _fail(where, f"unknown field(s) {', '.join(unknown)}")


def _optional_str(where: str, obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise _fail(where, f"field {key!r} must be a string or null, got {value!r}")
    return value


def _parse_file(where: str, raw: Any, folders: tuple[str, ...]) -> RemoteFile:
    if not isinstance(raw, dict):
        raise _fail(where, f"expected an object, got {type(raw).__name__}")
    _check_keys(where, raw, _FILE_REQUIRED, set())
    url, filename, size, sha256, folder = (raw[k] for k in ("url", "filename", "size", "sha256", "folder"))
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise _fail(where, f"'url' must start with http:// or https://, got {url!r}")
    if not isinstance(filename, str) or not _SAFE_NAME.match(filename) or ".." in filename:
        raise _fail(where, f"'filename' must be a plain file name, got {filename!r}")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        raise _fail(where, f"'size' must be a positive number of bytes or null, got {size!r}")
    if sha256 is not None and (not isinstance(sha256, str) or not _SHA256.match(sha256)):
        raise _fail(where, f"'sha256' must be 64 lower-case hex digits or null, got {sha256!r}")
    if folder not in folders:
        raise _fail(where, f"'folder' {folder!r} is not one of the class folders {list(folders)}")
    return RemoteFile(url=url, filename=filename, size=size, sha256=sha256, folder=folder)


def _parse_entry(where: str, raw: Any, source: Path) -> DatasetSpec:
    if not isinstance(raw, dict):
        raise _fail(where, f"expected an object, got {type(raw).__name__}")
    name = raw.get("name")
    if not isinstance(name, str) or not _SAFE_NAME.match(name):
        raise _fail(where, f"'name' must be a non-empty plain name, got {name!r}")
    where = f"{where} ({name!r})"
    _check_keys(where, raw, _ENTRY_REQUIRED, _ENTRY_OPTIONAL)
    kind = raw["kind"]
    if kind not in KINDS:
        raise _fail(where, f"'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    if not isinstance(raw["description"], str):
        raise _fail(where, "'description' must be a string")
    folders = _parse_class_folders(where, raw["class_folders"])
    mappings, class_names = _parse_label_mappings(where, raw["label_mappings"], raw["class_names"], folders)
    default = raw["default_mapping"]
    if default not in mappings:
        raise _fail(where, f"'default_mapping' {default!r} is not one of {sorted(mappings)}")
    files = _parse_files(where, raw["files"], kind, folders)
    counts = _parse_counts(where, raw.get("expected_counts"), folders)
    layouts = _parse_layouts(where, raw.get("layouts"), folders)
    return DatasetSpec(
        name=name,
        description=raw["description"],
        kind=kind,
        licence=_optional_str(where, raw, "licence"),
        homepage=_optional_str(where, raw, "homepage"),
        citation=_optional_str(where, raw, "citation"),
        files=files,
        class_folders=folders,
        label_mappings=mappings,
        default_mapping=default,
        class_names=class_names,
        expected_counts=counts,
        layouts=layouts,
        source=source,
    )


def _parse_class_folders(where: str, raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(f, str) and _SAFE_NAME.match(f) for f in raw):
        raise _fail(where, f"'class_folders' must be a non-empty list of folder names, got {raw!r}")
    folders = tuple(raw)
    if len(set(folders)) != len(folders):
        raise _fail(where, f"'class_folders' has duplicates: {list(folders)}")
    return folders


def _parse_label_mappings(
    where: str, mappings_raw: Any, names_raw: Any, folders: tuple[str, ...]
) -> tuple[dict[str, dict[str, int]], dict[str, tuple[str, ...]]]:
    """``label_mappings`` (folder -> label, in class-folder order) and ``class_names``, by mapping name."""
    if not isinstance(mappings_raw, dict) or not mappings_raw:
        raise _fail(where, "'label_mappings' must be a non-empty object")
    if not isinstance(names_raw, dict):
        raise _fail(where, "'class_names' must be an object: mapping name -> list of names")
    mappings: dict[str, dict[str, int]] = {}
    class_names: dict[str, tuple[str, ...]] = {}
    for mname, table in mappings_raw.items():
        mwhere = f"{where}, label mapping {mname!r}"
        n_labels = _check_label_table(mwhere, table, folders)
        names = names_raw.get(mname)
        if not isinstance(names, list) or len(names) != n_labels or not all(isinstance(n, str) and n for n in names):
            raise _fail(mwhere, f"'class_names' needs a list of {n_labels} names for it, got {names!r}")
        mappings[mname] = {f: table[f] for f in folders if f in table}
        class_names[mname] = tuple(names)
    extra_names = sorted(set(names_raw) - set(mappings))
    if extra_names:
        raise _fail(where, f"'class_names' has names for unknown mapping(s) {extra_names}")
    return mappings, class_names


def _check_label_table(where: str, table: Any, folders: tuple[str, ...]) -> int:
    """Check one label mapping (class folder -> label 0 … K-1); return K."""
    if not isinstance(table, dict) or not table:
        raise _fail(where, "must be a non-empty object: class folder -> label")
    unknown = [f for f in table if f not in folders]
    if unknown:
        raise _fail(where, f"folder(s) {unknown} are not in class_folders {list(folders)}")
    labels = list(table.values())
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
        raise _fail(where, f"labels must be integers, got {labels}")
    if sorted(set(labels)) != list(range(len(set(labels)))):
        raise _fail(where, f"labels must be 0 … K-1 with none missing, got {sorted(set(labels))}")
    return len(set(labels))


def _parse_files(where: str, raw: Any, kind: str, folders: tuple[str, ...]) -> tuple[RemoteFile, ...]:
    """The ``files`` list: one archive per class folder for kind "download", none otherwise."""
    if not isinstance(raw, list):
        raise _fail(where, "'files' must be a list")
    files = tuple(_parse_file(f"{where}, files[{i}]", f, folders) for i, f in enumerate(raw))
    if kind == "download" and not files:
        raise _fail(where, "a dataset of kind 'download' needs at least one entry in 'files'")
    if kind != "download" and files:
        raise _fail(where, f"a dataset of kind {kind!r} must have an empty 'files' list")
    filenames = [f.filename for f in files]
    if len(set(filenames)) != len(filenames):
        raise _fail(where, f"file names must be unique, got {filenames}")
    fetched = [f.folder for f in files]
    if len(set(fetched)) != len(fetched):
        raise _fail(where, f"two archives provide the same class folder: {fetched}")
    if kind == "download" and set(fetched) != set(folders):
        raise _fail(where, f"the archives provide folders {fetched}, but class_folders is {list(folders)}")
    return files


def _parse_counts(where: str, raw: Any, folders: tuple[str, ...]) -> dict[str, int] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - set(folders) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in raw.values()
    ):
        raise _fail(where, f"'expected_counts' must map class folders to counts >= 0, got {raw!r}")
    return dict(raw)


def _parse_layouts(where: str, raw: Any, folders: tuple[str, ...]) -> dict[str, tuple[str, ...]] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw or not all(
        isinstance(v, list) and v and all(f in folders for f in v) for v in raw.values()
    ):
        raise _fail(where, f"'layouts' must map layout names to lists of class folders, got {raw!r}")
    return {str(name): tuple(v) for name, v in raw.items()}


def load_registry(path: str | os.PathLike[str] | None = None) -> dict[str, DatasetSpec]:
    """Read and validate a dataset registry.

    Parameters
    ----------
    path : path-like, optional
        A registry JSON file; default: the one shipped with ctutils (:func:`default_registry_path`).
        The file holds ``{"registry_version": 1, "datasets": [ {...}, ... ]}``.

    Returns
    -------
    dict of str to DatasetSpec
        By dataset name, in file order.

    Raises
    ------
    DatasetError
        The file is missing, is not JSON, or an entry is malformed; the message names the file,
        the entry and the field.

    Examples
    --------
    >>> sorted(load_registry())
    ['mosmeddata-ct0-ct23', 'mosmeddata-full', 'synthetic']
    """
    source = default_registry_path() if path is None else Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{source}: registry file not found") from None
    except IsADirectoryError:
        raise DatasetError(f"{source}: registry path is a folder, expected a JSON file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{source}: registry is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("datasets"), list):
        raise DatasetError(f"{source}: registry must be an object with a 'datasets' list")
    version = data.get("registry_version", 1)
    if version != 1:
        raise DatasetError(f"{source}: unsupported registry_version {version!r} (this ctutils reads 1)")
    specs: dict[str, DatasetSpec] = {}
    for i, raw in enumerate(data["datasets"]):
        spec = _parse_entry(f"{source}: datasets[{i}]", raw, source)
        if spec.name in specs:
            raise DatasetError(f"{source}: dataset name {spec.name!r} appears twice")
        specs[spec.name] = spec
    if not specs:
        raise DatasetError(f"{source}: registry lists no datasets")
    return specs


def _as_registry(
    registry: str | os.PathLike[str] | Mapping[str, DatasetSpec] | None,
) -> Mapping[str, DatasetSpec]:
    if registry is None or isinstance(registry, (str, os.PathLike)):
        return load_registry(registry)
    return registry


def get_dataset(
    name: str, *, registry: str | os.PathLike[str] | Mapping[str, DatasetSpec] | None = None
) -> DatasetSpec:
    """Look up a dataset by name.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"mosmeddata-ct0-ct23"``.
    registry : path-like or mapping, optional
        Another registry file, or an already loaded registry; default: the shipped one.

    Raises
    ------
    DatasetError
        Unknown name; the message lists the known names and the registry file.

    Examples
    --------
    >>> get_dataset("mosmeddata-ct0-ct23").class_folders
    ('CT-0', 'CT-23')
    """
    specs = _as_registry(registry)
    if name not in specs:
        where = registry if isinstance(registry, (str, os.PathLike)) else default_registry_path()
        if registry is not None and not isinstance(registry, (str, os.PathLike)):
            where = "the given registry"
        raise DatasetError(f"unknown dataset {name!r} (known: {', '.join(specs)}; registry {where})")
    return specs[name]


# --------------------------------------------------------------------------- scans on disk


def is_scan_file(path: Path) -> bool:
    """True for a regular ``*.nii`` / ``*.nii.gz`` file whose name does not start with ``.``.

    Hidden names cover partial writes (``.partial-…``) and macOS resource forks (``._x.nii.gz``).
    """
    name = path.name
    return not name.startswith(".") and name.lower().endswith(_SCAN_SUFFIXES) and path.is_file()


def scan_files(folder: Path) -> list[Path]:
    """The scans of one folder (:func:`is_scan_file`: no hidden or partial files), sorted by name."""
    return sorted((p for p in folder.iterdir() if is_scan_file(p)), key=lambda p: p.name)


def _resolve_spec(
    spec: DatasetSpec | str | None,
    root: Path,
    registry: str | os.PathLike[str] | Mapping[str, DatasetSpec] | None = None,
) -> DatasetSpec:
    if spec is None:
        return detect_dataset(root, registry=registry)
    if isinstance(spec, str):
        return get_dataset(spec, registry=registry)
    return spec


def _check_root(root: Path) -> None:
    if not root.exists():
        raise DatasetError(f"{root}: dataset folder does not exist")
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset path is not a folder")


def list_scans(
    root: str | os.PathLike[str],
    *,
    spec: DatasetSpec | str | None = None,
    mapping: str | None = None,
) -> list[Scan]:
    """List the studies of a dataset folder with their labels.

    Parameters
    ----------
    root : path-like
        Folder holding the class folders (``<root>/CT-0``, ``<root>/CT-23`` …).
    spec : DatasetSpec or str, optional
        The dataset (or its registry name); default: detected from the folder names
        (:func:`detect_dataset`).
    mapping : str, optional
        Label mapping (``"binary"``, ``"severity"``); default: the dataset's ``default_mapping``.
        Class folders outside the mapping are neither required nor listed.

    Returns
    -------
    list of Scan
        Sorted by (position of the class folder in ``spec.class_folders``, file name) — never in
        file-system order. Only ``*.nii`` and ``*.nii.gz`` files directly inside a class folder are
        listed; names starting with ``.`` (partial writes, macOS ``._`` files) are ignored.

    Raises
    ------
    DatasetError
        ``root`` does not exist, or a class folder of the mapping is missing or holds no scan;
        the message names the folder.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for rel in ["CT-23/b.nii.gz", "CT-0/z.nii", "CT-0/a.nii.gz", "CT-0/.partial-a.nii.gz"]:
    ...     (root / rel).parent.mkdir(exist_ok=True)
    ...     (root / rel).touch()
    >>> [(s.folder, s.path.name, s.label, s.class_name) for s in list_scans(root)]
    [('CT-0', 'a.nii.gz', 0, 'normal'), ('CT-0', 'z.nii', 0, 'normal'), ('CT-23', 'b.nii.gz', 1, 'abnormal')]
    """
    root = Path(root)
    _check_root(root)
    spec = _resolve_spec(spec, root)
    classes = _layout_classes(spec, root, mapping)
    names = spec.names(mapping)
    scans: list[Scan] = []
    for folder, label in classes.items():
        path = root / folder
        if not path.is_dir():
            raise DatasetError(
                f"{path}: class folder {folder!r} of dataset {spec.name!r} is missing "
                f"(expected {', '.join(classes)} in {root})"
            )
        files = scan_files(path)
        if not files:
            raise DatasetError(f"{path}: class folder {folder!r} holds no .nii or .nii.gz scan")
        scans.extend(Scan(path=p, label=label, class_name=names[label], folder=folder) for p in files)
    return scans


def _layout_classes(spec: DatasetSpec, root: Path, mapping: str | None) -> dict[str, int]:
    """The class folders to list under ``mapping``: all of the mapping's for a one-layout dataset;
    for one with layouts, those of the folder's layout that exist (its first, CT-0, always)."""
    classes = spec.classes(mapping)
    if not spec.layouts:
        return classes
    layout, folders = spec.layout_of(root)
    present = [f for f in folders if (root / f).is_dir() or f == folders[0]]
    uncovered = [f for f in present if f not in classes]
    if uncovered:
        raise DatasetError(
            f"{root}: label mapping {spec._mapping_name(mapping)!r} of dataset {spec.name!r} has no "
            f"label for {', '.join(uncovered)} (layout {layout!r}); choose another mapping"
        )
    return {f: classes[f] for f in present}


def class_counts(scans: Iterable[Scan]) -> dict[str, int]:
    """Number of scans per class name, ordered by label.

    Examples
    --------
    >>> class_counts([Scan(Path("b"), 1, "abnormal", "CT-23"), Scan(Path("a"), 0, "normal", "CT-0"),
    ...               Scan(Path("c"), 1, "abnormal", "CT-23")])
    {'normal': 1, 'abnormal': 2}
    """
    counts: dict[tuple[int, str], int] = {}
    for scan in scans:
        key = (scan.label, scan.class_name)
        counts[key] = counts.get(key, 0) + 1
    return {name: n for (_, name), n in sorted(counts.items())}


def detect_dataset(
    root: str | os.PathLike[str],
    registry: str | os.PathLike[str] | Mapping[str, DatasetSpec] | None = None,
) -> DatasetSpec:
    """Guess the dataset of a folder from the class folders it holds.

    A folder with the phantom generator's ``synthetic.json`` is the registry's synthetic dataset.
    Otherwise the other entries whose class folders overlap most with the sub-folders of ``root``
    win; among entries with the same layout the first one in the registry is taken. With the
    shipped registry: ``CT-23`` present → ``mosmeddata-ct0-ct23``; any of ``CT-1`` … ``CT-4`` →
    ``mosmeddata-full``.

    Raises
    ------
    DatasetError
        ``root`` does not exist, holds no known class folder, or the folders fit two different
        layouts (e.g. only ``CT-0``, or both ``CT-23`` and ``CT-1``).

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for folder in ["CT-0", "CT-1", "CT-2"]:
    ...     (root / folder).mkdir()
    >>> detect_dataset(root).name
    'mosmeddata-full'
    """
    root = Path(root)
    _check_root(root)
    specs = dict(_as_registry(registry))
    synthetic = {n: s for n, s in specs.items() if s.kind == "synthetic"}
    if synthetic and (root / SYNTHETIC_MARKER).is_file():
        return next(iter(synthetic.values()))
    specs = {n: s for n, s in specs.items() if s.kind != "synthetic"} or specs
    present = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    scores = {name: len(present & set(spec.class_folders)) for name, spec in specs.items()}
    best = max(scores.values(), default=0)
    if best == 0:
        known = sorted({f for spec in specs.values() for f in spec.class_folders})
        found = ", ".join(sorted(present)) or "no sub-folders"
        raise DatasetError(
            f"{root}: no class folder found (found {found}; expected some of {', '.join(known)})"
        )
    winners = [specs[name] for name, score in scores.items() if score == best]
    by_layout: dict[frozenset[str], DatasetSpec] = {}
    for spec in winners:
        by_layout.setdefault(frozenset(spec.class_folders), spec)
    if len(by_layout) > 1:
        options = " or ".join(f"{s.name} ({', '.join(s.class_folders)})" for s in by_layout.values())
        raise DatasetError(
            f"{root}: cannot tell the dataset from the folders {', '.join(sorted(present))}: "
            f"{options}; add the missing class folders or name the dataset explicitly"
        )
    return winners[0]


def mask_path(study: str | os.PathLike[str]) -> Path:
    """Where MosMedData keeps the lesion mask of a study: ``<root>/masks/<name>_mask.nii.gz``.

    Examples
    --------
    >>> mask_path("d/CT-23/study_0003.nii.gz").as_posix()
    'd/masks/study_0003_mask.nii.gz'
    """
    study = Path(study)
    stem = study.name.removesuffix(".gz").removesuffix(".nii")
    return study.parent.parent / MASKS_FOLDER / f"{stem}_mask.nii.gz"


def expected_layout(spec: DatasetSpec, dest: str | os.PathLike[str]) -> str:
    """One-line description of where the scans of ``spec`` go under ``dest``.

    Examples
    --------
    >>> expected_layout(get_dataset("mosmeddata-ct0-ct23"), "data/mosmeddata")
    'data/mosmeddata/CT-0/*.nii.gz and data/mosmeddata/CT-23/*.nii.gz'
    """
    parts = [f"{Path(dest) / folder}/*.nii.gz" for folder in spec.class_folders]
    if len(parts) == 1:
        return parts[0]
    return f"{parts[0]} and {parts[1]}" if len(parts) == 2 else f"{parts[0]} … {parts[-1]}"
