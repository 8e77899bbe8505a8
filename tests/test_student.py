"""ctutils.student: student copies without solutions."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell

from nbfake import code, stdout, write_nb
from ctutils.student import StudentCopyError, make_student_copies, strip_solutions


def test_strip_solutions_keeps_indentation_and_the_rest() -> None:
    source = (
        "def f(x):\n"
        "    '''Doc.'''\n"
        "    ### BEGIN SOLUTION\n"
        "    y = x + 1\n"
        "    return y\n"
        "    ### END SOLUTION\n"
        "\n"
        "### BEGIN SOLUTION\n"
        "answer = 42\n"
        "### END SOLUTION\n"
        "print('after')"
    )
    new, count = strip_solutions(source)
    assert count == 2
    message = 'raise NotImplementedError("Exercise: write your code here, then run the check cell below")'
    assert new == (
        "def f(x):\n"
        "    '''Doc.'''\n"
        "    # YOUR CODE HERE\n"
        f"    {message}\n"
        "\n"
        "# YOUR CODE HERE\n"
        f"{message}\n"
        "print('after')"
    )


def test_strip_solutions_in_markdown() -> None:
    new, count = strip_solutions("Answer:\n### BEGIN SOLUTION\nIt is 42.\n### END SOLUTION\n", markdown=True)
    assert (new, count) == ("Answer:\nYOUR ANSWER HERE\n", 1)


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ("a = 1\n### BEGIN SOLUTION\nb = 2\n", r"nb.ipynb, cell 4: line 2: '### BEGIN SOLUTION' has no '### END SOLUTION'"),
        ("a = 1\n### END SOLUTION\n", r"nb.ipynb, cell 4: line 2: '### END SOLUTION' without a '### BEGIN SOLUTION'"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n",
         r"nb.ipynb, cell 4: line 2: '### BEGIN SOLUTION' inside the block opened at line 1"),
    ],
)
def test_unbalanced_markers(source: str, match: str) -> None:
    with pytest.raises(StudentCopyError, match=match):
        strip_solutions(source, where="nb.ipynb, cell 4")


def _chapter_with_exercises(path: Path) -> Path:
    cells = [
        new_markdown_cell("# 00 · A chapter\nSome *text*."),
        code("import math\nprint(math.pi)", outputs=[stdout("3.14\n")], count=1, tags=["setup"]),
        code("profile = 'quick'", tags=["parameters"], count=2),
        new_markdown_cell("### Exercise 1\nWrite `double`."),
        code("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x  # SECRET-1\n    ### END SOLUTION",
             outputs=[stdout("defined\n")], count=3),
        code("exercises.check_double(double);", outputs=[stdout("✅ Correct: doubles\n")], count=4),
        new_markdown_cell("Why? \n### BEGIN SOLUTION\nBecause SECRET-2.\n### END SOLUTION"),
        code("print('kept')", outputs=[stdout("kept\n")], count=5),
        code("ok = my_check()", outputs=[stdout("✅ tagged\n")], count=6, tags=["check"]),
    ]
    return write_nb(path, cells)


def test_student_copies(tmp_path: Path) -> None:
    source = tmp_path / "notebooks"
    source.mkdir()
    _chapter_with_exercises(source / "00_a.ipynb")
    write_nb(source / "01_b.ipynb", [code("x = 1", outputs=[stdout("x\n")], count=1)])
    (source / "scratch.ipynb").write_text("not a chapter")
    written = make_student_copies(tmp_path / "student", source=source)
    assert written == [tmp_path / "student" / "00_a.ipynb", tmp_path / "student" / "01_b.ipynb"]

    original = nbformat.read(source / "00_a.ipynb", as_version=4)
    student = nbformat.read(written[0], as_version=4)
    raw = written[0].read_text()
    assert "SECRET" not in raw and "BEGIN SOLUTION" not in raw and "END SOLUTION" not in raw
    assert student.cells[4].source == (
        "def double(x):\n    # YOUR CODE HERE\n"
        '    raise NotImplementedError("Exercise: write your code here, then run the check cell below")\n'
    )
    assert student.cells[6].source == "Why? \nYOUR ANSWER HERE\n"
    for index in (4, 5, 8):  # solution cell and check cells: outputs cleared
        assert student.cells[index].outputs == [] and student.cells[index].execution_count is None
    for index in (0, 1, 2, 3, 7):  # everything else: identical
        assert json.dumps(student.cells[index], sort_keys=True) == json.dumps(original.cells[index], sort_keys=True)
    assert student.metadata == original.metadata
    assert written[1].read_text() == (source / "01_b.ipynb").read_text()


def test_student_copies_refuse_unbalanced_markers_and_write_nothing(tmp_path: Path) -> None:
    source = tmp_path / "notebooks"
    source.mkdir()
    _chapter_with_exercises(source / "00_a.ipynb")
    write_nb(source / "01_b.ipynb", [new_markdown_cell("# B"), code("x = 1"), code("### BEGIN SOLUTION\ny = 2")])
    with pytest.raises(StudentCopyError, match=r"01_b.ipynb, cell 3: line 1: '### BEGIN SOLUTION' has no"):
        make_student_copies(tmp_path / "student", source=source)
    assert not (tmp_path / "student").exists()


def test_student_copies_never_overwrite_the_solutions(tmp_path: Path) -> None:
    _chapter_with_exercises(tmp_path / "00_a.ipynb")
    with pytest.raises(ValueError, match="would overwrite the solutions"):
        make_student_copies(tmp_path, source=tmp_path)


# ----------------------------------------------------------------------------- the runner
