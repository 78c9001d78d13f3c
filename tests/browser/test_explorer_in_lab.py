"""The explorer in JupyterLab, in Chromium: pixels drawn, clicks reach the kernel, prompts re-run."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from attn_widget.testing.lab import Lab, open_and_run

pytestmark = pytest.mark.browser

PROMPT = "When mary and john went to the store mary gave a drink to john"
BLUES = np.array([[247, 251, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]], float)


def blues(value: float) -> np.ndarray:
    """js/colors/colors.ts's lookup: 256 steps along the ramp."""
    t = round(min(max(value, 0.0), 1.0) * 255) / 255 * (len(BLUES) - 1)
    lo = min(int(t), len(BLUES) - 2)
    return BLUES[lo] + (BLUES[lo + 1] - BLUES[lo]) * (t - lo)


def explorer_cell(lab: Lab, name: str, prompt: str = PROMPT) -> str:
    """A cell that shows an explorer `name` and logs its kernel-side state to a file on each change."""
    state_log = lab.root / f"{name}.state.jsonl"
    return (
        f"{name} = AttentionExplorer(model, prompt={prompt!r}, layer=0, head=1)\n"
        f"def log_{name}(change=None, w={name}):\n"
        f"    with open({str(state_log)!r}, 'a') as f:\n"
        "        f.write(json.dumps({k: getattr(w, k) for k in ('layer', 'head', 'tokens', 'revision',"
        " 'focus_token', 'focus_locked')}) + '\\n')\n"
        f"{name}.observe(log_{name}, names=['layer', 'head', 'revision', 'focus_token', 'focus_locked'])\n"
        f"log_{name}()\n"
        f"np.save({str(lab.root / (name + '.pattern.npy'))!r}, {name}.pattern(0, 1))\n"
        f"{name}"
    )


SETUP_CELL = (
    "import json, numpy as np\n"
    "from pathlib import Path\n"
    "from tiny_models import make_tokenizer, native_model\n"
    "from attn_widget import AttentionExplorer\n"
    "model = native_model(make_tokenizer(Path('tok')))"
)


def open_explorers(page, lab: Lab, notebook: str, names: list[str]) -> list[Path]:
    """Run a notebook showing one explorer per name; wait until each has drawn its first head."""
    path = lab.write_notebook(f"{notebook}.ipynb", [SETUP_CELL, *(explorer_cell(lab, n) for n in names)])
    open_and_run(page, lab, path)
    logs = [lab.root / f"{n}.state.jsonl" for n in names]
    for log in logs:
        wait_for_state(log, lambda s: s["revision"] >= 1, timeout_s=90)
    page.wait_for_function(
        f"[...document.querySelectorAll('[data-view=heatmap]')].filter(h => h.dataset.drawn?.endsWith(':0:1'))"
        f".length === {len(names)}",
        timeout=60_000,
    )
    return logs


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


def click_cell(canvas, layer: int, head: int) -> None:
    """Click a layers x heads canvas at a cell, using the geometry it publishes in data attributes."""
    geometry = canvas.evaluate("c => ({...c.dataset})")
    left, top, cell = (float(geometry[k]) for k in ("left", "top", "cell"))
    canvas.click(position={"x": left + (head + 0.5) * cell, "y": top + (layer + 0.5) * cell})


def overlay_rows_lit(page, n: int, nth: int = 0) -> list[bool]:
    """Which query rows of the heatmap's overlay are highlighted."""
    return page.evaluate(
        """([n, nth]) => {
            const c = document.querySelectorAll('[data-view=heatmap] canvas[data-role=overlay]')[nth];
            const ctx = c.getContext('2d');
            return Array.from({length: n}, (_, q) =>
                ctx.getImageData(2, Math.floor((q + 0.5) * c.height / n), 1, 1).data[3] > 0);
        }""",
        [n, nth],
    )


