"""Attention seen through a weighting, readable in query blocks like any layer's attention
(capture.LayerAttention), so every reduction (scores, thumbnails, heads, tiles, rows) works on it
unchanged and no `[heads, n, n]` tensor is formed:

- `ValueWeighted`: each row of `A[h, i, j] * ||v_j W_O^h||`, scaled to sum to one (the share of what
  head h moves into i that comes from j);
- `Difference`: `A(prompt) - A(compare)` of two prompts of the same length (signed), or one sign of it.
"""

from __future__ import annotations

from typing import Literal

import torch

from .capture import LayerAttention, RowBlock, full_rows


def _block_stats(weights: torch.Tensor, k0: int, seen: torch.Tensor, statistics: bool) -> RowBlock:
    """A RowBlock of weights whose rows sum to one where `seen` (else are zero)."""
    if not statistics:  # the views read weights only: skip a logarithm per weight
        zeros = torch.zeros_like(seen, dtype=weights.dtype)
        return RowBlock(weights, k0, seen.to(weights.dtype), zeros, zeros)
    entropy = torch.special.entr(weights).sum(dim=-1)
    return RowBlock(weights, k0, seen.to(weights.dtype), weights.amax(dim=-1), entropy)


class ValueWeighted:
    """`attention` `[batch, heads, n, n]` weighted by source norms `[heads, n]`, rows renormalised.
    `statistics=False`: blocks carry weights only (row maxima and entropies zero), for the views."""

    def __init__(self, attention: LayerAttention, norms: torch.Tensor, statistics: bool = True) -> None:
        self.attention, self.norms, self.statistics = attention, norms.to(attention.device), statistics
        self.batch, self.n_heads, self.n, self.causal = (
            attention.batch,
            attention.n_heads,
            attention.n,
            attention.causal,
        )

    @property
    def device(self) -> torch.device:
        return self.attention.device

    def key_range(self, q0: int, q1: int) -> tuple[int, int]:
        return self.attention.key_range(q0, q1)

    def block(self, q0: int, q1: int, heads: range | None = None) -> RowBlock:
        heads = heads or range(self.n_heads)
        inner = self.attention.block(q0, q1, heads)
        k1 = inner.k0 + inner.weights.shape[-1]
        # Not in place: a dense layer's block can be a view of the layer itself.
        weights = inner.weights * self.norms[heads.start : heads.stop, None, inner.k0 : k1]
        total = weights.sum(dim=-1, keepdim=True)
        weights.div_(total.clamp_min(torch.finfo(weights.dtype).tiny))
        return _block_stats(weights, inner.k0, total[..., 0] > 0, self.statistics)


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
