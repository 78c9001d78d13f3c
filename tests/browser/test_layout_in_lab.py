"""The screen a researcher reads at a glance, measured in JupyterLab at 1400 x 1000 with the file
browser open, on the demo model with a 40-token prompt: height, heatmap width, interactive elements,
colour bars, no horizontal scroll at 1000 x 800, no serious accessibility violation (axe-core), and
the dataset stepper re-running the model so that tokens, heatmap and prompt agree."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from attn_widget.testing.lab import Lab, open_and_run

from .test_explorer_in_lab import last_state, wait_for_state

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
SENTENCE = (
    "When Mary and John went to the store , Mary gave a drink to John because she was thirsty and the day was very"
    " hot outside so they sat down in the shade of a big old tree near the river bank and talked about the long"
    " summer holidays"
)
WORDS = SENTENCE.split(" ")
DATASET = ["the cat sat on the mat the cat", "mary gave a ball to john", "the park was a store for the head"]
KEYS = ("prompt", "tokens", "revision", "dataset_index", "dataset_size")


def layout_cells(lab: Lab, name: str, dataset: bool) -> list[str]:
    log = lab.root / f"{name}.state.jsonl"
    setup = "import json\nfrom attn_widget import AttentionExplorer\n"
    # The shortest prefix of WORDS that the demo tokenizer makes into at least 40 tokens.
    explorer = (
        f"words = {WORDS!r}\n"
        "w = AttentionExplorer(None, prompt=' '.join(words[:8]))\n"
        "for k in range(8, len(words) + 1):\n"
        "    w.prompt = ' '.join(words[:k])\n"
        "    if len(w.tokens) >= 40:\n"
        "        break\n"
        + (f"w.run_dataset({DATASET!r}, progress=False)\n" if dataset else "")
        + "def log(change=None):\n"
        f"    with open({str(log)!r}, 'a') as f:\n"
        f"        f.write(json.dumps({{k: getattr(w, k) for k in {KEYS!r}}}) + '\\n')\n"
        f"w.observe(log, names={list(KEYS)!r})\n"
        "log()\n"
        "w"
    )
    return [setup, explorer]


def open_layout(page, lab: Lab, name: str, dataset: bool = False) -> Path:
    # A notebook (and so a JupyterLab workspace) of a new name: JupyterLab's default layout, not the
    # panel sizes an earlier run left in ~/.jupyter/lab/workspaces.
    path = lab.write_notebook(f"{name}-{uuid.uuid4().hex[:8]}.ipynb", layout_cells(lab, name, dataset))
    open_and_run(page, lab, path)
    # JupyterLab's default: the file browser open on the left.
    page.evaluate("window.jupyterapp.commands.execute('filebrowser:activate')")
    log = lab.root / f"{name}.state.jsonl"
    state = wait_for_state(log, lambda s: len(s["tokens"]) >= 40, timeout_s=120)
    page.wait_for_function(
        "(r) => document.querySelector('[data-view=heatmap]')?.dataset.drawn?.startsWith(r + ':')",
        arg=state["revision"],
        timeout=60_000,
    )
    page.wait_for_timeout(500)  # the resize observer's layout
    return log


MEASURE = """() => {
  const root = document.querySelector('.attn-widget');
  const output = root.closest('.jp-OutputArea-output') || root.parentElement;
  const visible = (e) => e.checkVisibility ? e.checkVisibility() : e.offsetParent !== null;
  const interactive = [...root.querySelectorAll(
    'button, input, select, textarea, summary, a[href], [tabindex]:not([tabindex="-1"])')]
    .filter((e) => visible(e) && !e.disabled && e.tabIndex >= 0);
  const maps = [...root.querySelectorAll(
    'canvas[data-role=matrix], canvas[data-role=score-map], canvas[data-role=similarity-map]')].filter(visible);
  const withBar = maps.filter((m) => {
    const bar = m.closest('.aw-view').querySelector('[data-role=colorbar]');
    return bar && visible(bar) && bar.dataset.lo !== undefined && bar.dataset.units;
  });
  return {
    height: root.getBoundingClientRect().height,
    outputWidth: output.getBoundingClientRect().width,
    matrixWidth: root.querySelector('canvas[data-role=matrix]').getBoundingClientRect().width,
    interactive: interactive.length,
    interactiveNames: interactive.map((e) => e.tagName + (e.dataset.role ? ':' + e.dataset.role : '')),
    maps: maps.map((m) => m.dataset.role),
    withBar: withBar.map((m) => m.dataset.role),
    analysisOpen: root.querySelector('[data-role=analysis]').open,
    fileBrowser: !!document.querySelector('#filebrowser:not(.lm-mod-hidden)'),
    left: document.querySelector('#jp-left-stack')?.getBoundingClientRect().width,
    right: document.querySelector('#jp-right-stack')?.getBoundingClientRect().width,
    notebook: document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)')?.getBoundingClientRect().width,
  };
}"""

NO_HORIZONTAL_SCROLL = """() => {
  const root = document.querySelector('.attn-widget');
  const output = root.closest('.jp-OutputArea-output') || root.parentElement;
  const scroller = root.closest('.jp-WindowedPanel-outer') || document.scrollingElement;
  return {root: [root.scrollWidth, root.clientWidth], output: [output.scrollWidth, output.clientWidth],
          page: [scroller.scrollWidth, scroller.clientWidth]};
}"""


def axe_violations(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => (await axe.run(document.querySelector('.attn-widget'))).violations"
        ".filter((v) => v.impact === 'serious' || v.impact === 'critical')"
        ".map((v) => ({id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => n.html.slice(0, 120))}))"
    )
    return list(result)


def test_layout_numbers_colour_bars_and_accessibility(page, lab):
    if not AXE.exists():
        pytest.fail("axe-core is missing: run `npm ci`")
    open_layout(page, lab, "layout")
    m = page.evaluate(MEASURE)
    print("layout at 1400x1000:", json.dumps(m))
    assert m["fileBrowser"] and not m["analysisOpen"]
    assert m["height"] <= 1000, m
    assert m["matrixWidth"] >= m["outputWidth"] / 2, m
    assert m["interactive"] <= 20, m
    assert {"matrix", "score-map"} <= set(m["maps"]) and m["withBar"] == m["maps"], m
    scroll = page.evaluate(NO_HORIZONTAL_SCROLL)
    assert all(w <= c + 1 for w, c in scroll.values()), scroll  # nothing wider than the cell at 1400 either

    # the heatmap's colour bar says range, scale and units; a new scale is said at once
    bar = page.locator("[data-view=heatmap] [data-role=colorbar]")
    assert bar.get_attribute("data-lo") == "0" and bar.get_attribute("data-hi") == "1"
    assert "attention" in bar.get_attribute("data-units")
    page.locator("[data-view=heatmap] select[aria-label='colour scale']").select_option("log")
    page.wait_for_function("document.querySelector('[data-view=heatmap] [data-role=colorbar]').dataset.scale === 'log'")
    assert float(bar.get_attribute("data-lo")) == pytest.approx(1e-4)

    # the header growing (a longer context) never moves the picture
    before = page.locator("canvas[data-role=matrix]").bounding_box()
    page.locator("[data-role=analysis] > summary").click()
    page.locator("[data-role=exclude-sinks]").check()
    page.wait_for_function(
        "document.querySelector('[data-role=heatmap-context]').textContent.includes('sinks excluded')"
    )
    page.locator("[data-role=analysis] > summary").click()
    page.wait_for_timeout(300)
    after = page.locator("canvas[data-role=matrix]").bounding_box()
    assert (before["x"], before["width"]) == (after["x"], after["width"])

    violations = axe_violations(page)
    assert not violations, violations

    page.set_viewport_size({"width": 1000, "height": 800})
    page.wait_for_timeout(800)
    scroll = page.evaluate(NO_HORIZONTAL_SCROLL)
    print("scroll widths at 1000x800:", scroll)
    for name, (scroll_width, client_width) in scroll.items():
        assert scroll_width <= client_width + 1, (name, scroll)


def test_dark_theme_has_no_serious_accessibility_violation(page, lab):
    open_layout(page, lab, "layout_dark")
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_function("document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
    page.wait_for_timeout(800)
    violations = axe_violations(page)
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")
    assert not violations, violations


def test_dataset_stepper_reruns_the_model_and_every_view_follows(page, lab):
    """Needs the kernel side of the stepper (a step runs the prompt as `w.dataset_index` does)."""
    log = open_layout(page, lab, "stepper", dataset=True)
    wait_for_state(log, lambda s: s["dataset_size"] == len(DATASET), timeout_s=60)
    page.locator("[data-role=analysis] > summary").click()
    for step, expected in ((0, DATASET[0]), (1, DATASET[1])):
        page.locator("[data-role=dataset-next]").click()
        wait_for_state(log, lambda s, i=step: s["dataset_index"] == i and s["prompt"] == DATASET[i], timeout_s=60)
        page.wait_for_function(
            "(r) => document.querySelector('[data-view=heatmap]')?.dataset.drawn?.startsWith(r + ':')",
            arg=last_state(log)["revision"],
            timeout=30_000,
        )
        state = last_state(log)
        shown = page.evaluate(
            """() => ({
              prompt: document.querySelector('[data-view=prompt] textarea').value,
              tokens: [...document.querySelectorAll('[data-view=tokens] .aw-token')]
                .map((t) => JSON.parse(t.title.split(': ').slice(1).join(': ').split(' \\u00b7 ')[0])),
              position: document.querySelector('[data-role=dataset-position]').textContent.trim(),
            })"""
        )
        assert shown["prompt"] == expected
        assert shown["tokens"] == state["tokens"]
        assert "".join(state["tokens"]).endswith(expected.split()[-1])
        assert shown["position"] == f"{step + 1} / {len(DATASET)}"