def test_heatmap_pixels_clicks_and_prompt(page, lab):
    (log,) = open_explorers(page, lab, "basics", ["explorer"])
    first = last_state(log)

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
    click_cell(page.locator("[data-view=scores] canvas[data-role=score-map]"), 2, 3)
    wait_for_state(log, lambda s: (s["layer"], s["head"]) == (2, 3))
    page.wait_for_function(
        "document.querySelector('[data-view=heatmap]').dataset.drawn?.endsWith(':2:3')", timeout=30_000
    )

    # 3. clicking a thumbnail in the head grid, or in the overview of all layers, selects that head
    page.locator("[data-view=grid] button[data-head='1']").click()
    wait_for_state(log, lambda s: (s["layer"], s["head"]) == (2, 1))
    click_cell(page.locator("[data-view=overview] canvas[data-role=overview-map]"), 1, 2)
    wait_for_state(log, lambda s: (s["layer"], s["head"]) == (1, 2))
    top = page.locator("[data-view=score-details] [data-role=ranked] button").first
    layer, head = (int(top.get_attribute(a)) for a in ("data-layer", "data-head"))
    assert top.text_content().startswith(f"L{layer}H{head} ")
    top.click()
    wait_for_state(log, lambda s: (s["layer"], s["head"]) == (layer, head))

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


def test_token_hover_highlights_its_row_and_click_locks(page, lab):
    (log,) = open_explorers(page, lab, "tokens", ["focus"])
    n = len(last_state(log)["tokens"])
    pattern = np.load(lab.root / "focus.pattern.npy")
    tokens = page.locator("[data-view=tokens] .aw-token")

    tokens.nth(5).hover()
    assert overlay_rows_lit(page, n) == [q == 5 for q in range(n)]
    wait_for_state(log, lambda s: s["focus_token"] == 5)
    # every token is shaded by the attention it receives from token 5 in this head
    weights = [float(w or "nan") for w in tokens.evaluate_all("ts => ts.map(t => t.dataset.weight)")]
    np.testing.assert_allclose(weights, pattern[5], atol=2e-3)

    page.locator("[data-view=tokens] [data-role=shade-mode]").click()  # attention given to token 5
    tokens.nth(5).hover()
    page.wait_for_function("document.querySelector('[data-view=tokens] .aw-token[data-index=\"0\"]').dataset.weight")
    weights = [float(w) for w in tokens.evaluate_all("ts => ts.map(t => t.dataset.weight)")]
    np.testing.assert_allclose(weights, pattern[:, 5], atol=2e-3)

    tokens.nth(7).click()  # lock on token 7: hovering elsewhere no longer moves the focus
    wait_for_state(log, lambda s: s["focus_locked"] and s["focus_token"] == 7)
    tokens.nth(2).hover()
    page.locator("[data-view=heatmap] canvas[data-role=overlay]").hover(position={"x": 5, "y": 5})
    page.mouse.move(0, 0)
    assert overlay_rows_lit(page, n) == [q == 7 for q in range(n)]
    page.locator("[data-view=grid]").focus()
    page.keyboard.press("Escape")
    wait_for_state(log, lambda s: not s["focus_locked"] and s["focus_token"] == -1)


def test_arrow_keys_move_between_heads_and_layers(page, lab):
    (log,) = open_explorers(page, lab, "keys", ["keys"])
    grid = page.locator("[data-view=grid]")
    grid.focus()
    assert page.evaluate("document.activeElement.dataset.view") == "grid"
    page.keyboard.press("ArrowRight")
    wait_for_state(log, lambda s: (s["layer"], s["head"]) == (0, 2))
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    wait_for_state(log, lambda s: (s["layer"], s["head"]) == (2, 2))
    page.keyboard.press("ArrowDown")  # past the last layer: stays
    page.keyboard.press("ArrowLeft")
    wait_for_state(log, lambda s: (s["layer"], s["head"]) == (2, 1))
    page.wait_for_function("document.querySelector('[data-view=heatmap]').dataset.drawn?.endsWith(':2:1')")
    # typing in the prompt box does not move the selection
    page.locator("[data-view=prompt] textarea").press("ArrowLeft")
    time.sleep(0.5)
    assert (last_state(log)["layer"], last_state(log)["head"]) == (2, 1)


