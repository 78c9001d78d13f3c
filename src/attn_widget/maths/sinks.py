"""Attention sinks (Gu et al., ICLR 2025): key positions that soak up attention, wherever they are.

A key k's received attention is the mean weight it gets from the queries that can see it
(q >= k in a causal model, every query otherwise); k is a sink of a head when that mean passes a
threshold (0.3, as in the paper) and enough queries see k to make the mean mean something: at
least MIN_QUERIES of them and a quarter of the prompt. In a causal model the last keys are seen by
one or two queries, so a previous-token head gives them a mean near 1 without sinking anything.
A head's sink share is the mean over queries of the weight it puts on its sink positions.
"""

from __future__ import annotations

import math

import torch

from attn_widget.maths.layer import LayerAttention, ReweightedLayer, RowBlock, looks_causal, weights_block

SINK_THRESHOLD = 0.3
MIN_QUERIES = 4
"""A sink is seen by at least this many queries (or by every query of a shorter prompt)."""
MIN_QUERY_FRACTION = 0.25
"""... and by at least this share of the prompt's queries."""
ROUNDING = 1e-6
EMPTY_ROW = 1e-6


def seen_by(n: int, causal: bool, device: torch.device | None = None) -> torch.Tensor:
    """`[n]`: how many queries can see each key (n - k in a causal model, n otherwise)."""
    if causal:
        return torch.arange(n, 0, -1, device=device, dtype=torch.float32)
    return torch.full((n,), float(n), device=device)


def enough_queries(n: int) -> int:
    """The fewest queries a sink must be seen by in an n-token prompt."""
    return min(n, max(MIN_QUERIES, math.ceil(MIN_QUERY_FRACTION * n)))


def received_attention(pattern: torch.Tensor) -> torch.Tensor:
    """`[..., k]`: the mean attention each key position receives, from `[..., q, k]` patterns."""
    pattern = pattern.float()
    n = pattern.shape[-1]
    return pattern.sum(dim=-2) / seen_by(n, looks_causal(pattern), pattern.device)


def sink_mask(pattern: torch.Tensor, threshold: float = SINK_THRESHOLD) -> torch.Tensor:
    """`[..., k]` bool: the sink positions of each head."""
    n = pattern.shape[-1]
    eligible = seen_by(n, looks_causal(pattern), pattern.device) >= enough_queries(n)
    return passes(received_attention(pattern), threshold) & eligible


def passes(received: torch.Tensor, threshold: float) -> torch.Tensor:
    # Saturated heads often give exact ties (3 of 10 queries all on k: 0.3); float32 sums land a
    # rounding either side of them. A sink must pass the threshold by more than rounding.
    return received.double() > threshold + ROUNDING


def sink_share(pattern: torch.Tensor, threshold: float = SINK_THRESHOLD) -> torch.Tensor:
    """`[...]`: mean over queries of the weight on the head's sink positions (pattern `[..., q, k]`)."""
    pattern = pattern.float()
    mask = sink_mask(pattern, threshold).to(pattern.dtype)
    return (pattern @ mask.unsqueeze(-1)).squeeze(-1).mean(dim=-1)


def without_sinks(pattern: torch.Tensor, sinks: torch.Tensor) -> torch.Tensor:
    """One head's `[q, k]` pattern with sink columns zeroed and each row renormalised to one.

    A row with (almost) all its weight on sinks, less than EMPTY_ROW left, stays at zero: scaling
    rounding noise up to a whole row would show a pattern that is not there.
    """
    kept = pattern.float() * (~sinks).to(torch.float32)
    rows = kept.sum(dim=-1, keepdim=True)
    return torch.where(rows > EMPTY_ROW, kept / rows.clamp_min(EMPTY_ROW), torch.zeros_like(kept)).to(pattern.dtype)


class SinksExcluded(ReweightedLayer):
    """A layer read with each head's sink columns zeroed and its rows renormalised (`without_sinks`),
    a block of rows at a time."""

    def __init__(self, attention: LayerAttention, sinks: torch.Tensor) -> None:
        super().__init__(attention)
        self.sinks = sinks.to(attention.device)
        """`sinks`: `[heads, n]` bool."""

    def reweigh(self, weights: torch.Tensor, heads: range, k0: int, k1: int) -> RowBlock:
        weights = without_sinks(weights, self.sinks[heads.start : heads.stop, None, k0:k1])
        return weights_block(weights, k0, weights.sum(dim=-1) > 0, statistics=False)
