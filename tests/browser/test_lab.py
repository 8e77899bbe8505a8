"""Every chapter end to end in JupyterLab, in headless Chromium, as a learner runs it.

For each chapter: open it in a fresh workspace, wait until the kernel is idle, clear the outputs,
Run All Cells, save. Then nothing a learner should not see may be on the page or in the saved
notebook: no error, no stderr (red) output, no broken widget, no TensorFlow log line, no
absolute path, no text progress bar, no announcement pop-up. Chapter 01's slice viewer must
answer its slider; a student copy's check cells must answer with hints, not tracebacks.
Screenshots: runs/browser/.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
import pytest

from ctutils.tfimport import LOG_LINE

#: Seconds a chapter may take to run all its cells (the quick profile takes under 2 minutes on 2 cores).
RUN_TIMEOUT_S = 420
STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
BROKEN_WIDGET = ("Error displaying widget", "Loading widget")
NEWS_PROMPT = "Would you like to get notified about official Jupyter news?"
TEXT_PROGRESS_BAR = re.compile(r"\d+%\|")  # tqdm's text bar; in JupyterLab a bar is a widget
KERNEL_STATUS = ".jp-StatusBar-TextItem[title^='Change kernel']"
SCROLLER = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer"


# ----------------------------------------------------------------------------- driving JupyterLab


def wait_for_idle_kernel(page, *, timeout_s: float = 120, stable_s: float = 1.5) -> None:
    """Wait until the status bar says the kernel is Idle, and keeps saying it (it flickers Busy at start)."""
    status = page.locator(KERNEL_STATUS)
    deadline = time.monotonic() + timeout_s
    idle_since = None
    while True:
        text = status.text_content(timeout=timeout_s * 1000) or ""
        now = time.monotonic()
        if text.endswith("| Idle"):
            idle_since = idle_since or now
            if now - idle_since >= stable_s:
                return
        else:
            idle_since = None
        if now > deadline:
            raise AssertionError(f"the kernel is not idle after {timeout_s:.0f} s (status bar: {text!r})")
        page.wait_for_timeout(250)


def run_menu(page, menu: str, command: str) -> None:
    """Click a command in a menu of the menu bar, as a learner does."""
    page.locator(".lm-MenuBar-item", has_text=menu).first.click()
    page.locator(f".lm-Menu-item[data-command='{command}']").click()


def open_notebook(page, lab, path: str, *, workspace: str) -> None:
    """Open ``path`` in a new workspace (restored tabs would duplicate cells) and wait for an idle kernel."""
    page.goto(lab.url(path, workspace=workspace))
    page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.wait_for(timeout=120_000)
    wait_for_idle_kernel(page)


def prompts(page) -> list[str]:
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt").evaluate_all(
        "cells => cells.map(c => c.textContent.trim())")


def run_all(page, *, timeout_s: float = RUN_TIMEOUT_S) -> float:
    """Clear the outputs, Run All Cells, and wait until no cell is queued or running; returns seconds."""
    run_menu(page, "Edit", "editmenu:clear-all")
    deadline = time.monotonic() + 10
    while any(re.fullmatch(r"\[\d+\]:", p) for p in prompts(page)):  # cleared cells lose their number
        assert time.monotonic() < deadline, "Edit → Clear Outputs of All Cells left numbered cells"
        page.wait_for_timeout(250)
    start = time.monotonic()
    run_menu(page, "Run", "runmenu:run-all")
    done_polls = 0
    while done_polls < 3:  # three quiet polls in a row: nothing queued, something ran, kernel idle
        page.wait_for_timeout(1000)
        now = prompts(page)
        status = page.locator(KERNEL_STATUS).text_content() or ""
        ran = any(re.fullmatch(r"\[\d+\]:", p) for p in now)
        done_polls = done_polls + 1 if ran and not any("*" in p for p in now) and status.endswith("| Idle") else 0
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"Run All did not finish within {timeout_s:.0f} s; prompts: {now}")
    return time.monotonic() - start


def save(page) -> None:
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) [data-command='docmanager:save']").click()
    page.locator(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty").wait_for(state="detached", timeout=60_000)


def screenshots_while_scrolling(page, shots: Path, name: str) -> list[Path]:
    """Scroll the notebook from top to bottom, a screen at a time, saving each screen; returns the files."""
    for old in shots.glob(f"{name}-[0-9][0-9].png"):
        old.unlink()
    scroller = page.locator(SCROLLER)
    scroller.evaluate("el => el.scrollTo(0, 0)")
    files = []
    for number in range(1, 100):
        page.wait_for_timeout(400)  # let the outputs coming into view render
        path = shots / f"{name}-{number:02d}.png"
        page.screenshot(path=str(path))
        files.append(path)
        moved = scroller.evaluate("el => { const top = el.scrollTop; el.scrollBy(0, el.clientHeight * 0.9);"
                                  " return el.scrollTop > top; }")
        if not moved:
            break
    return files


# ----------------------------------------------------------------------------- what a learner sees


def page_problems(page) -> list[str]:
    """What is wrong on the page: red outputs, broken widgets, text progress bars, pop-ups."""
    problems = []
    for element in page.locator(STDERR).all():
        problems.append(f"red (stderr or error) output: {(element.text_content() or '').strip()[:300]!r}")
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").text_content() or ""
    for text in BROKEN_WIDGET:
        if text in notebook:
            problems.append(f"a broken widget: {text!r} on the page")
    outputs = " ".join(page.locator(".jp-OutputArea-output").all_text_contents())
    if TEXT_PROGRESS_BAR.search(outputs):
        problems.append(f"a text progress bar: {TEXT_PROGRESS_BAR.search(outputs).group(0)!r}")
    if NEWS_PROMPT in (page.locator("body").text_content() or ""):
        problems.append("the announcements pop-up ('Would you like to get notified…') is shown")
    for dialog in page.locator(".jp-Dialog").all():
        problems.append(f"a dialog is open: {(dialog.text_content() or '').strip()[:200]!r}")
    return problems


def output_text(output) -> str:
    if output.output_type == "stream":
        return output.text
    if output.output_type == "error":
        return f"{output.ename}: {output.evalue}"
    return str(output.get("data", {}).get("text/plain", ""))


def saved_problems(path: Path, lab) -> list[str]:
    """What is wrong in the saved notebook's outputs: errors, stderr, log lines, absolute paths."""
    nb = nbformat.read(path, as_version=4)
    machine_paths = {str(lab.root), str(lab.root.resolve()), str(Path(__file__).resolve().parents[2]), str(Path.home())}
    problems = []
    for number, cell in enumerate(nb.cells, start=1):
        for output in cell.get("outputs", []):
            text = output_text(output)
            where = f"cell {number}"
            if output.output_type == "error":
                problems.append(f"{where}: error {text[:300]!r}")
            if output.output_type == "stream" and output.name == "stderr":
                problems.append(f"{where}: stderr {text[:300]!r}")
            if LOG_LINE.search(text):
                problems.append(f"{where}: TensorFlow log line {LOG_LINE.search(text).group(0)[:120]!r}")
            for machine_path in machine_paths:
                if machine_path in text:
                    problems.append(f"{where}: absolute path {machine_path!r} in {text[:200]!r}")
    return problems


