"""Answers to the front end's head requests: a whole head, a tile of a window, a row or column,
or a batch of heads for prefetch, each exactly as the heatmap shows it (weighting, compare prompt,
sinks excluded), encoded for the wire."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from attn_widget.analysis.derived import DetectorsAndSinks
from attn_widget.analysis.prompt import PromptAnalysis, check_head, check_layer
from attn_widget.backends.base import Backend
from attn_widget.contract import MAX_TILE_CELLS, WHOLE_HEAD_MAX_TOKENS
from attn_widget.errors import SelectionError
from attn_widget.maths import difference, encoding, reductions
from attn_widget.maths.layer import LayerAttention
from attn_widget.maths.sinks import SinksExcluded
from attn_widget.widget import protocol
from attn_widget.widget.view_options import ViewOptions

Reply = tuple[dict[str, Any], list[bytes]]


@dataclass(frozen=True)
class Shown:
    """What the views show of the current prompt: everything a head request is answered from."""

    backend: Backend
    analysis: PromptAnalysis
    options: ViewOptions
    weighting: str
    revision: int
    sinks: DetectorsAndSinks | None
    """The prompt's sinks when the heatmap excludes them, else None."""

    @property
    def signed(self) -> bool:
        """A difference in [-1, 1] (compare prompt): the views use diverging colours."""
        return self.options.comparing

    def layer(self, layer: int) -> LayerAttention:
        """The layer as the heatmap draws it: whole heads, tiles, rows and columns alike."""
        attention = self.options.shown(self.analysis, layer, self.weighting)
        if self.sinks is not None and not self.signed and self.weighting == "attention":
            return SinksExcluded(attention, torch.as_tensor(self.sinks.sink_mask[layer]))
        return attention

    def head(self, layer: int, head: int) -> torch.Tensor:
        """The head's whole `(n, n)` pattern as the heatmap draws it."""
        return reductions.head_pattern(self.layer(layer), head)


def answer(request: protocol.Request, shown: Shown) -> Reply:
    if isinstance(request, protocol.HeadsRequest):
        if request.tile is not None:
            protocol.check_window(request.tile, shown.analysis.n_tokens)
        return _heads(request, shown)
    check_layer(shown.backend, request.layer), check_head(shown.backend, request.head)
    if isinstance(request, protocol.TileRequest):
        protocol.check_window(request, shown.analysis.n_tokens)
        return _tile(request, shown)
    if isinstance(request, protocol.RowRequest):
        return _row(request, shown)
    return _pattern(request, shown)


