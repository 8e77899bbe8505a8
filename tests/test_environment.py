"""environment.yml (conda) and pyproject.toml (pip) declare the same dependencies."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

try:
    import tomllib  # Python >= 3.11
except ModuleNotFoundError:  # Python 3.10: the same parser, published as tomli
    tomllib = pytest.importorskip("tomli", reason="Python 3.10 needs tomli to read pyproject.toml")

ROOT = Path(__file__).resolve().parents[1]

# conda-only entries that have no pip counterpart
CONDA_ONLY = {"python", "pip"}


def _name_and_bound(requirement: str) -> tuple[str, str]:
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(?:>=\s*([0-9][0-9A-Za-z.]*))?\s*", requirement)
    if not match:
        raise ValueError(f"unexpected requirement {requirement!r}: use 'name>=version'")
    return match.group(1).lower().replace("_", "-"), match.group(2) or ""


def pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    items = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        items += extra
    return dict(_name_and_bound(item) for item in items)


def conda_requirements() -> dict[str, str]:
    items = []
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("\ndependencies:", 1)[1].splitlines():
        match = re.match(r"^\s*-\s+([A-Za-z0-9_.\-]+\s*(?:>=\s*[0-9][0-9A-Za-z.]*)?)\s*(?:#.*)?$", line)
        if match:
            items.append(match.group(1))
    return {name: bound for name, bound in map(_name_and_bound, items) if name not in CONDA_ONLY}


def test_both_files_declare_the_same_packages_and_lower_bounds() -> None:
    pip, conda = pyproject_requirements(), conda_requirements()
    assert set(pip) - set(conda) == set(), "in pyproject.toml only"
    assert set(conda) - set(pip) == set(), "in environment.yml only"
    assert {n: b for n, b in pip.items() if conda[n] != b} == {}, "lower bounds differ"


def test_core_stack_is_declared_with_current_lower_bounds() -> None:
    pip = pyproject_requirements()
    for name in ("tensorflow", "keras", "nibabel", "scipy", "matplotlib", "papermill", "nbval", "scikit-learn", "tqdm"):
        assert name in pip, name
    assert pip["tensorflow"] == "2.21" and pip["keras"].startswith("3.")


def test_parser_rejects_pins_it_cannot_compare() -> None:
    with pytest.raises(ValueError, match="name>=version"):
        _name_and_bound("numpy==1.26")


def test_python_lower_bound_matches() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.10"
    assert "python>=3.10" in (ROOT / "environment.yml").read_text()
    assert sys.version_info >= (3, 10)