def fail_with_screenshot(page, shots: Path, name: str, problems: list[str]) -> None:
    """Fail with the list of problems, after a screenshot of the first one shown on the page."""
    if problems:
        shown = page.locator(f"{STDERR}, .jp-OutputArea-output:has-text('{BROKEN_WIDGET[0]}'), "
                             f".jp-OutputArea-output:has-text('{BROKEN_WIDGET[1]}')")
        if shown.count():
            shown.first.scroll_into_view_if_needed()
            page.wait_for_timeout(800)  # cells that come into view are painted lazily
        page.screenshot(path=str(shots / f"{name}-FAILED.png"))
        pytest.fail(f"{name}: {len(problems)} problem(s) a learner would see:\n  " + "\n  ".join(problems)
                    + f"\n(screenshots in {shots})", pytrace=False)


# ----------------------------------------------------------------------------- the tests


def check_slice_viewer(page, shots: Path) -> None:
    """Chapter 01: the slice viewer is a live slider; five steps to the right redraw another slice."""
    slider = page.locator(".jp-OutputArea-output .widget-slider").first
    assert slider.count() == 1, "chapter 01 shows no slider: the slice viewer was not interactive"
    viewer = page.locator(".jp-OutputArea-output .widget-vbox", has=page.locator(".widget-slider")).first
    viewer.scroll_into_view_if_needed()
    image, readout = viewer.locator("img").first, viewer.locator(".widget-readout").first
    image.wait_for(timeout=30_000)
    before_src, before_z = image.get_attribute("src"), int(readout.text_content())
    viewer.screenshot(path=str(shots / "01_data-slider-before.png"))
    viewer.locator(".noUi-handle").first.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    deadline = time.monotonic() + 30  # the kernel redraws: the Output widget gets a new image
    while image.get_attribute("src") == before_src:
        assert time.monotonic() < deadline, "the slider moved but the image did not change within 30 s"
        page.wait_for_timeout(250)
    after_z = int(readout.text_content())
    viewer.screenshot(path=str(shots / "01_data-slider-after.png"))
    assert after_z == before_z + 5, f"the slider moved from z = {before_z} to {after_z}, expected {before_z + 5}"


