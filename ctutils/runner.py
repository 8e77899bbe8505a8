"""The batch runner: every chapter executed with papermill, then a summary of the run.

``python -m ctutils course run --profile quick --dataset synthetic`` (:func:`run_course`) runs the
chapters in order, each in a fresh kernel with the parameters ``profile``, ``dataset`` and
``run_dir`` injected, and writes into the run folder OUT::

    OUT/notebooks/NN_topic.ipynb      the executed chapters
    OUT/notebooks/NN_topic.log        what each kernel wrote to its own stderr (TensorFlow's C++ logs…)
    OUT/summary.md                    per chapter: status, time, key metrics (metrics.json), figures

``--write-back`` copies the executed notebooks over ``notebooks/``: how the committed outputs are
regenerated. The first failing chapter stops the run with a :class:`CourseError` that names the
chapter and the cell. Profiles, datasets and folders are :mod:`ctutils.course`'s.

This module imports papermill and nbformat only when it runs the chapters.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctutils.atomic import atomic_path, write_json, write_notebook
from ctutils.course import course_config, find_root, list_chapters, notebooks_dir, read_metrics, select_chapters
from ctutils.machine import available_cores
from ctutils.runs import FIGURES_DIR, METRICS_FILE

__all__ = ["SUMMARY_FILE", "ChapterResult", "CourseError", "run_course"]

SUMMARY_FILE = "summary.md"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class CourseError(RuntimeError):
    """A chapter failed in :func:`run_course`; the message names the chapter file and the cell.

    Attributes
    ----------
    chapter : str
        The notebook's file name, e.g. ``"03_augmentation.ipynb"``.
    cell : int or None
        1-based position of the failing cell in the chapter (markdown cells included).
    executed : Path
        The executed notebook, with the outputs up to the error and the full traceback.
    """

    def __init__(self, message: str, *, chapter: str, cell: int | None, executed: Path) -> None:
        super().__init__(message)
        self.chapter = chapter
        self.cell = cell
        self.executed = executed


@dataclass
class ChapterResult:
    """One chapter of a :func:`run_course` run (``status``: "passed", "failed" or "not run")."""

    name: str
    status: str
    seconds: float | None = None
    message: str = ""


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Send this process's file descriptor 2, and so the kernel's stderr, to a log file.

    The kernel inherits it: TensorFlow's C++ logs and ipykernel's warnings land in the log
    instead of the terminal (the notebook keeps everything the cells print).
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "ab") as log:
            os.dup2(log.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)


@contextlib.contextmanager
def _kernel_environment() -> Iterator[None]:
    """Environment the chapters' kernels inherit: inline figures, no widgets, quiet TensorFlow and debugger."""
    from ctutils.frontend import WIDGETS_ENV

    wanted = {
        # a test session's MPLBACKEND=Agg would otherwise reach the kernel and hide every figure
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        # nothing renders widgets here: static figures, no progress bars frozen at 0 % (ctutils.frontend)
        WIDGETS_ENV: "0",
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    saved = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _cell_position(nb: Any, source: str) -> int | None:
    for position, cell in enumerate(nb.cells, start=1):
        if cell.cell_type == "code" and cell.source == source:
            return position
    return None


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip() and not line.strip().startswith("#"):
            return line.strip()[:100]
    return text.strip().splitlines()[0][:100] if text.strip() else ""


def _failure(path: Path, error: Exception, executed: Path, log: Path) -> CourseError:
    """One clear message for a chapter that failed."""
    import nbformat
    from papermill.exceptions import PapermillExecutionError

    if isinstance(error, PapermillExecutionError):
        position = _cell_position(nbformat.read(path, as_version=4), error.source)
        where = f"cell {position}" if position is not None else "the injected parameters cell"
        evalue = _ANSI.sub("", str(error.evalue)).strip()
        message = (
            f"chapter {path.name}, {where} (execution count {error.exec_count}): {error.ename}: {evalue}\n"
            f"  the cell: {_first_line(error.source)}\n"
            f"  executed notebook with the full traceback: {executed}"
        )
        return CourseError(message, chapter=path.name, cell=position, executed=executed)
    message = (
        f"chapter {path.name}: the notebook could not be run ({type(error).__name__}: {error})\n"
        f"  executed notebook so far: {executed}; the kernel's own messages: {log}"
    )
    return CourseError(message, chapter=path.name, cell=None, executed=executed)


def _forget_chapter(out: Path, chapter: str) -> None:
    """Remove a chapter's metrics and figures of an earlier run before it runs again."""
    path = out / METRICS_FILE
    data = read_metrics(out)
    if chapter in data:
        del data[chapter]
        write_json(path, data)
    for figure in (out / FIGURES_DIR).glob(f"{chapter}-*.png"):
        figure.unlink()


def _clean_for_commit(nb: Any) -> Any:
    """An executed notebook without papermill's injected cell and run metadata (for write-back)."""
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    nb.metadata.pop("papermill", None)
    count = 0
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.metadata.get("tags") == []:
            del cell.metadata["tags"]
        if cell.cell_type == "code" and cell.execution_count is not None:
            count += 1  # renumber: the removed injected cell leaves no gap
            cell.execution_count = count
            for output in cell.outputs:
                if output.output_type == "execute_result":
                    output.execution_count = count
    return nb


def _format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {seconds % 60:04.1f} s"


def _format_metric(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _write_summary(out: Path, results: list[ChapterResult], *, profile: str, dataset: str,
                   total_s: float, started: str) -> Path:
    metrics = read_metrics(out)
    passed = sum(r.status == "passed" for r in results)
    status = "all chapters passed" if passed == len(results) else f"{passed} of {len(results)} chapters passed"
    lines = [
        f"# Course run: profile {profile}, dataset {dataset}",
        "",
        f"Started {started}; {status} in {_format_seconds(total_s)} "
        f"(Python {sys.version.split()[0]}, {available_cores()} CPU cores).",
        "",
        f"Command: `python -m ctutils course run --profile {profile} --dataset {dataset} --out {out}`",
        "",
    ]
    if dataset == "synthetic":
        lines += ["The data are computer-generated phantoms: these numbers say nothing about patients.", ""]
    lines += ["| Chapter | Status | Time | Key metrics |", "|---|---|---|---|"]
    for r in results:
        link = f"[{r.name}](notebooks/{r.name}.ipynb)" if r.status != "not run" else r.name
        icon = {"passed": "✅ passed", "failed": "❌ failed", "not run": "⏭ not run"}[r.status]
        values = ", ".join(f"{k} = {_format_metric(v)}" for k, v in metrics.get(r.name, {}).items())
        lines.append(f"| {link} | {icon} | {_format_seconds(r.seconds)} | {values} |")
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        lines += ["", "## Error", "", "```", r.message, "```"]
    figures = sorted((out / FIGURES_DIR).glob("*.png"))
    if figures:
        lines += ["", "## Key figures", ""]
        for figure in figures:
            rel = figure.relative_to(out).as_posix()
            lines += [f"**{figure.stem}**", "", f"![{figure.stem}]({rel})", ""]
    path = out / SUMMARY_FILE
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path


def run_course(
    *,
    profile: str = "quick",
    dataset: str = "synthetic",
    out: str | os.PathLike[str] | None = None,
    chapters: Sequence[str] | None = None,
    write_back: bool = False,
    source: str | os.PathLike[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    kernel_name: str = "python3",
    progress: bool = True,
) -> Path:
    """Execute the chapters in order with papermill and write the executed notebooks and a summary.

    Each chapter runs in a fresh kernel in the notebooks folder with the parameters
    ``profile``, ``dataset`` and ``run_dir`` (= ``out``) injected after its cell tagged
    ``parameters``; the data and the cache are the repository's (``data/``), shared by all runs.
    The run stops at the first failing chapter.

    Parameters
    ----------
    profile, dataset : str
        See :data:`PROFILES` and :data:`DATASETS`.
    out : path-like, optional
        The run folder OUT (default ``runs/<profile>-<dataset>`` under the repository root):
        ``OUT/notebooks/NN_topic.ipynb`` (executed), ``OUT/notebooks/NN_topic.log`` (what the
        kernel wrote to its own stderr: TensorFlow's C++ logs…), ``OUT/summary.md``, and what the
        chapters write there (``model.keras``, ``metrics.json``, ``figures/``).
    chapters : sequence of str, optional
        Only these chapters, by number or name (``["00", "01_data"]``); default all.
    write_back : bool
        Copy each executed chapter, without papermill's injected cell and metadata, over its
        source: how the committed outputs are regenerated (quick profile, synthetic data).
    source : path-like, optional
        The notebooks folder (default :func:`notebooks_dir`).
    parameters : mapping, optional
        More parameters to inject into every chapter (e.g. ``{"seed": 1}``).
    kernel_name : str
        Jupyter kernel (the project's environment registers ``python3``).
    progress : bool
        Print one line per chapter (and papermill's cell progress bar on a terminal).

    Returns
    -------
    Path
        OUT.

    Raises
    ------
    CourseError
        The first chapter that fails: the message names the chapter file, the cell (position in
        the chapter and execution count), the error, and the executed notebook with the traceback.
        The summary is written first, with the later chapters marked "not run".
    ValueError, FileNotFoundError
        Unknown profile, dataset or chapter; no notebooks folder.
    """
    import papermill

    course_config(profile, dataset)  # validates the names
    folder = (notebooks_dir() if source is None else Path(source)).resolve()
    selected = select_chapters(list_chapters(folder), chapters)
    root = find_root(folder)
    out_dir = (root / "runs" / f"{profile}-{dataset}" if out is None else Path(out)).resolve()
    executed_dir = out_dir / "notebooks"
    executed_dir.mkdir(parents=True, exist_ok=True)
    params = {"profile": profile, "dataset": dataset, "run_dir": str(out_dir), **dict(parameters or {})}
    results = [ChapterResult(p.stem, "not run") for p in selected]
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    t_start = time.perf_counter()
    say = print if progress else (lambda *a, **k: None)
    say(f"course run: profile {profile}, dataset {dataset}, {len(selected)} chapter(s) → {out_dir}", flush=True)
    for number, (path, result) in enumerate(zip(selected, results), start=1):
        executed = executed_dir / path.name
        _forget_chapter(out_dir, path.stem)
        say(f"[{number}/{len(selected)}] {path.name} …", flush=True)
        t0 = time.perf_counter()
        log = executed.with_suffix(".log")
        log.unlink(missing_ok=True)
        bar: bool | dict[str, Any] = False
        if progress and sys.stdout.isatty():
            bar = {"file": sys.stdout, "desc": path.stem, "leave": False}
        try:
            with _kernel_environment(), _stderr_to(log):
                papermill.execute_notebook(
                    str(path), str(executed), parameters=params, kernel_name=kernel_name,
                    cwd=str(folder), progress_bar=bar, log_output=False,
                    # C-level output (TensorFlow's C++ logs) goes to the log, not into the notebook
                    extra_arguments=["--IPKernelApp.capture_fd_output=False"],
                )
        except Exception as error:  # noqa: BLE001 - every failure becomes one CourseError
            result.status, result.seconds = "failed", time.perf_counter() - t0
            failure = _failure(path, error, executed, log)
            result.message = str(failure)
            _write_summary(out_dir, results, profile=profile, dataset=dataset,
                           total_s=time.perf_counter() - t_start, started=started)
            say(f"[{number}/{len(selected)}] {path.name} failed after {_format_seconds(result.seconds)}", flush=True)
            raise failure from None
        result.status, result.seconds = "passed", time.perf_counter() - t0
        if write_back:
            import nbformat

            write_notebook(_clean_for_commit(nbformat.read(executed, as_version=4)), path)
        say(f"[{number}/{len(selected)}] {path.name} done in {_format_seconds(result.seconds)}", flush=True)
    summary = _write_summary(out_dir, results, profile=profile, dataset=dataset,
                             total_s=time.perf_counter() - t_start, started=started)
    say(f"all {len(selected)} chapter(s) passed in {_format_seconds(time.perf_counter() - t_start)}; "
        f"summary: {summary}", flush=True)
    return out_dir