def test_two_explorers_in_one_notebook_do_not_interfere(page, lab):
    first, second = open_explorers(page, lab, "two", ["left", "right"])
    click_cell(page.locator("[data-view=scores] canvas[data-role=score-map]").nth(1), 2, 3)
    wait_for_state(second, lambda s: (s["layer"], s["head"]) == (2, 3))
    page.wait_for_function(
        "document.querySelectorAll('[data-view=heatmap]')[1].dataset.drawn?.endsWith(':2:3')", timeout=30_000
    )
    assert (last_state(first)["layer"], last_state(first)["head"]) == (0, 1)
    drawn = page.evaluate("Array.from(document.querySelectorAll('[data-view=heatmap]'), h => h.dataset.drawn)")
    assert drawn[0].endswith(":0:1") and drawn[1].endswith(":2:3")
    page.locator("[data-view=tokens]").nth(0).locator(".aw-token").nth(3).hover()
    wait_for_state(first, lambda s: s["focus_token"] == 3)
    assert last_state(second)["focus_token"] == -1
    n = len(last_state(second)["tokens"])
    assert not any(overlay_rows_lit(page, n, nth=1))

    # re-running the cells gives new explorers whose views work
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    wait_for_state(second, lambda s: (s["layer"], s["head"], s["focus_token"]) == (0, 1, -1))
    page.wait_for_function(
        "[...document.querySelectorAll('[data-view=heatmap]')].filter(h => h.dataset.drawn?.endsWith(':0:1'))"
        ".length === 2",
        timeout=60_000,
    )
    click_cell(page.locator("[data-view=scores] canvas[data-role=score-map]").nth(1), 1, 2)
    wait_for_state(second, lambda s: (s["layer"], s["head"]) == (1, 2))


def test_follows_the_jupyterlab_dark_theme(page, lab):
    open_explorers(page, lab, "theme", ["themed"])
    canvas = "document.querySelector('[data-view=heatmap] canvas[data-role=matrix]')"
    # the top-right cell has no attention (causal mask): background colour of the scale
    corner = f"Array.from({canvas}.getContext('2d').getImageData({canvas}.width - 3, 3, 1, 1).data.slice(0, 3))"
    assert sum(page.evaluate(corner)) > 600  # light
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_function(f"{corner}.reduce((a, b) => a + b) < 150", timeout=30_000)
    if shots := os.environ.get("ATTN_WIDGET_SCREENSHOTS"):
        page.locator(".attn-widget").screenshot(path=str(Path(shots) / "explorer-dark.png"))
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")


def test_long_prompts_zoom_into_tiles_that_match_the_pattern(page, lab):
    long_prompt = " ".join(["When mary and john went to the store mary gave a drink to john"] * 60)
    setup = SETUP_CELL.replace(
        "native_model(make_tokenizer(Path('tok')))", "native_model(make_tokenizer(Path('tok')), n_ctx=1024)"
    )
    notebook = lab.write_notebook("long.ipynb", [setup, explorer_cell(lab, "long", prompt=long_prompt)])
    open_and_run(page, lab, notebook)
    log = lab.root / "long.state.jsonl"
    n = len(wait_for_state(log, lambda s: s["revision"] >= 1, timeout_s=90)["tokens"])
    assert n > 512  # past whole-head size: the heatmap shows tiles
    heatmap = page.locator("[data-view=heatmap]")
    page.wait_for_function("document.querySelector('[data-view=heatmap]').dataset.drawn?.endsWith(':0:1')")
    assert heatmap.get_attribute("data-window") == f"0:{n}:0:{n}"

    heatmap.focus()
    for _ in range(18):  # zoom in around the centre, 1.25x a step
        page.keyboard.press("+")
    window = heatmap.get_attribute("data-window")
    q0, q1, k0, k1 = (int(v) for v in window.split(":"))
    span = q1 - q0
    assert span <= 40 and (k1 - k0) == span and q0 > 0
    pattern = np.load(lab.root / "long.pattern.npy")
    # the kernel's tile of exactly this window arrives, one cell per token: compare every cell
    page.wait_for_function(f"document.querySelector('[data-view=heatmap]').dataset.tile === '{window}'")
    colours = matrix_cell_colours(page, span)
    expected = np.array([[blues(v) for v in row[k0:k1]] for row in pattern[q0:q1]])
    assert np.abs(colours - expected).max() <= 4


def run_in_kernel(page, code: str) -> None:
    """Run code in the open notebook's kernel (as the lead's progressive scoring would set traits)."""
    page.evaluate(
        "(code) => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
        ".requestExecute({code}).done.then(() => true)",
        code,
    )


