"""A real JupyterLab started on loopback and Debian's Chromium driven by Playwright.

Used by the browser tests (tests/browser/conftest.py), the benchmarks (benchmarks/run.py) and
scripts/screenshots.py; it lives in the package so they import it without putting tests/ on the path.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = os.environ.get("ATTN_WIDGET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STARTUP_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lab:
    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.url = url

    def write_notebook(self, name: str, cells: list[str]) -> Path:
        code = [nbformat.v4.new_code_cell(c) for c in cells]  # type: ignore[no-untyped-call]
        nb = nbformat.v4.new_notebook(cells=code)  # type: ignore[no-untyped-call]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        path = self.root / name
        nbformat.write(nb, path)  # type: ignore[no-untyped-call]
        return path


@contextmanager
def running_lab(root: Path, kernel_path: Sequence[Path] = ()) -> Iterator[Lab]:
    """JupyterLab serving `root`; `kernel_path` folders are importable by its kernels (tests/: tiny_models)."""
    port = free_port()
    settings = root / ".lab-settings"
    # No "get Jupyter news?" toast over the widget.
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True, exist_ok=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false"}'
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([*map(str, kernel_path), os.environ.get("PYTHONPATH", "")]),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
    }
    with open(root / ".jupyter.log", "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}",
             "--ip=127.0.0.1", "--IdentityProvider.token=", "--ServerApp.password=",
             "--LabApp.expose_app_in_browser=True", "--ServerApp.disable_check_xsrf=True",
             f"--ServerApp.root_dir={root}", "--LabApp.news_url=",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(server, url, root)
            yield Lab(root, url)
        finally:
            stop(server)


def stop(server: subprocess.Popen[bytes]) -> None:
    """Terminate a server we started, killing it if it does not go within 10 s."""
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()


def _wait_until_up(server: subprocess.Popen[bytes], url: str, root: Path) -> None:
    deadline = time.time() + STARTUP_TIMEOUT_S
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status", timeout=2)
            return
        except OSError:
            if time.time() > deadline or server.poll() is not None:
                raise RuntimeError(f"JupyterLab did not start; see {root / '.jupyter.log'}") from None
            time.sleep(0.5)


@contextmanager
def chromium() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_and_run(page: Page, lab: Lab, notebook: Path) -> None:
    """Open a notebook in JupyterLab, wait for its kernel, run every cell."""
    # A workspace of its own, so JupyterLab does not restore the notebooks of earlier runs.
    page.goto(f"{lab.url}/lab/workspaces/{notebook.stem}/tree/{notebook.name}")
    page.wait_for_function(
        "(name) => window.jupyterapp?.shell.currentWidget?.context?.path === name", arg=notebook.name, timeout=60_000
    )
    page.wait_for_function(
        "(() => { const w = window.jupyterapp.shell.currentWidget;"
        " return w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel"
        " && w.sessionContext.session.kernel.status === 'idle'; })()",
        timeout=60_000,
    )
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
