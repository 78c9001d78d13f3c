"""The explorer in JupyterLab, in Chromium: pixels drawn, clicks reach the kernel, prompts re-run."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from .conftest import Lab, open_and_run

pytestmark = pytest.mark.browser

PROMPT = "When mary and john went to the store mary gave a drink to john"
BLUES = np.array([[247, 251, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]], float)


def blues(value: float) -> np.ndarray:
    """js/colors.ts's lookup: 256 steps along the ramp."""
    t = round(min(max(value, 0.0), 1.0) * 255) / 255 * (len(BLUES) - 1)
    lo = min(int(t), len(BLUES) - 2)
    return BLUES[lo] + (BLUES[lo + 1] - BLUES[lo]) * (t - lo)


def explorer_notebook(lab: Lab, name: str) -> tuple[Path, Path]:
    state_log = lab.root / f"{name}.state.jsonl"
    cells = [
        "import json, numpy as np\n"
        "from pathlib import Path\n"
        "from tiny_models import make_tokenizer, native_model\n"
        "from attn_widget import AttentionExplorer\n"
        f"model = native_model(make_tokenizer(Path({str(lab.root / 'tok')!r})))",
        f"w = AttentionExplorer(model, prompt={PROMPT!r}, layer=0, head=1)\n"
        "def log(change=None):\n"
        f"    with open({str(state_log)!r}, 'a') as f:\n"
        "        f.write(json.dumps({'layer': w.layer, 'head': w.head, 'tokens': w.tokens,"
        " 'revision': w.revision}) + '\\n')\n"
        "w.observe(log, names=['layer', 'head', 'revision'])\n"
        "log()\n"
        f"np.save({str(lab.root / (name + '.pattern.npy'))!r}, w.pattern(0, 1))\n"
        "w",
    ]
    return lab.write_notebook(f"{name}.ipynb", cells), state_log


def last_state(log: Path) -> dict:
    lines = log.read_text().splitlines() if log.exists() else []
    return json.loads(lines[-1]) if lines else {}


def wait_for_state(log: Path, predicate, timeout_s: float = 30) -> dict:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        state = last_state(log)
        if state and predicate(state):
            return state
        time.sleep(0.2)
    raise AssertionError(f"kernel state never matched; last: {last_state(log)}")


def matrix_cell_colours(page, n: int) -> np.ndarray:
    """The heatmap canvas's pixel at the centre of each of the n x n cells."""
    return np.array(
        page.evaluate(
            """(n) => {
                const c = document.querySelector('[data-view=heatmap] canvas[data-role=matrix]');
                const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                const out = [];
                for (let q = 0; q < n; q++) for (let k = 0; k < n; k++) {
                    const x = Math.floor((k + 0.5) * c.width / n), y = Math.floor((q + 0.5) * c.height / n);
                    const i = 4 * (y * c.width + x);
                    out.push([px[i], px[i + 1], px[i + 2]]);
                }
                return out;
            }""",
            n,
        ),
        float,
    ).reshape(n, n, 3)


def test_heatmap_pixels_clicks_and_prompt(page, lab):
    notebook, log = explorer_notebook(lab, "explorer")
    open_and_run(page, lab, notebook)
    heatmap = page.locator("[data-view=heatmap]")
    heatmap.wait_for(timeout=90_000)
    first = wait_for_state(log, lambda s: s["revision"] >= 1)
    page.wait_for_function(
        "document.querySelector('[data-view=heatmap]').dataset.drawn?.endsWith(':0:1')", timeout=30_000
    )

    # 1. the canvas shows the kernel's pattern, cell by cell, in the colour scale
    pattern = np.load(lab.root / "explorer.pattern.npy")
    n = len(first["tokens"])
    assert pattern.shape == (n, n)
    colours = matrix_cell_colours(page, n)
    expected = np.array([[blues(v) for v in row] for row in pattern])
    assert np.abs(colours - expected).max() <= 4, "heatmap pixels differ from the pattern"
    assert np.ptp(colours) > 50  # not a blank canvas
    if shots := os.environ.get("ATTN_WIDGET_SCREENSHOTS"):
        page.locator(".attn-widget").screenshot(path=str(Path(shots) / "explorer-light.png"))

    # 2. clicking a score cell selects that head in the kernel
    canvas = page.locator("[data-view=scores] canvas[data-role=score-map]")
    geometry = canvas.evaluate("c => ({...c.dataset})")
    left, top, cell = (float(geometry[k]) for k in ("left", "top", "cell"))
    canvas.click(position={"x": left + (3 + 0.5) * cell, "y": top + (2 + 0.5) * cell})
    wait_for_state(log, lambda s: (s["layer"], s["head"]) == (2, 3))
    page.wait_for_function(
        "document.querySelector('[data-view=heatmap]').dataset.drawn?.endsWith(':2:3')", timeout=30_000
    )

    # 3. clicking a thumbnail in the head grid selects that head
    page.locator("[data-view=grid] button[data-head='1']").click()
    wait_for_state(log, lambda s: (s["layer"], s["head"]) == (2, 1))

    # 4. typing a prompt re-runs the model and updates the tokens in the kernel and on the page
    box = page.locator("[data-view=prompt] textarea")
    box.fill("the cat sat on the mat")
    box.press("Enter")
    state = wait_for_state(log, lambda s: s["revision"] > first["revision"])
    assert "".join(state["tokens"][1:]) == "the cat sat on the mat"
    count = len(state["tokens"])
    page.wait_for_function(f"document.querySelectorAll('[data-view=tokens] .aw-token').length === {count}")
    shown = page.locator("[data-view=tokens] .aw-token").all_text_contents()
    assert "".join(shown[1:]) == "the cat sat on the mat"

    # 5. a bad prompt shows a clear message in the widget, and the widget keeps working
    box.fill("   ")
    box.press("Enter")
    error = page.locator("[data-view=prompt] ~ [data-role=error]")
    page.wait_for_function("document.querySelector('[data-role=error]').textContent.includes('empty')")
    assert "empty" in error.text_content()
    box.fill("the cat")
    box.press("Enter")
    wait_for_state(log, lambda s: "".join(s["tokens"][1:]) == "the cat")
    page.wait_for_function("document.querySelector('[data-role=error]').hidden")
