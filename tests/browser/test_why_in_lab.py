"""The "why" panel in JupyterLab: a click on a heatmap cell shows that score split into components,
with the kernel's numbers, and a click on a head there selects it."""

from __future__ import annotations

import json

import pytest

from attn_widget.testing.lab import Lab, open_and_run

from .test_explorer_in_lab import SETUP_CELL, wait_for_state

pytestmark = pytest.mark.browser

PROMPT = "When mary and john went to the store mary gave a drink to john"
QUERY, KEY = 9, 4


def why_cell(lab: Lab) -> str:
    log = lab.root / "why.state.jsonl"
    expected = lab.root / "why.expected.json"
    return (
        f"w = AttentionExplorer(model, prompt={PROMPT!r}, layer=2, head=1)\n"
        f"summary = w._why.decomposition(2, 1, {QUERY}, {KEY}).summary()\n"
        f"Path({str(expected)!r}).write_text(json.dumps(summary))\n"
        "def log(change=None):\n"
        f"    with open({str(log)!r}, 'a') as f:\n"
        "        f.write(json.dumps({'layer': w.layer, 'head': w.head, 'n': len(w.tokens)}) + '\\n')\n"
        "w.observe(log, names=['layer', 'head'])\n"
        "log()\n"
        "w"
    )


def test_why_panel(page, lab):
    path = lab.write_notebook("why.ipynb", [SETUP_CELL, why_cell(lab)])
    open_and_run(page, lab, path)
    log = lab.root / "why.state.jsonl"
    state = wait_for_state(log, lambda s: s["layer"] == 2, timeout_s=90)
    page.wait_for_function(
        "document.querySelector('[data-view=heatmap]')?.dataset.drawn?.endsWith(':2:1')", timeout=60_000
    )
    expected = json.loads((lab.root / "why.expected.json").read_text())

    page.locator("[data-role=why-toggle]").check()
    overlay = page.locator("[data-view=heatmap] canvas[data-role=overlay]").first
    overlay.scroll_into_view_if_needed()
    box = overlay.bounding_box()
    n = state["n"]
    overlay.click(position={"x": (KEY + 0.5) * box["width"] / n, "y": (QUERY + 0.5) * box["height"] / n})
    page.wait_for_selector("[data-role=why-key] .aw-why-row", timeout=60_000)
    title = page.locator(".aw-why-title").text_content()
    assert f"L2H1, query {QUERY} \u2192 key {KEY}: score {expected['score']:.3f}" == title

    key_side = page.locator("[data-role=why-key] .aw-why-row").all_text_contents()
    assert len(key_side) == len(expected["key_side"])
    for row, part in zip(key_side, expected["key_side"], strict=True):
        assert row.startswith(part["label"]) and row.endswith(f"{part['value']:.3f}")
    pairs = page.locator("[data-role=why-pairs] .aw-why-row").all_text_contents()
    assert pairs[0].startswith(expected["pairs"][0]["query"]) and expected["pairs"][0]["key"] in pairs[0]

    # a head named there is a button that selects it
    heads = [p["label"] for p in expected["key_side"] if p["kind"] == "head"]
    assert heads, expected["key_side"]
    page.locator(f"[data-role=why-key] button[data-head={heads[0]}]").click()
    layer, head = (int(x) for x in heads[0][1:].split("H"))
    wait_for_state(log, lambda s: (s["layer"], s["head"]) == (layer, head))
