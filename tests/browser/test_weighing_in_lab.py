"""Value weighting, the compare prompt and logit attribution in JupyterLab, in Chromium: the controls
reach the kernel, the heatmap draws the signed difference in diverging colours, the token strip
shades by attribution, and a bad answer shows its message while the widget keeps working."""

from __future__ import annotations

import numpy as np
import pytest

from attn_widget.testing.lab import Lab, open_and_run

from .test_explorer_in_lab import PROMPT, SETUP_CELL, matrix_cell_colours, wait_for_state

pytestmark = pytest.mark.browser

COMPARE = "When john and mary went to the store john gave a drink to mary"
RED_BLUE = np.array([[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43]], float)
KEYS = ("weighting", "compare_prompt", "answer", "counterfactual", "attribution", "revision", "error", "tokens")


def red_blue(value: float) -> np.ndarray:
    """js/colors/diverging.ts's lookup of a change in [-1, 1] (linear scale)."""
    t = round(min(max(0.5 + 0.5 * value, 0.0), 1.0) * 255) / 255 * (len(RED_BLUE) - 1)
    lo = min(int(t), len(RED_BLUE) - 2)
    return RED_BLUE[lo] + (RED_BLUE[lo + 1] - RED_BLUE[lo]) * (t - lo)


def weighing_cell(lab: Lab) -> str:
    log, diff = lab.root / "weigh.state.jsonl", lab.root / "weigh.diff.npy"
    return (
        f"w = AttentionExplorer(model, prompt={PROMPT!r}, layer=0, head=1)\n"
        "def log_w(change=None):\n"
        f"    with open({str(log)!r}, 'a') as f:\n"
        f"        f.write(json.dumps({{k: getattr(w, k) for k in {KEYS!r}}}) + '\\n')\n"
        "    if w.compare_prompt and not w.error:\n"
        f"        np.save({str(diff)!r}, w.pattern_diff(0, 1))\n"
        f"w.observe(log_w, names={list(KEYS)!r})\n"
        "log_w()\n"
        "w"
    )


def test_compare_weighting_and_attribution_controls(page, lab):
    path = lab.write_notebook("weighing.ipynb", [SETUP_CELL, weighing_cell(lab)])
    open_and_run(page, lab, path)
    log = lab.root / "weigh.state.jsonl"
    first = wait_for_state(log, lambda s: s["revision"] >= 1, timeout_s=90)
    n = len(first["tokens"])
    page.wait_for_function("document.querySelector('[data-view=heatmap]').dataset.drawn?.endsWith(':0:1')")

    # 1. a compare prompt: the heatmap draws A(prompt) - A(compare) in diverging colours
    page.locator("[data-role=analysis] > summary").first.click()  # the analysis bar starts collapsed
    box = page.locator("[data-role=compare-prompt]")
    box.fill(COMPARE)
    box.press("Enter")
    wait_for_state(log, lambda s: s["compare_prompt"] == COMPARE)
    page.wait_for_function("document.querySelector('[data-view=heatmap]').dataset.signed === 'true'")
    diff = np.load(lab.root / "weigh.diff.npy")
    assert diff.min() < -0.05 or diff.max() > 0.05
    colours = matrix_cell_colours(page, n)
    expected = np.array([[red_blue(v) for v in row] for row in diff])
    assert np.abs(colours - expected).max() <= 4, "heatmap pixels differ from the kernel's difference"

    # 2. the one weighting selector reaches the kernel, and the heatmap says what it shows
    assert page.locator("select[data-role=weighting]").count() == 1
    page.locator("select[data-role=weighting]").select_option("value")
    wait_for_state(log, lambda s: s["weighting"] == "value")
    page.wait_for_function("document.querySelector('[data-role=heatmap-context]').textContent.includes('value')")

    # 3. answer and counterfactual: the token strip shades by the selected head's attribution
    page.locator("[data-role=answer]").fill(" mary")
    page.locator("[data-role=answer]").press("Enter")
    page.locator("[data-role=counterfactual]").fill(" john")
    page.locator("[data-role=counterfactual]").press("Enter")
    state = wait_for_state(log, lambda s: s["counterfactual"] == " john" and len(s["attribution"]) == n)
    mode = page.locator("[data-view=tokens] [data-role=shade-mode]")
    while "logit attribution" not in mode.text_content():
        mode.click()
    tokens = page.locator("[data-view=tokens] .aw-token")
    page.wait_for_function("document.querySelector('[data-view=tokens] .aw-token').dataset.weight !== undefined")
    weights = [float(w) for w in tokens.evaluate_all("ts => ts.map(t => t.dataset.weight)")]
    np.testing.assert_allclose(weights, state["attribution"], atol=1e-4)

    # 4. a bad answer shows a clear message; the widget keeps working
    page.locator("[data-role=answer]").fill(" maryjohn")
    page.locator("[data-role=answer]").press("Enter")
    page.wait_for_function("document.querySelector('[data-role=error]').textContent.includes('single token')")
    page.locator("[data-view=grid] button[data-head='2']").click()
    page.wait_for_function("document.querySelector('[data-view=heatmap]').dataset.drawn?.endsWith(':0:2')")
