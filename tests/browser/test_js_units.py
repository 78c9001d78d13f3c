"""The front end's unit tests (js/*.test.ts), bundled with esbuild and run in a blank Chromium page."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ESBUILD = REPO / "node_modules" / ".bin" / "esbuild"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> str:
    if not ESBUILD.exists():
        pytest.fail("node_modules is missing: run `make setup` (npm ci) first")
    out = tmp_path_factory.mktemp("js") / "harness.js"
    subprocess.run(
        [str(ESBUILD), "js/test-harness.ts", "--bundle", "--format=iife", f"--outfile={out}"],
        cwd=REPO, check=True, capture_output=True,
    )  # fmt: skip
    return out.read_text()


@pytest.mark.parametrize("device_scale_factor", [1, 2])  # 2: a HiDPI screen, where canvases have more pixels
def test_js_unit_tests_pass_in_chromium(browser, harness, device_scale_factor):
    page = browser.new_page(device_scale_factor=device_scale_factor)
    page.set_content("<!doctype html><html><body></body></html>")
    page.add_script_tag(content=harness)
    results = page.evaluate("window.runAttnWidgetTests()")
    page.close()
    failures = [f"{r['name']}\n{r['error']}" for r in results if r["error"]]
    assert len(results) >= 15
    assert not failures, "\n\n".join(failures)
