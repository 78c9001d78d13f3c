"""Everything the views need of a layer, reduced a block of query rows at a time.

Head scores (the same quantities as scores.py, accumulated exactly over row blocks), max-pooled
thumbnails, and max-pooled windows of one head (the heatmap's tiles). Memory is one block of
`[batch, heads, rows, n]` weights, never a layer's `[heads, n, n]`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .capture import LayerAttention, block_budget, rows_per_block

THUMBNAIL_SIZE = 48
"""Thumbnails are max-pooled to at most this many cells a side, so no strong weight vanishes."""


def thumbnail_side(n_tokens: int) -> int:
    return min(n_tokens, THUMBNAIL_SIZE)


def to_uint8(values: torch.Tensor) -> torch.Tensor:
    """Weights in [0, 1] to bytes 0..255 (rounded, clamped)."""
    return (values.float().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


@dataclass
class LayerReduction:
    scores: dict[str, torch.Tensor]
    """metric -> `[heads]` float32 (scores.METRICS)."""
    thumbnails: torch.Tensor
    """`[heads, side, side]` uint8 of the first prompt of the batch."""


class _RowBinMax:
    """Running max of rows into adaptive-pooling bins, fed one block of rows at a time.

    Bin i of `cells` over `length` rows covers [floor(i * length / cells), ceil((i + 1) * length / cells)),
    as torch's adaptive pooling does, so the result equals adaptive_max_pool2d of the whole window.
    """

    def __init__(self, leading: int, length: int, cells: int, width: int, device: torch.device) -> None:
        self.length, self.cells = length, cells
        self.out = torch.zeros(leading, cells, width, device=device)

    def add(self, start: int, block: torch.Tensor) -> None:
        """`block` `[leading, rows, width]` holds rows [start, start + rows) of the window."""
        stop = start + block.shape[1]
        first = start * self.cells // self.length
        for i in range(max(0, first - 1), self.cells):
            lo, hi = i * self.length // self.cells, -(-(i + 1) * self.length // self.cells)
            if lo >= stop:
                break
            if hi <= start:
                continue
            rows = block[:, max(lo, start) - start : min(hi, stop) - start].amax(dim=1)
            self.out[:, i] = torch.maximum(self.out[:, i], rows)


def _pool_columns(weights: torch.Tensor, cells: int) -> torch.Tensor:
    """`[leading, rows, width]` -> `[leading, rows, cells]`, max over adaptive column bins."""
    return F.adaptive_max_pool1d(weights, cells)


def _padded(weights: torch.Tensor, k0: int, k1: int, n: int) -> torch.Tensor:
    return weights if (k0, k1) == (0, n) else F.pad(weights, (k0, n - k1))


def reduce_layer(attention: LayerAttention, token_ids: torch.Tensor, budget_bytes: int | None = None) -> LayerReduction:
    """Scores of every head and thumbnails: attention `[batch, heads, n, n]`, token_ids `[batch, n]`."""
    n, b, heads, device = attention.n, attention.batch, attention.n_heads, attention.device
    tokens = token_ids.to(device)
    names = ("total", "prev", "dup", "ind", "first", "ent", "dist")
    sums = {name: torch.zeros(b, heads, device=device) for name in names}
    max_weight = torch.zeros(b, heads, device=device)
    side = thumbnail_side(n)
    thumbs = _RowBinMax(heads, n, side, side, device)
    positions = torch.arange(n, device=device, dtype=torch.float32)
    step = rows_per_block(attention, heads, budget_bytes or block_budget(device))
    for q0 in range(0, n, step):
        q1 = min(n, q0 + step)
        weights, log_weights = attention.rows(q0, q1)
        k0, k1 = attention.key_range(q0, q1)
        _accumulate(sums, max_weight, weights, log_weights, tokens, positions, q0, q1, k0, k1, attention.causal)
        del log_weights
        thumbs.add(q0, _pool_columns(_padded(weights[0], k0, k1, n), side))
    total = sums["total"]
    scores = {
        "previous_token": (sums["prev"] / total).mean(dim=0),
        "duplicate_token": (sums["dup"] / total).mean(dim=0),
        "induction": (sums["ind"] / total).mean(dim=0),
        "first_token": sums["first"].mean(dim=0) / n,
        "entropy": sums["ent"].mean(dim=0) / n,
        "max_attention": max_weight.mean(dim=0),
        "mean_distance": sums["dist"].mean(dim=0) / n,
    }
    return LayerReduction(scores=scores, thumbnails=to_uint8(thumbs.out))


def _accumulate(
    sums: dict[str, torch.Tensor],
    max_weight: torch.Tensor,
    weights: torch.Tensor,
    log_weights: torch.Tensor,
    tokens: torch.Tensor,
    positions: torch.Tensor,
    q0: int,
    q1: int,
    k0: int,
    k1: int,
    causal: bool,
) -> None:
    """Add one block of rows `weights` `[batch, heads, q1 - q0, k1 - k0]` to the running sums."""
    row_sums = weights.sum(dim=-1)  # [b, h, rows]
    sums["total"] += row_sums.sum(dim=-1)
    sums["ent"] -= (weights * log_weights).sum(dim=(-2, -1))
    torch.maximum(max_weight, weights.amax(dim=(-2, -1)), out=max_weight)
    key_pos = positions[k0:k1]
    query_pos = positions[q0:q1]
    if causal:  # sum_k p (q - k) = q * rowsum - p @ k: one matrix-vector product
        sums["dist"] += (query_pos * row_sums - weights @ key_pos).sum(dim=-1)
    else:
        sums["dist"] += (weights * (query_pos[:, None] - key_pos[None, :]).abs()).sum(dim=(-2, -1))
    if k0 == 0:
        sums["first"] += weights[..., 0].sum(dim=-1)
    # previous token: cells (q, q - 1) that lie inside the block's keys
    q = torch.arange(max(q0, k0 + 1, 1), min(q1, k1 + 1), device=weights.device)
    if len(q):
        sums["prev"] += weights[:, :, q - q0, q - 1 - k0].sum(dim=-1)
    # duplicate token: an earlier key with the query's token; induction: the key after one
    query_tokens = tokens[:, q0:q1, None]
    earlier = positions[k0:k1][None, :] < query_pos[:, None]
    duplicate = (query_tokens == tokens[:, None, k0:k1]) & earlier
    sums["dup"] += _on_cells(weights, duplicate)
    if k1 - max(k0, 1) > 0:
        lo = max(k0, 1)  # key k counts when token k - 1 equals the query's and k - 1 < q
        before = positions[lo - 1 : k1 - 1][None, :] < query_pos[:, None]
        shifted = (query_tokens == tokens[:, None, lo - 1 : k1 - 1]) & before
        sums["ind"] += _on_cells(weights[..., lo - k0 :], shifted)


def _on_cells(weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`[batch, heads]` sum of weights `[b, h, rows, keys]` on the cells of a sparse `[b, rows, keys]` mask."""
    b, r, k = mask.nonzero(as_tuple=True)
    out = torch.zeros(weights.shape[0], weights.shape[1], device=weights.device)
    return out.index_add_(0, b, weights[b, :, r, k])


