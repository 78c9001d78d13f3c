"""Static figures of what the explorer shows: the selected head's heatmap with token labels, the
layer-by-head grid of thumbnails, the score map. Laid out once as a few primitives (cells, text,
rectangles) that svg.py and png.py draw, so both formats show the same figure.

Colours come from colormaps.py, the front end's own tables and scales: a cell here has the colour
it has on the canvas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from attn_widget.contract import head_label
from attn_widget.export.colormaps import (
    LUTS,
    ColorScale,
    Theme,
    apply_scale,
    colorize,
    lut_index,
    pattern_lut,
    signed_lut,
    signed_shades,
)

View = Literal["heatmap", "grid", "scores", "all"]
VIEWS: tuple[str, ...] = ("heatmap", "grid", "scores", "all")

FONT_PX = 11
LABEL_PX = 96
"""Room for token labels beside and above the heatmap, as in the front end (js/views/heatmap.ts)."""
MATRIX_MAX_PX = 560
MAX_CELL_PX = 24
COLORBAR_PX = 12
SELECTED = (255, 59, 48)
THEMES = {
    "light": {"background": (255, 255, 255), "text": (34, 34, 34)},
    "dark": {"background": (17, 17, 17), "text": (230, 230, 230)},
}


@dataclass
class Cells:
    """A matrix of colour cells drawn over a rectangle, each cell `cell` pixels a side."""

    x: float
    y: float
    rgb: np.ndarray  # (rows, cols, 3) uint8
    cell: int
    # Palette form of the same cells, when they come from one lookup table (smaller PNGs).
    indices: np.ndarray | None = None
    palette: np.ndarray | None = None
    role: str = ""

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1]) * self.cell

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0]) * self.cell


@dataclass
class Text:
    x: float
    y: float
    text: str
    anchor: Literal["start", "middle", "end"] = "start"
    size: int = FONT_PX
    vertical: bool = False  # reads bottom to top, (x, y) is its end
    bold: bool = False


@dataclass
class Box:
    x: float
    y: float
    width: float
    height: float
    stroke: tuple[int, int, int] = SELECTED
    line: float = 2


@dataclass
class Figure:
    width: int
    height: int
    theme: Theme
    items: list[Cells | Text | Box] = field(default_factory=list)

    @property
    def background(self) -> tuple[int, int, int]:
        return THEMES[self.theme]["background"]

    @property
    def text_color(self) -> tuple[int, int, int]:
        return THEMES[self.theme]["text"]

    def place(self, other: Figure, dx: float, dy: float) -> None:
        """Copy another figure's items in, shifted by (dx, dy)."""
        for item in other.items:
            moved = type(item)(**{**item.__dict__, "x": item.x + dx, "y": item.y + dy})
            self.items.append(moved)


@dataclass
class ViewData:
    """What a figure shows: one prompt's state as the explorer holds it."""

    model_name: str
    prompt: str
    tokens: list[str]
    layer: int
    head: int
    pattern: np.ndarray  # (n, n) float32: the selected head
    thumbnails: np.ndarray  # (n_layers, n_heads, side, side) uint8
    scores: np.ndarray  # (n_layers, n_heads)
    metric: str
    scale: ColorScale = "linear"
    theme: Theme = "light"
    signed: bool = False
    """`pattern` is a signed difference in [-1, 1] (a compare prompt): diverging colours."""
    shown_as: str = ""
    """What the heatmap shows beyond plain attention (weighting, compare prompt, sinks), for its title."""


def display_token(token: str, limit: int = 14) -> str:
    """How a token reads in a label, as js/views/labels.ts shows it: line breaks and tabs made visible."""
    shown = token.replace("\n", "\u23ce").replace("\t", "\u21e5")
    return shown if len(shown) <= limit else shown[: limit - 1] + "\u2026"


def label_indices(n: int, extent_px: float, label_px: float) -> list[int]:
    """Tokens to label so labels never overlap (js/views/labels.ts `labelIndices`)."""
    step = max(1, int(np.ceil(n * label_px / extent_px))) if n > 0 else 1
    return list(range(0, n, step))


