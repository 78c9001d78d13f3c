"""Attention recomputed from captured queries and keys equals the model's own eager weights.

Every family is a tiny random model built from its config; the model runs its configured kernel
(sdpa, or eager where the family refuses sdpa) and the reference is a deep copy run eagerly with
output_attentions. Float32 throughout, so the bound is 1e-5.
"""

from __future__ import annotations

import pytest
import torch

from attn_widget.backends.huggingface import HuggingFaceBackend
from attn_widget.contract import PROMPT_METRICS
from attn_widget.maths import dense_scores as scores
from attn_widget.maths.layer import LayerCapture, dense
from attn_widget.maths.reductions import reduce_layer
from references import eager_weights, tiny_model

N = 20  # longer than the sliding windows below (6), so they matter


FAMILIES = ["gpt2", "llama", "mistral", "qwen3", "gemma2", "gemma3", "gpt_oss"]


def captured(backend: HuggingFaceBackend, tokens: torch.Tensor, attention_mask=None) -> list[LayerCapture]:
    layers: list[LayerCapture] = []
    backend.capture(tokens, lambda _layer, capture: layers.append(capture), attention_mask=attention_mask)
    return layers


@pytest.mark.parametrize("kind", FAMILIES)
def test_recomputed_heads_equal_eager_weights(kind, tokenizer):
    model = tiny_model(kind, len(tokenizer))
    implementation = model.config._attn_implementation
    tokens = torch.randint(1, len(tokenizer), (1, N), generator=torch.Generator().manual_seed(1))
    backend = HuggingFaceBackend(model, tokenizer)
    assert backend.captures_queries, f"{kind} should run through the attention interface"
    layers = captured(backend, tokens)
    expected = eager_weights(model, tokens)
    assert len(layers) == len(expected) == 3
    for layer, (capture, reference) in enumerate(zip(layers, expected, strict=True)):
        torch.testing.assert_close(dense(capture), reference, atol=1e-5, rtol=0, msg=f"{kind} layer {layer}")
        got = reduce_layer(capture, tokens, budget_bytes=1)  # row by row
        want = scores.layer_scores(reference, tokens)
        for metric in PROMPT_METRICS:
            torch.testing.assert_close(got.scores[metric], want[metric], atol=2e-5, rtol=1e-5, msg=metric)
    assert model.config._attn_implementation == implementation  # the model is as it was


def test_left_padded_batch(tokenizer):
    model = tiny_model("mistral", len(tokenizer))
    tokens = torch.randint(1, len(tokenizer), (2, N), generator=torch.Generator().manual_seed(2))
    mask = torch.ones(2, N, dtype=torch.long)
    mask[0, :7] = 0  # the first prompt is 7 tokens shorter, padded on the left
    layers = captured(HuggingFaceBackend(model, tokenizer), tokens, mask)
    for capture, reference in zip(layers, eager_weights(model, tokens, mask), strict=True):
        got = dense(capture)
        torch.testing.assert_close(got[1], reference[1], atol=1e-5, rtol=0)
        torch.testing.assert_close(got[0, :, 7:], reference[0, :, 7:], atol=1e-5, rtol=0)  # the real queries
        assert got[0, :, 7:, :7].abs().max() == 0  # no weight on padding


def test_every_head_of_a_capture_equals_a_naive_softmax():
    """The LayerCapture's own arithmetic, against a loop: scaling, soft-cap, window, sinks, GQA."""
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 4, 9, 5, generator=g), torch.randn(1, 2, 9, 5, generator=g)
    sinks = torch.tensor([0.3, -0.2, 1.0, 0.0])
    capture = LayerCapture(query=q, key=k, scaling=0.7, softcap=2.0, sliding_window=4, sinks=sinks)
    got = dense(capture)[0]
    for h in range(4):
        for i in range(9):
            logits = [2.0 * torch.tanh(q[0, h, i] @ k[0, h // 2, j] * 0.7 / 2.0) for j in range(9) if i - 4 < j <= i]
            allowed = [j for j in range(9) if i - 4 < j <= i]
            z = torch.logsumexp(torch.stack([*logits, sinks[h]]), 0)
            row = torch.zeros(9)
            for j, logit in zip(allowed, logits, strict=True):
                row[j] = torch.exp(logit - z)
            torch.testing.assert_close(got[h, i], row, atol=1e-6, rtol=0)
