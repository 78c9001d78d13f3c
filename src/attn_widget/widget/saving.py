"""`AttentionExplorer.save` and the front end's save buttons: the current view as a PNG or SVG
figure, or a standalone HTML page, written atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attn_widget.errors import AttnWidgetError
from attn_widget.export.colormaps import Theme
from attn_widget.export.figure import VIEWS, View, ViewData, figure
from attn_widget.export.png import to_png
from attn_widget.export.svg import to_svg

FORMATS = (".png", ".svg", ".html")


def check_view(view: str) -> View:
    if view not in VIEWS:
        raise AttnWidgetError(f"unknown view {view!r}: choose one of {', '.join(VIEWS)}")
    return view  # type: ignore[return-value]


def check_theme(theme: str) -> Theme:
    if theme not in ("light", "dark"):
        raise AttnWidgetError(f"unknown theme {theme!r}: choose light or dark")
    return theme  # type: ignore[return-value]


def figure_bytes(data: ViewData, fmt: str, view: View = "heatmap", scale: float = 2) -> bytes:
    """The figure as PNG or SVG bytes (what `save` writes, and what the export buttons download)."""
    fig = figure(data, check_view(view))
    if fmt == "svg":
        return to_svg(fig, scale, f"{data.model_name}: L{data.layer}H{data.head}").encode("utf-8")
    if fmt == "png":
        return to_png(fig, round(scale))
    raise AttnWidgetError(f"unknown figure format {fmt!r}: choose png or svg")


def file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise AttnWidgetError(f"cannot save {path.name!r}: the file name must end in {', '.join(FORMATS)}")
    return suffix[1:]


def write_atomically(path: Path, data: bytes) -> None:
    """A temporary file beside `path`, renamed over it: an interrupted save leaves the old file."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def export_reply(content: dict[str, Any], data: Callable[[Theme], ViewData]) -> tuple[dict[str, Any], list[bytes]]:
    """The save buttons: {"type": "export", "id", "format", "view", "theme"} -> the file."""
    request_id, fmt, view, theme = (content.get(k) for k in ("id", "format", "view", "theme"))
    if not isinstance(request_id, int) or isinstance(request_id, bool) or fmt not in ("png", "svg"):
        raise AttnWidgetError(f"malformed export request: {content!r:.200}")
    shown = data("dark" if theme == "dark" else "light")
    payload = figure_bytes(shown, fmt, check_view(str(view)), 2)
    filename = f"attention-L{shown.layer}H{shown.head}-{view}.{fmt}"
    return {"type": "export", "id": request_id, "format": fmt, "view": view, "filename": filename}, [payload]
