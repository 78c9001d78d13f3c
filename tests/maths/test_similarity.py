"""Head similarity: mean Jensen-Shannon divergence over query rows, clustered order."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attn_widget.maths.similarity import cluster_order, head_similarity, js_distances


def _patterns(heads: int, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(heads, n, n, generator=g) * 2).masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), -1e9)
    return logits.softmax(-1)


def naive_js(p: np.ndarray, q: np.ndarray) -> float:
    def kl(a: np.ndarray, b: np.ndarray) -> float:
        return sum(x * math.log2(x / y) for x, y in zip(a, b, strict=True) if x > 0)

    rows = []
    for a, b in zip(p, q, strict=True):
        m = (a + b) / 2
        rows.append(0.5 * kl(a, m) + 0.5 * kl(b, m))
    return float(np.mean(rows))


def test_js_matches_a_plain_loop():
    patterns = _patterns(5, 6, seed=0).double()
    got = js_distances(patterns).numpy()
    for i in range(5):
        for j in range(5):
            assert got[i, j] == pytest.approx(naive_js(patterns[i].numpy(), patterns[j].numpy()), abs=1e-6)
    assert (got >= 0).all() and (got <= 1).all() and np.allclose(got, got.T)


def _two_families(seed: int) -> torch.Tensor:
    """Eight heads: four near one pattern, four near another, interleaved."""
    base = _patterns(2, 8, seed=seed)
    noise = _patterns(8, 8, seed=seed + 1)
    return torch.stack([0.9 * base[i % 2] + 0.1 * noise[i] for i in range(8)])


def test_clustering_puts_each_family_together():
    distance = js_distances(_two_families(3)).numpy()
    leaves = cluster_order(distance)
    assert sorted(leaves) == list(range(8))
    families = [i % 2 for i in leaves]
    assert families in ([0] * 4 + [1] * 4, [1] * 4 + [0] * 4)


def test_head_similarity_by_layer_and_head():
    patterns = _two_families(5).reshape(2, 4, 8, 8)
    result = head_similarity(patterns)
    assert result.distance.shape == (8, 8)
    assert sorted(result.order) == [(layer, head) for layer in range(2) for head in range(4)]
    ordered = result.ordered()
    first, second = result.order[0], result.order[1]
    assert ordered[0, 1] == result.distance[first[0] * 4 + first[1], second[0] * 4 + second[1]]
    with pytest.raises(ValueError, match="unknown head similarity metric"):
        head_similarity(patterns, metric="cosine")
