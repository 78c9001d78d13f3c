"""One attention score split into query-side x key-side contributions of the residual stream's
components (Elhage et al. 2021; TransformerLens' `decompose_resid` and `apply_ln_to_stack`).

The score of query position i and key position j in head h is

    s = scaling * rot_i(norm(x_i) W_Q + b_Q) . rot_j(norm(x_j) W_K + b_K)

where x is the residual stream entering the layer, a sum of components (embeddings, every earlier
head's output, every earlier MLP, biases). The norm's divisor (LayerNorm's or RMSNorm's scale) is
taken from this run and held fixed, and LayerNorm's mean subtraction is linear, so the norm maps
each component on its own; the rotary rotation of a position is linear too. Everything between
the residual stream and the dot product is then linear per side, and the score is exactly the sum
of `scaling * q_c . k_c'` over pairs of query-side component c and key-side component c', plus one
"bias" component per side (the norm's bias and b_Q / b_K, which belong to no residual component).

A soft-capped model (Gemma 2) caps this sum afterwards (`softcap * tanh(s / softcap)`): the split is
of the score before the cap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

NormKind = Literal["layernorm", "rmsnorm", "none"]
BIAS = "bias"
"""The label of each side's bias component: the norm's bias plus b_Q (or b_K)."""


@dataclass(frozen=True)
class Norm:
    """The norm in front of the attention: its kind, epsilon and elementwise gain and bias (None: 1 and 0).
    A Gemma gain (`1 + weight`) is given already added."""

    kind: NormKind
    eps: float = 1e-5
    gain: torch.Tensor | None = None
    bias: torch.Tensor | None = None


@dataclass(frozen=True)
class Rotation:
    """Rotary embedding at one position: `x * cos + rotate(x) * sin` on the first `len(cos)` dimensions."""

    cos: torch.Tensor
    sin: torch.Tensor
    rotate: Callable[[torch.Tensor], torch.Tensor]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        d = self.cos.shape[-1]
        turned = x[..., :d] * self.cos + self.rotate(x[..., :d]) * self.sin
        return torch.cat([turned, x[..., d:]], dim=-1) if d < x.shape[-1] else turned


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """The Llama convention: the first half of the dimensions pairs with the second."""
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


@dataclass(frozen=True)
class HeadQK:
    """What maps one head's residual stream to its query and key: `[d_model, d_head]` projections,
    `[d_head]` biases (None: zero), the norm shared by both sides, and the score's scaling."""

    w_q: torch.Tensor
    b_q: torch.Tensor | None
    w_k: torch.Tensor
    b_k: torch.Tensor | None
    norm: Norm
    scaling: float


def norm_divisor(residual: torch.Tensor, norm: Norm) -> torch.Tensor:
    """The scale the norm divides the residual `[..., d_model]` by in this run (1 without a norm)."""
    x = residual.double()
    if norm.kind == "layernorm":
        x = x - x.mean(-1, keepdim=True)
    if norm.kind == "none":
        return torch.ones(x.shape[:-1], dtype=torch.float64, device=x.device)
    return (x.pow(2).mean(-1) + norm.eps).sqrt()


def normed_components(components: torch.Tensor, residual: torch.Tensor, norm: Norm) -> torch.Tensor:
    """`[C, d_model]` components of `residual` `[d_model]` through the norm with this run's scale,
    plus one last row: the norm's bias. Rows sum to norm(residual)."""
    x = components.double()
    if norm.kind == "layernorm":
        x = x - x.mean(-1, keepdim=True)
    x = x / norm_divisor(residual, norm)
    if norm.gain is not None:
        x = x * norm.gain.double()
    bias = norm.bias.double() if norm.bias is not None else torch.zeros_like(x[0])
    return torch.cat([x, bias[None]], dim=0)


def side(
    components: torch.Tensor,
    residual: torch.Tensor,
    norm: Norm,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    rotation: Rotation | None,
) -> torch.Tensor:
    """`[C + 1, d_head]`: each component's part of the query (or key) at one position, the last row the bias."""
    projected = normed_components(components, residual, norm) @ weight.double()
    if bias is not None:
        projected[-1] += bias.double()
    if rotation is not None:
        projected = Rotation(rotation.cos.double(), rotation.sin.double(), rotation.rotate)(projected)
    return projected


def decompose_score(
    query_components: torch.Tensor,
    key_components: torch.Tensor,
    head: HeadQK,
    query_rotation: Rotation | None = None,
    key_rotation: Rotation | None = None,
    query_residual: torch.Tensor | None = None,
    key_residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """`[Cq + 1, Ck + 1]` float64: the score's part from each (query-side, key-side) pair of components;
    the last row and column are the biases. It sums to the pre-softmax score (before any soft-cap).

    The residuals default to the sum of the components (pass them when the components are not all of it)."""
    q_res = query_components.sum(0) if query_residual is None else query_residual
    k_res = key_components.sum(0) if key_residual is None else key_residual
    q = side(query_components, q_res, head.norm, head.w_q, head.b_q, query_rotation)
    k = side(key_components, k_res, head.norm, head.w_k, head.b_k, key_rotation)
    return (q @ k.T) * head.scaling
