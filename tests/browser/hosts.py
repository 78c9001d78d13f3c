"""Notebook hosts other than JupyterLab, started on loopback for the browser tests: Notebook 7,
Voila and marimo, each serving a folder, with tests/ and the checkout importable by its kernels."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from attn_widget.testing.lab import STARTUP_TIMEOUT_S, free_port, stop

TESTS_DIR = Path(__file__).resolve().parents[1]

JUPYTER_FLAGS = ["--no-browser", "--allow-root", "--ip=127.0.0.1", "--IdentityProvider.token=", "--ServerApp.password=",
                 "--ServerApp.disable_check_xsrf=True"]  # fmt: skip


def host_command(host: str, root: Path, port: int, notebook: str) -> list[str]:
    if host == "notebook7":
        return [sys.executable, "-m", "jupyter", "notebook", *JUPYTER_FLAGS, f"--port={port}",
                "--JupyterNotebookApp.expose_app_in_browser=True", f"--ServerApp.root_dir={root}"]  # fmt: skip
    if host == "voila":
        return [sys.executable, "-m", "voila", str(root / notebook), "--no-browser", f"--port={port}",
                "--Voila.ip=127.0.0.1"]  # fmt: skip
    if host == "marimo":
        return [sys.executable, "-m", "marimo", "run", str(root / notebook), "--headless", "--no-token",
                f"--port={port}", "--host=127.0.0.1"]  # fmt: skip
    raise ValueError(host)


@contextmanager
def running_host(host: str, root: Path, notebook: str) -> Iterator[str]:
    """The host serving `notebook` in `root`; yields its base URL."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])}
    url = f"http://127.0.0.1:{port}"
    with open(root / f".{host}.log", "w") as log:
        server = subprocess.Popen(host_command(host, root, port, notebook), cwd=root, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)  # fmt: skip
        try:
            deadline = time.time() + STARTUP_TIMEOUT_S
            while True:
                try:
                    urllib.request.urlopen(url, timeout=2)
                    break
                except OSError as err:
                    if getattr(err, "code", None):  # an HTTP error is an answer: the server is up
                        break
                    if time.time() > deadline or server.poll() is not None:
                        raise RuntimeError(f"{host} did not start; see {root / f'.{host}.log'}") from None
                    time.sleep(0.5)
            yield url
        finally:
            stop(server)
