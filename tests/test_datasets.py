"""Tests for ctutils.datasets: registry, scan listing, layout detection."""

from __future__ import annotations

import copy
import json
import random
import re
from pathlib import Path

import pytest

from ctutils.datasets import (
    DatasetError,
    DatasetSpec,
    Scan,
    class_counts,
    default_registry_path,
    detect_dataset,
    get_dataset,
    list_scans,
    load_registry,
)

FULL_FOLDERS = ["CT-0", "CT-1", "CT-2", "CT-3", "CT-4"]


def make_layout(root: Path, files: dict[str, list[str]]) -> Path:
    for folder, names in files.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            (root / folder / name).write_bytes(b"")
    return root


# --------------------------------------------------------------------------- shipped registry


def test_shipped_registry_entries():
    registry = load_registry()
    assert list(registry) == ["mosmeddata-ct0-ct23", "mosmeddata-full", "synthetic"]
    assert all(isinstance(spec, DatasetSpec) for spec in registry.values())
    assert all(spec.source == default_registry_path() for spec in registry.values())

    subset = registry["mosmeddata-ct0-ct23"]
    assert subset.kind == "download"
    assert [(f.filename, f.size, f.sha256, f.folder) for f in subset.files] == [
        ("CT-0.zip", 1_065_471_431, None, "CT-0"),
        ("CT-23.zip", 1_045_162_547, None, "CT-23"),
    ]
    assert subset.files[0].url == (
        "https://github.com/hasibzunair/3D-image-classification-tutorial/releases/download/v0.2/CT-0.zip"
    )
    assert subset.classes() == {"CT-0": 0, "CT-23": 1}
    assert subset.names() == ("normal", "abnormal")
    assert subset.expected_counts == {"CT-0": 100, "CT-23": 100}

    full = registry["mosmeddata-full"]
    assert (full.kind, full.files, full.licence) == ("manual", (), "CC BY-NC-ND 3.0")
    assert full.expected_counts == {"CT-0": 254, "CT-1": 684, "CT-2": 125, "CT-3": 45, "CT-4": 2}
    assert sum(full.expected_counts.values()) == 1110
    assert full.default_mapping == "binary"
    assert full.classes("binary") == {"CT-0": 0, "CT-1": 1, "CT-2": 1, "CT-3": 1, "CT-4": 1}
    assert full.classes("severity") == {"CT-0": 0, "CT-1": 1, "CT-2": 2, "CT-3": 3, "CT-4": 4}
    assert full.names("severity") == ("normal", "mild", "moderate", "severe", "critical")

    synthetic = registry["synthetic"]
    assert synthetic.kind == "synthetic"
    assert synthetic.layouts == {"keras-example": ("CT-0", "CT-23"), "full": full.class_folders}
    # the label mappings of the real ones: binary CT-0 against the rest, and severity 0-4
    assert synthetic.classes("binary") == {**full.classes("binary"), "CT-23": 1}
    assert synthetic.classes("severity") == full.classes("severity")
    assert synthetic.names("severity") == full.names("severity")


def test_get_dataset_unknown_name_lists_the_known_ones():
    assert get_dataset("synthetic").name == "synthetic"
    with pytest.raises(DatasetError, match=r"unknown dataset 'mosmed' \(known: mosmeddata-ct0-ct23, "
                                           r"mosmeddata-full, synthetic; registry .*registry\.json\)"):
        get_dataset("mosmed")


def test_unknown_label_mapping():
    with pytest.raises(DatasetError, match=r"dataset 'mosmeddata-ct0-ct23' has no label mapping 'severity'"):
        get_dataset("mosmeddata-ct0-ct23").classes("severity")


# --------------------------------------------------------------------------- registry errors


