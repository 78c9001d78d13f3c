"""A static snapshot beside the live explorer, so a saved notebook still shows what it showed.

In IPython the explorer displays two outputs: the widget (its view mimetype, and a one-line
text/plain) and the snapshot (text/html: the heatmap, head grid and score map as one inline SVG with
embedded PNG cells), the latter under a display id and updated when the selection or prompt
changes. Two outputs rather than one bundle because a front end that re-renders an updated output
would rebuild the live widget on every click, and JupyterLab without a kernel renders a widget
bundle as "model not found" rather than falling back to its other mimetypes.

Where the widget renders (a live kernel), the front end hides its own snapshot (same key); an
exported or kernel-less notebook shows the snapshot alone. Nothing in it needs JavaScript or a CDN.
"""

from __future__ import annotations

import asyncio
import html
import urllib.parse
from typing import TYPE_CHECKING, Any

from .errors import AttnWidgetError
from .figure import figure
from .figure_svg import to_svg
from .saving import view_data

if TYPE_CHECKING:
    from .explorer import AttentionExplorer

SNAPSHOT_CELLS = 384
"""The snapshot's heatmap is max-pooled to at most this many cells a side: under 300 KB at 1024 tokens."""
UPDATE_DELAY_S = 1.0
"""Selection changes are gathered this long before the snapshot is redrawn (off the click's path)."""
WATCHED = ["layer", "head", "prompt", "color_scale", "metric"]  # prompt, not revision: set before it


def snapshot_html(explorer: AttentionExplorer) -> str:
    """One <img>: the SVG figure as a data URI (its cells embedded PNGs, its labels vector text).
    An <img> rather than inline SVG: HTML sanitizers keep it, and tokens stay inside the image."""
    data = view_data(explorer)
    title = f"{data.model_name}: layer {data.layer}, head {data.head}"
    svg = to_svg(figure(data, "all", SNAPSHOT_CELLS), 1.0, title)
    src = "data:image/svg+xml," + urllib.parse.quote(svg, safe=" /=:;,+'()!*-._~")
    note = "Snapshot of the attention explorer (interactive when its kernel runs)"
    return (
        f'<div class="aw-snapshot" data-aw-snapshot="{html.escape(explorer.snapshot_key)}" style="max-width:100%">'
        f'<div style="font-size:11px;opacity:.7">{note}</div>'
        f'<img alt="{html.escape(title)}" src="{src}" style="max-width:100%;height:auto"></div>'
    )


def text_line(explorer: AttentionExplorer) -> str:
    w = explorer
    return f"AttentionExplorer({w.model_name}, layer {w.layer}, head {w.head}, {len(w.tokens)} tokens)"


def _bundle(explorer: AttentionExplorer) -> dict[str, str]:
    try:
        return {"text/html": snapshot_html(explorer), "text/plain": text_line(explorer)}
    except AttnWidgetError:  # no prompt run yet: nothing to show
        return {"text/plain": text_line(explorer)}


def show(explorer: AttentionExplorer) -> None:
    """Display the live widget, then its snapshot under a display id kept current."""
    from IPython.display import display

    widget_bundle: Any = explorer._repr_mimebundle_()
    data = widget_bundle[0] if isinstance(widget_bundle, tuple) else widget_bundle
    display({**data, "text/plain": text_line(explorer)}, raw=True)  # type: ignore[no-untyped-call]
    display(_bundle(explorer), raw=True, display_id=explorer.snapshot_key)  # type: ignore[no-untyped-call]
    if not getattr(explorer, "_snapshot_watched", False):
        explorer._snapshot_watched = True
        explorer.observe(lambda _change: _schedule(explorer), names=WATCHED)


def _schedule(explorer: AttentionExplorer) -> None:
    """Redraw the snapshot: at once for a change made in Python (the cell's outputs are final when
    it ends), once clicks settle for a change from the front end (off the path of the reply)."""
    pending = getattr(explorer, "_snapshot_timer", None)
    if pending is not None:
        pending.cancel()
        explorer._snapshot_timer = None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    from_front_end = bool(getattr(explorer, "_property_lock", None))  # ipywidgets holds it in set_state
    if loop is None or not from_front_end:
        update(explorer)
    else:
        explorer._snapshot_timer = loop.call_later(UPDATE_DELAY_S, update, explorer)


def update(explorer: AttentionExplorer) -> None:
    from IPython.display import update_display

    explorer._snapshot_timer = None
    update_display(_bundle(explorer), raw=True, display_id=explorer.snapshot_key)  # type: ignore[no-untyped-call]