def pushed_head_request(shown: Shown, layer: int, head: int) -> protocol.Request:
    """The request the front end would make for a head first shown at full size."""
    n = shown.analysis.n_tokens
    if n <= WHOLE_HEAD_MAX_TOKENS:
        return protocol.PatternRequest(id=-1, layer=layer, head=head)
    side = min(n, MAX_TILE_CELLS // 2)
    return protocol.TileRequest(-1, layer, head, 0, n, 0, n, side, side)


def _signed_meta(shown: Shown) -> dict[str, Any]:
    return {"signed": True} if shown.signed else {}


def _tile(r: protocol.TileRequest, shown: Shown) -> Reply:
    n = shown.analysis.n_tokens
    if shown.signed:
        mine, theirs = shown.options.shown_pair(shown.analysis, r.layer, shown.weighting)
        cells = difference.signed_window(mine, theirs, r.head, r.q0, r.q1, r.k0, r.k1, r.rows, r.cols)
        meta = {"tile_rows": cells.shape[0], "tile_cols": cells.shape[1], "signed": True}
        data = encoding.to_bytes(difference.signed_to_uint8(cells))
        return protocol.reply(r, shown.revision, n, "uint8", **meta), [data]
    window = reductions.pooled_window(shown.layer(r.layer), r.head, r.q0, r.q1, r.k0, r.k1, r.rows, r.cols)
    undefined = encoding.undefined_mask(window)
    n_undefined = int(undefined.sum())
    meta = {"tile_rows": window.shape[0], "tile_cols": window.shape[1], "undefined": n_undefined}
    buffers = [encoding.to_bytes(reductions.to_uint8(window))]
    if n_undefined:  # a byte has no room for "undefined": say which cells are, in a second buffer
        buffers.append(encoding.to_bytes(undefined))
    return protocol.reply(r, shown.revision, n, "uint8", **meta), buffers


def _row(r: protocol.RowRequest, shown: Shown) -> Reply:
    n = shown.analysis.n_tokens
    if not 0 <= r.index < n:
        raise SelectionError(f"token {r.index} is out of range: the prompt has tokens 0 to {n - 1}")
    attention = shown.layer(r.layer)
    if r.axis == "query":
        line = reductions.head_rows(attention, r.head, r.index, r.index + 1)[0]
    else:
        line = reductions.head_column(attention, r.head, r.index)
    return protocol.reply(r, shown.revision, n, "float16", **_signed_meta(shown)), [encoding.encode_line(line)]


def _pattern(r: protocol.PatternRequest, shown: Shown) -> Reply:
    n = shown.analysis.n_tokens
    head = shown.head(r.layer, r.head)
    if shown.signed and encoding.wire_dtype(n) == "uint8":
        data = encoding.to_bytes(difference.signed_to_uint8(head))
        return protocol.reply(r, shown.revision, n, "uint8", signed=True), [data]
    dtype, data = encoding.encode_pattern(head)
    return protocol.reply(r, shown.revision, n, dtype, **_signed_meta(shown)), [data]


class HeadsAnswer:
    """Prefetch: several heads as uint8 (enough to draw), each exactly what a request of its own
    would get, answered one head at a time (`step`) in layer order so that each layer is captured
    once; a head not answered (yet, or at all) goes as an empty buffer and the front end asks for it
    alone."""

    def __init__(self, request: protocol.HeadsRequest, shown: Shown, whole: bool = True) -> None:
        """`whole=False` (a prefetch spread over the event loop): heads of layers past the memory
        budget go empty rather than run the model (the front end asks alone for one it shows)."""
        for layer, head in request.heads:  # all checked before any work
            check_layer(shown.backend, layer), check_head(shown.backend, head)
        self.request, self.shown, self.whole = request, shown, whole
        self.todo = sorted(range(len(request.heads)), key=lambda i: request.heads[i][0])
        self.buffers: list[bytes] = [b""] * len(request.heads)
        self.shape: tuple[int, int] | None = None

    @property
    def done(self) -> bool:
        return not self.todo

    def step(self) -> None:
        """Answers the next head."""
        i = self.todo.pop(0)
        request, shown, n = self.request, self.shown, self.shown.analysis.n_tokens
        layer, head = request.heads[i]
        t = request.tile
        single: protocol.Request = (
            protocol.PatternRequest(request.id, layer, head)
            if t is None
            else protocol.TileRequest(request.id, layer, head, t.q0, t.q1, t.k0, t.k1, t.rows, t.cols)
        )
        if not self.whole and not shown.analysis.at_hand(layer):
            return  # a layer past the memory budget costs a pass: not for a guess
        reply, data = answer(single, shown)
        if t is not None:
            self.shape = (int(reply["tile_rows"]), int(reply["tile_cols"]))
        # Signed differences and undefined weights do not fit plain bytes: those heads go
        # empty, and the front end asks for them alone.
        if reply.get("signed") or reply.get("undefined") or len(data) != 1:
            return
        if reply["dtype"] == "float16":
            weights = torch.from_numpy(np.frombuffer(data[0], np.float16).astype(np.float32))
            if not bool(weights.isfinite().all()):
                return
            self.buffers[i] = encoding.to_bytes(reductions.to_uint8(weights.reshape(n, n)))
        else:
            self.buffers[i] = data[0]

    def reply(self) -> Reply:
        """The reply with the heads answered so far (the others empty)."""
        shown = self.shown
        return protocol.heads_reply(self.request, shown.revision, shown.analysis.n_tokens, self.shape), self.buffers


def _heads(request: protocol.HeadsRequest, shown: Shown) -> Reply:
    heads = HeadsAnswer(request, shown)
    while not heads.done:
        heads.step()
    return heads.reply()
