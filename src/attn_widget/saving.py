"""`AttentionExplorer.save`: the current view as a PNG or SVG figure, or a standalone HTML page."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .colormaps import Theme
from .errors import AttnWidgetError
from .figure import VIEWS, View, ViewData, figure

if TYPE_CHECKING:
    from .explorer import AttentionExplorer

FORMATS = (".png", ".svg", ".html")


def view_data(explorer: AttentionExplorer, theme: Theme = "light") -> ViewData:
    """What the explorer shows now: its prompt, selection, colour scale and metric."""
    analysis = explorer._current()
    table = explorer.score_table.get(explorer.metric)
    if table is None:
        scores = np.asarray(analysis.scores["induction"], dtype=np.float64)
    else:  # rows or cells not scored yet (or undefined) travel as null: NaN here, drawn as the lowest
        n_heads = explorer.n_heads
        rows = [[np.nan] * n_heads if row is None else [np.nan if v is None else v for v in row] for row in table]
        scores = np.asarray(rows, dtype=np.float64)
    return ViewData(
        model_name=explorer.model_name,
        prompt=explorer.prompt,
        tokens=list(explorer.tokens),
        layer=explorer.layer,
        head=explorer.head,
        pattern=analysis.head_pattern(explorer.layer, explorer.head).float().cpu().numpy(),
        thumbnails=analysis.thumbnails,
        scores=scores,
        metric=explorer.metric,
        scale=explorer.color_scale,  # type: ignore[arg-type]  # an Enum trait of the same three names
        theme=theme,
    )


def figure_bytes(
    explorer: AttentionExplorer, fmt: str, view: View = "heatmap", scale: float = 2, theme: Theme = "light"
) -> bytes:
    """The figure as PNG or SVG bytes (what `save` writes, and what the export buttons download)."""
    if view not in VIEWS:
        raise AttnWidgetError(f"unknown view {view!r}: choose one of {', '.join(VIEWS)}")
    if theme not in ("light", "dark"):
        raise AttnWidgetError(f"unknown theme {theme!r}: choose light or dark")
    fig = figure(view_data(explorer, theme), view)
    title = f"{explorer.model_name}: layer {explorer.layer}, head {explorer.head}"
    if fmt == "svg":
        from .figure_svg import to_svg

        return to_svg(fig, scale, title).encode("utf-8")
    if fmt == "png":
        from .figure_png import to_png

        return to_png(fig, round(scale))
    raise AttnWidgetError(f"unknown figure format {fmt!r}: choose png or svg")


def save(
    explorer: AttentionExplorer,
    path: str | Path,
    view: View = "heatmap",
    scale: float = 2,
    theme: Theme = "light",
    layers: Iterable[int] | None = None,
) -> Path:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise AttnWidgetError(f"cannot save {path.name!r}: the file name must end in {', '.join(FORMATS)}")
    if suffix == ".html":
        from .standalone import standalone_html

        path.write_text(standalone_html(explorer, layers), encoding="utf-8")
    else:
        if scale <= 0:
            raise AttnWidgetError(f"scale must be positive, got {scale}")
        path.write_bytes(figure_bytes(explorer, suffix[1:], view, scale, theme))
    return path


def export_reply(explorer: AttentionExplorer, content: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
    """The front end's save buttons: {"type": "export", "id", "format", "view", "theme"} -> the file."""
    request_id, fmt, view, theme = (content.get(k) for k in ("id", "format", "view", "theme"))
    if not isinstance(request_id, int) or fmt not in ("png", "svg"):
        raise AttnWidgetError(f"malformed export request: {content!r:.200}")
    if view not in VIEWS:
        raise AttnWidgetError(f"unknown view {view!r}: choose one of {', '.join(VIEWS)}")
    data = figure_bytes(explorer, fmt, view, 2, "dark" if theme == "dark" else "light")
    filename = f"attention-L{explorer.layer}H{explorer.head}-{view}.{fmt}"
    return {"type": "export", "id": request_id, "format": fmt, "view": view, "filename": filename}, [data]
