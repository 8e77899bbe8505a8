"""Fixtures of the browser suite: a copy of the course, JupyterLab serving it, Chromium driven by Playwright.

``make test-browser`` (``pytest tests/browser``); ``make test`` does not collect this folder
(``norecursedirs`` in pyproject.toml). See README.md here.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ctutils import course
from ctutils.student import make_student_copies

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
#: Debian's Chromium (``apt-get install chromium``); ``playwright install`` is never needed.
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
#: Screenshots (git-ignored, like all of runs/).
SHOTS = ROOT / "runs" / "browser"
#: Variables of a test session that a learner's JupyterLab does not have. ipykernel stops forwarding
#: the kernel's descriptor 2 into the notebook when it sees PYTEST_CURRENT_TEST, and tests/conftest.py
#: sets MPLBACKEND=Agg, which would hide every figure.
NOT_A_LEARNERS = ("PYTEST_CURRENT_TEST", "MPLBACKEND", "TF_CPP_MIN_LOG_LEVEL", "CTUTILS_TF_LOGS", "CTUTILS_WIDGETS",
                  "JPY_SESSION_NAME", "JUPYTER_CONFIG_DIR", "JUPYTER_CONFIG_PATH", "JUPYTER_DATA_DIR", "JUPYTER_PATH")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--notebooks", default=str(ROOT / "notebooks"),
                     help="the chapters to test (a copy of this folder is served; default: notebooks/)")


def source_folder(config: pytest.Config) -> Path:
    folder = Path(config.getoption("--notebooks")).resolve()
    if not folder.is_dir():
        raise pytest.UsageError(f"--notebooks {folder}: not a folder")
    return folder


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "chapter" in metafunc.fixturenames:
        names = [p.name for p in course.list_chapters(source_folder(metafunc.config))]
        metafunc.parametrize("chapter", names, ids=[n.removesuffix(".ipynb") for n in names])


@pytest.fixture(scope="session")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


@pytest.fixture(scope="session")
def course_copy(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<tmp>/course``: a checkout-like folder whose chapters find the repository's data and runs.

    ``notebooks/`` and ``student/`` are copies; ``data``, ``runs`` and ``ctutils`` link to the
    repository's, so the chapters reuse the dataset, the cache and the trained quick model that
    ``make test`` left there (built here first if missing, as chapters 00-05 would).
    """
    cfg = course.course_config("quick", "synthetic", root=ROOT)
    course.ensure_model(cfg)  # dataset, cache and model of the quick profile; instant when present
    copy = tmp_path_factory.mktemp("browser") / "course"
    copy.mkdir()
    shutil.copy2(ROOT / "pyproject.toml", copy / "pyproject.toml")
    for name in ("ctutils", "data", "runs"):
        (copy / name).symlink_to(ROOT / name, target_is_directory=True)
    notebooks = copy / "notebooks"
    notebooks.mkdir()
    for path in course.list_chapters(source_folder(request.config)):
        shutil.copy2(path, notebooks / path.name)
    make_student_copies(copy / "student", source=notebooks)
    return copy


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab: ``url(path)`` opens ``path`` of the course copy in a fresh workspace."""

    base: str
    token: str
    root: Path
    log: Path

    def url(self, path: str, *, workspace: str) -> str:
        return f"{self.base}/lab/workspaces/{workspace}/tree/{path}?reset&token={self.token}"

    def api(self, path: str, *, method: str = "GET") -> bytes:
        request = urllib.request.Request(f"{self.base}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


@pytest.fixture(scope="session")
def lab(course_copy: Path, tmp_path_factory: pytest.TempPathFactory, shots: Path) -> Iterator[Lab]:
    """JupyterLab from the project's .venv on 127.0.0.1 with a token, serving the course copy.

    It reads the project's Jupyter settings (``jupyter/``, as ``make lab``) and nothing of the
    user's: configuration, data, settings, workspaces and runtime folders are temporary.
    """
    home = tmp_path_factory.mktemp("jupyter-home")
    env = {k: v for k, v in os.environ.items() if k not in NOT_A_LEARNERS}
    env.update({
        "JUPYTER_CONFIG_PATH": str(ROOT / "jupyter"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "IPYTHONDIR": str(home / "ipython"),
    })
    port, token = _free_port(), secrets.token_hex(16)
    command = [str(VENV_BIN / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={course_copy}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # JupyterLab refuses root without it (CI runs as root)
    log = shots / "jupyterlab.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=course_copy, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Lab(base=f"http://127.0.0.1:{port}", token=token, root=course_copy, log=log)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"JupyterLab exited with status {process.returncode}; its log: {log}", pytrace=False)
            try:
                server.api("status")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on port {port} within 120 s; its log: {log}", pytrace=False)
                time.sleep(0.5)
        yield server
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Chromium (Debian's), driven by Playwright."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM}: no Chromium there; install it (apt-get install -y chromium) "
                    "or point the CHROMIUM environment variable to one", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, lab: Lab) -> Iterator[object]:
    """A fresh browser page; afterwards every kernel this test started is shut down."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield context.new_page()
    finally:
        context.close()
        import json

        for session in json.loads(lab.api("sessions")):
            lab.api(f"sessions/{session['id']}", method="DELETE")
