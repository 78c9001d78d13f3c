"""Exports in Chromium, offline: the standalone page works and keeps tokens as text, a saved PNG has
the canvas's pixels, and a notebook exported with nbconvert shows the explorer's snapshot."""

from __future__ import annotations

import io
import os
import sys
import urllib.parse
from pathlib import Path

import nbformat
import numpy as np
import pytest
from PIL import Image

from attn_widget import AttentionExplorer
from attn_widget.export.figure import heatmap

pytestmark = pytest.mark.browser

HOSTILE = "mary </script><script>window.pwned=1</script> & <b>john</b> went to the store"
TESTS = Path(__file__).resolve().parents[1]
SRC = TESTS.parent / "src"


def offline_page(browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.route("http*://**", lambda route: route.abort())  # nothing from the network, no CDN
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors


def wait_drawn(page, key: str) -> None:
    page.wait_for_function(
        "(key) => document.querySelector('[data-view=heatmap]')?.dataset.drawn === key", arg=key, timeout=30_000
    )


def test_standalone_page_runs_offline_keeps_tokens_text_and_answers_from_embedded_layers(bridge, browser, tmp_path):
    w = AttentionExplorer(bridge, prompt=HOSTILE, layer=1, head=2)
    path = w.save(tmp_path / "page.html", layers=[1, 2])
    page, errors = offline_page(browser)
    page.goto(path.as_uri())
    wait_drawn(page, "1:1:2")
    assert page.evaluate("window.pwned") is None
    assert (
        page.evaluate("document.querySelectorAll('.attn-widget b, body > script:not([data-attn-widget])').length") == 1
    )
    strip = page.evaluate("[...document.querySelectorAll('[data-view=tokens] button, [data-view=tokens] span')]"
                          ".map(b => b.textContent).join('')")  # fmt: skip
    assert "</script>" in strip.replace(" ", "") or "script" in strip
    page.locator("[data-role=analysis] > summary").first.click()  # the analysis bar starts collapsed
    with page.expect_download() as saved:  # no kernel: the save button downloads the heatmap canvas
        page.locator("[data-role=export] button[data-format=png]").click()
    image = Image.open(saved.value.path())
    canvas_size = page.evaluate(
        "(() => { const c = document.querySelector('[data-role=matrix]'); return [c.width, c.height]; })()"
    )
    assert image.format == "PNG" and list(image.size) == canvas_size
    assert not page.locator("[data-role=export] button[data-format=svg]").is_visible()
    page.keyboard.press("Tab")
    page.evaluate("document.querySelector('[data-view=heatmap]').focus()")
    page.keyboard.press("ArrowDown")  # layer 2 is embedded: drawn from the page's own data
    wait_drawn(page, "1:2:2")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")  # layer 0 is not: a clear message
    page.wait_for_function("document.querySelector('[data-role=error]')?.textContent.includes('not in this page')")
    assert not errors, errors
    page.close()


def test_saved_png_has_the_on_screen_canvas_pixels(bridge, browser, tmp_path):
    """The same head drawn by the front end (standalone page, no kernel) and saved as PNG."""
    w = AttentionExplorer(bridge, prompt="When mary and john went to the store mary gave a drink to", layer=2, head=3)
    for scale in ("linear", "log"):
        w.color_scale = scale
        page, errors = offline_page(browser)
        page.goto(w.save(tmp_path / f"{scale}.html").as_uri())
        wait_drawn(page, "1:2:3")
        canvas = page.evaluate(
            "(() => { const c = document.querySelector('[data-role=matrix]');"
            " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            " return { w: c.width, h: c.height, px: Array.from(d) }; })()"
        )
        page.close()
        shown = np.array(canvas["px"], np.uint8).reshape(canvas["h"], canvas["w"], 4)[..., :3]
        saved = np.asarray(
            Image.open(io.BytesIO(w.save(tmp_path / f"{scale}.png", scale=1).read_bytes())).convert("RGB")
        )
        matrix = next(item for item in heatmap(w.view_data()).items if getattr(item, "role", "") == "matrix")
        n = len(w.tokens)
        x0, y0 = matrix.x + 12, matrix.y + 12 + 40  # figure.figure's padding and header
        for q in range(n):
            for k in range(n):
                on_screen = shown[int((q + 0.5) * canvas["h"] / n), int((k + 0.5) * canvas["w"] / n)]
                in_png = saved[int(y0 + (q + 0.5) * matrix.cell), int(x0 + (k + 0.5) * matrix.cell)]
                assert tuple(on_screen) == tuple(in_png), (scale, q, k)
        assert not errors, errors


def test_notebook_exported_with_nbconvert_shows_the_snapshot_offline(browser, tmp_path):
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "from pathlib import Path\nfrom tiny_models import make_tokenizer, native_model\n"
                "from attn_widget import AttentionExplorer\nmodel = native_model(make_tokenizer(Path('tok')))"
            ),
            nbformat.v4.new_code_cell("w = AttentionExplorer(model, prompt='When mary and john went to the store')\nw"),
            nbformat.v4.new_code_cell("w.head = 3"),  # the snapshot follows (display id update)
        ]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    env_path = os.pathsep.join([str(SRC), str(TESTS), os.environ.get("PYTHONPATH", "")])
    os.environ["PYTHONPATH"], saved_path = env_path, os.environ.get("PYTHONPATH")
    try:
        NotebookClient(
            nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        ).execute()
    finally:
        os.environ["PYTHONPATH"] = saved_path or ""
    outputs = nb.cells[1].outputs
    assert len(outputs) == 2 and "application/vnd.jupyter.widget-view+json" in outputs[0].data
    assert "L0H3 \u00b7" in urllib.parse.unquote(outputs[1].data["text/html"])
    nbformat.write(nb, tmp_path / "saved.ipynb")
    body, _ = HTMLExporter().from_notebook_node(nbformat.read(tmp_path / "saved.ipynb", as_version=4))
    (tmp_path / "saved.html").write_text(body)
    # nbconvert's own page template loads require.js, MathJax and the widget manager from CDNs;
    # the snapshot needs none of them (the page is opened below with the network cut).
    snapshot_html = body[body.index('<div class="aw-snapshot"') :]
    snapshot_html = snapshot_html[: snapshot_html.index("></div>", snapshot_html.index("<img"))]
    assert "<script" not in snapshot_html and "http" not in snapshot_html.replace("http://www.w3.org/2000/svg", "")
    page, _ = offline_page(browser)
    page.goto((tmp_path / "saved.html").as_uri())
    page.wait_for_function("document.querySelector('[data-aw-snapshot] img')?.complete")
    size = page.evaluate(
        "(() => { const i = document.querySelector('[data-aw-snapshot] img');"
        " const r = i.getBoundingClientRect(); return [i.naturalWidth, r.width, r.height]; })()"
    )
    assert size[0] > 400 and size[1] > 100 and size[2] > 100, size
    page.close()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
