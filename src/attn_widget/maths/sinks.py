"""Attention sinks (Gu et al., ICLR 2025): key positions that soak up attention, wherever they are.

A key k's received attention is the mean weight it gets from the queries that can see it
(q >= k in a causal model, every query otherwise); k is a sink of a head when that mean passes a
threshold (0.3, as in the paper). A head's sink share is the mean over queries of the weight it
puts on its sink positions.
"""

from __future__ import annotations

import torch

from attn_widget.maths.layer import looks_causal

SINK_THRESHOLD = 0.3
ROUNDING = 1e-6
EMPTY_ROW = 1e-6


def received_attention(pattern: torch.Tensor) -> torch.Tensor:
    """`[..., k]`: the mean attention each key position receives, from `[..., q, k]` patterns."""
    pattern = pattern.float()
    n = pattern.shape[-1]
    total = pattern.sum(dim=-2)
    if not looks_causal(pattern):
        return total / n
    seen_by = torch.arange(n, 0, -1, device=pattern.device, dtype=pattern.dtype)  # key k: n - k queries
    return total / seen_by


def sink_mask(pattern: torch.Tensor, threshold: float = SINK_THRESHOLD) -> torch.Tensor:
    """`[..., k]` bool: the sink positions of each head."""
    return passes(received_attention(pattern), threshold)


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
