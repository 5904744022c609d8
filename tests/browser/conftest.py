"""Real-browser test harness: a hermetic JupyterLab server driven by Debian chromium (playwright).

Reusable by every widget family's browser test (and by ``benchmarks/explorer_latency.py``, which
imports this file by path). Pieces:

* :func:`jupyter_lab_server` (context manager) / fixture ``jupyter_lab``: JupyterLab on
  127.0.0.1, a random free port, a random token, a temporary root directory, and temporary
  config / data / runtime / settings / workspace directories, so nothing on the machine (or left
  over from an earlier run) changes what the test sees. Extensions still load from
  ``sys.prefix/share/jupyter`` and kernels run on this interpreter (``sys.executable``).
* :func:`chromium_browser` (context manager) / fixture ``browser``: ``/usr/bin/chromium``
  headless through the Python ``playwright`` package (never ``playwright install``).
* fixture ``lab_page``: a fresh browser page; a screenshot lands in ``test-artifacts/`` when
  a test fails.
* helpers on :class:`LabPage`: open a notebook and wait for its kernel, Run All, run one cell,
  read outputs, fail on widget / kernel errors, screenshot.

Without ``/usr/bin/chromium`` the browser tests skip (install it with ``apt-get install
chromium``), unless ``BAYESKIT_REQUIRE_BROWSER=1``, in which case they fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"
INSTALL_HINT = (
    "Debian chromium is needed at /usr/bin/chromium for the browser tests: install it with "
    "`apt-get install chromium` (playwright drives it; do not run `playwright install`)"
)

# JupyterLab user settings written into the temporary settings directory:
# no news / update prompts (a toast could cover a control), and every cell attached to the DOM
# (windowing would detach off-screen outputs, so a widget below the fold would not render).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}

# What a broken widget or cell shows in JupyterLab
WIDGET_ERRORS = ("Error displaying widget", "model not found", "Failed to load model class")


def browser_unavailable_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return INSTALL_HINT
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package `playwright` is missing: pip install -e '.[dev]'"
    return None


def require_browser() -> None:
    """Skip (or, with BAYESKIT_REQUIRE_BROWSER=1, fail) when chromium or playwright is missing."""
    reason = browser_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("BAYESKIT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"BAYESKIT_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """A running JupyterLab server: ``url``, ``token``, ``root_dir`` and a REST helper."""

    def __init__(self, url: str, token: str, root_dir: Path, log_path: Path, process: subprocess.Popen):
        self.url, self.token, self.root_dir = url, token, root_dir
        self.log_path, self.process = log_path, process

    def api(self, path: str, method: str = "GET", timeout: float = 5.0):
        request = urllib.request.Request(
            f"{self.url}{path}", method=method,
            headers={"Authorization": f"token {self.token}"},
            data=b"" if method in ("POST", "DELETE") else None,
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def add_notebook(self, source: Path | str, name: str | None = None) -> str:
        """Copy a notebook into the server's root directory; returns its name there."""
        source = Path(source)
        name = name or source.name
        shutil.copy(source, self.root_dir / name)
        return name

    def notebook_url(self, name: str) -> str:
        # `reset` starts from an empty workspace: no tabs restored from an earlier run
        return f"{self.url}/lab/tree/{name}?reset&token={self.token}"

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"


@contextlib.contextmanager
def jupyter_lab_server(startup_timeout: float = 90.0) -> Iterator[JupyterLab]:
    """Start a hermetic JupyterLab (see the module docstring); stop it and its kernels on exit."""
    base = Path(tempfile.mkdtemp(prefix="bayeskit-lab-"))
    dirs = {name: base / name for name in ("root", "config", "data", "runtime", "settings", "workspaces")}
    for d in dirs.values():
        d.mkdir()
    for rel, content in LAB_SETTINGS.items():
        target = dirs["settings"] / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(content))
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),  # no user kernelspecs or extensions from ~/.local
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
        JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
        # the python3 kernelspec says "python": jupyter_client maps it to sys.executable; keep
        # this interpreter's bin first on PATH for anything else the kernel starts
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
        JUPYTER_PLATFORM_DIRS="1",
    )
    env.pop("JUPYTER_PATH", None)
    # The server's own interpreter runs the default python3 kernel: the venv's, with bayeskit
    cmd = [
        sys.executable, "-m", "jupyter", "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",  # (ServerApp.token is its deprecated alias)
        f"--ServerApp.root_dir={dirs['root']}",
        "--ServerApp.open_browser=False",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.collaborative=False",
        "--LabApp.extension_manager=readonly",  # no PyPI queries from the extension manager
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
        cmd.append("--allow-root")
    log_path = base / "server.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(
        cmd, cwd=dirs["root"], env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped as one on exit
    )
    lab = JupyterLab(f"http://127.0.0.1:{port}", token, dirs["root"], log_path, process)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {process.returncode}:\n{lab.log_tail()}")
            try:
                lab.api("/api/status", timeout=2.0)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not answer within {startup_timeout} s:\n{lab.log_tail()}") from None
                time.sleep(0.25)
        yield lab
    finally:
        _stop_server(lab)
        log.close()
        with contextlib.suppress(OSError):
            shutil.copy(log_path, _artifacts() / "jupyterlab-server.log")
        shutil.rmtree(base, ignore_errors=True)


def _stop_server(lab: JupyterLab) -> None:
    """Shut down the kernels (they run in their own sessions), then the server's process group."""
    process = lab.process
    if process.poll() is None:
        with contextlib.suppress(Exception):
            for kernel in lab.api("/api/kernels") or []:
                lab.api(f"/api/kernels/{kernel['id']}", method="DELETE", timeout=10.0)
        with contextlib.suppress(Exception):
            lab.api("/api/shutdown", method="POST", timeout=5.0)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)


