"""Head composition scores (Elhage et al. 2021), as TransformerLens' `all_composition_scores`: how
much of a later head's W_QK (Q- or K-composition) or W_OV (V-composition) reads what an earlier
head's W_OV writes,

    score = ||W_OV^left  W^right||_F / (||W_OV^left||_F ||W^right||_F)

with W^right = W_QK = W_Q W_K^T (Q), W_QK^T (K) or W_OV = W_V W_O (V), from the weights alone
(biases and norms left out, as there). Each Frobenius norm is exact and never forms a d_model x
d_model matrix: ||W_V (W_O W_X) W_Y^T||^2 = tr(W_V^T W_V M W_Y^T W_Y M^T) with M = W_O W_X, all
d_head x d_head. Pairs whose left head is not in an earlier layer score 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import torch

CompositionKind = Literal["q", "k", "v"]
KINDS: tuple[CompositionKind, ...] = ("q", "k", "v")


class HeadWeights(Protocol):
    """One layer's W_Q, W_K, W_V `[h, d_model, d_head]` and W_O `[h, d_head, d_model]`, keys and values
    repeated to every query head."""

    @property
    def w_q(self) -> torch.Tensor: ...
    @property
    def w_k(self) -> torch.Tensor: ...
    @property
    def w_v(self) -> torch.Tensor: ...
    @property
    def w_o(self) -> torch.Tensor: ...


def _gram(a: torch.Tensor) -> torch.Tensor:
    """`[h, d_head, d_head]`: a^T a for `[h, d_model, d_head]`."""
    return a.transpose(-1, -2) @ a


def composition_kind(kind: object) -> CompositionKind:
    """`kind` as one of KINDS (any case); a ValueError names what else it may be."""
    mode = kind.lower() if isinstance(kind, str) else kind
    for known in KINDS:
        if mode == known:
            return known
    raise ValueError(f"kind must be one of {', '.join(KINDS)} (query, key or value composition), not {kind!r}.")


def composition_scores(layers: Sequence[HeadWeights], kind: str) -> torch.Tensor:
    """`[layers, heads, layers, heads]` float32: entry (l, h, l', h') is how much head (l', h') composes
    with the earlier head (l, h) on its query (`kind="q"`), key ("k") or value ("v") side."""
    mode = composition_kind(kind)
    w_q = torch.stack([w.w_q.double() for w in layers])
    w_k = torch.stack([w.w_k.double() for w in layers])
    w_v = torch.stack([w.w_v.double() for w in layers])
    w_o = torch.stack([w.w_o.double() for w in layers])
    n_layers, n_heads = w_q.shape[:2]
    g_q, g_k, g_v = _gram(w_q), _gram(w_k), _gram(w_v)
    g_o = w_o @ w_o.transpose(-1, -2)  # W_O W_O^T, [l, h, d_head, d_head]
    ov_norm = (g_v * g_o.transpose(-1, -2)).sum((-1, -2)).clamp_min(0).sqrt()  # ||W_V W_O||_F
    if mode == "v":
        reads, far_gram, right_norm = w_v, g_o, ov_norm  # W_OV^right = W_V (W_O): M = W_O^l W_V^r, then W_O^r
    else:
        qk_norm = (g_q * g_k.transpose(-1, -2)).sum((-1, -2)).clamp_min(0).sqrt()  # ||W_Q W_K^T||_F
        reads, far_gram = (w_q, g_k) if mode == "q" else (w_k, g_q)
        right_norm = qk_norm
    scores = torch.zeros(n_layers, n_heads, n_layers, n_heads, dtype=torch.float64, device=w_q.device)
    for left in range(n_layers - 1):
        later = slice(left + 1, n_layers)
        m = torch.einsum("hdm,rgme->hrgde", w_o[left], reads[later])  # W_O^left W_X^right
        # ||W_V^l M W_Y^rT||^2 = tr(G_V^l M G_Y^r M^T), G_Y = W_Y^T W_Y (V: W_O W_O^T)
        c = torch.einsum("hde,hrgef->hrgdf", g_v[left], m) @ far_gram[later][None]
        squared = (c * m).sum((-1, -2)).clamp_min(0)
        denominator = ov_norm[left][:, None, None] * right_norm[later][None]
        scores[left, :, later] = squared.sqrt() / denominator
    return scores.float()


def writer_reader_matrix(scores: torch.Tensor) -> torch.Tensor:
    """`[layers * heads, layers * heads]`: `scores` `[l, h, l', h']` with the writing head (l, h) as
    row `l * heads + h` and the reading head (l', h') as column `l' * heads + h'`; NaN where the
    reader is not in a later layer (no score there, rather than a score of 0)."""
    n_layers, n_heads = scores.shape[:2]
    layer = torch.arange(n_layers, device=scores.device).repeat_interleave(n_heads)
    matrix = scores.reshape(n_layers * n_heads, n_layers * n_heads).clone()
    matrix[layer[None, :] <= layer[:, None]] = float("nan")
    return matrix
