"""Figures and pages: colours equal the front end's, cells equal the pattern, tokens stay text."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from attn_widget import AttentionExplorer
from attn_widget.errors import AttnWidgetError
from attn_widget.export import colormaps
from attn_widget.export.figure import Cells, heatmap
from attn_widget.export.svg import cells_png
from attn_widget.maths import encoding as wire
from attn_widget.widget.saving import figure_bytes

REPO = Path(__file__).resolve().parents[2]
HOSTILE = "mary </script><script>window.pwned=1</script> & <b>john</b>\u2028 gave"
BLUES_STOPS = [(247, 251, 255), (198, 219, 239), (107, 174, 214), (33, 113, 181), (8, 48, 107)]


@pytest.fixture
def explorer(bridge):
    return AttentionExplorer(bridge, prompt="When mary and john went to the store mary gave a drink", layer=1, head=2)


def naive_blues(value: float) -> tuple[int, int, int]:
    """An independent reading of js/colors/colors.ts: 256 steps along the stops, each channel rounded."""
    index = 0 if not value > 0 else 255 if value >= 1 else int(value * 255 + 0.5)
    t = index / 255 * 4
    lo = min(int(t), 3)
    a, b = np.array(BLUES_STOPS[lo], float), np.array(BLUES_STOPS[lo + 1], float)
    return tuple(round(c) for c in a + (b - a) * (t - lo))


def test_colour_tables_and_scales_equal_the_front_ends():
    node, esbuild = shutil.which("node"), REPO / "node_modules" / ".bin" / "esbuild"
    if node is None or not esbuild.exists():
        pytest.skip("needs node and node_modules (make setup)")
    values = [0, 1e-6, 1e-4, 2e-4, 0.003, 0.1, 0.25, 0.5, 0.77, 0.999, 1.0]
    script = (
        "import { BLUES, BLUES_DARK, VIRIDIS, applyScale, lutIndex } from './js/colors/colors';\n"
        f"const v = Float32Array.from({json.dumps(values)});\n"
        "console.log(JSON.stringify({ blues: [...BLUES], blues_dark: [...BLUES_DARK],"
        " viridis: [...VIRIDIS], scaled: Object.fromEntries(['linear', 'log', 'row']"
        ".map(s => [s, [...applyScale(v, v.length, s)].map(lutIndex)])) }));"
    )
    bundled = subprocess.run(
        [str(esbuild), "--bundle", "--format=cjs", "--platform=node", "--loader=ts"],
        input=script, capture_output=True, text=True, check=True, cwd=REPO,
    ).stdout  # fmt: skip
    js = json.loads(subprocess.run([node], input=bundled, capture_output=True, text=True, check=True).stdout)
    for name in ("blues", "blues_dark", "viridis"):
        table = np.array(js[name], np.uint8).reshape(256, 4)
        np.testing.assert_array_equal(colormaps.LUTS[name], table[:, :3], err_msg=name)
    row = np.array(values, np.float32)[None]
    for scale in ("linear", "log", "row"):
        got = colormaps.lut_index(colormaps.apply_scale(row, scale))[0]
        np.testing.assert_array_equal(got, js["scaled"][scale], err_msg=scale)


def test_svg_cells_are_pngs_with_the_lookup_tables_colours():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    plain = Cells(0, 0, rgb, 1)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(cells_png(plain)))), rgb)
    indices = rng.integers(0, 256, (6, 3), dtype=np.uint8)
    lut = colormaps.LUTS["viridis"]
    indexed = Cells(0, 0, lut[indices], 1, indices, lut)
    decoded = np.asarray(Image.open(io.BytesIO(cells_png(indexed))).convert("RGB"))
    np.testing.assert_array_equal(decoded, lut[indices])


@pytest.mark.parametrize("scale", [1, 2])
def test_saved_png_heatmap_cells_are_the_patterns_colours(explorer, tmp_path, scale):
    path = explorer.save(tmp_path / "head.png", view="heatmap", scale=scale)
    image = np.asarray(Image.open(path).convert("RGB"))
    layout = heatmap(explorer.view_data())
    matrix = next(item for item in layout.items if getattr(item, "role", "") == "matrix")
    pad, header = 12, 40  # figure.figure: the header and padding above the view
    x0, y0, cell = (matrix.x + pad) * scale, (matrix.y + pad + header) * scale, matrix.cell * scale
    pattern = explorer.pattern(1, 2)
    n = len(explorer.tokens)
    assert image.shape[0] >= y0 + n * cell and image.shape[1] >= x0 + n * cell
    for q in range(n):
        for k in range(n):
            got = tuple(image[int(y0 + (q + 0.5) * cell), int(x0 + (k + 0.5) * cell)])
            assert got == naive_blues(float(pattern[q, k])), (q, k, pattern[q, k])


def test_saved_svg_has_vector_labels_escaped_and_a_colour_bar(bridge, tmp_path):
    w = AttentionExplorer(bridge, prompt=HOSTILE)
    text = w.save(tmp_path / "all.svg", view="all", theme="dark").read_text()
    root = ET.fromstring(text)  # well-formed XML whatever the tokens
    ns = "{http://www.w3.org/2000/svg}"
    labels = [t.text for t in root.iter(f"{ns}text")]
    assert " ".join(HOSTILE.split()) in labels  # the prompt, as text
    shown = {t for t in w.tokens if t.strip()} & set(labels)  # labels are thinned to fit
    assert len(shown) >= len({t for t in w.tokens if t.strip()}) // 2 and {"L2", "H3"} <= set(labels)
    assert not list(root.iter(f"{ns}script")) and "<script" not in text
    roles = {image.get("data-role") for image in root.iter(f"{ns}image")}
    assert {"matrix", "colorbar", "grid", "scores"} <= roles
    assert 'fill="rgb(17,17,17)"' in text  # the dark theme's background


def test_save_refuses_what_it_cannot_write(explorer, tmp_path):
    with pytest.raises(AttnWidgetError, match="must end in"):
        explorer.save(tmp_path / "x.jpg")
    with pytest.raises(AttnWidgetError, match="unknown view"):
        explorer.save(tmp_path / "x.png", view="everything")
    with pytest.raises(AttnWidgetError, match="unknown theme"):
        explorer.save(tmp_path / "x.svg", theme="sepia")
    with pytest.raises(AttnWidgetError, match="out of range"):
        explorer.save(tmp_path / "x.html", layers=[7])


def page_json(page: str) -> dict:
    match = re.search(r"<script type=\"application/json\" data-attn-widget>(.*?)</script>", page, re.S)
    assert match
    return json.loads(match.group(1))


def test_standalone_page_is_script_safe_and_embeds_the_chosen_layers(bridge, tmp_path):
    w = AttentionExplorer(bridge, prompt=HOSTILE, layer=2, head=1)
    page = w.save(tmp_path / "page.html").read_text()
    assert page.lower().count("<script") == 2 and page.lower().count("</script") == 2
    data = page_json(page)
    assert data["state"]["tokens"] == w.tokens and "</script>" in "".join(w.tokens)
    assert set(data["layers"]) == {"2"}
    embedded = data["layers"]["2"]
    dtype, expected = wire.encode_pattern(w._session.current().layer_pattern(2))
    assert embedded["dtype"] == dtype
    assert zlib.decompress(base64.b64decode(embedded["deflate"])) == expected
    assert zlib.decompress(base64.b64decode(data["buffers"]["thumbnails"])) == w.thumbnails
    both = page_json(w.save(tmp_path / "both.html", layers=[0, 2]).read_text())
    assert set(both["layers"]) == {"0", "2"}


def test_save_buttons_get_the_figure_from_the_kernel(explorer, monkeypatch):
    sent: list[tuple[dict, list]] = []
    monkeypatch.setattr(explorer, "send", lambda content, buffers=None: sent.append((content, buffers)))
    request = {"type": "export", "id": 7, "format": "svg", "view": "all", "theme": "dark"}
    explorer._on_front_end_message(explorer, request, [])
    reply, buffers = sent[-1]
    assert reply["type"] == "export" and reply["id"] == 7 and reply["filename"].endswith(".svg")
    assert buffers == [figure_bytes(explorer.view_data("dark"), "svg", "all", 2)]
    assert buffers[0].startswith(b"<svg") and b"rgb(17,17,17)" in buffers[0]
    explorer._on_front_end_message(explorer, {**request, "format": "gif"}, [])
    assert sent[-1][0]["type"] == "error" and "malformed export" in sent[-1][0]["message"]
    explorer._on_front_end_message(explorer, {**request, "view": "nope"}, [])
    assert sent[-1][0]["type"] == "error" and sent[-1][0]["id"] == 7 and "unknown view" in sent[-1][0]["message"]


def test_a_figure_is_titled_with_the_head_as_every_view_writes_it(explorer, tmp_path):
    explorer.layer, explorer.head = 1, 2
    root = ET.fromstring(explorer.save(tmp_path / "head.svg").read_text())
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert any(t.startswith("L1H2 \u00b7") for t in texts) and not any("Layer" in t for t in texts)