@contextlib.contextmanager
def chromium_browser():
    """Headless Debian chromium through playwright; closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


class LabPage:
    """A playwright page on a JupyterLab notebook, with the steps browser tests share."""

    def __init__(self, page, lab: JupyterLab):
        self.page, self.lab = page, lab
        self.console_errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        page.on("pageerror", lambda e: self.console_errors.append(str(e)))

    # -- opening and running ------------------------------------------------------------------
    def open_notebook(self, name: str, timeout: float = 120.0) -> None:
        """Open ``name`` and wait until its kernel is started and idle.

        Waiting for the kernel matters: running cells before the session is ready makes
        JupyterLab ask which kernel to use (a "Select Kernel" dialog) instead of running them.
        """
        page = self.page
        page.goto(self.lab.notebook_url(name), wait_until="domcontentloaded", timeout=timeout * 1000)
        page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=timeout * 1000)
        deadline = time.monotonic() + timeout
        while True:
            self.dismiss_kernel_dialog()
            if self._kernel_idle(name):
                return
            if time.monotonic() > deadline:
                self.screenshot("kernel-not-ready")
                raise TimeoutError(f"the kernel of {name} was not idle within {timeout} s:\n{self.lab.log_tail()}")
            time.sleep(0.25)

    def _kernel_idle(self, name: str) -> bool:
        indicator = self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator")
        status = indicator.first.get_attribute("data-status") if indicator.count() else None
        if status != "idle":
            return False
        sessions = self.lab.api("/api/sessions")
        return any(
            s.get("path", "").endswith(name) and s.get("kernel", {}).get("execution_state") == "idle"
            for s in sessions
        )

    def dismiss_kernel_dialog(self) -> None:
        """Accept the default kernel if JupyterLab asks (it should not, once the session is up)."""
        dialog = self.page.locator(".jp-Dialog:has-text('Select Kernel')")
        if dialog.count():
            dialog.locator(".jp-Dialog-button.jp-mod-accept").first.click()

    def run_all(self, timeout: float = 180.0) -> None:
        """Run > Run All Cells, then wait until every code cell has run and the kernel is idle."""
        page = self.page
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        self.wait_until_executed(timeout)

    def wait_until_executed(self, timeout: float = 180.0) -> None:
        self.page.wait_for_function(
            """() => {
                const prompts = [...document.querySelectorAll(
                    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt')];
                const ind = document.querySelector(
                    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
                return prompts.length > 0
                    && prompts.every(p => /\\[\\d+\\]/.test(p.textContent))
                    && (!ind || ind.getAttribute('data-status') === 'idle');
            }""",
            timeout=timeout * 1000,
        )

    def code_cell(self, index: int):
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell").nth(index)

    def run_cell(self, index: int, timeout: float = 60.0) -> str:
        """Run code cell ``index`` (0-based, code cells only) again; returns its output text."""
        cell = self.code_cell(index)
        before = cell.locator(".jp-InputArea-prompt").inner_text()
        cell.locator(".jp-InputArea-editor").click()
        self.page.keyboard.press("Control+Enter")  # run in place: no new cell, no scrolling
        prompt = cell.locator(".jp-InputArea-prompt")
        deadline = time.monotonic() + timeout
        while True:
            text = prompt.inner_text()
            if text != before and "*" not in text and any(ch.isdigit() for ch in text):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"code cell {index} did not finish within {timeout} s")
            time.sleep(0.05)
        return self.output_text(index)

    def slider_handle(self, description: str):
        """The draggable handle of the ipywidgets slider labelled ``description``.

        Focus it and press ArrowRight / ArrowLeft to move the slider by one step, as a user would.
        """
        label = self.page.locator(".widget-label", has_text=re.compile(f"^{re.escape(description)}$"))
        return self.page.locator(".widget-slider", has=label).locator(".noUi-handle").first

    def output_text(self, index: int) -> str:
        return self.code_cell(index).locator(".jp-OutputArea").inner_text()

    # -- checks and artifacts -----------------------------------------------------------------
    def assert_no_errors(self) -> None:
        """Fail on widget errors ("Error displaying widget", "model not found") or error outputs."""
        notebook = self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
        text = notebook.inner_text()
        for marker in WIDGET_ERRORS:
            assert marker not in text, f"{marker!r} in the notebook:\n{text[-3000:]}"
        # JupyterLab renders tracebacks (and stderr) with this MIME type
        errors = notebook.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        for i in range(errors.count()):
            out = errors.nth(i).inner_text()
            assert "Traceback" not in out and "Error" not in out, f"error output:\n{out}"
        widget_console = [e for e in self.console_errors if any(m in e for m in WIDGET_ERRORS)]
        assert not widget_console, f"widget errors in the browser console: {widget_console}"

    def screenshot(self, name: str) -> Path:
        path = _artifacts() / f"{name}.png"
        with contextlib.suppress(Exception):
            self.page.screenshot(path=str(path), full_page=True)
        return path


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser_available() -> None:
    require_browser()


@pytest.fixture(scope="session")
def jupyter_lab(browser_available) -> Iterator[JupyterLab]:
    with jupyter_lab_server() as lab:
        yield lab


@pytest.fixture(scope="session")
def browser(browser_available):
    with chromium_browser() as b:
        yield b


@pytest.fixture
def lab_page(browser, jupyter_lab, request) -> Iterator[LabPage]:
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(60_000)
    lab_page = LabPage(page, jupyter_lab)
    try:
        yield lab_page
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            lab_page.screenshot(f"FAILED-{request.node.name}")
        context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
