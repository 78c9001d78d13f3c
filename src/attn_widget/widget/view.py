"""The one place that turns the explorer's current view into plain data: the heatmap's head as
the request layer answers it, the thumbnails and scores the views hold. Figures, the snapshot,
`save()` and the standalone page all draw from this, so what is saved is what is shown."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import anywidget
import numpy as np
import torch

from attn_widget.export.colormaps import Theme
from attn_widget.export.figure import ViewData
from attn_widget.export.standalone import b64_deflate
from attn_widget.maths import difference, encoding
from attn_widget.widget.answers import Shown
from attn_widget.widget.traits import ExplorerTraits


def view_data(explorer: ExplorerTraits, shown: Shown, theme: Theme = "light") -> ViewData:
    """What the explorer shows now: its prompt, selection, colour scale, metric and head."""
    n_layers, n_heads, side = explorer.n_layers, explorer.n_heads, explorer.thumbnail_side
    thumbnails = np.frombuffer(explorer.thumbnails, np.uint8).reshape(n_layers, n_heads, side, side)
    table = explorer.score_table.get(explorer.metric)
    if table is None:
        scores = np.asarray(shown.analysis.scores["induction"], dtype=np.float64)
    else:  # rows or cells not scored yet (or undefined) travel as null: NaN here, drawn as the lowest
        rows = [[np.nan] * n_heads if row is None else [np.nan if v is None else v for v in row] for row in table]
        scores = np.asarray(rows, dtype=np.float64)
    return ViewData(
        model_name=explorer.model_name,
        prompt=explorer.prompt,
        tokens=list(explorer.tokens),
        layer=explorer.layer,
        head=explorer.head,
        pattern=_as_drawn(shown.head(explorer.layer, explorer.head)),
        thumbnails=thumbnails,
        scores=scores,
        metric=explorer.metric,
        scale=explorer.color_scale,  # type: ignore[arg-type]  # an Enum trait of the same three names
        theme=theme,
        signed=shown.signed,
        shown_as=shown_as(explorer, shown),
    )


def _as_drawn(head: torch.Tensor) -> np.ndarray:
    """The head's values as the heatmap's canvas gets them: rounded to float16 where the whole head
    travels as float16, so a saved cell has the very colour of the cell on screen."""
    if encoding.wire_dtype(int(head.shape[-1])) == "float16":
        head = head.to(torch.float16)
    return head.float().cpu().numpy()


def shown_as(explorer: ExplorerTraits, shown: Shown) -> str:
    """What the heatmap shows beyond plain attention, as its title says it."""
    parts = ["value-weighted"] if shown.weighting == "value" else []
    if shown.signed:
        parts.append("minus the compare prompt")
    elif shown.sinks is not None and shown.weighting == "attention":
        parts.append("sinks excluded")
    return ", ".join(parts)


def page_data(explorer: ExplorerTraits, shown: Shown, layers: Iterable[int]) -> dict[str, Any]:
    """A standalone page's data: the synced state (buffers apart, compressed) and each chosen
    layer's heads as the request layer sends them."""
    state: dict[str, Any] = {}
    buffers: dict[str, str] = {}
    inherited = set(anywidget.AnyWidget.class_trait_names())  # layout, tooltip, _esm...: not the explorer's
    for name in explorer.trait_names(sync=lambda sync: sync):
        if name.startswith("_") or name in inherited:
            continue
        value = getattr(explorer, name)
        if isinstance(value, bytes | bytearray | memoryview):
            buffers[name] = b64_deflate(bytes(value))
        else:
            state[name] = value
    state.update(read_only_prompt=True, error="", focus_token=-1, focus_locked=False, standalone=True)
    embedded: dict[str, dict[str, Any]] = {}
    for layer in layers:  # each head as the heatmap shows it (weighting, compare prompt, sinks excluded)
        heads = torch.stack([shown.head(layer, head) for head in range(explorer.n_heads)])
        dtype, data = encoding.encode_pattern(heads)  # [heads, n, n], float16 up to 512 tokens, else uint8
        if shown.signed and dtype == "uint8":
            data = encoding.to_bytes(difference.signed_to_uint8(heads))
        embedded[str(layer)] = {"dtype": dtype, "deflate": b64_deflate(data)} | (
            {"signed": True} if shown.signed else {}
        )
    return {"state": state, "buffers": buffers, "layers": embedded}


def page_title(explorer: ExplorerTraits) -> str:
    return f"Attention: {explorer.model_name} \u00b7 {' '.join(explorer.prompt.split())[:80]}"
