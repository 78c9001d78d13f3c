"""Per-source direct logit attribution: pure tensor functions.

What head h writes into position i is `sum_j A[h, i, j] v_j W_O^h`; the final norm, with its scale
`sigma_i` frozen from the run, is linear in it, so the head's effect on `logit(answer) -
logit(counterfactual)` splits exactly over sources j:

    A[h, i, j] * (v_j W_O^h) . P d / sigma_i,   d = gamma * (W_U[:, answer] - W_U[:, counterfactual])

gamma is the final norm's gain (1 when absent or folded into W_U) and P the centering a LayerNorm
applies (none for RMSNorm). Centering a head's output and dotting with d equals dotting with the
centred d (P is a symmetric projection), so it is applied to d once. The sum over j is the head's
direct logit attribution as TransformerLens computes it (`stack_head_results`, `apply_ln_to_stack`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from attn_widget.maths.value_weighting import grouped_by_kv

NormKind = Literal["layernorm", "rmsnorm", "none"]


@dataclass(frozen=True)
class FinalNorm:
    """The norm before the unembedding: what centring and scale it applies, and its gain."""

    kind: NormKind
    eps: float = 1e-5
    weight: torch.Tensor | None = None
    """The gain gamma `[d_model]`; None when there is none (or it is folded into W_U)."""


def logit_direction(w_u: torch.Tensor, answer: int, counterfactual: int | None, norm: FinalNorm) -> torch.Tensor:
    """`[d_model]` float32: the residual direction whose dot product (after the norm's scale) is the
    logit difference `answer - counterfactual` (or the answer's logit alone)."""
    direction = w_u[:, answer].float()
    if counterfactual is not None:
        direction = direction - w_u[:, counterfactual].float()
    if norm.weight is not None:
        direction = direction * norm.weight.to(direction.device, torch.float32)
    if norm.kind == "layernorm":
        direction = direction - direction.mean()
    return direction


def final_scale(residual: torch.Tensor, norm: FinalNorm) -> torch.Tensor:
    """`[..., n]` the norm's divisor sigma at each position of the final residual `[..., n, d_model]`."""
    x = residual.float()
    if norm.kind == "layernorm":
        return (x.var(dim=-1, unbiased=False) + norm.eps).sqrt()
    if norm.kind == "rmsnorm":
        return (x.pow(2).mean(dim=-1) + norm.eps).sqrt()
    return torch.ones(x.shape[:-1], device=x.device)


def source_attribution(
    rows: torch.Tensor, value: torch.Tensor, w_o: torch.Tensor, direction: torch.Tensor, scale: float | torch.Tensor
) -> torch.Tensor:
    """`[h, n]` float32: what each source j contributes, through head h, to the logit difference at
    the query whose attention rows `[h, n]` are given.

    value: `[kv_heads, n, d_head]` (before the grouped-query repeat); w_o: `[h, d_head, d_model]`;
    direction: from `logit_direction`; scale: sigma at the query (`final_scale`).
    """
    w_o = w_o.to(device=value.device, dtype=torch.float32)
    readout = w_o @ direction.to(value.device, torch.float32)  # [h, d_head]: W_O^h P d
    kv = value.shape[0]
    projected = torch.einsum("knd,kgd->kgn", value.float(), grouped_by_kv(readout, kv)).reshape(readout.shape[0], -1)
    return rows.float() * projected / scale