def test_chapter_runs_clean_in_jupyterlab(chapter: str, lab, page, shots: Path) -> None:
    name = chapter.removesuffix(".ipynb")
    open_notebook(page, lab, f"notebooks/{chapter}", workspace=f"{name}-{time.monotonic_ns()}")
    fail_with_screenshot(page, shots, name, page_problems(page))  # the committed outputs, as opened
    seconds = run_all(page)
    print(f"{chapter}: Run All took {seconds:.1f} s")
    if name.startswith("01_"):
        check_slice_viewer(page, shots)
    save(page)
    screenshots_while_scrolling(page, shots, name)
    problems = page_problems(page) + saved_problems(lab.root / "notebooks" / chapter, lab)
    fail_with_screenshot(page, shots, name, problems)


def test_student_copy_checks_answer_with_hints(lab, page, shots: Path) -> None:
    name = "student-00_setup"
    open_notebook(page, lab, "student/00_setup.ipynb", workspace=f"{name}-{time.monotonic_ns()}")
    run_all(page)
    save(page)
    nb = nbformat.read(lab.root / "student" / "00_setup.ipynb", as_version=4)
    checks = [c for c in nb.cells if c.cell_type == "code" and re.search(r"\bexercises\.check_\w+\(", c.source)]
    assert len(checks) >= 2, "chapter 00 has at least two exercises with a check cell"
    for cell in checks:
        text = "".join(output_text(o) for o in cell.outputs)
        assert text.startswith("❌ Exercise not done yet: implement `"), f"check cell {cell.source!r} printed {text!r}"
    hint = page.locator(".jp-OutputArea-output", has_text="Exercise not done yet").first
    hint.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / f"{name}-hint.png"))
    problems = page_problems(page) + saved_problems(lab.root / "student" / "00_setup.ipynb", lab)
    problems += [f"a traceback in {c.source!r}" for c in checks if "Traceback" in "".join(map(output_text, c.outputs))]
    fail_with_screenshot(page, shots, name, problems)


def test_progress_bars_are_widgets_in_jupyterlab(lab, page, shots: Path) -> None:
    """Chapter 00's dataset generation, small: its progress bar is a widget that ends at 100 %."""
    folder = lab.root / "scratch"
    folder.mkdir(exist_ok=True)
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell(
        "from ctutils.synthetic import generate_dataset\n"
        "paths = generate_dataset('phantoms-4', normal=2, abnormal=2, seed=0, size=64, workers=1)\n"
        "print(len(paths), 'studies')")]
    nbformat.write(nb, folder / "progress.ipynb")
    open_notebook(page, lab, "scratch/progress.ipynb", workspace=f"progress-{time.monotonic_ns()}")
    run_all(page)
    output = page.locator(".jp-OutputArea-output", has=page.locator(".widget-hprogress, .widget-progress")).first
    output.wait_for(timeout=30_000)
    page.screenshot(path=str(shots / "progress-widget.png"))
    text = " ".join(output.text_content().split())
    assert "phantoms 64px: 100%" in text and "4/4" in text, text
    save(page)
    fail_with_screenshot(page, shots, "progress", page_problems(page) + saved_problems(folder / "progress.ipynb", lab))
