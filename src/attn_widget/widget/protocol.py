"""Custom messages between the front end and the kernel, checked on arrival.

front end -> kernel, each with a fresh integer "id":
  {"type": "pattern", "layer", "head"}                          the whole head
  {"type": "tile", "layer", "head", "q0", "q1", "k0", "k1", "rows", "cols"}
        a window of queries [q0, q1) x keys [k0, k1), max-pooled to at most rows x cols cells
  {"type": "row", "layer", "head", "index", "axis": "query"|"key"}
        the weights a query gives (its row) or a key receives (its column)
  {"type": "heads", "heads": [[layer, head], ...], "tile"?: {"q0", "q1", "k0", "k1", "rows", "cols"}}
        several heads in one reply (prefetch): whole heads, or that window of each as a tile; uint8
kernel -> front end: the request's fields plus "revision", "n" (tokens) and "dtype", and one
binary buffer; or {"type": "error", "id", "message"}. A "heads" reply lists its "heads" and carries
one buffer per head (with "tile_rows", "tile_cols" and the window when tiled). The kernel may also
send a "pattern" or "tile" unasked, with "id": null (the selected head, right after a prompt runs).
In a "heads" reply a head with undefined (NaN) weights comes as an empty buffer: ask for it alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from attn_widget.contract import MAX_TILE_CELLS
from attn_widget.errors import AttnWidgetError

"""A tile is at most this many cells a side: the largest heatmap canvas in device pixels."""


@dataclass(frozen=True)
class PatternRequest:
    id: int
    layer: int
    head: int


@dataclass(frozen=True)
class TileRequest:
    id: int
    layer: int
    head: int
    q0: int
    q1: int
    k0: int
    k1: int
    rows: int
    cols: int


@dataclass(frozen=True)
class RowRequest:
    id: int
    layer: int
    head: int
    index: int
    axis: str


@dataclass(frozen=True)
class HeadsRequest:
    """Several heads at once, for drawing (uint8): whole, or the same window of each (`tile`)."""

    id: int
    heads: tuple[tuple[int, int], ...]
    tile: TileRequest | None = None


MAX_BATCH_HEADS = 4096
"""More heads than any model has: a longer list is a malformed message."""

Request = PatternRequest | TileRequest | RowRequest | HeadsRequest
_KINDS: dict[str, type[Request]] = {"pattern": PatternRequest, "tile": TileRequest, "row": RowRequest}


def malformed(detail: str) -> AttnWidgetError:
    return AttnWidgetError(f"malformed message from the front end: {detail}")


def _int_field(content: dict[str, Any], name: str) -> int:
    value = content.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise malformed(f"{name!r} must be an integer, got {value!r}")
    return value


def parse_request(content: Any) -> Request:
    if isinstance(content, dict) and content.get("type") == "heads":
        return _parse_heads(content)
    kind_name = content.get("type") if isinstance(content, dict) else None
    kind = _KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        raise malformed(f"{content!r:.200}")
    fields: dict[str, Any] = {}
    for name in kind.__dataclass_fields__:
        if name == "axis":
            fields[name] = content.get("axis")
            if fields[name] not in ("query", "key"):
                raise malformed(f"'axis' must be 'query' or 'key', got {fields[name]!r}")
        else:
            fields[name] = _int_field(content, name)
    request = kind(**fields)
    if isinstance(request, TileRequest):
        _check_tile(request)
    return request


def _is_pair(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value)


def _parse_heads(content: dict[str, Any]) -> HeadsRequest:
    heads = content.get("heads")
    if not isinstance(heads, list) or not 0 < len(heads) <= MAX_BATCH_HEADS or not all(map(_is_pair, heads)):
        raise malformed(f"'heads' must be a list of 1 to {MAX_BATCH_HEADS} [layer, head] pairs, got {heads!r:.200}")
    window = content.get("tile")
    tile = None
    if window is not None:
        if not isinstance(window, dict):
            raise malformed(f"'tile' must be a window, got {window!r:.200}")
        tile = TileRequest(0, 0, 0, *(_int_field(window, f) for f in ("q0", "q1", "k0", "k1", "rows", "cols")))
        _check_tile(tile)
    return HeadsRequest(_int_field(content, "id"), tuple((layer, head) for layer, head in heads), tile)


def _check_tile(tile: TileRequest) -> None:
    if not (0 <= tile.q0 < tile.q1 and 0 <= tile.k0 < tile.k1):
        raise malformed(f"empty or negative tile window {tile}")
    if not (0 < tile.rows <= MAX_TILE_CELLS and 0 < tile.cols <= MAX_TILE_CELLS):
        raise malformed(f"tile size {tile.rows} x {tile.cols} is outside 1..{MAX_TILE_CELLS}")


def check_window(tile: TileRequest, n_tokens: int) -> None:
    """A window must lie inside the prompt: past its end there is nothing to draw, and a reply
    labelled with the asked window would be a lie."""
    if tile.q1 > n_tokens or tile.k1 > n_tokens:
        raise AttnWidgetError(
            f"tile window queries [{tile.q0}, {tile.q1}) x keys [{tile.k0}, {tile.k1}) goes past the prompt's "
            f"end: it has {n_tokens} tokens (the front end asked about an older prompt, or a malformed window)"
        )


def reply(request: Request, revision: int, n_tokens: int, dtype: str, **extra: Any) -> dict[str, Any]:
    kind = next(name for name, cls in _KINDS.items() if isinstance(request, cls))
    return {"type": kind, **asdict(request), "revision": revision, "n": n_tokens, "dtype": dtype, **extra}


def heads_reply(
    request: HeadsRequest, revision: int, n_tokens: int, tile_shape: tuple[int, int] | None
) -> dict[str, Any]:
    """The reply's fields for a "heads" request; its buffers follow the order of `heads`."""
    reply = {"type": "heads", "id": request.id, "heads": [list(p) for p in request.heads], "revision": revision}
    reply.update(n=n_tokens, dtype="uint8")
    if request.tile is not None and tile_shape is not None:
        t = request.tile
        reply.update(q0=t.q0, q1=t.q1, k0=t.k0, k1=t.k1, tile_rows=tile_shape[0], tile_cols=tile_shape[1])
    return reply


def describe(err: BaseException) -> str:
    """What went wrong, for the widget: our own errors say it already; others get their type's name."""
    return str(err) if isinstance(err, AttnWidgetError) else f"{type(err).__name__}: {err}"


def error_reply(request_id: Any, err: BaseException) -> dict[str, Any]:
    valid_id = isinstance(request_id, int) and not isinstance(request_id, bool)
    return {"type": "error", "id": request_id if valid_id else None, "message": describe(err)}
