"""A figure (figure.py) as SVG: text and outlines stay vector; each matrix is one embedded PNG drawn
without smoothing, so a 1024-token head is one image, not a million rectangles."""

from __future__ import annotations

import base64
import io
import re
from xml.sax.saxutils import escape, quoteattr

import numpy as np
from PIL import Image

from attn_widget.export.figure import Box, Cells, Figure, Text

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
"""Characters XML 1.0 forbids anywhere in a document, even escaped."""


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return chr(0x2400 + code) if code < 0x20 else "\ufffd"  # a control character's own picture: NUL as ␀


def xml_safe(text: str) -> str:
    """Text XML (and HTML) can hold: each forbidden character becomes its visible stand-in."""
    return _NOT_XML.sub(_visible, text)


def xml_text(text: str) -> str:
    """Text for an XML element: forbidden characters replaced, markup escaped."""
    return escape(xml_safe(text))


def _rgb(color: tuple[int, int, int]) -> str:
    return f"rgb({color[0]},{color[1]},{color[2]})"


def cells_png(item: Cells) -> bytes:
    """The cells one pixel each (palette PNG when they come from one lookup table)."""
    if item.indices is not None and item.palette is not None:
        image = Image.fromarray(np.ascontiguousarray(item.indices, np.uint8), "P")
        image.putpalette(np.ascontiguousarray(item.palette, np.uint8).reshape(-1).tolist())
    else:
        image = Image.fromarray(np.ascontiguousarray(item.rgb, np.uint8), "RGB")
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=6)
    return out.getvalue()


def _item(item: Cells | Text | Box, text_color: str) -> str:
    if isinstance(item, Cells):
        uri = "data:image/png;base64," + base64.b64encode(cells_png(item)).decode("ascii")
        role = f' data-role="{item.role}"' if item.role else ""
        return (
            f'<image x="{item.x:g}" y="{item.y:g}" width="{item.width}" height="{item.height}"{role}'
            f' preserveAspectRatio="none" style="image-rendering:pixelated;image-rendering:crisp-edges" href="{uri}"/>'
        )
    if isinstance(item, Box):
        return (
            f'<rect x="{item.x:g}" y="{item.y:g}" width="{item.width:g}" height="{item.height:g}" fill="none"'
            f' stroke="{_rgb(item.stroke)}" stroke-width="{item.line:g}"/>'
        )
    weight = ' font-weight="bold"' if item.bold else ""
    where = (
        f'transform="translate({item.x:g},{item.y:g}) rotate(-90)"'
        if item.vertical
        else f'x="{item.x:g}" y="{item.y:g}"'
    )
    anchor = "start" if item.vertical else item.anchor  # vertical labels read up from the matrix
    return f'<text {where} text-anchor="{anchor}" font-size="{item.size}"{weight}>{xml_text(item.text)}</text>'


def to_svg(fig: Figure, scale: float = 1.0, title: str = "") -> str:
    """A standalone SVG document; `scale` sets its displayed size, the drawing is the same."""
    text_color = _rgb(fig.text_color)
    body = "\n".join(_item(item, text_color) for item in fig.items)
    label = f"<title>{xml_text(title)}</title>" if title else ""
    aria = quoteattr(xml_safe(title or "attention figure"))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{fig.width * scale:g}" height="{fig.height * scale:g}"'
        f' viewBox="0 0 {fig.width} {fig.height}" role="img" aria-label={aria}'
        f' font-family="DejaVu Sans, Helvetica, Arial, sans-serif" fill="{text_color}">{label}'
        f'<rect width="100%" height="100%" fill="{_rgb(fig.background)}"/>\n{body}\n</svg>'
    )
