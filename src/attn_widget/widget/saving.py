"""`AttentionExplorer.save` and the front end's save buttons: the current view as a PNG or SVG
figure, or a standalone HTML page, written atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attn_widget.contract import head_label
from attn_widget.errors import AttnWidgetError
from attn_widget.export.colormaps import Theme
from attn_widget.export.figure import VIEWS, View, ViewData, figure
from attn_widget.export.png import to_png
from attn_widget.export.standalone import standalone_html
from attn_widget.export.svg import to_svg
from attn_widget.widget import arguments
from attn_widget.widget.answers import Shown
from attn_widget.widget.traits import ExplorerTraits
from attn_widget.widget.view import page_data, page_title, view_data

FORMATS = (".png", ".svg", ".html")
MAX_SCALE = 16
"""Pixels per unit: past this a heatmap figure is hundreds of megapixels."""


def check_view(view: Any) -> View:
    return arguments.choice("view", view, VIEWS)  # type: ignore[return-value]


def check_theme(theme: Any) -> Theme:
    return arguments.choice("theme", theme, ("light", "dark"))  # type: ignore[return-value]


def check_scale(scale: Any) -> float:
    return arguments.real("scale", scale, 0.0, MAX_SCALE, open_low=True)


def saved_file(
    explorer: ExplorerTraits,
    shown: Shown,
    path: Any,
    view: Any,
    scale: Any,
    theme: Any,
    layers: Any,
) -> tuple[Path, bytes]:
    """`save()`'s file: every argument checked before anything is drawn; an option the format does
    not take is refused rather than ignored."""
    if not isinstance(path, str | os.PathLike):
        raise arguments.ArgumentError(f"path must be a file name or a pathlib.Path, got {type(path).__name__}")
    path = Path(path)
    fmt = file_format(path)
    if fmt == "html":
        ignored = [name for name, value in (("view", view), ("scale", scale), ("theme", theme)) if value is not None]
        if ignored:
            raise arguments.ArgumentError(
                f"a standalone page takes no {', '.join(ignored)}: it is the live explorer, with its own "
                "theme and zoom (give layers= to choose what it holds)"
            )
        chosen = [explorer.layer] if layers is None else arguments.indices("layers", layers, explorer.n_layers, "layer")
        page = page_data(explorer, shown, chosen)
        return path, standalone_html(page, page_title(explorer)).encode("utf-8")
    if layers is not None:
        raise arguments.ArgumentError(f"layers= is for a standalone page (.html), not a .{fmt} figure")
    chosen_view = check_view("heatmap" if view is None else view)
    chosen_scale = check_scale(2 if scale is None else scale)
    data = view_data(explorer, shown, check_theme("light" if theme is None else theme))
    return path, figure_bytes(data, fmt, chosen_view, chosen_scale)


def figure_bytes(data: ViewData, fmt: str, view: View = "heatmap", scale: float = 2) -> bytes:
    """The figure as PNG or SVG bytes (what `save` writes, and what the export buttons download)."""
    fig = figure(data, check_view(view))
    if fmt == "svg":
        return to_svg(fig, scale, f"{data.model_name}: {head_label(data.layer, data.head)}").encode("utf-8")
    if fmt == "png":
        return to_png(fig, max(1, round(scale)))
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
            file.flush()
            os.fsync(file.fileno())  # on disk before it takes the old file's name
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
    filename = f"attention-{head_label(shown.layer, shown.head)}-{view}.{fmt}"
    return {"type": "export", "id": request_id, "format": fmt, "view": view, "filename": filename}, [payload]
