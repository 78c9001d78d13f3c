"""The snapshot in JupyterLab: hidden beside the live explorer, shown when the notebook is reopened
and its widgets are gone (a new kernel, or none)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from .test_explorer_in_lab import open_explorers, wait_for_state

pytestmark = pytest.mark.browser


def test_live_lab_shows_the_explorer_and_a_reopened_notebook_its_snapshot(page, lab, browser):
    (log,) = open_explorers(page, lab, "snapshot", ["explorer"])
    page.wait_for_selector("[data-aw-snapshot] img", state="attached")
    assert page.locator(".attn-widget").is_visible()
    assert not page.locator("[data-aw-snapshot]").is_visible()  # live: the widget, not the snapshot

    page.locator("[data-view=grid] button[data-head='3']").click()
    wait_for_state(log, lambda s: s["head"] == 3)
    page.wait_for_function("document.querySelector('[data-aw-snapshot] img')?.alt.endsWith('L0H3')")
    assert not page.locator("[data-aw-snapshot]").is_visible()  # still hidden once updated

    page.locator("[data-role=analysis] > summary").first.click()  # the analysis bar starts collapsed
    with page.expect_download() as saved:  # the save button: the kernel draws the figure
        page.locator("[data-role=export] button[data-format=svg]").click()
    assert saved.value.suggested_filename == "attention-L0H3-heatmap.svg"
    svg = Path(saved.value.path()).read_text()
    assert svg.startswith("<svg") and "L0H3 \u00b7" in svg

    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    path = lab.root / "snapshot.ipynb"
    deadline = time.time() + 30
    while "head 3" not in path.read_text() and time.time() < deadline:
        time.sleep(0.3)
    outputs = json.loads(path.read_text())["cells"][1]["outputs"]
    html = ["".join(o["data"]["text/html"]) for o in outputs if "text/html" in o.get("data", {})]
    assert len(html) == 1 and 'alt="native: L0H3"' in html[0]
    page.evaluate("window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")

    reopened = browser.new_page(viewport={"width": 1400, "height": 1000})
    reopened.goto(f"{lab.url}/lab/workspaces/reopened/tree/snapshot.ipynb")
    reopened.wait_for_selector("[data-aw-snapshot] img", state="visible", timeout=60_000)
    reopened.wait_for_function("document.querySelector('[data-aw-snapshot] img').naturalWidth > 400")
    assert reopened.locator("[data-aw-snapshot] img").get_attribute("alt").endswith("L0H3")
    assert reopened.locator(".attn-widget").count() == 0
    reopened.close()
