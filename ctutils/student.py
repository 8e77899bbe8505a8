"""Student copies of the chapters: every exercise's solution replaced by a stub.

Every exercise's solution sits between nbgrader's markers ``### BEGIN SOLUTION`` and
``### END SOLUTION``; its check cell calls ``exercises.…(…)`` (or is tagged ``check``).
``python -m ctutils course student --out DIR`` (:func:`make_student_copies`) writes the chapters with
each solution replaced by ``raise NotImplementedError`` (:func:`strip_solutions`) and the answers'
outputs cleared. :mod:`ctutils.classroom` uses the same markers and stub for nbgrader releases.

This module imports nbformat only when it reads notebooks.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ctutils.atomic import write_notebook
from ctutils.course import list_chapters, notebooks_dir

__all__ = [
    "BEGIN_SOLUTION",
    "END_SOLUTION",
    "STUB_RAISE",
    "StudentCopyError",
    "is_check_cell",
    "make_student_copies",
    "strip_solutions",
]

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
#: What replaces a solution block in a code cell (student copies and nbgrader releases), after ``# YOUR CODE HERE``.
STUB_RAISE = 'raise NotImplementedError("Exercise: write your code here, then run the check cell below")'
_CHECK_CALL = re.compile(r"\bexercises\.\w+\(")


class StudentCopyError(ValueError):
    """Unbalanced ``### BEGIN SOLUTION`` / ``### END SOLUTION`` markers; names the notebook and cell."""


def strip_solutions(source: str, *, where: str = "cell", markdown: bool = False) -> tuple[str, int]:
    """Replace every ``### BEGIN SOLUTION`` … ``### END SOLUTION`` block of a cell by a stub.

    A code block becomes ``# YOUR CODE HERE`` and ``raise NotImplementedError(...)`` at the
    indentation of the ``### BEGIN SOLUTION`` line; a markdown block becomes ``YOUR ANSWER HERE``.

    Parameters
    ----------
    source : str
        The cell's source.
    where : str
        Names the notebook and cell in error messages.
    markdown : bool
        The cell is a markdown cell.

    Returns
    -------
    (str, int)
        The new source and the number of blocks replaced.

    Raises
    ------
    StudentCopyError
        A BEGIN inside a block, an END without a BEGIN, or a BEGIN without an END.

    Examples
    --------
    >>> text, n = strip_solutions("def f():\\n    ### BEGIN SOLUTION\\n    return 1\\n    ### END SOLUTION\\n")
    >>> print(text)
    def f():
        # YOUR CODE HERE
        raise NotImplementedError("Exercise: write your code here, then run the check cell below")
    <BLANKLINE>
    """
    out: list[str] = []
    begin_line: int | None = None
    count = 0
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        stripped = line.strip()
        if stripped.startswith(BEGIN_SOLUTION):
            if begin_line is not None:
                raise StudentCopyError(
                    f"{where}: line {number}: '{BEGIN_SOLUTION}' inside the block opened at line "
                    f"{begin_line} (missing '{END_SOLUTION}')"
                )
            begin_line, count = number, count + 1
            indent = line[: len(line) - len(line.lstrip())]
            if markdown:
                out.append(f"{indent}YOUR ANSWER HERE\n")
            else:
                out.append(f"{indent}# YOUR CODE HERE\n")
                out.append(f"{indent}{STUB_RAISE}\n")
        elif stripped.startswith(END_SOLUTION):
            if begin_line is None:
                raise StudentCopyError(f"{where}: line {number}: '{END_SOLUTION}' without a '{BEGIN_SOLUTION}' before it")
            begin_line = None
        elif begin_line is None:
            out.append(line)
    if begin_line is not None:
        raise StudentCopyError(f"{where}: line {begin_line}: '{BEGIN_SOLUTION}' has no '{END_SOLUTION}'")
    return "".join(out), count


def is_check_cell(cell: Any) -> bool:
    """True for a code cell that calls ``exercises.…(…)`` or is tagged ``check``: an exercise's check cell."""
    tags = cell.get("metadata", {}).get("tags", [])
    return cell.cell_type == "code" and ("check" in tags or bool(_CHECK_CALL.search(cell.source)))


def make_student_copies(out: str | os.PathLike[str], *, source: str | os.PathLike[str] | None = None) -> list[Path]:
    """Write a student copy of every chapter: solutions replaced by stubs, exercise outputs cleared.

    In each chapter, every ``### BEGIN SOLUTION`` … ``### END SOLUTION`` block (nbgrader's
    markers) becomes ``# YOUR CODE HERE`` / ``raise NotImplementedError(...)`` (see
    :func:`strip_solutions`); the outputs of the cells that held a solution and of the check cells
    (cells calling ``exercises.…(…)`` or tagged ``check``) are cleared, since they show the
    answers; every other cell is left exactly as it is.

    Parameters
    ----------
    out : path-like
        Folder for the copies (created); must not be the source folder.
    source : path-like, optional
        The notebooks folder (default :func:`notebooks_dir`).

    Returns
    -------
    list of Path
        The student notebooks, in chapter order.

    Raises
    ------
    StudentCopyError
        Unbalanced markers (the message names the notebook, the cell and the line); nothing is
        written then.
    ValueError
        ``out`` is the source folder.
    """
    import nbformat

    folder = (notebooks_dir() if source is None else Path(source)).resolve()
    target = Path(out).resolve()
    if target == folder:
        raise ValueError(f"{target}: the student copies would overwrite the solutions; choose another --out")
    copies = []
    for path in list_chapters(folder):
        nb = nbformat.read(path, as_version=4)
        for position, cell in enumerate(nb.cells, start=1):
            if cell.cell_type not in ("code", "markdown"):
                continue
            new, count = strip_solutions(cell.source, where=f"{path.name}, cell {position}",
                                         markdown=cell.cell_type == "markdown")
            if count:
                cell.source = new
            if cell.cell_type == "code" and (count or is_check_cell(cell)):
                cell.outputs = []
                cell.execution_count = None
        copies.append((target / path.name, nb))
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for destination, nb in copies:
        write_notebook(nb, destination)
        written.append(destination)
    return written