def valid_entry() -> dict:
    return {
        "name": "mine",
        "description": "a test dataset",
        "kind": "download",
        "licence": None,
        "homepage": None,
        "files": [
            {"url": "http://127.0.0.1:1/a.zip", "filename": "a.zip", "size": 10, "sha256": None,
             "folder": "A"},
            {"url": "http://127.0.0.1:1/b.zip", "filename": "b.zip", "size": 10, "sha256": "ab" * 32,
             "folder": "B"},
        ],
        "class_folders": ["A", "B"],
        "label_mappings": {"binary": {"A": 0, "B": 1}},
        "default_mapping": "binary",
        "class_names": {"binary": ["normal", "abnormal"]},
        "expected_counts": {"A": 1, "B": 1},
    }


def write(path: Path, datasets: list) -> Path:
    path.write_text(json.dumps({"registry_version": 1, "datasets": datasets}), encoding="utf-8")
    return path


def test_valid_custom_registry(tmp_path):
    path = write(tmp_path / "r.json", [valid_entry()])
    spec = get_dataset("mine", registry=path)
    assert spec.source == path
    assert spec.files[1].sha256 == "ab" * 32
    assert get_dataset("mine", registry=load_registry(path)) == spec


def _set(key, value):
    def change(entry):
        entry[key] = value
    return change


def _set_file(key, value):
    def change(entry):
        entry["files"][0][key] = value
    return change


def _delete(key):
    def change(entry):
        del entry[key]
    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_delete("class_folders"), r"datasets\[0\] \('mine'\): missing field\(s\) class_folders"),
        (_set("colour", "red"), r"unknown field\(s\) colour"),
        (_set("kind", "torrent"), r"'kind' must be one of download, manual, synthetic, got 'torrent'"),
        (_set("name", "../x"), r"datasets\[0\]: 'name' must be a non-empty plain name"),
        (_set("class_folders", ["A", "A"]), r"'class_folders' has duplicates"),
        (_set("label_mappings", {"binary": {"A": 0, "C": 1}}),
         r"mapping 'binary': folder\(s\) \['C'\] are not in class_folders"),
        (_set("label_mappings", {"binary": {"A": 0, "B": 2}}),
         r"labels must be 0 … K-1 with none missing, got \[0, 2\]"),
        (_set("class_names", {"binary": ["only-one"]}), r"'class_names' needs a list of 2 names"),
        (_set("default_mapping", "severity"), r"'default_mapping' 'severity' is not one of \['binary'\]"),
        (_set("files", []), r"kind 'download' needs at least one entry in 'files'"),
        (_set_file("url", "ftp://x/a.zip"), r"files\[0\]: 'url' must start with http:// or https://"),
        (_set_file("filename", "../a.zip"), r"files\[0\]: 'filename' must be a plain file name"),
        (_set_file("size", -5), r"files\[0\]: 'size' must be a positive number of bytes or null"),
        (_set_file("sha256", "xyz"), r"files\[0\]: 'sha256' must be 64 lower-case hex digits or null"),
        (_set_file("folder", "Z"), r"files\[0\]: 'folder' 'Z' is not one of the class folders"),
        (_set_file("folder", "B"), r"two archives provide the same class folder"),
        (_set("expected_counts", {"A": -1}), r"'expected_counts' must map class folders to counts"),
    ],
)
def test_registry_errors_name_the_file_entry_and_field(tmp_path, change, message):
    entry = copy.deepcopy(valid_entry())
    change(entry)
    path = write(tmp_path / "registry.json", [entry])
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(path))}: .*{message}"):
        load_registry(path)


