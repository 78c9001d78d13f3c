"""The repeated random token test and the retrieval test run in passes of bounded size, so their
memory does not grow with the number of sequences; the result equals the one-pass result."""

from __future__ import annotations

import numpy as np

from attn_widget.analysis import repeated_tokens, retrieval
from attn_widget.backends import backend_for


def _count_passes(monkeypatch, module, name):
    calls: list[int] = []
    original = getattr(module, name)

    def counting(backend, tokens, *args, **kwargs):
        calls.append(int(tokens.shape[0]))
        return original(backend, tokens, *args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return calls


def test_repeated_tokens_runs_in_bounded_passes_with_the_same_result(bridge, monkeypatch):
    backend = backend_for(bridge)
    one_pass = repeated_tokens.repeated_tokens_scores(backend, seq_len=20, batch=7, seed=3)
    monkeypatch.setattr(repeated_tokens, "BATCH_TOKENS", 3 * 21)  # 3 sequences (BOS + 20 tokens) a pass
    passes = _count_passes(monkeypatch, repeated_tokens, "capture_layers")
    batched = repeated_tokens.repeated_tokens_scores(backend, seq_len=20, batch=7, seed=3)
    assert passes == [3, 3, 1]
    np.testing.assert_allclose(batched, one_pass, atol=1e-6)


def test_retrieval_runs_in_bounded_passes_with_the_same_result(bridge, monkeypatch):
    backend = backend_for(bridge)
    batch = retrieval.make_batch(backend, haystack_len=12, needle_len=4, samples=5, seed=1)
    one_pass = retrieval.retrieval_scores(backend, batch)
    length = batch.tokens.shape[1]
    monkeypatch.setattr(retrieval, "BATCH_TOKENS", 2 * length)
    passes = _count_passes(monkeypatch, retrieval, "run_dense")
    np.testing.assert_allclose(retrieval.retrieval_scores(backend, batch), one_pass, atol=1e-6)
    assert passes == [2, 2, 1]
