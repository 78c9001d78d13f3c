"""Browser-side measurements in headless Chromium: the explorer in JupyterLab, CircuitsVis
`attention_heads` as the page it generates. Same model, same prompt, same layer."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from attn_widget.testing.lab import Lab, open_and_run

BENCH_DIR = Path(__file__).resolve().parent

SWITCHES = 40
PACE_MS = 200
JUMPS = 20
SETTLE_S = 1.5
CIRCUITSVIS_SWITCHES = 5


@dataclass
class Paint:
    first_paint_ms: float | None  # None: did not finish within the bound
    switch_ms: list[float]
    first_paint_bytes: int
    switch_bytes: list[int]
    # the explorer only (issue 14): each list is one kind of input, timed to the new head drawn
    paced_ms: list[float] = field(default_factory=list)
    jump_ms: list[float] = field(default_factory=list)
    jump_visible_ms: list[float] = field(default_factory=list)  # to its thumbnail preview, or the head
    layer_walk_bytes: int = 0  # first paint, prefetch and a walk through every head of one layer
    # the same walk as the explorer did before prefetch: the first head, then one head per switch
    # (a head's reply is the smallest message the walk makes)
    today_bytes: int = 0


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

# Input to the explorer, timed from the event to the new head drawn: its weights on the canvas
# (data-drawn names it; a thumbnail preview does not count), and to anything of it (a preview).
# Arrow keys go to the head grid; a jump is a click on the overview of all heads.
SWITCH_SETUP = """([nLayers, nHeads]) => {
  const heatmap = document.querySelector('[data-view=heatmap]');
  const grid = document.querySelector('[data-view=grid]');
  const overview = document.querySelector('[data-view=overview] canvas');
  const state = {layer: 0, head: 0, rightwards: true};
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  function timed(act, want) {
    const shows = (name) => heatmap.dataset[name]?.endsWith(`:${want}`);
    return new Promise(resolve => {
      let visible = null;
      const start = performance.now();
      const check = () => {
        if (visible === null && (shows('drawn') || shows('preview'))) visible = performance.now() - start;
        if (shows('drawn')) { observer.disconnect(); resolve([performance.now() - start, visible]); }
      };
      const observer = new MutationObserver(check);
      observer.observe(heatmap, {attributes: true, attributeFilter: ['data-drawn', 'data-preview']});
      act();
      check();
    });
  }
  /** The next press of a walk snaking through the heads, one layer after another. */
  function step() {
    const atEdge = state.rightwards ? state.head === nHeads - 1 : state.head === 0;
    const key = atEdge ? 'ArrowDown' : state.rightwards ? 'ArrowRight' : 'ArrowLeft';
    if (atEdge) { state.rightwards = !state.rightwards; state.layer = Math.min(state.layer + 1, nLayers - 1); }
    else state.head += state.rightwards ? 1 : -1;
    const press = () => grid.dispatchEvent(new KeyboardEvent('keydown', {key, bubbles: true}));
    return timed(press, `${state.layer}:${state.head}`);
  }
  function jump(layer, head) {
    const g = overview.dataset, r = overview.getBoundingClientRect();
    const x = r.left + Number(g.left) + (head + 0.5) * Number(g.cell);
    const y = r.top + Number(g.top) + (layer + 0.5) * Number(g.cell);
    state.layer = layer; state.head = head;
    const click = () => overview.dispatchEvent(new MouseEvent('click', {clientX: x, clientY: y, bubbles: true}));
    return timed(click, `${layer}:${head}`);
  }
  /** `count` presses; each waits for its head, then until `paceMs` after its start. */
  window.awWalk = async (count, paceMs) => {
    grid.focus();
    const times = [];
    for (let i = 0; i < count; i++) {
      const [drawn] = await step();
      times.push(drawn);
      if (paceMs) await sleep(Math.max(0, paceMs - drawn));
    }
    return times;
  };
  window.awJumps = async (count, paceMs, seed) => {
    let x = seed;
    const random = () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
    const drawn = [], visible = [];
    for (let i = 0; i < count; i++) {
      let layer, head;
      do { layer = Math.floor(random() * nLayers); head = Math.floor(random() * nHeads); }
      while (layer === state.layer && head === state.head);
      const [d, v] = await jump(layer, head);
      drawn.push(d); visible.push(v);
      await sleep(Math.max(0, paceMs - d));
    }
    return [drawn, visible];
  };
}"""


def kernel_sent(log: Path) -> tuple[int, list[int]]:
    sent = json.loads(log.read_text())
    return sent["state"], sent["messages"]


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


def measure_explorer(browser, lab: Lab, n: int, n_layers: int, n_heads: int, switches: int = SWITCHES) -> Paint:
    """First paint, then: a walk through one layer's heads (its bytes are what a prompt costs),
    back-to-back presses on through the layers, presses 200 ms apart, random jumps 200 ms apart."""
    notebook, log = explorer_notebook(lab, n)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        open_and_run(page, lab, notebook)
        page.wait_for_function(FIRST_PAINT_MS, timeout=600_000, polling=100)
        first_paint = page.evaluate(FIRST_PAINT_MS)
        time.sleep(SETTLE_S)  # a person looks at the first head before pressing a key
        state, messages = kernel_sent(log)
        first_bytes = state + sum(messages)
        page.evaluate(SWITCH_SETUP, [n_layers, n_heads])
        walk = page.evaluate("(c) => window.awWalk(c, 0)", n_heads - 1)  # through layer 0
        time.sleep(SETTLE_S)
        _, messages = kernel_sent(log)
        layer_walk_bytes = state + sum(messages)
        walk += page.evaluate("(c) => window.awWalk(c, 0)", max(0, switches - len(walk)))
        paced = page.evaluate("([c, pace]) => window.awWalk(c, pace)", [switches, PACE_MS])
        jumps, visible = page.evaluate("([c, pace]) => window.awJumps(c, pace, 7)", [JUMPS, PACE_MS])
        time.sleep(0.5)
        _, messages = kernel_sent(log)
    finally:
        page.close()
    return Paint(
        first_paint, walk, first_bytes, messages[1:], paced, jumps, visible,
        layer_walk_bytes, state + min(messages) * n_heads,
    )  # fmt: skip


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
