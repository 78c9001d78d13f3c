"""Two prompts of the same length, layer by layer: pure functions over their attention, read in
query blocks (no `[heads, n, n]` tensor).

The difference `A(prompt) - A(compare)` lies in [-1, 1]. It crosses to the browser as float16
(short prompts) or as bytes with 0 at 127.5 (`signed` replies); tiles keep each cell's largest
change by magnitude, with its sign, so no strong change vanishes when zoomed out.
"""

from __future__ import annotations

from typing import Literal

import torch

from attn_widget.maths.layer import LayerAttention, RowBlock, block_budget, full_rows, rows_per_block
from attn_widget.maths.reductions import PooledMax, reduce_layer

Part = Literal["signed", "positive", "negative", "magnitude"]


class Difference:
    """`a - b` of two prompts' attention of one layer (same batch, heads and length).

    `part="signed"`: the difference itself (for heads and rows; its row statistics mean little);
    "positive" / "negative": one sign's part, so max-pooling keeps the largest change of each sign;
    "magnitude": `|a - b|` (change thumbnails).
    """

    def __init__(self, a: LayerAttention, b: LayerAttention, part: Part = "signed") -> None:
        if (a.batch, a.n_heads, a.n) != (b.batch, b.n_heads, b.n):
            raise ValueError(
                f"cannot compare attention of shapes {(a.batch, a.n_heads, a.n)} and {(b.batch, b.n_heads, b.n)}"
            )
        self.a, self.b, self.part = a, b, part
        self.batch, self.n_heads, self.n = a.batch, a.n_heads, a.n
        self.causal = a.causal and b.causal

    @property
    def device(self) -> torch.device:
        return self.a.device

    def key_range(self, q0: int, q1: int) -> tuple[int, int]:
        a0, a1 = self.a.key_range(q0, q1)
        b0, b1 = self.b.key_range(q0, q1)
        return min(a0, b0), max(a1, b1)

    def block(self, q0: int, q1: int, heads: range | None = None) -> RowBlock:
        k0, k1 = self.key_range(q0, q1)
        rows_a, rows_b = full_rows(self.a, q0, q1, heads), full_rows(self.b, q0, q1, heads)
        weights = rows_a[..., k0:k1] - rows_b[..., k0:k1].to(rows_a.device)
        if self.part == "positive":
            weights = weights.clamp_min_(0.0)
        elif self.part == "negative":
            weights = weights.neg_().clamp_min_(0.0)
        elif self.part == "magnitude":
            weights = weights.abs_()
        return RowBlock(weights, k0, weights.sum(dim=-1), weights.amax(dim=-1), torch.zeros_like(weights[..., 0]))


def row_l1_change(a: LayerAttention, b: LayerAttention) -> torch.Tensor:
    """`[heads]`: mean over query rows of the L1 distance between the two prompts' rows (0 to 2),
    first prompt of the batch."""
    n = a.n
    total = torch.zeros(a.n_heads, device=a.device)
    step = rows_per_block(a, 2 * a.n_heads, block_budget(a.device))
    for q0 in range(0, n, step):
        q1 = min(n, q0 + step)
        change = full_rows(a, q0, q1)[0] - full_rows(b, q0, q1)[0].to(a.device)
        total += change.abs().sum(dim=(-2, -1))
    return total / n


def change_thumbnails(a: LayerAttention, b: LayerAttention, token_ids: torch.Tensor) -> torch.Tensor:
    """`[heads, s, s]` uint8: where each head changed, |A - B| max-pooled like attention thumbnails."""
    return reduce_layer(Difference(a, b, "magnitude"), token_ids).thumbnails


def signed_window(
    a: LayerAttention, b: LayerAttention, head: int, q0: int, q1: int, k0: int, k1: int, rows: int, cols: int
) -> torch.Tensor:
    """Like `reductions.pooled_window` for the difference: each cell keeps the window's change
    largest in magnitude, with its sign, float32 `[r, c]`. One pass over both prompts' rows."""
    n = a.n
    q0, q1, k0, k1 = min(q0, n - 1), min(q1, n), min(k0, n - 1), min(k1, n)
    rows, cols = min(rows, q1 - q0), min(cols, k1 - k0)
    up, down = (PooledMax(1, rows, cols, (q1 - q0, k1 - k0), a.device) for _ in range(2))
    step = rows_per_block(a, 2, block_budget(a.device))
    heads = range(head, head + 1)
    for r0 in range(q0, q1, step):
        r1 = min(q1, r0 + step)
        change = full_rows(a, r0, r1, heads)[0] - full_rows(b, r0, r1, heads)[0].to(a.device)
        window = change[..., k0:k1]
        up.add(r0 - q0, window.clamp_min(0.0))
        down.add(r0 - q0, window.neg().clamp_min_(0.0))
    return torch.where(up.out[0] >= down.out[0], up.out[0], -down.out[0])


def signed_to_uint8(values: torch.Tensor) -> torch.Tensor:
    """Values in [-1, 1] to bytes 0..255 (0 -> 127.5 rounds to 128; clamped)."""
    return ((values.float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
