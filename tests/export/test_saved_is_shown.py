"""What is saved is what is shown: a saved figure's heatmap cells, the standalone page's embedded
heads and the snapshot are the head the front end's request layer gets, in the same weighting,
against the same compare prompt, with the same sinks excluded, colour scale and theme."""

from __future__ import annotations

import base64
import io
import re
import urllib.parse
import xml.etree.ElementTree as ET
import zlib

import numpy as np
import pytest
from PIL import Image
from test_figures import page_json

from attn_widget import AttentionExplorer
from attn_widget.export.colormaps import apply_scale, lut_index, pattern_lut, signed_lut, signed_shades
from attn_widget.export.figure import heatmap
from attn_widget.export.snapshot import snapshot_html
from conftest import recording

PROMPT = "When mary and john went to the store mary gave a drink to john"
COMPARE = "When john and mary went to the store john gave a drink to mary"
SETTINGS = {
    "value weighting": {"weighting": "value"},
    "compare prompt": {"compare_prompt": COMPARE},
    "sinks excluded": {"exclude_sinks": True, "sink_threshold": 0.05},
    "log scale, dark": {"color_scale": "log"},
    "row scale, sinks excluded": {"color_scale": "row", "exclude_sinks": True, "sink_threshold": 0.05},
    "value weighting against a compare prompt, row scale": {
        "weighting": "value",
        "compare_prompt": COMPARE,
        "color_scale": "row",
    },
}


@pytest.fixture
def explorer(full_bridge):
    return recording(AttentionExplorer(full_bridge, prompt=PROMPT, layer=1, head=2))


def requested_head(w, layer: int, head: int) -> tuple[np.ndarray, bool]:
    """The head as the front end gets it: a "pattern" request's reply, decoded."""
    w._on_front_end_message(w, {"type": "pattern", "id": 41, "layer": layer, "head": head}, [])
    reply, (data,) = w.sent[-1]
    assert reply["type"] == "pattern" and reply["dtype"] == "float16", reply
    n = reply["n"]
    return np.frombuffer(data, "<f2").astype(np.float32).reshape(n, n), bool(reply.get("signed"))


def matrix_pixels(png: bytes, w, theme: str) -> np.ndarray:
    """The heatmap's cells, one pixel each, read back from a saved PNG (scale 1)."""
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    matrix = next(i for i in heatmap(w.view_data(theme)).items if getattr(i, "role", "") == "matrix")
    pad, header, n = 12, 40, len(w.tokens)  # figure.figure: the padding and header above the view
    ys = (matrix.y + pad + header + (np.arange(n) + 0.5) * matrix.cell).astype(int)
    xs = (matrix.x + pad + (np.arange(n) + 0.5) * matrix.cell).astype(int)
    return image[np.ix_(ys, xs)]


def expected_indices(values: np.ndarray, signed: bool, scale: str) -> np.ndarray:
    return lut_index(signed_shades(values, scale) if signed else apply_scale(values, scale)).astype(int)


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_a_saved_png_shows_the_head_a_request_returns(explorer, tmp_path, setting):
    theme = "dark" if "dark" in setting else "light"
    plain = explorer.save(tmp_path / "plain.png", view="heatmap", scale=1, theme=theme).read_bytes()
    plain_head, _ = requested_head(explorer, 1, 2)
    for name, value in SETTINGS[setting].items():
        setattr(explorer, name, value)
    assert explorer.error == ""
    shown, signed = requested_head(explorer, 1, 2)
    assert signed == ("compare_prompt" in SETTINGS[setting])
    if "scale" not in setting:
        assert not np.allclose(shown, plain_head, atol=1e-3)  # the setting changes the head itself
    png = explorer.save(tmp_path / "shown.png", view="heatmap", scale=1, theme=theme).read_bytes()
    assert png != plain
    lut = signed_lut(theme) if signed else pattern_lut(theme)
    pixels = matrix_pixels(png, explorer, theme)
    np.testing.assert_array_equal(pixels, lut[expected_indices(shown, signed, explorer.color_scale)], err_msg=setting)


def test_the_save_buttons_and_save_write_the_same_figure(explorer, tmp_path):
    explorer.weighting, explorer.compare_prompt = "value", COMPARE
    explorer._on_front_end_message(explorer, {"type": "export", "id": 3, "format": "png", "view": "all"}, [])
    reply, (button,) = explorer.sent[-1]
    assert reply["type"] == "export"
    assert button == explorer.save(tmp_path / "all.png", view="all").read_bytes()


@pytest.mark.parametrize("setting", ["value weighting", "compare prompt", "sinks excluded"])
def test_the_standalone_page_embeds_each_head_as_it_is_shown(explorer, tmp_path, setting):
    for name, value in SETTINGS[setting].items():
        setattr(explorer, name, value)
    data = page_json(explorer.save(tmp_path / "page.html", layers=[0, 1]).read_text())
    assert data["state"]["weighting"] == explorer.weighting
    assert data["state"]["compare_prompt"] == explorer.compare_prompt
    n = len(explorer.tokens)
    for layer in (0, 1):
        embedded = data["layers"][str(layer)]
        assert embedded["dtype"] == "float16" and embedded.get("signed", False) == (setting == "compare prompt")
        heads = np.frombuffer(zlib.decompress(base64.b64decode(embedded["deflate"])), "<f2").reshape(-1, n, n)
        for head in range(explorer.n_heads):
            np.testing.assert_array_equal(heads[head], requested_head(explorer, layer, head)[0].astype(np.float16))


def _matrix_png(svg: str) -> np.ndarray:
    root = ET.fromstring(svg)
    image = next(i for i in root.iter("{http://www.w3.org/2000/svg}image") if i.get("data-role") == "matrix")
    data = base64.b64decode(image.get("href").split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_the_snapshot_shows_the_saved_heatmap(explorer, tmp_path):
    explorer.weighting, explorer.color_scale = "value", "log"
    snapshot = snapshot_html(explorer.view_data(), explorer.snapshot_key)
    src = re.search(r'src="data:image/svg\+xml,([^"]*)"', snapshot).group(1)
    saved = explorer.save(tmp_path / "all.svg", view="all", scale=1).read_text()
    np.testing.assert_array_equal(_matrix_png(urllib.parse.unquote(src)), _matrix_png(saved))
    assert "value-weighted" in saved
