"""A figure (figure.py) as a PNG: cells scaled up by whole pixels (no smoothing, so each cell keeps
its exact colour), text drawn with Pillow's bundled font."""

from __future__ import annotations

import io
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from attn_widget.export.figure import Box, Cells, Figure, Text

_ANCHORS = {"start": "ls", "middle": "ms", "end": "rs"}


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size)


def _cells(image: Image.Image, item: Cells, scale: int) -> None:
    zoom = item.cell * scale
    pixels = np.repeat(np.repeat(item.rgb, zoom, axis=0), zoom, axis=1)
    image.paste(Image.fromarray(np.ascontiguousarray(pixels), "RGB"), (round(item.x * scale), round(item.y * scale)))


def _vertical_text(image: Image.Image, item: Text, scale: int, color: tuple[int, int, int]) -> None:
    font = _font(item.size * scale)
    left, top, right, bottom = font.getbbox(item.text, anchor="ls")
    left, top, right, bottom = (round(v) for v in (left, top, right, bottom))
    strip = Image.new("RGBA", (max(1, right - left), max(1, bottom - top)), (0, 0, 0, 0))
    ImageDraw.Draw(strip).text((-left, -top), item.text, font=font, fill=(*color, 255), anchor="ls")
    turned = strip.rotate(90, expand=True)  # reads bottom to top; its baseline is now at the right
    x, y = round(item.x * scale), round(item.y * scale)
    image.paste(turned, (x + top, y - turned.height), turned)


def to_png(fig: Figure, scale: int = 2) -> bytes:
    """The figure at `scale` device pixels per unit, as PNG bytes."""
    scale = max(1, int(scale))
    image = Image.new("RGB", (fig.width * scale, fig.height * scale), fig.background)
    draw = ImageDraw.Draw(image)
    for item in fig.items:
        if isinstance(item, Cells):
            _cells(image, item, scale)
        elif isinstance(item, Box):
            x, y = item.x * scale, item.y * scale
            draw.rectangle(
                (x, y, x + item.width * scale - 1, y + item.height * scale - 1),
                outline=item.stroke,
                width=round(item.line * scale),
            )
        elif item.vertical:
            _vertical_text(image, item, scale, fig.text_color)
        else:
            font = _font(item.size * scale)
            draw.text(
                (item.x * scale, item.y * scale),
                item.text,
                font=font,
                fill=fig.text_color,
                anchor=_ANCHORS[item.anchor],
            )
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False, compress_level=6)
    return out.getvalue()
