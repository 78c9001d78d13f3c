"""Attention sinks: received attention per key, sink positions anywhere, sink share, exclusion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attn_widget.maths.sinks import received_attention, sink_mask, sink_share, without_sinks


def _causal_patterns(heads: int, n: int, seed: int = 0, sink_at: int | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(heads, n, n, generator=g)
    if sink_at is not None:
        logits[:, :, sink_at] += 4.0  # every query that can see it leans on it
    logits = logits.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
    return logits.softmax(-1)


def naive_received(p: np.ndarray) -> np.ndarray:
    n = p.shape[-1]
    return np.array([np.mean([p[q, k] for q in range(k, n)]) for k in range(n)])


def test_received_attention_and_share_match_plain_loops():
    patterns = _causal_patterns(3, 9, sink_at=4)
    got = received_attention(patterns).numpy()
    share = sink_share(patterns, 0.3).numpy()
    for h in range(3):
        p = patterns[h].double().numpy()
        alpha = naive_received(p)
        np.testing.assert_allclose(got[h], alpha, rtol=1e-5)
        sinks = [k for k in range(9) if alpha[k] > 0.3]
        expected = np.mean([sum(p[q, k] for k in sinks) for q in range(9)])
        assert share[h] == pytest.approx(expected, rel=1e-5)


def test_a_sink_away_from_the_first_token_is_found():
    patterns = _causal_patterns(2, 12, seed=1, sink_at=5)
    mask = sink_mask(patterns).numpy()
    assert mask[:, 5].all()
    assert sink_share(patterns).min() > 0.3


def test_non_causal_patterns_average_over_every_query():
    g = torch.Generator().manual_seed(2)
    patterns = torch.randn(2, 6, 6, generator=g).softmax(-1)
    np.testing.assert_allclose(received_attention(patterns).numpy(), patterns.mean(-2).numpy(), rtol=1e-6)


def test_excluding_sinks_renormalises_the_rest():
    pattern = _causal_patterns(1, 7, sink_at=0)[0]
    sinks = torch.zeros(7, dtype=torch.bool)
    sinks[0] = True
    out = without_sinks(pattern, sinks)
    assert (out[:, 0] == 0).all()
    assert out[0].sum() == 0  # row 0 only ever saw the sink
    almost = pattern.clone()
    almost[4] = torch.tensor([1 - 1e-9, 1e-9, 0, 0, 0, 0, 0])
    assert without_sinks(almost, sinks)[4].sum() == 0  # rounding noise is not scaled up to a row
    np.testing.assert_allclose(out[1:].sum(-1).numpy(), 1.0, rtol=1e-5)
    np.testing.assert_allclose((out[3, 1:] / out[3, 1]).numpy(), (pattern[3, 1:] / pattern[3, 1]).numpy(), rtol=1e-5)


def test_keys_seen_by_few_queries_are_no_sinks():
    """A previous-token head gives its last keys a mean near 1 from one or two queries: no sink."""
    n = 40
    previous = torch.zeros(1, n, n)
    previous[0, 0, 0] = 1
    for q in range(1, n):
        previous[0, q, q - 1] = 1
    received = received_attention(previous)[0]
    assert received[n - 2] == 0.5  # seen by two queries, one of which puts all on it: past 0.3
    assert not sink_mask(previous)[0].any()
    # a real sink seen by every query is still found next to it
    bos = previous.clone()
    bos[0, :, :] = 0
    bos[0, :, 0] = 0.5
    for q in range(n):
        bos[0, q, max(q - 1, 0)] += 0.5
    assert sink_mask(bos)[0].nonzero().flatten().tolist() == [0]


def test_sink_eligibility_follows_a_plain_count_of_queries():
    n = 12
    patterns = _causal_patterns(2, n, seed=3)
    patterns[:, -3:, :] = 0
    patterns[:, -3:, -3] = 1  # the last three queries pile on key n - 3, seen by three queries
    mask = sink_mask(patterns).numpy()
    alpha = [naive_received(patterns[h].double().numpy()) for h in range(2)]
    for h in range(2):
        expected = [k for k in range(n) if alpha[h][k] > 0.3 + 1e-6 and (n - k) >= max(4, -(-n // 4))]
        assert np.flatnonzero(mask[h]).tolist() == expected
    assert not mask[:, n - 3].any()
