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

from attn_widget.maths.layer import looks_causal


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


def _total(pattern: torch.Tensor) -> torch.Tensor:
    """`[batch, head]` sum of all weights (the number of query rows, up to rounding)."""
    return pattern.sum(dim=(-2, -1))


def _masked_share(pattern: torch.Tensor, mask: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    """Share of each head's attention on the mask's cells, averaged over the batch.

    The masks are sparse (repeats of a token), so gathering their cells beats a dense product
    over the whole `[q, k]` square by orders of magnitude at long prompts.
    """
    b, q, k = mask.nonzero(as_tuple=True)
    on_mask = torch.zeros_like(total).index_add_(0, b, pattern[b, :, q, k])
    return (on_mask / total).mean(dim=0)


def previous_token(pattern: torch.Tensor, total: torch.Tensor | None = None) -> torch.Tensor:
    stripe = pattern.diagonal(offset=-1, dim1=-2, dim2=-1).sum(dim=-1)
    return (stripe / (_total(pattern) if total is None else total)).mean(dim=0)


def current_token(pattern: torch.Tensor, total: torch.Tensor | None = None) -> torch.Tensor:
    """Share of attention each query pays to itself (the diagonal): a current-token head's score."""
    diagonal = pattern.diagonal(dim1=-2, dim2=-1).sum(dim=-1)
    return (diagonal / (_total(pattern) if total is None else total)).mean(dim=0)


def duplicate_token(pattern: torch.Tensor, tokens: torch.Tensor, total: torch.Tensor | None = None) -> torch.Tensor:
    return _masked_share(pattern, duplicate_mask(tokens), _total(pattern) if total is None else total)


def induction(pattern: torch.Tensor, tokens: torch.Tensor, total: torch.Tensor | None = None) -> torch.Tensor:
    return _masked_share(pattern, induction_mask(tokens), _total(pattern) if total is None else total)


def first_token(pattern: torch.Tensor) -> torch.Tensor:
    return pattern[..., 0].mean(dim=(0, -1))


ENTROPY_BLOCK_ROWS = 512
"""Rows per block when a causal pattern's entropy skips the keys no query in the block can see."""


def entropy(pattern: torch.Tensor) -> torch.Tensor:
    # The notebook's -p log(p + 1e-10) differs from the exact -p log p (entr) by under 1e-10 per
    # weight; entr is a third faster and needs no temporary for the log.
    n = pattern.shape[-1]
    if n <= ENTROPY_BLOCK_ROWS or not looks_causal(pattern):
        per_query = torch.special.entr(pattern).sum(dim=-1)
    else:  # the log is the costliest step of all: take it over the lower triangle only (about half)
        blocks = [
            torch.special.entr(pattern[..., q0 : q0 + ENTROPY_BLOCK_ROWS, : q0 + ENTROPY_BLOCK_ROWS]).sum(dim=-1)
            for q0 in range(0, n, ENTROPY_BLOCK_ROWS)
        ]
        per_query = torch.cat(blocks, dim=-1)
    mean: torch.Tensor = per_query.mean(dim=(0, -1))
    return mean


def max_attention(pattern: torch.Tensor) -> torch.Tensor:
    return pattern.amax(dim=(-2, -1)).mean(dim=0)


def mean_distance(pattern: torch.Tensor) -> torch.Tensor:
    n = pattern.shape[-1]
    pos = torch.arange(n, device=pattern.device, dtype=pattern.dtype)
    if looks_causal(pattern):
        # sum_k p[q, k] (q - k) = q * rowsum - p @ positions: one matrix-vector product, no [q, k] temporary
        per_query = pos * pattern.sum(dim=-1) - pattern @ pos
    else:
        per_query = (pattern * (pos[None, :] - pos[:, None]).abs()).sum(dim=-1)
    mean: torch.Tensor = per_query.mean(dim=(0, -1))
    return mean


def layer_scores(pattern: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every metric for one layer: pattern `[batch, head, q, k]`, tokens `[batch, q]`."""
    pattern = pattern.float()
    total = _total(pattern)
    return {
        "previous_token": previous_token(pattern, total),
        "current_token": current_token(pattern, total),
        "duplicate_token": duplicate_token(pattern, tokens, total),
        "induction": induction(pattern, tokens, total),
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