def pooled_window(
    attention: LayerAttention, head: int, q0: int, q1: int, k0: int, k1: int, rows: int, cols: int, batch: int = 0
) -> torch.Tensor:
    """A window of one head, max-pooled to at most rows x cols cells, float32 `[r, c]`.

    Windows past the prompt's end are clipped. Cell i covers tokens [start + floor(i * len / cells), ...).
    """
    n = attention.n
    q0, q1, k0, k1 = min(q0, n - 1), min(q1, n), min(k0, n - 1), min(k1, n)
    rows, cols = min(rows, q1 - q0), min(cols, k1 - k0)
    pooled = _RowBinMax(1, q1 - q0, rows, cols, attention.device)
    step = rows_per_block(attention, 1, block_budget(attention.device))
    for r0 in range(q0, q1, step):
        r1 = min(q1, r0 + step)
        weights, _ = attention.rows(r0, r1, range(head, head + 1))
        a0, a1 = attention.key_range(r0, r1)
        window = _padded(weights[batch], a0, a1, n)[:, :, k0:k1]
        pooled.add(r0 - q0, _pool_columns(window, cols))
    return pooled.out[0]


def head_rows(attention: LayerAttention, head: int, q0: int, q1: int, batch: int = 0) -> torch.Tensor:
    """Rows [q0, q1) of one head over every key, float32 `[rows, n]`."""
    weights, _ = attention.rows(q0, q1, range(head, head + 1))
    a0, a1 = attention.key_range(q0, q1)
    return _padded(weights[batch, 0], a0, a1, attention.n)


def head_column(attention: LayerAttention, head: int, key: int, batch: int = 0) -> torch.Tensor:
    """The weights key `key` receives from every query, float32 `[n]`, a block of rows at a time."""
    n = attention.n
    step = rows_per_block(attention, 1, block_budget(attention.device))
    parts = [head_rows(attention, head, q0, min(n, q0 + step), batch)[:, key] for q0 in range(0, n, step)]
    return torch.cat(parts)


def head_pattern(attention: LayerAttention, head: int, batch: int = 0) -> torch.Tensor:
    """One head's whole `[n, n]` pattern, float32: for short prompts and the Python API."""
    return head_rows(attention, head, 0, attention.n, batch)
