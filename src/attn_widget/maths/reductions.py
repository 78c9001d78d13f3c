"""Everything the views need of a layer, reduced a block of query rows at a time.

Head scores (the same quantities as dense_scores.py, accumulated exactly over row blocks), max-pooled
thumbnails, and max-pooled windows of one head (the heatmap's tiles). Memory is one block of
`[batch, heads, rows, n]` weights, never a layer's `[heads, n, n]`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from attn_widget.maths.detectors import ExpectedCells
from attn_widget.maths.layer import LayerAttention, LayerCapture, RowBlock, block_budget, full_rows, rows_per_block

THUMBNAIL_SIZE = 48
"""Thumbnails are max-pooled to at most this many cells a side, so no strong weight vanishes."""


def thumbnail_side(n_tokens: int) -> int:
    return min(n_tokens, THUMBNAIL_SIZE)


def to_uint8(values: torch.Tensor) -> torch.Tensor:
    """Weights in [0, 1] to bytes 0..255 (rounded, clamped); NaN and infinite ones to 0 (see wire.undefined_mask)."""
    finite = values.float().nan_to_num(nan=0.0, posinf=0.0, neginf=0.0)
    return (finite.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


@dataclass
class LayerReduction:
    scores: dict[str, torch.Tensor]
    """metric -> `[heads]` float32 (contract.PROMPT_METRICS)."""
    thumbnails: torch.Tensor
    """`[heads, side, side]` uint8 of the first prompt of the batch."""
    column_sums: torch.Tensor
    """`[heads, n]` float32: the weight each key receives from every query, summed (batch mean):
    what received attention and sinks are made of."""
    detectors: list[torch.Tensor] = field(default_factory=list)
    """`[heads]` score of each of the `detectors` asked for, in order (batch mean)."""


def received_attention(column_sums: torch.Tensor, causal: bool) -> torch.Tensor:
    """`[..., k]`: the mean weight each key receives from the queries that can see it, from column
    sums (as maths/sinks.py defines it from a dense pattern: n - k queries in a causal model, else n)."""
    n = column_sums.shape[-1]
    if not causal:
        return column_sums / n
    return column_sums / torch.arange(n, 0, -1, device=column_sums.device, dtype=column_sums.dtype)


def sink_share(column_sums: torch.Tensor, sinks: torch.Tensor) -> torch.Tensor:
    """`[...]`: the mean over queries of the weight on the sink positions `sinks` `[..., k]` bool:
    sum over sinks of their column sums, over n."""
    n = column_sums.shape[-1]
    return (column_sums * sinks.to(column_sums.device, column_sums.dtype)).sum(dim=-1) / n


class PooledMax:
    """Max-pooling of a window into adaptive bins, fed one block of rows at a time.

    Bin i of `cells` over `length` positions covers [floor(i * length / cells), ceil((i + 1) * length / cells)),
    as torch's adaptive pooling does, so the result equals adaptive_max_pool2d of the whole window.
    Rows are reduced first (a block touches one or two row bins), so the column pooling runs on a
    few rows, not on the block.
    """

    def __init__(self, leading: int, rows: int, cols: int, shape: tuple[int, int], device: torch.device) -> None:
        self.length, self.width = shape
        self.rows, self.cols = rows, cols
        self.out = torch.zeros(leading, rows, cols, device=device)

    def add(self, start: int, block: torch.Tensor, k0: int = 0) -> None:
        """`block` `[leading, r, w]` holds rows [start, start + r) and columns [k0, k0 + w) of the window."""
        stop = start + block.shape[1]
        first = start * self.rows // self.length
        for i in range(max(0, first - 1), self.rows):
            lo, hi = i * self.length // self.rows, -(-(i + 1) * self.length // self.rows)
            if lo >= stop:
                break
            if hi <= start:
                continue
            line = block[:, max(lo, start) - start : min(hi, stop) - start].amax(dim=1)
            line = F.pad(line, (k0, self.width - k0 - line.shape[-1]))
            pooled = F.adaptive_max_pool1d(line[:, None], self.cols)[:, 0]
            self.out[:, i] = torch.maximum(self.out[:, i], pooled)


@dataclass
class TokenPairs:
    """The duplicate-token cells (q, k): k < q holds the query's token, sorted by q, per prompt.

    The same for every layer of a prompt, so found once; induction's cells are (q, k + 1).
    """

    query: list[torch.Tensor]
    key: list[torch.Tensor]

    def in_rows(self, batch: int, q0: int, q1: int) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.query[batch]
        lo, hi = (int(i) for i in torch.searchsorted(q, torch.tensor([q0, q1], device=q.device)))
        return q[lo:hi], self.key[batch][lo:hi]


MAX_PAIRS_PER_TOKEN = 256
"""Past this many duplicate pairs per token (a prompt of one word repeated), masks per block are cheaper."""


def token_pairs(token_ids: torch.Tensor) -> TokenPairs | None:
    """Every prompt's duplicate-token cells, or None when there are too many to list."""
    queries, keys = [], []
    for row in token_ids:
        n = len(row)
        counts = torch.bincount(row - row.min())
        if int((counts * (counts - 1) // 2).sum()) > MAX_PAIRS_PER_TOKEN * n:
            return None
        order = torch.argsort(row * n + torch.arange(n, device=row.device))  # by token, then position
        ranked = row[order]
        q_parts, k_parts = [], []
        for d in range(1, int(counts.max())):
            same = ranked[d:] == ranked[:-d]
            q_parts.append(order[d:][same])
            k_parts.append(order[:-d][same])
        q = torch.cat(q_parts) if q_parts else row.new_zeros(0)
        k = torch.cat(k_parts) if k_parts else row.new_zeros(0)
        by_query = torch.argsort(q, stable=True)
        queries.append(q[by_query])
        keys.append(k[by_query])
    return TokenPairs(queries, keys)


def reduce_layer(
    attention: LayerAttention,
    token_ids: torch.Tensor,
    budget_bytes: int | None = None,
    pairs: TokenPairs | None = None,
    detectors: Sequence[ExpectedCells] = (),
) -> LayerReduction:
    """Scores of every head, thumbnails, column sums and `detectors`' scores in one sweep of query
    blocks: attention `[batch, heads, n, n]`, token_ids `[batch, n]`. `pairs`: token_pairs(token_ids),
    found once for all layers of a prompt. A capture keeps each row's log-sum-exp (columns read it)."""
    n, b, heads, device = attention.n, attention.batch, attention.n_heads, attention.device
    tokens = token_ids.to(device)
    pairs = pairs or token_pairs(tokens)
    names = ("total", "prev", "self", "dup", "ind", "first", "ent", "dist")
    sums = {name: torch.zeros(b, heads, device=device) for name in names}
    max_weight = torch.zeros(b, heads, device=device)
    side = thumbnail_side(n)
    thumbs = PooledMax(heads, side, side, (n, n), device)
    positions = torch.arange(n, device=device, dtype=torch.float32)
    columns = torch.zeros(b, heads, n, device=device)
    detector_sums = [torch.zeros(b, heads, device=device) for _ in detectors]
    lse = torch.empty(b, heads, n, device=device) if isinstance(attention, LayerCapture) else None
    step = rows_per_block(attention, heads, budget_bytes or block_budget(device))
    for q0 in range(0, n, step):
        q1 = min(n, q0 + step)
        block = attention.block(q0, q1)
        _accumulate(sums, block, tokens, positions, q0, q1, attention.causal, pairs)
        torch.maximum(max_weight, block.row_max.amax(dim=-1), out=max_weight)
        thumbs.add(q0, block.weights[0], block.k0)
        columns[..., block.k0 : block.k0 + block.weights.shape[-1]] += block.weights.sum(dim=-2)
        for cells, detector_sum in zip(detectors, detector_sums, strict=True):
            cells.add_block(detector_sum, block.weights, q0, block.k0)
        if lse is not None and block.lse is not None:
            lse[..., q0:q1] = block.lse
    if isinstance(attention, LayerCapture) and lse is not None:
        attention.row_lse = lse
    total = sums["total"]
    scores = {
        "previous_token": (sums["prev"] / total).mean(dim=0),
        "current_token": (sums["self"] / total).mean(dim=0),
        "duplicate_token": (sums["dup"] / total).mean(dim=0),
        "induction": (sums["ind"] / total).mean(dim=0),
        "first_token": sums["first"].mean(dim=0) / n,
        "entropy": sums["ent"].mean(dim=0) / n,
        "max_attention": max_weight.mean(dim=0),
        "mean_distance": sums["dist"].mean(dim=0) / n,
    }
    scored = [cells.score(s, total).mean(dim=0) for cells, s in zip(detectors, detector_sums, strict=True)]
    return LayerReduction(scores, to_uint8(thumbs.out), columns.mean(dim=0), scored)


def _accumulate(
    sums: dict[str, torch.Tensor],
    block: RowBlock,
    tokens: torch.Tensor,
    positions: torch.Tensor,
    q0: int,
    q1: int,
    causal: bool,
    pairs: TokenPairs | None,
) -> None:
    """Add one block of rows to the running sums (weights `[batch, heads, q1 - q0, k1 - k0]`)."""
    weights, k0 = block.weights, block.k0
    k1 = k0 + weights.shape[-1]
    sums["total"] += block.row_sum.sum(dim=-1)
    sums["ent"] += block.entropy.sum(dim=-1)
    key_pos = positions[k0:k1]
    query_pos = positions[q0:q1]
    if causal:  # sum_k p (q - k) = q * rowsum - p @ k: one matrix-vector product
        sums["dist"] += (query_pos * block.row_sum - weights @ key_pos).sum(dim=-1)
    else:
        sums["dist"] += (weights * (query_pos[:, None] - key_pos[None, :]).abs()).sum(dim=(-2, -1))
    if k0 == 0:
        sums["first"] += weights[..., 0].sum(dim=-1)
    # previous token: cells (q, q - 1) that lie inside the block's keys
    q = torch.arange(max(q0, k0 + 1, 1), min(q1, k1 + 1), device=weights.device)
    if len(q):
        sums["prev"] += weights[:, :, q - q0, q - 1 - k0].sum(dim=-1)
    # current token: cells (q, q) inside the block's keys
    q = torch.arange(max(q0, k0), min(q1, k1), device=weights.device)
    if len(q):
        sums["self"] += weights[:, :, q - q0, q - k0].sum(dim=-1)
    # duplicate token: an earlier key with the query's token; induction: the key after one
    if pairs is not None:
        for i in range(weights.shape[0]):
            q, k = pairs.in_rows(i, q0, q1)
            for name, key in (("dup", k), ("ind", k + 1)):
                inside = (key >= k0) & (key < k1)
                sums[name][i] += weights[i, :, q[inside] - q0, key[inside] - k0].sum(dim=-1)
        return
    query_tokens = tokens[:, q0:q1, None]
    earlier = key_pos[None, :] < query_pos[:, None]
    duplicate = (query_tokens == tokens[:, None, k0:k1]) & earlier
    sums["dup"] += _on_cells(weights, duplicate)
    if k1 - max(k0, 1) > 0:
        lo = max(k0, 1)  # key k counts when token k - 1 equals the query's and k - 1 < q
        before = positions[lo - 1 : k1 - 1][None, :] < query_pos[:, None]
        shifted = (query_tokens == tokens[:, None, lo - 1 : k1 - 1]) & before
        sums["ind"] += _on_cells(weights[..., lo - k0 :], shifted)


def _on_cells(weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`[batch, heads]` sum of weights `[b, h, rows, keys]` on the cells of a `[b, rows, keys]` mask.

    A sparse mask (ordinary text) is gathered; a dense one (a prompt of one repeated token) is a
    matrix product, so neither costs more than one pass over the weights.
    """
    b, h = weights.shape[:2]
    if int(mask.sum()) * h * 8 < mask.numel():
        bi, r, k = mask.nonzero(as_tuple=True)
        return torch.zeros(b, h, device=weights.device).index_add_(0, bi, weights[bi, :, r, k])
    flat = weights.reshape(b, h, -1)
    return torch.matmul(flat, mask.reshape(b, -1, 1).to(weights.dtype))[..., 0]


def pooled_window(
    attention: LayerAttention, head: int, q0: int, q1: int, k0: int, k1: int, rows: int, cols: int, batch: int = 0
) -> torch.Tensor:
    """A window of one head, max-pooled to at most rows x cols cells, float32 `[r, c]`.

    Windows past the prompt's end are clipped. Cell i covers tokens [start + floor(i * len / cells), ...).
    """
    n = attention.n
    q0, q1, k0, k1 = min(q0, n - 1), min(q1, n), min(k0, n - 1), min(k1, n)
    rows, cols = min(rows, q1 - q0), min(cols, k1 - k0)
    pooled = PooledMax(1, rows, cols, (q1 - q0, k1 - k0), attention.device)
    step = rows_per_block(attention, 1, block_budget(attention.device))
    for r0 in range(q0, q1, step):
        block = attention.block(r0, min(q1, r0 + step), range(head, head + 1))
        a0, a1 = block.k0, block.k0 + block.weights.shape[-1]
        lo, hi = max(a0, k0), min(a1, k1)
        if lo < hi:  # the part of the block's keys inside the window
            pooled.add(r0 - q0, block.weights[batch][..., lo - a0 : hi - a0], lo - k0)
    return pooled.out[0]


def head_rows(attention: LayerAttention, head: int, q0: int, q1: int, batch: int = 0) -> torch.Tensor:
    """Rows [q0, q1) of one head over every key, float32 `[rows, n]`."""
    return full_rows(attention, q0, q1, range(head, head + 1))[batch, 0]


def head_column(attention: LayerAttention, head: int, key: int, batch: int = 0) -> torch.Tensor:
    """The weights key `key` receives from every query, float32 `[n]`: one q . k per query from a
    swept capture's row log-sum-exps, else a block of rows at a time."""
    if isinstance(attention, LayerCapture) and (column := attention.column(head, key, batch)) is not None:
        return column
    n = attention.n
    out = torch.zeros(n, device=attention.device)
    step = rows_per_block(attention, 1, block_budget(attention.device))
    for q0 in range(0, n, step):
        block = attention.block(q0, min(n, q0 + step), range(head, head + 1))
        if block.k0 <= key < block.k0 + block.weights.shape[-1]:
            out[q0 : q0 + block.weights.shape[-2]] = block.weights[batch, 0, :, key - block.k0]
    return out


def head_pattern(attention: LayerAttention, head: int, batch: int = 0) -> torch.Tensor:
    """One head's whole `[n, n]` pattern, float32, filled into one preallocated tensor a block of
    rows at a time: its peak is the result plus one block (the Python API, short prompts' views)."""
    n = attention.n
    out = torch.zeros(n, n, device=attention.device)
    step = rows_per_block(attention, 1, block_budget(attention.device))
    for q0 in range(0, n, step):
        block = attention.block(q0, min(n, q0 + step), range(head, head + 1))
        rows, keys = block.weights.shape[-2:]
        out[q0 : q0 + rows, block.k0 : block.k0 + keys] = block.weights[batch, 0]
        del block  # one block's temporaries at a time
    return out
