"""Browser-side measurements in headless Chromium: the explorer in JupyterLab, CircuitsVis
`attention_heads` as the page it generates. Same model, same prompt, same layer."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from attn_widget.testing.lab import Lab, open_and_run

BENCH_DIR = Path(__file__).resolve().parent

SWITCHES = 40
CIRCUITSVIS_SWITCHES = 5


@dataclass
class Paint:
    first_paint_ms: float | None  # None: did not finish within the bound
    switch_ms: list[float]
    first_paint_bytes: int
    switch_bytes: list[int]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> tuple[float, float] | None:
    return (statistics.median(values), percentile(values, 0.95)) if values else None


# The widget marks its render start and its first drawn head (js/widget.ts).
FIRST_PAINT_MS = """() => {
  const [render] = performance.getEntriesByName('attn-widget:render');
  const [paint] = performance.getEntriesByName('attn-widget:first-paint');
  return render && paint ? paint.startTime - render.startTime : null;
}"""

# Walks the selection through heads with the arrow keys; times each until the new head is drawn.
SWITCH_HEADS = """async ([count, nHeads]) => {
  const heatmap = document.querySelector('[data-view=heatmap]');
  const grid = document.querySelector('[data-view=grid]');
  grid.focus();
  const times = [];
  let rightwards = true, head = 0;
  for (let i = 0; i < count; i++) {
    const atEdge = rightwards ? head === nHeads - 1 : head === 0;
    const key = atEdge ? 'ArrowDown' : rightwards ? 'ArrowRight' : 'ArrowLeft';
    if (atEdge) rightwards = !rightwards; else head += key === 'ArrowRight' ? 1 : -1;
    const before = heatmap.dataset.drawn;
    const done = new Promise(resolve => {
      const observer = new MutationObserver(() => {
        if (heatmap.dataset.drawn !== before) { observer.disconnect(); resolve(); }
      });
      observer.observe(heatmap, {attributes: true, attributeFilter: ['data-drawn']});
    });
    const start = performance.now();
    grid.dispatchEvent(new KeyboardEvent('keydown', {key, bubbles: true}));
    await done;
    times.push(performance.now() - start);
  }
  return times;
}"""


def explorer_notebook(lab: Lab, n: int) -> tuple[Path, Path]:
    log = lab.root / f"bytes-{n}.json"
    setup = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(BENCH_DIR)!r})\n"
        "from ipywidgets.widgets.widget import _remove_buffers\n"
        "from models import gpt2_small_shaped, prompt_of\n"
        "from attn_widget import AttentionExplorer\n"
        f"model = gpt2_small_shaped(n_ctx={n})\n"
        f"w = AttentionExplorer(model, prompt=prompt_of(model, {n}))\n"
        "state, _, buffers = _remove_buffers(w.get_state())\n"
        "STATE_BYTES = len(json.dumps(state)) + sum(len(b) for b in buffers)\n"
        "MESSAGES = []\n"
        "_send = w.send\n"
        "def counting_send(content, buffers=None):\n"
        "    MESSAGES.append(len(json.dumps(content)) + sum(len(b) for b in buffers or []))\n"
        "    _send(content, buffers)\n"
        f"    with open({str(log)!r}, 'w') as f:\n"
        "        json.dump({'state': STATE_BYTES, 'messages': MESSAGES}, f)\n"
        "w.send = counting_send"
    )
    return lab.write_notebook(f"bench-{n}.ipynb", [setup, "w"]), log


def measure_explorer(browser, lab: Lab, n: int, n_heads: int) -> Paint:
    notebook, log = explorer_notebook(lab, n)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        open_and_run(page, lab, notebook)
        page.wait_for_function(FIRST_PAINT_MS, timeout=600_000, polling=100)
        first_paint = page.evaluate(FIRST_PAINT_MS)
        switches = page.evaluate(SWITCH_HEADS, [SWITCHES, n_heads])
        time.sleep(0.5)
        sent = json.loads(log.read_text())
    finally:
        page.close()
    return Paint(first_paint, switches, sent["state"] + sent["messages"][0], sent["messages"][1:])


# Ready when every head's canvas is there, then two frames so the drawing is on screen.
CIRCUITSVIS_READY = """(nCanvases) => document.querySelectorAll('canvas').length >= nCanvases"""
TWO_FRAMES = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"

CIRCUITSVIS_SWITCH = """async (count) => {
  const heads = [...document.querySelectorAll('h4')].map(h => h.parentElement);
  const times = [];
  for (let i = 1; i <= count; i++) {
    const start = performance.now();
    heads[i % heads.length].dispatchEvent(new MouseEvent('click', {bubbles: true}));
    await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
    times.push(performance.now() - start);
  }
  return times;
}"""


def measure_circuitsvis(browser, html: str, n_heads: int, bound_s: float) -> Paint:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(bound_s * 1000)
    try:
        start = time.perf_counter()
        page.set_content(f"<!doctype html><html><body>{html}</body></html>", wait_until="load", timeout=bound_s * 1000)
        page.wait_for_function(CIRCUITSVIS_READY, arg=n_heads + 1, timeout=bound_s * 1000, polling=50)
        page.evaluate(TWO_FRAMES)
        first_paint = (time.perf_counter() - start) * 1000
        switches = page.evaluate(CIRCUITSVIS_SWITCH, CIRCUITSVIS_SWITCHES)
    except Exception:  # past the bound (a Playwright timeout): report that, not a number
        return Paint(None, [], len(html.encode()), [])
    finally:
        page.close()
    # Every weight is already in the page: a head switch sends nothing.
    return Paint(first_paint, switches, len(html.encode()), [0] * len(switches))
