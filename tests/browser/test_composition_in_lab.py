"""The head composition view and the progress bar's stop button in JupyterLab: the view appears when
Python asks for the scores and draws the kernel's numbers; the stop button ends an ablation sweep
that holds the kernel, and the explorer goes on."""

from __future__ import annotations

import json

import pytest

from attn_widget.testing.lab import Lab, open_and_run

from .test_explorer_in_lab import SETUP_CELL, wait_for_state

pytestmark = pytest.mark.browser

PROMPT = "When mary and john went to the store mary gave a drink to john"


def explorer_cell(lab: Lab, name: str) -> str:
    log = lab.root / f"{name}.state.jsonl"
    return (
        f"w = AttentionExplorer(model, prompt={PROMPT!r}, layer=0, head=0)\n"
        "def log(change=None):\n"
        f"    with open({str(log)!r}, 'a') as f:\n"
        "        f.write(json.dumps({'layer': w.layer, 'head': w.head, 'kind': w.composition_kind}) + '\\n')\n"
        "w.observe(log, names=['layer', 'head', 'composition_kind'])\n"
        "log()\n"
        "w"
    )


def test_composition_view(page, lab):
    expected = lab.root / "composition.expected.json"
    scores_cell = f"k = w.composition_scores('k')\nPath({str(expected)!r}).write_text(json.dumps(k.tolist()))"
    path = lab.write_notebook("composition.ipynb", [SETUP_CELL, explorer_cell(lab, "composition"), scores_cell])
    open_and_run(page, lab, path)
    log = lab.root / "composition.state.jsonl"
    wait_for_state(log, lambda s: s["kind"] == "k", timeout_s=90)
    page.wait_for_function(
        "document.querySelector('[data-role=composition-map]')?.dataset.kind === 'k'", timeout=60_000
    )
    k = json.loads(expected.read_text())  # [layer][head][layer][head], 3 layers x 4 heads
    view = page.locator("[data-view=composition]")
    canvas = view.locator("[data-role=composition-map]")
    canvas.scroll_into_view_if_needed()
    geometry = canvas.evaluate("c => ({...c.dataset})")
    assert (geometry["rows"], geometry["cols"]) == ("8", "8")  # layers 0-1 write, layers 1-2 read
    bar = view.locator("[data-role=colorbar]")
    assert bar.get_attribute("data-units") == "K-composition score"
    top = max(v for lw in range(3) for hw in range(4) for lr in range(lw + 1, 3) for v in k[lw][hw][lr])
    assert float(bar.get_attribute("data-lo")) == 0 and float(bar.get_attribute("data-hi")) == pytest.approx(top)

    left, top_px, cell = (float(geometry[key]) for key in ("left", "top", "cell"))
    at = {"x": left + 6.5 * cell, "y": top_px + 1.5 * cell}  # writer L0H1 (row 1), reader L2H2 (column 6)
    canvas.hover(position=at)
    readout = view.locator(".aw-readout").text_content()
    assert readout.startswith(f"L0H1 \u2192 L2H2: K-composition score {k[0][1][2][2]:.4f}"), readout
    canvas.click(position=at)
    wait_for_state(log, lambda s: (s["layer"], s["head"]) == (2, 2))

    view.locator("[data-role=composition-kind][data-kind=v]").click()
    wait_for_state(log, lambda s: s["kind"] == "v")
    page.wait_for_function("document.querySelector('[data-role=composition-map]').dataset.kind === 'v'")
    assert bar.get_attribute("data-units") == "V-composition score"


def test_the_stop_button_ends_an_ablation_sweep(page, lab):
    done = lab.root / "stop.done.json"
    sweep = (
        "import time\n"
        "slow = model.register_forward_hook(lambda *args: time.sleep(0.5))  # a sweep long enough to stop\n"
        "partial = w.ablation_effect('zero', batch_size=1, progress=False)\n"
        "slow.remove()\n"
        f"Path({str(done)!r}).write_text(json.dumps({{'measured': int(np.isfinite(partial).sum()), "
        "'error': w.error, 'shown': 'ablation_effect' in w.score_table}))"
    )
    path = lab.write_notebook(
        "stop.ipynb", [SETUP_CELL, explorer_cell(lab, "stop"), "# the sweep, once the explorer is up"]
    )
    open_and_run(page, lab, path)
    page.wait_for_function(
        "document.querySelector('[data-view=heatmap]')?.dataset.drawn?.endsWith(':0:0')", timeout=90_000
    )
    # then the sweep, as a researcher runs it: a cell of its own, with the explorer on the screen
    page.evaluate(
        """(code) => {
            const panel = window.jupyterapp.shell.currentWidget;
            panel.content.widgets[2].model.sharedModel.setSource(code);
            panel.content.activeCellIndex = 2;
            void window.jupyterapp.commands.execute('notebook:run-cell'); // not awaited: it ends with the cell
        }""",
        sweep,
    )
    stop = page.locator("[data-role=progress-stop]")
    stop.wait_for(state="visible", timeout=30_000)
    assert "ablation" in page.locator("[data-role=progress]").text_content()
    stop.click()
    deadline_s = 60
    page.wait_for_timeout(200)
    for _ in range(deadline_s * 5):
        if done.exists():
            break
        page.wait_for_timeout(200)
    result = json.loads(done.read_text())  # the cell went on after the sweep: the kernel is free
    assert result["measured"] < 12 and not result["shown"]
    assert "ablation_effect stopped after" in result["error"]
    page.wait_for_function("document.querySelector('[data-role=progress]')?.hidden === true", timeout=30_000)
    assert "stopped after" in page.locator("[data-role=error]").first.text_content()