def overlay_rows_lit_in_window(page, nth: int = 0) -> list[int]:
    """The token indices of the heatmap's highlighted query rows, in its current (zoomed) window."""
    return page.evaluate(
        """(nth) => {
            const h = document.querySelectorAll('[data-view=heatmap]')[nth];
            const [q0, q1] = h.dataset.window.split(':').map(Number);
            const c = h.querySelector('canvas[data-role=overlay]');
            const ctx = c.getContext('2d');
            const span = q1 - q0;
            const lit = [];
            for (let q = 0; q < span; q++) {
                if (ctx.getImageData(2, Math.floor((q + 0.5) * c.height / span), 1, 1).data[3] > 0) lit.push(q0 + q);
            }
            return lit;
        }""",
        nth,
    )


def test_a_long_prompt_shows_a_window_of_tokens_and_jumps_anywhere(page, lab):
    long_prompt = " ".join([PROMPT] * 240)
    setup = SETUP_CELL.replace(
        "native_model(make_tokenizer(Path('tok')))", "native_model(make_tokenizer(Path('tok')), n_ctx=4096)"
    )
    notebook = lab.write_notebook("window.ipynb", [setup, explorer_cell(lab, "far", prompt=long_prompt)])
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    open_and_run(page, lab, notebook)
    log = lab.root / "far.state.jsonl"
    n = len(wait_for_state(log, lambda s: s["revision"] >= 1, timeout_s=120)["tokens"])
    assert n >= 3000
    page.wait_for_function("document.querySelector('[data-view=heatmap]').dataset.drawn?.endsWith(':0:1')")
    strip = page.locator("[data-view=tokens]")
    tokens = strip.locator(".aw-token")
    assert 0 < tokens.count() <= 400  # a window, not one node per token

    # 1. typing a far position focuses (locks) that token in the kernel, the strip and the heatmap
    target = n - 500
    box = strip.locator("[data-role=token-jump]")
    box.fill(str(target))
    box.press("Enter")
    wait_for_state(log, lambda s: s["focus_locked"] and s["focus_token"] == target)
    page.wait_for_function(
        f"document.querySelector('[data-view=tokens] .aw-token.aw-focused')?.dataset.index === '{target}'"
    )
    assert tokens.count() <= 400
    q0, q1, _, _ = (int(v) for v in page.locator("[data-view=heatmap]").get_attribute("data-window").split(":"))
    assert q0 <= target < q1 and q1 - q0 <= 256  # the heatmap zoomed in around it
    assert overlay_rows_lit_in_window(page) == [target]
    if shots := os.environ.get("ATTN_WIDGET_SCREENSHOTS"):
        page.locator(".attn-widget").screenshot(path=str(Path(shots) / "explorer-long-prompt.png"))

    # 2. hovering a token of the window focuses it and lights its heatmap row; tokens are shaded by its row
    page.locator("[data-view=grid]").focus()
    page.keyboard.press("Escape")
    wait_for_state(log, lambda s: not s["focus_locked"])
    hovered = target + 7
    strip.locator(f".aw-token[data-index='{hovered}']").hover()
    wait_for_state(log, lambda s: s["focus_token"] == hovered)
    assert overlay_rows_lit_in_window(page) == [hovered]
    page.wait_for_function(
        f"document.querySelector('[data-view=tokens] .aw-token[data-index=\"{hovered}\"]')?.dataset.weight"
    )
    shown = tokens.evaluate_all("ts => ts.map(t => [Number(t.dataset.index), Number(t.dataset.weight)])")
    pattern = np.load(lab.root / "far.pattern.npy")
    indices, weights = np.array(shown).T
    np.testing.assert_allclose(weights, pattern[hovered, indices.astype(int)], atol=2e-3)

    # 3. hovering a heatmap row far from the strip's window brings that token into the strip
    heatmap_overlay = page.locator("[data-view=heatmap] canvas[data-role=overlay]")
    heatmap_overlay.dblclick(position={"x": 5, "y": 5})  # back to the whole prompt
    page.wait_for_function(f"document.querySelector('[data-view=heatmap]').dataset.window === '0:{n}:0:{n}'")
    size = heatmap_overlay.bounding_box()["height"]
    heatmap_overlay.hover(position={"x": 5, "y": size * 0.1})
    far = wait_for_state(log, lambda s: 0 <= s["focus_token"] < n // 4)["focus_token"]
    page.wait_for_function(
        f"document.querySelector('[data-view=tokens] .aw-token.aw-focused')?.dataset.index === '{far}'"
    )
    assert tokens.count() <= 400

    # 4. the minimap shows another part of the prompt without moving the focus
    page.mouse.move(0, 0)
    minimap = strip.locator("[data-role=token-minimap]")
    box_width = minimap.bounding_box()["width"]
    minimap.click(position={"x": box_width * 0.5, "y": 4})
    start, end = (int(v) for v in strip.get_attribute("data-window").split(":"))
    assert start <= n // 2 < end and end - start <= 400
    assert not errors, errors


def test_scores_and_thumbnails_of_layers_still_pending(page, lab):
    (log,) = open_explorers(page, lab, "pending", ["pending"])
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    # What the kernel publishes while only layer 0 is scored: null rows, all-zero thumbnails.
    run_in_kernel(
        page,
        "full = (dict(pending.score_table), pending.thumbnails)\n"
        "table = {k: [v[0][:1] + [None] * (len(v[0]) - 1)] + [None] * (len(v) - 1) for k, v in full[0].items()}\n"
        "per_layer = len(full[1]) // pending.n_layers\n"
        "with pending.hold_sync():\n"
        "    pending.set_trait('score_table', table)\n"
        "    pending.set_trait('thumbnails', full[1][:per_layer] + bytes(len(full[1]) - per_layer))\n"
        "    pending.set_trait('scored_layers', 1)\n",
    )
    progress = page.locator("[data-view=scores] [data-role=score-progress]")
    page.wait_for_function("document.querySelector('[data-role=score-progress]').textContent.includes('1 / 3')")
    assert progress.text_content() == "scores: 1 / 3 layers"
    score_map = page.locator("[data-view=scores] canvas[data-role=score-map]")
    geometry = score_map.evaluate("c => ({...c.dataset})")
    left, top, cell = (float(geometry[k]) for k in ("left", "top", "cell"))

    def score_pixel(layer: int, head: int) -> list[int]:
        x, y = left + head * cell + 1, top + layer * cell + 1
        return score_map.evaluate(
            "(c, [x, y]) => { const r = c.width / parseFloat(c.style.width);"
            " const px = c.getContext('2d').getImageData(Math.floor(x * r), Math.floor(y * r), 1, 1);"
            " return Array.from(px.data.slice(0, 3)); }",
            [x, y],
        )

    assert score_pixel(2, 3) == [200, 200, 200]  # a pending layer: hatched grey
    # a null in a scored layer is an undefined score (NaN weights), in the undefined colour
    assert score_pixel(0, 1) == [255, 0, 200]
    ranked = page.locator("[data-view=score-details] [data-role=ranked] button")
    assert ranked.count() == 1 and ranked.first.get_attribute("data-layer") == "0"
    page.wait_for_function("document.querySelector('[data-view=overview]').dataset.pending === '8'")
    # a head of a pending layer can still be selected and drawn (the kernel has its pattern)
    click_cell(score_map, 2, 3)
    wait_for_state(log, lambda s: (s["layer"], s["head"]) == (2, 3))
    page.wait_for_function("document.querySelector('[data-view=grid]').dataset.pending === '4'")
    if shots := os.environ.get("ATTN_WIDGET_SCREENSHOTS"):
        page.locator(".attn-widget").screenshot(path=str(Path(shots) / "explorer-pending.png"))

    run_in_kernel(
        page,
        "with pending.hold_sync():\n"
        "    pending.set_trait('thumbnails', full[1])\n"
        "    pending.set_trait('score_table', full[0])\n"
        "    pending.set_trait('scored_layers', 3)\n",
    )
    page.wait_for_function("document.querySelector('[data-role=score-progress]').hidden")
    page.wait_for_function("document.querySelector('[data-view=overview]').dataset.pending === '0'")
    assert score_pixel(2, 3) != [200, 200, 200]
    assert ranked.count() == 8
    assert not errors, errors


def test_hidpi_wide_heatmap_of_a_long_prompt_shows_the_kernels_largest_tile(browser, lab):
    """At devicePixelRatio 2 a 560-pixel heatmap has 1120 device pixels a side: the front end must ask
    for no more than the kernel's largest tile (MAX_TILE_CELLS), and draw what the kernel sends."""
    import torch
    import torch.nn.functional as F

    from attn_widget.contract import MAX_TILE_CELLS
    from attn_widget.maths.reductions import to_uint8

    long_prompt = " ".join(["When mary and john went to the store mary gave a drink to john"] * 90)
    setup = SETUP_CELL.replace(
        "native_model(make_tokenizer(Path('tok')))", "native_model(make_tokenizer(Path('tok')), n_ctx=2048)"
    )
    context = browser.new_context(viewport={"width": 1800, "height": 1100}, device_scale_factor=2)
    page = context.new_page()
    try:
        notebook = lab.write_notebook("hidpi.ipynb", [setup, explorer_cell(lab, "hidpi", prompt=long_prompt)])
        open_and_run(page, lab, notebook)
        log = lab.root / "hidpi.state.jsonl"
        n = len(wait_for_state(log, lambda s: s["revision"] >= 1, timeout_s=120)["tokens"])
        assert n > MAX_TILE_CELLS  # longer than the largest tile, and than the whole-head limit
        # the kernel's pushed tile may show first (data-exact false): wait for the one asked for
        page.wait_for_function(
            "(() => { const h = document.querySelector('[data-view=heatmap]');"
            " return h.dataset.drawn?.endsWith(':0:1') && h.dataset.exact === 'true'; })()",
            timeout=60_000,
        )
        heatmap = page.locator("[data-view=heatmap]")
        side = page.evaluate("document.querySelector('[data-view=heatmap] canvas[data-role=matrix]').width")
        assert side > MAX_TILE_CELLS  # a wide cell on a 2x screen: more device pixels than the largest tile
        assert heatmap.get_attribute("data-tile") == f"0:{n}:0:{n}"
        assert heatmap.get_attribute("data-tile-cells") == f"{MAX_TILE_CELLS}x{MAX_TILE_CELLS}"
        assert page.locator("[data-role=error]").is_hidden()

        pattern = torch.from_numpy(np.load(lab.root / "hidpi.pattern.npy"))
        # the kernel's tile: adaptive max-pooling of the whole head (reductions.pooled_window), as bytes
        tile = to_uint8(F.adaptive_max_pool2d(pattern[None], MAX_TILE_CELLS)[0]).numpy() / 255
        step = 8  # every 8th cell each way: 128 x 128 samples
        colours = np.array(
            page.evaluate(
                """([cells, step]) => {
                    const c = document.querySelector('[data-view=heatmap] canvas[data-role=matrix]');
                    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                    const out = [];
                    for (let r = 0; r < cells; r += step) for (let k = 0; k < cells; k += step) {
                        const x = Math.floor((k + 0.5) * c.width / cells), y = Math.floor((r + 0.5) * c.height / cells);
                        const i = 4 * (y * c.width + x);
                        out.push([px[i], px[i + 1], px[i + 2]]);
                    }
                    return out;
                }""",
                [MAX_TILE_CELLS, step],
            ),
            float,
        ).reshape(MAX_TILE_CELLS // step, MAX_TILE_CELLS // step, 3)
        expected = np.array([[blues(v) for v in row[::step]] for row in tile[::step]])
        assert np.abs(colours - expected).max() <= 4
    finally:
        context.close()


def test_every_display_of_one_explorer_works_and_a_restart_shows_the_kernel_gone(page, lab):
    cell = explorer_cell(lab, "twice").rsplit("\n", 1)[0] + "\ndisplay(twice)\ndisplay(twice)"
    notebook = lab.write_notebook("twice.ipynb", [SETUP_CELL, cell])
    open_and_run(page, lab, notebook)
    log = lab.root / "twice.state.jsonl"
    wait_for_state(log, lambda s: s["revision"] >= 1, timeout_s=90)
    drawn = "[...document.querySelectorAll('[data-view=heatmap]')].filter(h => h.dataset.drawn?.endsWith('{}')).length"
    page.wait_for_function(f"{drawn.format(':0:1')} === 2", timeout=60_000)
    # a click in the second display moves both: they share the model, each asks for its own head
    click_cell(page.locator("[data-view=scores] canvas[data-role=score-map]").nth(1), 2, 3)
    wait_for_state(log, lambda s: (s["layer"], s["head"]) == (2, 3))
    page.wait_for_function(f"{drawn.format(':2:3')} === 2", timeout=30_000)
    assert page.locator("[data-role=kernel-gone]").nth(0).is_hidden()

    page.evaluate("window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()")
    page.wait_for_function(
        "[...document.querySelectorAll('[data-role=kernel-gone]')].filter(e => !e.hidden).length === 2",
        timeout=30_000,
    )
    assert "Kernel gone" in page.locator("[data-role=kernel-gone]").nth(0).inner_text()


# Records, at every change of the heatmap's markers, which head it shows (as drawn weights or as a
# preview) and which head the grid has selected at that moment.
WATCH_SHOWN = """() => {
  const heatmap = document.querySelector('[data-view=heatmap]');
  const grid = document.querySelector('[data-view=grid]');
  window.shownLog = [];
  new MutationObserver(() => {
    const selected = grid.querySelector('.aw-thumb.aw-selected');
    window.shownLog.push({
      drawn: heatmap.dataset.drawn ?? null, preview: heatmap.dataset.preview ?? null,
      selected: `${grid.querySelector('select').value}:${selected?.dataset.head}`,
    });
  }).observe(heatmap, {attributes: true, attributeFilter: ['data-drawn', 'data-preview']});
}"""


def test_hammered_arrow_keys_never_show_a_stale_head_as_current(page, lab):
    name = "hammer"
    save_all = (
        f"np.save({str(lab.root / 'all.npy')!r}, np.stack([np.stack([{name}.pattern(l, h) for h in range(4)])"
        " for l in range(3)]))\n"
    )
    cell = explorer_cell(lab, name).removesuffix(name) + save_all + name  # the explorer stays the last line
    notebook = lab.write_notebook("hammer.ipynb", [SETUP_CELL, cell])
    open_and_run(page, lab, notebook)
    log = lab.root / f"{name}.state.jsonl"
    n = len(wait_for_state(log, lambda s: s["revision"] >= 1, timeout_s=90)["tokens"])
    page.wait_for_function("document.querySelector('[data-view=heatmap]')?.dataset.drawn?.endsWith(':0:1')")
    patterns = np.load(lab.root / "all.npy")
    page.evaluate(WATCH_SHOWN)
    page.locator("[data-view=grid]").focus()
    rng = np.random.default_rng(0)
    moves = {"ArrowLeft": (0, -1), "ArrowRight": (0, 1), "ArrowUp": (-1, 0), "ArrowDown": (1, 0)}
    layer, head = 0, 1
    for round_ in range(3):
        for key in rng.choice(list(moves), size=40):
            page.keyboard.press(str(key))  # as fast as Playwright types: replies arrive out of step
            dl, dh = moves[str(key)]
            layer, head = min(max(layer + dl, 0), 2), min(max(head + dh, 0), 3)
        wait_for_state(log, lambda s, want=(layer, head): (s["layer"], s["head"]) == want)
        page.wait_for_function(
            f"document.querySelector('[data-view=heatmap]').dataset.drawn?.endsWith(':{layer}:{head}')",
            timeout=30_000,
        )
        time.sleep(0.3)  # late replies to earlier presses must not replace it
        heatmap = page.locator("[data-view=heatmap]")
        assert heatmap.get_attribute("data-drawn").endswith(f":{layer}:{head}"), f"round {round_}"
        assert heatmap.get_attribute("data-preview") is None
        colours = matrix_cell_colours(page, n)
        expected = np.array([[blues(v) for v in row] for row in patterns[layer, head]])
        assert np.abs(colours - expected).max() <= 4, f"round {round_}: pixels differ from the kernel's head"
    shown = page.evaluate("window.shownLog")
    assert len(shown) > 40
    for record in shown:  # whatever is on the canvas is the selected head, drawn or as a preview
        current = record["drawn"] or record["preview"]
        assert current is not None and current.split(":", 1)[1] == record["selected"], record
