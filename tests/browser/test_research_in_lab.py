"""Dataset mode, detectors, sinks and head similarity in JupyterLab: the views reach the kernel."""

from __future__ import annotations

import json

import pytest

from attn_widget.testing.lab import Lab, open_and_run

from .test_explorer_in_lab import SETUP_CELL, click_cell, last_state, wait_for_state

pytestmark = pytest.mark.browser

PROMPT = "When mary and john went to the store mary gave a drink to john"
DATASET = ["the cat sat on the mat the cat", "mary gave a ball to john", "the park was a store for the head"]
KEYS = ("layer", "head", "metric", "prompt", "dataset_index", "exclude_sinks", "show_similarity", "sink_positions")


def research_cell(lab: Lab) -> str:
    log = lab.root / "research.state.jsonl"
    return (
        f"w = AttentionExplorer(model, prompt={PROMPT!r}, layer=0, head=1)\n"
        "w.add_detector('diagonal', lambda t: np.eye(len(t)))\n"
        f"w.run_dataset({DATASET!r}, batch_size=2, progress=False)\n"
        "def log(change=None):\n"
        f"    with open({str(log)!r}, 'a') as f:\n"
        f"        state = {{k: getattr(w, k) for k in {KEYS!r}}} | {{'order': w.similarity.get('order')}}\n"
        "        f.write(json.dumps(state) + '\\n')\n"
        f"w.observe(log, names={[*KEYS[:-1], 'similarity']!r})\n"
        "log()\n"
        "w"
    )


def test_dataset_detectors_sinks_and_similarity_views(page, lab):
    path = lab.write_notebook("research.ipynb", [SETUP_CELL, research_cell(lab)])
    open_and_run(page, lab, path)
    log = lab.root / "research.state.jsonl"
    wait_for_state(log, lambda s: s["prompt"] == PROMPT, timeout_s=90)
    page.wait_for_function(
        "document.querySelector('[data-view=heatmap]')?.dataset.drawn?.endsWith(':0:1')", timeout=60_000
    )

    # 1. the metric menu offers the custom detector and the dataset means; hover shows the spread
    menu = page.locator("[data-view=scores] select")
    options = menu.locator("option").evaluate_all("os => os.map(o => o.value)")
    assert {"diagonal", "dataset:induction", "dataset:diagonal", "sink_share"} <= set(options)
    menu.select_option("dataset:induction")
    wait_for_state(log, lambda s: s["metric"] == "dataset:induction")
    canvas = page.locator("[data-view=scores] canvas[data-role=score-map]")
    geometry = canvas.evaluate("c => ({...c.dataset})")
    left, top, cell = (float(geometry[k]) for k in ("left", "top", "cell"))
    canvas.hover(position={"x": left + 1.5 * cell, "y": top + 0.5 * cell})
    readout = page.locator("[data-view=scores] .aw-readout").first
    assert "\u00b1" in readout.text_content() and "dataset mean" in readout.text_content()

    # 2. the prompt box steps through the dataset's prompts (the kernel re-runs each)
    page.locator("[data-role=analysis] > summary").first.click()  # the analysis bar starts collapsed
    page.locator("[data-role=dataset-next]").click()
    wait_for_state(log, lambda s: s["dataset_index"] == 0 and s["prompt"] == DATASET[0])
    page.locator("[data-role=dataset-prev]").click()
    wait_for_state(log, lambda s: s["dataset_index"] == 2 and s["prompt"] == DATASET[2])
    assert "3 / 3" in page.locator("[data-role=dataset-stepper]").text_content()

    # 3. the sink toggle reaches the kernel and the view says what it excluded
    page.locator("[data-role=exclude-sinks]").check()
    state = wait_for_state(log, lambda s: s["exclude_sinks"])
    note = page.locator("[data-role=sink-note]").text_content()
    sinks = state["sink_positions"][state["layer"]][state["head"]]
    assert ("rows renormalised" in note) if sinks else ("no sink positions" in note), note

    # 4. the head similarity view: shown on request, a click on a row selects that row's head
    page.locator("[data-role=similarity-toggle]").click()
    state = wait_for_state(log, lambda s: s["show_similarity"] and s["order"])
    similarity = page.locator("[data-role=similarity-map]")
    page.wait_for_function("document.querySelector('[data-role=similarity-map]').dataset.rows === '12'")
    click_cell(similarity, 5, 2)
    target = state["order"][5]
    wait_for_state(log, lambda s: [s["layer"], s["head"]] == target)
    assert json.dumps(last_state(log)["order"]) == json.dumps(state["order"])
