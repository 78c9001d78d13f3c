"""Retrieval score (Wu et al. 2024) on a synthetic needle in a haystack, against a plain loop."""

from __future__ import annotations

import numpy as np
import pytest

from attn_widget.analysis.retrieval import make_batch, retrieval_scores
from attn_widget.backends import backend_for


def naive_retrieval(model, batch) -> np.ndarray:
    """One sample at a time through run_with_cache, counting steps head by head."""
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    total = np.zeros((n_layers, n_heads))
    k = batch.needle_len
    for sample, start in zip(batch.tokens, batch.needle_start, strict=True):
        _, cache = model.run_with_cache(sample[None])
        needle = set(range(start, start + k))
        for layer in range(n_layers):
            attn = cache[f"blocks.{layer}.attn.hook_pattern"][0]
            for head in range(n_heads):
                hits = 0
                for i in range(k):
                    generated = int(sample[start + i])  # teacher-forced: the needle's next token
                    top = int(attn[head, batch.answer_start + i].argmax())
                    hits += top in needle and int(sample[top]) == generated
                total[layer, head] += hits / k
    return total / len(batch.tokens)


def test_batch_layout(bridge):
    batch = make_batch(backend_for(bridge), haystack_len=12, needle_len=4, samples=3, seed=1)
    for row, start in zip(batch.tokens.tolist(), batch.needle_start, strict=True):
        assert row[0] == backend_for(bridge).bos_token_id
        needle = row[start : start + 4]
        cue = row[start - 1]
        assert len({*needle, cue}) == 5
        assert row[batch.answer_start :] == [cue, *needle[:-1]]
        assert sum(t in [*needle, cue] for t in row[: batch.answer_start]) == 5  # nowhere else before the answer
        assert len(row) == 1 + 12 + 5 + 4


def test_retrieval_scores_match_a_plain_loop(any_model):
    backend = backend_for(any_model)
    batch = make_batch(backend, haystack_len=20, needle_len=5, samples=4, seed=2)
    got = retrieval_scores(backend, batch)
    np.testing.assert_allclose(got, naive_retrieval(any_model, batch), atol=1e-6)
    assert got.shape == (backend.n_layers, backend.n_heads)


def test_arguments_are_checked(bridge):
    with pytest.raises(ValueError, match="context"):
        make_batch(backend_for(bridge), haystack_len=100, needle_len=4, samples=1, seed=0)
    with pytest.raises(ValueError, match="needle_len >= 1"):
        make_batch(backend_for(bridge), haystack_len=10, needle_len=0, samples=1, seed=0)
