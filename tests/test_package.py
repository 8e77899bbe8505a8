"""Package-wide rules of ctutils (STYLE.md, "Helpers" 9): no private name imported from another module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ctutils"
#: The one-line form; the AST walk below also catches names inside a parenthesised, multi-line import.
PRIVATE_IMPORT = re.compile(r"from ctutils\.\w+ import .*\b_[a-z]")


def _private_imports(path: Path, *, root: Path = PACKAGE.parent) -> list[str]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    found = {n: line for n, line in enumerate(lines, start=1) if PRIVATE_IMPORT.search(line)}
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ctutils"):
            if any(alias.name.startswith("_") and not alias.name.startswith("__") for alias in node.names):
                found.setdefault(node.lineno, lines[node.lineno - 1])
    rel = path.relative_to(root).as_posix()
    return [f"{rel}:{n}: {line.strip()}" for n, line in sorted(found.items())]


def test_no_private_name_imported_across_modules():
    offending = [hit for path in sorted(PACKAGE.rglob("*.py")) for hit in _private_imports(path)]
    assert not offending, "private names imported from another ctutils module (make them public or move them):\n" + "\n".join(offending)


def test_the_check_finds_a_private_import(tmp_path):
    module = tmp_path / "ctutils" / "bad.py"
    module.parent.mkdir()
    module.write_text("from ctutils.evaluation import (\n    binary_metrics,\n    _hidden,\n)\n")
    assert _private_imports(module, root=tmp_path) == ["ctutils/bad.py:1: from ctutils.evaluation import ("]
    module.write_text("from ctutils.training import RECIPES, _compile\nfrom ctutils.course import __doc__\n")
    assert _private_imports(module, root=tmp_path) == ["ctutils/bad.py:1: from ctutils.training import RECIPES, _compile"]
