"""Value-weighted attention, readable in query blocks like any layer's attention (layer.py), so
every reduction (scores, thumbnails, heads, tiles, rows) works on it unchanged and no
`[heads, n, n]` tensor is formed: each row of `A[h, i, j] * ||v_j W_O^h||`, scaled to sum to one
(the share of what head h moves into i that comes from j)."""

from __future__ import annotations

import torch

from attn_widget.maths.layer import LayerAttention, RowBlock, weights_block


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
        return weights_block(weights, inner.k0, total[..., 0] > 0, self.statistics)
