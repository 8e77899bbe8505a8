"""Classrooms with nbgrader: the chapters' nbgrader metadata and a ready nbgrader course folder.

There are two ways to teach with the course (README, "Teaching with it"):

* student copies without grading: ``python -m ctutils course student --out DIR``
  (:func:`ctutils.student.make_student_copies`);
* nbgrader with autograding: ``python -m ctutils course nbgrader --out DIR`` (:func:`make_nbgrader_course`)
  writes a course folder; ``nbgrader generate_assignment``, ``collect`` and ``autograde`` run in it.

nbgrader needs metadata on the cells. It is never typed by hand: :func:`nbgrader_metadata` derives
it from the cells, and ``python -m ctutils course nbgrader-tag`` (:func:`tag_chapters`) writes it
into the committed chapters; rerun it whenever an exercise is added, moved or removed (a test fails
until then, naming the notebook and the cell: :func:`nbgrader_problems`). The rules, for chapter NN:

=====================================  ==========================================================
cell                                   nbgrader metadata
=====================================  ==========================================================
holds ``### BEGIN SOLUTION``            solution cell, ``grade_id`` ``chNN_<function it defines>``
                                       (a markdown answer is also graded by hand: nbgrader
                                       requires it)
calls ``exercises.check_…(…)``          graded and locked, 1 point (points set in the cell's
(or is tagged ``check``)               metadata are kept), ``grade_id`` ``chNN_<check's name>``
tagged ``parameters``                   locked, ``chNN_parameters``: students cannot change the profile
the first ``course.course_config(``     locked, ``chNN_config``
cell after the parameters
the code cells before those            locked, ``chNN_setup_1``, ``chNN_setup_2``…
(Colab set-up, imports)
any other cell                         none (stale nbgrader metadata is removed)
=====================================  ==========================================================

The same command puts :data:`PATH_NOTE` into each parameters cell: one comment line with the rule of
:func:`ctutils.course.course_config` for folders (a default is relative to the repository, a folder
passed as a parameter to the current folder).

Under nbgrader a failed check raises after printing its hint (:mod:`ctutils.exercises`), so a blank
or wrong answer loses the points of its check cell. Chapters run by nbgrader find the course's data,
cache and trained model through ``CT3D_COURSE_ROOT`` (:data:`ctutils.course.ROOT_ENV`), which the
course folder's ``nbgrader_config.py`` sets.

This module imports nbformat only when it reads or writes notebooks, and never nbgrader.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ctutils import course, student
from ctutils.atomic import write_notebook

__all__ = [
    "CELL_TIMEOUT_S",
    "COURSE_ID",
    "NbgraderMetadataError",
    "PATH_NOTE",
    "SCHEMA_VERSION",
    "grade_id_prefix",
    "make_nbgrader_course",
    "nbgrader_config_text",
    "nbgrader_metadata",
    "nbgrader_problems",
    "tag_chapters",
    "with_path_note",
]

#: nbgrader's cell metadata schema (nbgrader 0.9).
SCHEMA_VERSION = 3
#: The ``course_id`` written into ``nbgrader_config.py`` (``--course-id`` changes it).
COURSE_ID = "ct3d"
#: nbgrader's per-cell timeout in the course folder: chapter 05 trains the quick profile in one cell,
#: a few minutes on 2 CPU cores (nbgrader's default of 30 s stops it).
CELL_TIMEOUT_S = 1800
#: The first line of every parameters cell that has folder parameters (:func:`with_path_note`).
PATH_NOTE = "# Folders: None = the default in the repository; a relative path is taken from the folder the notebook runs in"
TAG_COMMAND = "python -m ctutils course nbgrader-tag"

_NOTE_PREFIX = PATH_NOTE.split(":", 1)[0] + ":"
_FOLDER_PARAMETER = re.compile(r"^(data_dir|cache_dir|run_dir)\s*=", re.M)
_CHECK_NAME = re.compile(r"\bexercises\.(check_\w+)\s*\(")
_CHECK_BY_NAME = re.compile(r"""\bexercises\.check\(\s*["'](?:[\w-]+/)?(\w+)["']""")
_DEF = re.compile(r"^[ \t]*def[ \t]+(\w+)[ \t]*\(", re.M)
_CONFIG_CALL = re.compile(r"\bcourse_config\(")


class NbgraderMetadataError(ValueError):
    """A cell that cannot be given nbgrader metadata (e.g. a solution inside a check cell); names notebook and cell."""


def grade_id_prefix(chapter: str) -> str:
    """``"chNN"`` of a chapter's file name or stem (``"05_training.ipynb"`` → ``"ch05"``).

    Examples
    --------
    >>> grade_id_prefix("05_training.ipynb"), grade_id_prefix("00_setup")
    ('ch05', 'ch00')
    """
    match = re.match(r"(\d\d)_", Path(chapter).name)
    if not match:
        raise ValueError(f"{chapter}: not a chapter name (NN_topic.ipynb)")
    return f"ch{match.group(1)}"


def with_path_note(source: str) -> str:
    """A parameters cell's source with :data:`PATH_NOTE` as its first line (an older note replaced).

    Cells without a ``data_dir``, ``cache_dir`` or ``run_dir`` parameter are returned unchanged.

    Examples
    --------
    >>> text = with_path_note('profile = "quick"\\nrun_dir = None')
    >>> text.splitlines()[0] == PATH_NOTE and with_path_note(text) == text
    True
    """
    if not _FOLDER_PARAMETER.search(source):
        return source
    lines = [line for line in source.split("\n") if not line.startswith(_NOTE_PREFIX)]
    return "\n".join([PATH_NOTE, *lines])


def _has_solution(cell: Any) -> bool:
    return cell.cell_type in ("code", "markdown") and any(
        line.strip().startswith(student.BEGIN_SOLUTION) for line in cell.source.splitlines()
    )


def _is_parameters(cell: Any) -> bool:
    return cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", [])


def _solution_name(cell: Any) -> str:
    """The function whose body holds the first solution block, else ``answer`` / ``solution``."""
    head = cell.source.split(student.BEGIN_SOLUTION, 1)[0]
    names = _DEF.findall(head)
    if names:
        return names[-1]
    return "answer" if cell.cell_type == "markdown" else "solution"


def _check_name(cell: Any) -> str:
    for pattern, prefix in ((_CHECK_NAME, ""), (_CHECK_BY_NAME, "check_")):
        match = pattern.search(cell.source)
        if match:
            return prefix + match.group(1)
    return "check"


def _roles(nb: Any, where: str) -> list[tuple[str, str] | None]:
    """Per cell: ``(role, name)`` with role solution, check, locked; None for the other cells."""
    roles: list[tuple[str, str] | None] = [None] * len(nb.cells)
    for index, cell in enumerate(nb.cells):
        if _has_solution(cell) and student.is_check_cell(cell):
            raise NbgraderMetadataError(
                f"{where}, cell {index + 1}: a check cell holds a solution block; put the solution in the cell above it")
        if _has_solution(cell):
            roles[index] = ("solution", _solution_name(cell))
        elif student.is_check_cell(cell):
            roles[index] = ("check", _check_name(cell))
    params = next((i for i, c in enumerate(nb.cells) if _is_parameters(c)), None)
    if params is None:
        return roles
    config = next((i for i in range(params + 1, len(nb.cells))
                   if nb.cells[i].cell_type == "code" and _CONFIG_CALL.search(nb.cells[i].source)), None)
    setup = 0
    for index in range(params if config is None else config + 1):
        cell = nb.cells[index]
        if cell.cell_type != "code" or roles[index] is not None:
            continue
        if index == params:
            roles[index] = ("locked", "parameters")
        elif index == config:
            roles[index] = ("locked", "config")
        else:
            setup += 1
            roles[index] = ("locked", f"setup_{setup}")
    if roles[params] is None:
        roles[params] = ("locked", "parameters")
    return roles


def _points(cell: Any) -> float | int:
    points = cell.get("metadata", {}).get("nbgrader", {}).get("points")
    valid = isinstance(points, (int, float)) and not isinstance(points, bool) and points > 0
    return points if valid else 1


def nbgrader_metadata(nb: Any, *, chapter: str) -> Any:
    """A copy of a chapter with nbgrader metadata derived from its cells (the table in the module docstring).

    Deterministic and idempotent: the same cells give the same metadata, and applying it twice
    changes nothing. Grade ids are ``chNN_<name>``, made unique within the chapter with ``_2``,
    ``_3``… Also puts :data:`PATH_NOTE` into the parameters cell (:func:`with_path_note`).

    Parameters
    ----------
    nb : nbformat.NotebookNode
        The chapter (left unchanged).
    chapter : str
        Its file name or stem, e.g. ``"05_training"`` (gives the ``chNN`` prefix).

    Returns
    -------
    nbformat.NotebookNode

    Raises
    ------
    NbgraderMetadataError
        A check cell that also holds a solution block (the message names the chapter and the cell).
    """
    prefix = grade_id_prefix(chapter)
    nb = copy.deepcopy(nb)
    used: set[str] = set()
    for cell, role in zip(nb.cells, _roles(nb, Path(chapter).name)):
        if role is None:
            cell.metadata.pop("nbgrader", None)
            continue
        kind, name = role
        grade_id, number = f"{prefix}_{name}", 1
        while grade_id in used:
            number += 1
            grade_id = f"{prefix}_{name}_{number}"
        used.add(grade_id)
        graded = kind == "check" or (kind == "solution" and cell.cell_type == "markdown")
        meta: dict[str, Any] = {"grade": graded, "grade_id": grade_id, "locked": kind != "solution",
                                "schema_version": SCHEMA_VERSION, "solution": kind == "solution", "task": False}
        if graded:
            meta["points"] = _points(cell)
        cell.metadata["nbgrader"] = meta
        if _is_parameters(cell):
            cell.source = with_path_note(cell.source)
    return nb


def nbgrader_problems(nb: Any, *, chapter: str) -> list[str]:
    """What is missing or wrong in a chapter's nbgrader metadata; ``[]`` when it is complete.

    Every ``### BEGIN SOLUTION`` cell must be a solution cell, every check cell a graded, locked
    cell with points, the parameters cell locked; grade ids present and unique; no solution or
    graded cell left where the exercise has gone. Each problem names the chapter and the cell
    (1-based, markdown cells counted) and how to fix it.
    """
    name = Path(chapter).name
    problems: list[str] = []
    seen: dict[str, int] = {}
    for number, cell in enumerate(nb.cells, start=1):
        meta = cell.get("metadata", {}).get("nbgrader")
        where = f"{name}, cell {number}"
        if _has_solution(cell) and not (meta and meta.get("solution")):
            problems.append(f"{where}: holds '{student.BEGIN_SOLUTION}' but is not an nbgrader solution cell")
        if student.is_check_cell(cell) and not (meta and meta.get("grade") and meta.get("locked")
                                               and _points(cell) == meta.get("points")):
            problems.append(f"{where}: a check cell that is not a graded, locked nbgrader cell with points")
        if _is_parameters(cell) and not (meta and meta.get("locked")):
            problems.append(f"{where}: the parameters cell is not locked")
        if not meta:
            continue
        if meta.get("schema_version") != SCHEMA_VERSION:
            problems.append(f"{where}: nbgrader schema_version {meta.get('schema_version')!r}, expected {SCHEMA_VERSION}")
        if meta.get("solution") and not _has_solution(cell):
            problems.append(f"{where}: an nbgrader solution cell without '{student.BEGIN_SOLUTION}' (a removed exercise?)")
        if meta.get("grade") and not (student.is_check_cell(cell) or _has_solution(cell)):
            problems.append(f"{where}: a graded nbgrader cell that is no check cell (a removed exercise?)")
        grade_id = meta.get("grade_id")
        if not grade_id:
            problems.append(f"{where}: an nbgrader cell without a grade_id")
        elif grade_id in seen:
            problems.append(f"{where}: grade_id {grade_id!r} already used by cell {seen[grade_id]}")
        else:
            seen[grade_id] = number
    return [f"{p}; run `{TAG_COMMAND}`" for p in problems]


def tag_chapters(source: str | os.PathLike[str] | None = None, *, check: bool = False) -> list[Path]:
    """Write :func:`nbgrader_metadata` into every chapter of a notebooks folder; idempotent.

    Parameters
    ----------
    source : path-like, optional
        The notebooks folder (default :func:`ctutils.course.notebooks_dir`).
    check : bool
        Write nothing; only report which chapters would change.

    Returns
    -------
    list of Path
        The chapters whose metadata (or parameters note) changed, or would change with ``check``.
    """
    import nbformat

    changed = []
    for path in course.list_chapters(source):
        nb = nbformat.read(path, as_version=4)
        tagged = nbgrader_metadata(nb, chapter=path.name)
        if tagged != nb:
            changed.append(path)
            if not check:
                write_notebook(tagged, path)
    return changed


def nbgrader_config_text(*, root: str | os.PathLike[str], course_id: str = COURSE_ID,
                         kernel: str = "python3", timeout_s: int = CELL_TIMEOUT_S) -> str:
    """The ``nbgrader_config.py`` of a course folder (nbgrader 0.9 option names).

    Parameters
    ----------
    root : path-like
        The course repository, exported as ``CT3D_COURSE_ROOT`` for the chapters' kernels.
    course_id : str
        ``CourseDirectory.course_id``.
    kernel : str
        The Jupyter kernel that runs the chapters (``Execute.kernel_name``; the course's
        environment provides ``python3``).
    timeout_s : int
        Seconds one cell may run (``Execute.timeout``).
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", course_id):
        raise ValueError(f"course id {course_id!r}: use letters, digits, '.', '_' and '-' only")
    if timeout_s < 1:
        raise ValueError(f"cell timeout must be at least 1 s, got {timeout_s}")
    stub = f"# YOUR CODE HERE\n{student.STUB_RAISE}"
    return f'''\
# nbgrader configuration of the course "3D CNN classification of chest CT scans", written by
# `python -m ctutils course nbgrader` (README.md in this folder). Run the nbgrader commands here.
import os

c = get_config()  # noqa: F821 - nbgrader defines get_config when it reads this file

# The chapters run in autograded/<student>/<assignment>/; this variable tells them where the course's
# repository is, so that they use its data/, data/cache/ and runs/ instead of building them again.
os.environ.setdefault("CT3D_COURSE_ROOT", {str(Path(root).resolve())!r})

c.CourseDirectory.course_id = {course_id!r}

# The course's Jupyter kernel, and a cell timeout long enough for chapter 05's training (quick profile).
c.Execute.kernel_name = {kernel!r}
c.Execute.timeout = {int(timeout_s)}

# The same stub as the course's student copies (python -m ctutils course student).
c.ClearSolutions.code_stub = {{"python": {stub!r}}}

# Released chapters keep their figures and printouts, as the student copies do: the source notebooks
# hold no output of a solution or check cell. Set True to release notebooks without any output.
c.ClearOutput.enabled = False
'''


README_TEXT = """\
# nbgrader course folder: 3D CNN classification of chest CT scans

Written by `python -m ctutils course nbgrader --out {out}` from the course repository `{root}`.
Run every nbgrader command in this folder, with the course's environment active (nbgrader is in the
course's `classroom` extra: `pip install -e "{root}[notebooks,classroom]"`, or `make setup` there).

```
nbgrader_config.py     course id {course_id}, kernel {kernel}, cell timeout {timeout_s} s, CT3D_COURSE_ROOT
source/NN_topic/       one assignment per chapter: the chapter with its solutions and nbgrader metadata
```

Each exercise is a solution cell (`### BEGIN SOLUTION` … `### END SOLUTION`) followed by a locked check
cell worth 1 point; the set-up and parameters cells are locked too. Under nbgrader a failed check prints
its hint and raises, so a blank or wrong answer loses its points and the student sees why.

## Release

```bash
nbgrader generate_assignment 00_setup      # release/00_setup/: solutions replaced by stubs
nbgrader validate source/00_setup/00_setup.ipynb   # optional: the solutions pass every check
```

Give students `release/<chapter>/` (with JupyterHub: `nbgrader release_assignment 00_setup`; without,
copy the folder to them). The released chapters keep their figures; students run the cells as usual, in
an environment with the course installed. Outside a checkout of the course a chapter builds the data it
needs in its own folder; to share a checkout's instead, set `CT3D_COURSE_ROOT` to it in the students'
environment (e.g. JupyterHub's `c.Spawner.environment`).

## Collect

With JupyterHub's exchange: `nbgrader collect 00_setup`. Without it, put each student's notebook at
`submitted/<student id>/00_setup/00_setup.ipynb` (or `nbgrader zip_collect 00_setup` from
`downloaded/00_setup/archive/`).

## Autograde

```bash
nbgrader autograde 00_setup                # runs every submission in autograded/<student>/00_setup/
nbgrader generate_feedback 00_setup        # feedback/<student>/00_setup/00_setup.html: points and hints
nbgrader export                            # grades.csv
```

Autograding runs each chapter from top to bottom: chapter 05 trains the quick profile's model, a few
minutes on 2 CPU cores. The chapters use the data, cache and runs of the repository named in
`nbgrader_config.py`; after moving it, run `python -m ctutils course nbgrader --out {out} --force` again.
After the chapters change, run `python -m ctutils course nbgrader --out {out}` again to refresh `source/`.
"""


def make_nbgrader_course(
    out: str | os.PathLike[str],
    *,
    source: str | os.PathLike[str] | None = None,
    chapters: Sequence[str] | None = None,
    course_id: str = COURSE_ID,
    kernel: str = "python3",
    timeout_s: int = CELL_TIMEOUT_S,
    force: bool = False,
) -> list[Path]:
    """Write an nbgrader course folder: ``nbgrader_config.py``, ``README.md`` and ``source/<chapter>/``.

    Each chapter goes to ``source/NN_topic/NN_topic.ipynb`` with its nbgrader metadata
    (:func:`nbgrader_metadata`) and without the outputs of its solution and check cells (the
    released copies keep the others, figures included). Rerunning it refreshes ``source/`` and
    leaves nbgrader's own files (gradebook, release/, submitted/…) alone.

    Parameters
    ----------
    out : path-like
        The course folder (created).
    source : path-like, optional
        The notebooks folder (default :func:`ctutils.course.notebooks_dir`).
    chapters : sequence of str, optional
        Only these chapters, by number or name (default all).
    course_id, kernel, timeout_s
        See :func:`nbgrader_config_text`.
    force : bool
        Rewrite ``nbgrader_config.py`` and ``README.md`` when they exist (default: keep them, they
        may hold the instructor's changes).

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    ValueError
        ``out`` is the notebooks folder; a bad course id or timeout; an unknown chapter.
    NbgraderMetadataError
        A chapter whose cells cannot be given metadata; nothing is written then.
    """
    import nbformat

    folder = (course.notebooks_dir() if source is None else Path(source)).resolve()
    target = Path(out).expanduser().resolve()
    if target == folder:
        raise ValueError(f"{target}: that is the notebooks folder; choose another --out")
    root = course.find_root(folder)
    config = nbgrader_config_text(root=root, course_id=course_id, kernel=kernel, timeout_s=timeout_s)
    copies = []
    for path in course.select_chapters(course.list_chapters(folder), chapters):
        nb = nbgrader_metadata(nbformat.read(path, as_version=4), chapter=path.name)
        for cell in nb.cells:
            if cell.cell_type == "code" and (_has_solution(cell) or student.is_check_cell(cell)):
                cell.outputs, cell.execution_count = [], None
        copies.append((target / "source" / path.stem / path.name, nb))
    written = []
    for destination, nb in copies:
        write_notebook(nb, destination)
        written.append(destination)
    texts = {"nbgrader_config.py": config,
             "README.md": README_TEXT.format(out=target, root=root, course_id=course_id, kernel=kernel,
                                             timeout_s=timeout_s)}
    for name, text in texts.items():
        path = target / name
        if force or not path.exists():
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written