def test_registry_file_errors(tmp_path):
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(tmp_path / 'none.json'))}: registry file not found"):
        load_registry(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("[1, 2", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad\.json: registry is not valid JSON"):
        load_registry(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[]", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"list\.json: registry must be an object with a 'datasets' list"):
        load_registry(tmp_path / "list.json")
    with pytest.raises(DatasetError, match=r"twice\.json: dataset name 'mine' appears twice"):
        load_registry(write(tmp_path / "twice.json", [valid_entry(), valid_entry()]))
    with pytest.raises(DatasetError, match=r"empty\.json: registry lists no datasets"):
        load_registry(write(tmp_path / "empty.json", []))


# --------------------------------------------------------------------------- list_scans


def test_list_scans_order_does_not_depend_on_creation_order(tmp_path):
    names0 = [f"study_{i:04d}.nii.gz" for i in range(1, 8)] + ["study_0008.nii"]
    names23 = [f"study_{i:04d}.nii.gz" for i in range(101, 106)]
    expected = [("CT-0", n, 0, "normal") for n in sorted(names0)] + [
        ("CT-23", n, 1, "abnormal") for n in sorted(names23)
    ]
    for seed in range(3):
        root = tmp_path / f"run{seed}"
        order = [("CT-0", n) for n in names0] + [("CT-23", n) for n in names23]
        random.Random(seed).shuffle(order)  # CT-23 files are often made first
        for folder, name in order:
            make_layout(root, {folder: [name]})
        scans = list_scans(root)
        assert [(s.folder, s.path.name, s.label, s.class_name) for s in scans] == expected
        assert all(s.path == root / s.folder / s.path.name for s in scans)


def test_list_scans_follows_the_registry_folder_order_not_the_alphabet(tmp_path):
    entry = valid_entry()
    entry.update(kind="manual", files=[], class_folders=["normal", "covid"],
                 label_mappings={"binary": {"normal": 0, "covid": 1}}, expected_counts=None)
    spec = get_dataset("mine", registry=write(tmp_path / "r.json", [entry]))
    root = make_layout(tmp_path / "d", {"covid": ["a.nii.gz"], "normal": ["z.nii.gz"]})
    assert [(s.folder, s.path.name, s.label) for s in list_scans(root, spec=spec)] == [
        ("normal", "z.nii.gz", 0), ("covid", "a.nii.gz", 1),
    ]


def test_list_scans_ignores_hidden_partial_and_other_files(tmp_path):
    root = make_layout(tmp_path, {
        "CT-0": ["a.nii.gz", ".partial-123-b.nii.gz", "._a.nii.gz", "notes.txt", "c.nii.gz.part", "d.NII.GZ"],
        "CT-23": ["e.nii"],
    })
    (root / "CT-0" / "sub.nii.gz").mkdir()  # a folder, not a scan
    assert [s.path.name for s in list_scans(root)] == ["a.nii.gz", "d.NII.GZ", "e.nii"]


def test_list_scans_missing_root_or_class_folder(tmp_path):
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(tmp_path / 'nowhere'))}: dataset folder does not exist"):
        list_scans(tmp_path / "nowhere", spec="synthetic")
    root = make_layout(tmp_path / "d", {"CT-0": ["a.nii.gz"]})
    missing = re.escape(str(root / "CT-23"))
    message = rf"^{missing}: class folder 'CT-23' of dataset 'mosmeddata-ct0-ct23' is missing"
    with pytest.raises(DatasetError, match=message):
        list_scans(root, spec="mosmeddata-ct0-ct23")


def test_list_scans_empty_class_folder(tmp_path):
    root = make_layout(tmp_path, {"CT-0": ["a.nii.gz"], "CT-23": [".partial-1-a.nii.gz", "readme.txt"]})
    empty = re.escape(str(root / "CT-23"))
    with pytest.raises(DatasetError, match=rf"^{empty}: class folder 'CT-23' holds no \.nii or \.nii\.gz scan"):
        list_scans(root)


def test_full_layout_binary_and_severity(tmp_path):
    root = make_layout(tmp_path, {
        "CT-0": ["study_0002.nii.gz", "study_0001.nii.gz"],
        "CT-1": ["study_0300.nii.gz"],
        "CT-2": ["study_0950.nii.gz"],
        "CT-3": ["study_1070.nii.gz", "study_1071.nii.gz"],
        "CT-4": ["study_1109.nii.gz"],
    })
    assert detect_dataset(root).name == "mosmeddata-full"

    binary = list_scans(root)
    assert [(s.folder, s.label, s.class_name) for s in binary] == [
        ("CT-0", 0, "normal"), ("CT-0", 0, "normal"), ("CT-1", 1, "abnormal"),
        ("CT-2", 1, "abnormal"), ("CT-3", 1, "abnormal"), ("CT-3", 1, "abnormal"), ("CT-4", 1, "abnormal"),
    ]
    assert binary[0].path.name == "study_0001.nii.gz"
    assert class_counts(binary) == {"normal": 2, "abnormal": 5}

    severity = list_scans(root, mapping="severity")
    assert [s.label for s in severity] == [0, 0, 1, 2, 3, 3, 4]
    assert class_counts(severity) == {"normal": 2, "mild": 1, "moderate": 1, "severe": 2, "critical": 1}

    (root / "CT-4" / "study_1109.nii.gz").unlink()
    with pytest.raises(DatasetError, match=r"CT-4: class folder 'CT-4' holds no"):
        list_scans(root, mapping="severity")


def test_class_counts_is_ordered_by_label():
    scans = [Scan(Path("x"), 1, "abnormal", "CT-23")] * 3 + [Scan(Path("y"), 0, "normal", "CT-0")]
    assert list(class_counts(scans).items()) == [("normal", 1), ("abnormal", 3)]
    assert class_counts([]) == {}


# --------------------------------------------------------------------------- detection


def test_a_folder_with_synthetic_json_is_the_synthetic_dataset(tmp_path):
    for folder in ("CT-0", "CT-23"):
        (tmp_path / folder).mkdir()
    assert detect_dataset(tmp_path).name == "mosmeddata-ct0-ct23"
    (tmp_path / "synthetic.json").write_text("{}")
    spec = detect_dataset(tmp_path)
    assert spec.name == "synthetic" and spec.layout_of(tmp_path)[0] == "keras-example"


def test_synthetic_layout_errors_name_the_folders(tmp_path):
    for folder in ("CT-0", "CT-23", "CT-1"):
        (tmp_path / folder).mkdir()
    with pytest.raises(DatasetError, match=r"CT-0, CT-1, CT-23 fit no layout of dataset 'synthetic'"):
        get_dataset("synthetic").layout_of(tmp_path)


def test_layouts_must_name_class_folders(tmp_path):
    raw = json.loads(default_registry_path().read_text())
    raw["datasets"][2]["layouts"] = {"odd": ["CT-9"]}
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(DatasetError, match="'layouts' must map layout names to lists of class folders"):
        load_registry(path)


def test_detect_reference_subset(tmp_path):
    root = make_layout(tmp_path, {"CT-0": [], "CT-23": [], ".downloads": []})
    assert detect_dataset(root).name == "mosmeddata-ct0-ct23"


def test_detect_full_layout_with_some_folders(tmp_path):
    root = make_layout(tmp_path, {"CT-0": [], "CT-2": []})
    assert detect_dataset(root).name == "mosmeddata-full"


@pytest.mark.parametrize(
    ("folders", "message"),
    [
        ([], r"no class folder found \(found no sub-folders; expected some of CT-0, CT-1"),
        (["images"], r"no class folder found \(found images;"),
        (["CT-0"], r"cannot tell the dataset from the folders CT-0: mosmeddata-ct0-ct23 \(CT-0, CT-23\) "
                   r"or mosmeddata-full \(CT-0, CT-1, CT-2, CT-3, CT-4\); add the missing class folders"),
        (["CT-23", "CT-1"], r"cannot tell the dataset from the folders CT-1, CT-23"),
    ],
)
def test_detect_errors(tmp_path, folders, message):
    root = make_layout(tmp_path / "d", {f: [] for f in folders})
    root.mkdir(exist_ok=True)
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(root))}: {message}"):
        detect_dataset(root)


def test_detect_missing_root(tmp_path):
    with pytest.raises(DatasetError, match=r"nothing: dataset folder does not exist"):
        detect_dataset(tmp_path / "nothing")
