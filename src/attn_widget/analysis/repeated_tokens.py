"""The reference notebook's repeated random token test: a property of the model, not the prompt."""

from __future__ import annotations

import numpy as np
import torch

from attn_widget.analysis.forward import capture_layers, needs_a_model
from attn_widget.backends.base import Backend
from attn_widget.maths import dense_scores
from attn_widget.maths.layer import LayerAttention, dense

BATCH_TOKENS = 4096
"""Tokens per forward pass: a test of any number of sequences runs in passes of this size, so its
memory is that of one pass (the dense layers of `BATCH_TOKENS // seq_len` sequences)."""


def sequences_per_pass(seq_len: int) -> int:
    return max(1, BATCH_TOKENS // max(seq_len, 1))


def ordinary_id_range(vocab_size: int, count: int = 0) -> tuple[int, int]:
    """`[low, high)`: ordinary tokens, clear of the specials at the start of a vocabulary. The
    notebook's [100, 1000), widened to hold `count` distinct ids, within the vocabulary."""
    high = min(max(1000, 100 + count), vocab_size)
    return min(100, high // 4), high


def repeated_token_ids(vocab_size: int, batch: int, half: int, seed: int = 0) -> torch.Tensor:
    """`[batch, half]` random ids for the test's copies: ordinary tokens, clear of the specials at the
    start of a vocabulary, from the notebook's [100, 1000), widened to [100, 100 + half) for a longer copy.

    Each sequence's ids are distinct where the vocabulary allows, so a second-copy token has one earlier
    occurrence and its induction target is one key. With ids drawn freely, 1,000 of them from 900
    would put most tokens in a copy twice, and a perfect induction head, splitting its weight over the
    keys after both, would score about 0.55 at seq_len 2,000.
    """
    low, high = ordinary_id_range(vocab_size, half)
    generator = torch.Generator().manual_seed(seed)
    if high - low < half:  # a vocabulary too small for distinct ids: drawn freely, as the notebook does
        return torch.randint(low, high, (batch, half), generator=generator)
    return torch.stack([torch.randperm(high - low, generator=generator)[:half] + low for _ in range(batch)])


def repeated_tokens_scores(backend: Backend, seq_len: int = 50, batch: int = 8, seed: int = 0) -> np.ndarray:
    """The reference notebook's repeated random token test, batched and in one forward pass.

    Each sequence is `seq_len // 2` random tokens (`repeated_token_ids`) repeated once, after a BOS
    token when the tokenizer has one. Returns `[n_layers, n_heads]` mean induction-stripe attention.
    """
    needs_a_model(backend, "The repeated random token test")
    half = seq_len // 2
    if half < 2 or batch < 1:
        raise ValueError("the repeated random token test needs seq_len >= 4 and batch >= 1")
    offset = 0 if backend.bos_token_id is None else 1
    if backend.n_ctx is not None and offset + 2 * half > backend.n_ctx:
        raise ValueError(f"seq_len {seq_len} does not fit the model's context of {backend.n_ctx} tokens")
    segment = repeated_token_ids(backend.vocab_size, batch, half, seed)
    tokens = torch.cat([segment, segment], dim=1)
    if offset:
        tokens = torch.cat([torch.full((batch, 1), int(backend.bos_token_id or 0)), tokens], dim=1)
    result = torch.zeros(backend.n_layers, backend.n_heads, dtype=torch.float64)
    step = sequences_per_pass(tokens.shape[1])
    for start in range(0, batch, step):
        chunk = tokens[start : start + step]
        share = chunk.shape[0] / batch  # the mean over sequences, pass by pass

        def score(layer: int, attention: LayerAttention, share: float = share) -> None:  # short: dense is small
            result[layer] += dense_scores.repeated_sequence_score(dense(attention), half, offset).cpu().double() * share

        capture_layers(backend, chunk.to(backend.device), score)
    return result.float().numpy()
