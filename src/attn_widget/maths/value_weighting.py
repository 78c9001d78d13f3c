"""Value-weighted attention (Kobayashi et al. 2020, norm-based): pure tensor functions, and
`ValueWeighted`, a layer's attention read in query blocks with each row of
`A[h, i, j] * ||v_j W_O^h||` scaled to sum to one (the share of what head h moves into i from j).

`||A[h, i, j] * f_h(x_j)||` with `f_h(x) = (x W_V^h + b_V^h) W_O^h` is the size of what head h
moves from source j into position i. The attention weight is a scalar, so it factors out:
`A[h, i, j] * ||v_j W_O^h||`, and `||v W_O^h||^2 = v (W_O^h W_O^h^T) v^T` needs only the
`[d_head, d_head]` Gram matrix per head. Inputs are what a layer's capture holds: the values
`[kv_heads, n, d_head]` (before the grouped-query repeat) and the pattern rows; no
`[heads, n, n, d]` or `[heads, n, d_model]` tensor is ever formed.
"""

from __future__ import annotations

import torch

from attn_widget.maths.layer import LayerAttention, ReweightedLayer, RowBlock, weights_block


def grouped_by_kv(per_head: torch.Tensor, kv_heads: int) -> torch.Tensor:
    """`[h, ...]` -> `[kv_heads, h // kv_heads, ...]`: query heads grouped by the key/value head they
    share (grouped-query attention repeats each key/value head over consecutive query heads)."""
    h = per_head.shape[0]
    if h % kv_heads:
        raise ValueError(f"{h} query heads cannot share {kv_heads} key/value heads evenly")
    return per_head.reshape(kv_heads, h // kv_heads, *per_head.shape[1:])


def value_norms(value: torch.Tensor, w_o: torch.Tensor) -> torch.Tensor:
    """`[h, n]` float32: `||v_j W_O^h||` for every query head h and source position j.

    value: `[kv_heads, n, d_head]` (`x W_V + b_V`, before the grouped-query repeat);
    w_o: `[h, d_head, d_model]`, the head's slice of the output projection.
    """
    w_o = w_o.to(device=value.device, dtype=torch.float32)
    gram = w_o @ w_o.transpose(-1, -2)  # [h, d_head, d_head]
    kv = value.shape[0]
    v = value.float()
    squared = torch.einsum("knd,kgde,kne->kgn", v, grouped_by_kv(gram, kv), v).reshape(gram.shape[0], -1)
    return squared.clamp_min(0.0).sqrt()  # rounding can dip a zero norm just below 0


def value_weighted(pattern: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
    """`||A[h, i, j] f_h(x_j)||`: pattern `[..., h, q, n]` (rows of any queries) times norms `[h, n]`."""
    return pattern.float() * norms[..., :, None, :]


def row_shares(weighted: torch.Tensor) -> torch.Tensor:
    """Each row scaled to sum to one: the share of what a head moves into i that comes from each j.

    The views draw this, so value weighting fits every colour scale, wire format and score made
    for attention (rows that sum to one); `value_weighted` keeps the absolute sizes.
    """
    total = weighted.sum(dim=-1, keepdim=True)
    return weighted / total.clamp_min(torch.finfo(weighted.dtype).tiny)


class ValueWeighted(ReweightedLayer):
    """`attention` `[batch, heads, n, n]` weighted by source norms `[heads, n]`, rows renormalised.
    `statistics=False`: blocks carry weights only (row maxima and entropies zero), for the views."""

    def __init__(self, attention: LayerAttention, norms: torch.Tensor, statistics: bool = True) -> None:
        super().__init__(attention)
        self.norms, self.statistics = norms.to(attention.device), statistics

    def reweigh(self, weights: torch.Tensor, heads: range, k0: int, k1: int) -> RowBlock:
        # Not in place: a dense layer's block can be a view of the layer itself.
        weights = weights * self.norms[heads.start : heads.stop, None, k0:k1]
        total = weights.sum(dim=-1, keepdim=True)
        weights.div_(total.clamp_min(torch.finfo(weights.dtype).tiny))
        return weights_block(weights, k0, total[..., 0] > 0, self.statistics)
