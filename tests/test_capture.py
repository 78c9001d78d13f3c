"""Attention recomputed from captured queries and keys equals the model's own eager weights.

Every family is a tiny random model built from its config; the model runs its configured kernel
(sdpa, or eager where the family refuses sdpa) and the reference is a deep copy run eagerly with
output_attentions. Float32 throughout, so the bound is 1e-5.
"""

from __future__ import annotations

import copy

import pytest
import torch

from attn_widget.backends.huggingface import HuggingFaceBackend
from attn_widget.contract import PROMPT_METRICS
from attn_widget.maths import dense_scores as scores
from attn_widget.maths.layer import LayerCapture, dense
from attn_widget.maths.reductions import reduce_layer

N = 20  # longer than the sliding windows below (6), so they matter
SHAPE = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "max_position_embeddings": 128,
}


def _config(kind: str, vocab: int):
    import transformers as t

    ids = {"vocab_size": vocab, "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0}
    if kind == "gpt2":
        return t.GPT2LMHeadModel, t.GPT2Config(
            n_layer=3, n_head=4, n_embd=32, n_positions=128, scale_attn_by_inverse_layer_idx=True, **ids
        )
    if kind == "llama":  # grouped-query attention and llama3 rope scaling
        rope = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 8}  # fmt: skip
        return t.LlamaForCausalLM, t.LlamaConfig(**SHAPE, rope_parameters=rope, **ids)
    if kind == "mistral":
        return t.MistralForCausalLM, t.MistralConfig(**SHAPE, sliding_window=6, **ids)
    if kind == "qwen3":  # q/k norm
        return t.Qwen3ForCausalLM, t.Qwen3Config(**SHAPE, **ids)
    if kind == "gemma2":  # soft-cap, alternating sliding window, query_pre_attn_scalar
        return t.Gemma2ForCausalLM, t.Gemma2Config(
            **SHAPE, sliding_window=6, attn_logit_softcapping=5.0, query_pre_attn_scalar=12, **ids
        )
    if kind == "gemma3":
        return t.Gemma3ForCausalLM, t.Gemma3TextConfig(**SHAPE, sliding_window=6, query_pre_attn_scalar=12, **ids)
    if kind == "gpt_oss":  # attention sinks, alternating sliding window
        return t.GptOssForCausalLM, t.GptOssConfig(
            **SHAPE, sliding_window=6, num_local_experts=2, num_experts_per_tok=1, **ids
        )
    raise ValueError(kind)


FAMILIES = ["gpt2", "llama", "mistral", "qwen3", "gemma2", "gemma3", "gpt_oss"]


def tiny_model(kind: str, vocab: int):
    cls, config = _config(kind, vocab)
    torch.manual_seed(0)
    model = cls(config).eval()
    with torch.no_grad():  # sharpen the near-uniform random attention, so errors would show
        for name, p in model.named_parameters():
            if any(part in name for part in ("c_attn", "q_proj", "k_proj", "sinks")):
                p.mul_(8.0)
    return model


def eager_weights(model, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        out = eager(input_ids=tokens, attention_mask=attention_mask, output_attentions=True, use_cache=False)
    return list(out.attentions)


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