def max_pool(values: np.ndarray, cells: int, signed: bool = False) -> np.ndarray:
    """A square matrix max-pooled to at most `cells` a side, as the kernel's tiles are (wire.tile);
    signed values keep the one of largest magnitude in each cell."""
    if values.shape[0] <= cells:
        return values
    matrix = torch.from_numpy(np.ascontiguousarray(values, np.float32))[None]
    if not signed:
        return F.adaptive_max_pool2d(matrix, cells)[0].numpy()
    _, where = F.adaptive_max_pool2d(matrix.abs(), cells, return_indices=True)
    return matrix.reshape(-1)[where.reshape(-1)].reshape(cells, cells).numpy()


def heatmap(data: ViewData, max_cells: int = MATRIX_MAX_PX) -> Figure:
    """The selected head: query rows, key columns, token labels thinned to fit, a colour bar."""
    n = len(data.tokens)
    values = max_pool(data.pattern, max_cells, data.signed)
    cells = values.shape[0]
    cell = max(1, min(MAX_CELL_PX, MATRIX_MAX_PX // cells))
    side = cells * cell
    top, left = 22 + LABEL_PX, LABEL_PX
    if data.signed:
        lut, indices = signed_lut(data.theme), lut_index(signed_shades(values, data.scale))
    else:
        lut, indices = pattern_lut(data.theme), lut_index(apply_scale(values, data.scale))
    fig = Figure(left + side + 16 + COLORBAR_PX + 56, top + side + 8, data.theme)
    shown_as = f" \u00b7 {data.shown_as}" if data.shown_as else ""
    title = f"{head_label(data.layer, data.head)} \u00b7 {data.scale} scale{shown_as}"
    fig.items.append(Text(0, 14, title, bold=True))
    fig.items.append(Cells(left, top, lut[indices], cell, indices, lut, role="matrix"))
    for i in label_indices(cells, side, FONT_PX + 1):
        token = i * n // cells  # a pooled cell is labelled by its first token
        # as the front end does: long prompts number their labels
        label = (f"{token} " if n > 64 or cells < n else "") + display_token(data.tokens[token])
        center = (i + 0.5) * cell
        fig.items.append(Text(left - 4, top + center + FONT_PX * 0.35, label, anchor="end"))
        fig.items.append(Text(left + center + FONT_PX * 0.35, top - 4, label, vertical=True))
    ticks = signed_ticks(data.scale) if data.signed else scale_ticks(data.scale)
    fig.items.extend(colorbar(left + side + 16, top, side, lut, ticks))
    return fig


def signed_ticks(scale: ColorScale) -> list[tuple[float, str]]:
    """A diverging bar centred on zero."""
    if scale == "log":
        return [(0.0, "-1"), (0.5, "0"), (1.0, "+1")]
    if scale == "row":
        return [(0.0, "-row max"), (0.5, "0"), (1.0, "+row max")]
    return [(0.0, "-1"), (0.25, "-0.5"), (0.5, "0"), (0.75, "+0.5"), (1.0, "+1")]


def scale_ticks(scale: ColorScale) -> list[tuple[float, str]]:
    if scale == "log":
        return [(0.0, "\u2264 1e-4"), (0.5, "1e-2"), (1.0, "1")]
    if scale == "row":
        return [(0.0, "0"), (1.0, "row max")]
    return [(0.0, "0"), (0.5, "0.5"), (1.0, "1")]


def colorbar(x: float, y: float, height: int, lut: np.ndarray, ticks: list[tuple[float, str]]) -> list[Cells | Text]:
    """A vertical bar, 1 at the top; its ticks are (position in [0, 1], label)."""
    indices = np.rint(np.linspace(255, 0, max(height, 2))).astype(np.uint8)[:, None].repeat(COLORBAR_PX, axis=1)
    items: list[Cells | Text] = [Cells(x, y, lut[indices], 1, indices, lut, role="colorbar")]
    for where, label in ticks:
        items.append(Text(x + COLORBAR_PX + 4, y + (1 - where) * (height - 1) + FONT_PX * 0.35, label))
    return items


def grid(data: ViewData) -> Figure:
    """Every head of every layer as a thumbnail, the selected one outlined."""
    n_layers, n_heads, side, _ = data.thumbnails.shape
    zoom = max(1, 40 // max(side, 1))
    thumb = side * zoom
    pitch, axis = thumb + 4, 28
    lut = pattern_lut(data.theme)
    fig = Figure(axis + n_heads * pitch + 4, 22 + axis + n_layers * pitch + 4, data.theme)
    fig.items.append(Text(0, 14, "Heads by layer (thumbnails)", bold=True))
    top = 22 + axis
    for h in range(n_heads):
        fig.items.append(Text(axis + h * pitch + pitch / 2, top - 8, f"H{h}", anchor="middle"))
    # One mosaic image (gaps in the background colour): one PNG, not one per head.
    mosaic = np.empty((n_layers * pitch, n_heads * pitch, 3), np.uint8)
    mosaic[:] = THEMES[data.theme]["background"]
    for layer in range(n_layers):
        fig.items.append(Text(axis - 6, top + layer * pitch + pitch / 2 + 4, f"L{layer}", anchor="end"))
        for h in range(n_heads):
            values = apply_scale(data.thumbnails[layer, h].astype(np.float32) / 255, data.scale)
            cells = np.repeat(np.repeat(colorize(values, lut), zoom, axis=0), zoom, axis=1)
            y, x = layer * pitch + 2, h * pitch + 2
            mosaic[y : y + thumb, x : x + thumb] = cells
    fig.items.append(Cells(axis, top, mosaic, 1, role="grid"))
    fig.items.append(Box(axis + data.head * pitch + 1, top + data.layer * pitch + 1, thumb + 2, thumb + 2))
    return fig


def scores(data: ViewData) -> Figure:
    """One score per head (viridis, from the lowest to the highest head), the selected one outlined."""
    table = np.asarray(data.scores, dtype=np.float64)
    n_layers, n_heads = table.shape
    cell, axis = max(10, min(28, 480 // max(n_heads, 1))), 28
    known = table[np.isfinite(table)]
    lo, hi = (float(known.min()), float(known.max())) if known.size else (0.0, 1.0)
    normalised = (table - lo) / (hi - lo) if hi > lo else np.full_like(table, 0.5)
    lut = LUTS["viridis"]
    indices = lut_index(normalised)
    top = 22 + axis
    fig = Figure(axis + n_heads * cell + 16 + COLORBAR_PX + 56, top + n_layers * cell + 8, data.theme)
    fig.items.append(Text(0, 14, f"Head scores: {data.metric.replace('_', ' ')}", bold=True))
    fig.items.append(Cells(axis, top, colorize(normalised, lut), cell, indices, lut, role="scores"))
    for h in range(n_heads):
        fig.items.append(Text(axis + (h + 0.5) * cell, top - 8, f"H{h}", anchor="middle"))
    for layer in range(n_layers):
        fig.items.append(Text(axis - 6, top + (layer + 0.5) * cell + 4, f"L{layer}", anchor="end"))
    fig.items.append(Box(axis + data.head * cell, top + data.layer * cell, cell, cell))
    ticks = [(0.0, f"{lo:.3g}"), (1.0, f"{hi:.3g}")]
    fig.items.extend(colorbar(axis + n_heads * cell + 16, top, n_layers * cell, lut, ticks))
    return fig


def header(data: ViewData, width: int) -> Figure:
    """Model and prompt, one line each (the prompt cut to the width)."""
    fig = Figure(width, 40, data.theme)
    fig.items.append(Text(0, 14, data.model_name or "attention", bold=True))
    limit = max(20, width // 6)
    prompt = " ".join(data.prompt.split())
    fig.items.append(Text(0, 32, prompt if len(prompt) <= limit else prompt[: limit - 1] + "\u2026"))
    return fig


def figure(data: ViewData, view: View = "all", max_cells: int = MATRIX_MAX_PX) -> Figure:
    """One view, or all three (heatmap left; grid and scores right), under the model and prompt."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}: choose one of {', '.join(VIEWS)}")
    parts: list[tuple[Figure, float, float]]
    if view == "heatmap":
        body = heatmap(data, max_cells)
    elif view == "grid":
        body = grid(data)
    elif view == "scores":
        body = scores(data)
    else:
        left, right_top, right_bottom = heatmap(data, max_cells), grid(data), scores(data)
        gap = 24
        width = left.width + gap + max(right_top.width, right_bottom.width)
        height = max(left.height, right_top.height + gap + right_bottom.height)
        body = Figure(width, height, data.theme)
        parts = [
            (left, 0, 0),
            (right_top, left.width + gap, 0),
            (right_bottom, left.width + gap, right_top.height + gap),
        ]
        for part, dx, dy in parts:
            body.place(part, dx, dy)
    pad = 12
    top = header(data, body.width)
    out = Figure(body.width + 2 * pad, top.height + body.height + 2 * pad, data.theme)
    out.place(top, pad, pad)
    out.place(body, pad, pad + top.height)
    return out
