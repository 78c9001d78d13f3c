"""Head scores: pure tensor functions, one attention layer in, one score per head out.

Every function takes the layer's pattern `[batch, head, query, key]` (rows sum to one) on the
model's device and returns `[head]` tensors, so the explorer reduces each layer as the forward
pass produces it and never holds the whole activation cache.

previous-token, duplicate-token and induction follow TransformerLens's `head_detector` with the
"mul" measure: the share of all attention that lands on the detection pattern's cells.
first-token, entropy, max attention and mean distance follow the reference notebook
(means over query positions).
"""

from __future__ import annotations

import torch

METRICS: tuple[str, ...] = (
    "previous_token",
    "duplicate_token",
    "induction",
    "first_token",
    "entropy",
    "max_attention",
    "mean_distance",
)

_ENTROPY_EPS = 1e-10  # the reference notebook's epsilon inside the log


def duplicate_mask(tokens: torch.Tensor) -> torch.Tensor:
    """`[batch, q, k]` bool: key k < query q holds the same token as the query."""
    same = tokens[:, :, None] == tokens[:, None, :]
    return same.tril(diagonal=-1)


def induction_mask(tokens: torch.Tensor) -> torch.Tensor:
    """`[batch, q, k]` bool: key k follows an earlier occurrence (k - 1 < q) of the query's token."""
    dup = duplicate_mask(tokens)
    mask = torch.zeros_like(dup)
    mask[:, :, 1:] = dup[:, :, :-1]
    return mask


def _masked_share(pattern: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Share of each head's attention on the mask's cells, averaged over the batch."""
    on_mask = torch.einsum("bhqk,bqk->bh", pattern, mask.to(pattern.dtype))
    return (on_mask / pattern.sum(dim=(-2, -1))).mean(dim=0)


def previous_token(pattern: torch.Tensor) -> torch.Tensor:
    stripe = pattern.diagonal(offset=-1, dim1=-2, dim2=-1).sum(dim=-1)
    return (stripe / pattern.sum(dim=(-2, -1))).mean(dim=0)


def duplicate_token(pattern: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    return _masked_share(pattern, duplicate_mask(tokens))


def induction(pattern: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    return _masked_share(pattern, induction_mask(tokens))


def first_token(pattern: torch.Tensor) -> torch.Tensor:
    return pattern[..., 0].mean(dim=(0, -1))


def entropy(pattern: torch.Tensor) -> torch.Tensor:
    per_query = -torch.einsum("bhqk,bhqk->bhq", pattern, torch.log(pattern + _ENTROPY_EPS))
    return per_query.mean(dim=(0, -1))


def max_attention(pattern: torch.Tensor) -> torch.Tensor:
    return pattern.amax(dim=(-2, -1)).mean(dim=0)


def mean_distance(pattern: torch.Tensor) -> torch.Tensor:
    n = pattern.shape[-1]
    pos = torch.arange(n, device=pattern.device, dtype=pattern.dtype)
    distance = (pos[None, :] - pos[:, None]).abs()
    return torch.einsum("bhqk,qk->bh", pattern, distance).mean(dim=0) / n


def layer_scores(pattern: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every metric for one layer: pattern `[batch, head, q, k]`, tokens `[batch, q]`."""
    pattern = pattern.float()
    return {
        "previous_token": previous_token(pattern),
        "duplicate_token": duplicate_token(pattern, tokens),
        "induction": induction(pattern, tokens),
        "first_token": first_token(pattern),
        "entropy": entropy(pattern),
        "max_attention": max_attention(pattern),
        "mean_distance": mean_distance(pattern),
    }


def repeated_sequence_score(pattern: torch.Tensor, half_len: int, offset: int) -> torch.Tensor:
    """The reference notebook's induction test score for one layer, vectorised.

    The batch holds random segments of `half_len` tokens repeated once, starting at `offset`
    (1 when a BOS token comes first). A query at position `offset + half_len + i` of the second
    half should attend to `offset + i + 1`, the token after the first occurrence of its own
    token; the score is the mean of that weight over i in [0, half_len - 1), as in the notebook.
    """
    stripe = pattern.float().diagonal(offset=-(half_len - 1), dim1=-2, dim2=-1)
    # diagonal element j lies on query row (half_len - 1) + j
    first = offset + 1
    return stripe[..., first : first + half_len - 1].mean(dim=(0, -1))
