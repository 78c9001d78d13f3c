"""A static snapshot of what the explorer shows, for saved notebooks: one <img> holding an SVG
figure (its cells embedded PNGs, its labels vector text). Nothing in it needs JavaScript or a CDN.

An <img> rather than inline SVG: HTML sanitizers keep it, and tokens stay inside the image. The
widget displays it as a second output beside the live view (widget/display.py), which hides it.
"""

from __future__ import annotations

import html
import urllib.parse

from attn_widget.contract import head_label
from attn_widget.export.figure import ViewData, figure
from attn_widget.export.svg import to_svg, xml_safe

SNAPSHOT_CELLS = 384
"""The snapshot's heatmap is max-pooled to at most this many cells a side: under 300 KB at 1024 tokens."""


def title(data: ViewData) -> str:
    return f"{data.model_name}: {head_label(data.layer, data.head)}"


def snapshot_html(data: ViewData, key: str) -> str:
    """The snapshot as HTML; `key` names it so the live view can hide it."""
    svg = to_svg(figure(data, "all", SNAPSHOT_CELLS), 1.0, title(data))
    src = "data:image/svg+xml," + urllib.parse.quote(svg, safe=" /=:;,+'()!*-._~")
    note = "Snapshot of the attention explorer (interactive when its kernel runs)"
    return (
        f'<div class="aw-snapshot" data-aw-snapshot="{html.escape(xml_safe(key))}" style="max-width:100%">'
        f'<div style="font-size:11px;opacity:.7">{note}</div>'
        f'<img alt="{html.escape(xml_safe(title(data)))}" src="{src}" style="max-width:100%;height:auto"></div>'
    )
