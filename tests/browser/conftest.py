"""Fixtures: a real JupyterLab and a real Chromium (see attn_widget/testing/lab.py)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from attn_widget.testing.lab import CHROMIUM, Lab, chromium, running_lab


def _require(ok: bool, what: str) -> None:
    if ok:
        return
    if os.environ.get("ATTN_WIDGET_REQUIRE_BROWSER"):
        pytest.fail(f"browser tests need {what} (make test installs it)")
    pytest.skip(f"browser tests need {what}")


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    _require(shutil.which("jupyter", path=str(Path(sys.executable).parent)) is not None, "jupyterlab")
    # Kernels import tiny_models from tests/.
    with running_lab(tmp_path_factory.mktemp("lab"), kernel_path=[Path(__file__).resolve().parent.parent]) as server:
        yield server


@pytest.fixture(scope="session")
def browser():
    _require(Path(CHROMIUM).exists(), CHROMIUM)
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    yield page
    context.close()
