"""Models built tiny from their configs and the straightforward references the tests compare with:
eager attention weights, a plain loop of value-weighted norms and attribution, precomputed attention."""

from __future__ import annotations

import copy

import numpy as np
import torch

from attn_widget import AttentionExplorer


@torch.no_grad()
def naive_moved(x: torch.Tensor, w_v: torch.Tensor, b_v: torch.Tensor, w_o: torch.Tensor) -> torch.Tensor:
    """`[h, n, d_model]`: f_h(x_j) = (x_j W_V^h + b_V^h) W_O^h, head by head, from the layer's input."""
    return torch.stack([(x @ w_v[h] + b_v[h]) @ w_o[h] for h in range(w_o.shape[0])])


@torch.no_grad()
def naive_weighted_norms(pattern: torch.Tensor, moved: torch.Tensor) -> torch.Tensor:
    h, n, _ = pattern.shape
    out = torch.zeros(h, n, n)
    for head in range(h):
        for i in range(n):
            for j in range(n):
                out[head, i, j] = torch.linalg.vector_norm(pattern[head, i, j] * moved[head, j])
    return out


@torch.no_grad()
def naive_attribution(row: torch.Tensor, moved: torch.Tensor, direction: torch.Tensor, sigma, center: bool):
    """`[h, n]`: each source's vector through the frozen final norm, dotted with the unembedding."""
    h, n, _ = moved.shape
    out = torch.zeros(h, n)
    for head in range(h):
        for j in range(n):
            written = row[head, j] * moved[head, j]
            if center:
                written = written - written.mean()
            out[head, j] = (written / sigma) @ direction
    return out


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


def hf_config(kind: str, tokenizer):
    from transformers import GPT2Config, GPTNeoXConfig, LlamaConfig

    ids = {"vocab_size": len(tokenizer), "bos_token_id": 0, "eos_token_id": 0}
    if kind == "gpt2":
        return GPT2Config(n_layer=2, n_head=4, n_embd=32, n_positions=64, **ids)
    shape = {"num_hidden_layers": 2, "hidden_size": 32, "intermediate_size": 64, "max_position_embeddings": 64}
    if kind == "llama":  # grouped-query attention: two query heads per key/value head
        return LlamaConfig(num_attention_heads=4, num_key_value_heads=2, **shape, **ids)
    return GPTNeoXConfig(num_attention_heads=4, **shape, **ids)


def hf_model(kind: str, tokenizer, state: dict | None = None):
    """A Hugging Face model in training mode with sdpa attention, as built from a config."""
    from transformers import GPT2LMHeadModel, GPTNeoXForCausalLM, LlamaForCausalLM

    cls = {"gpt2": GPT2LMHeadModel, "llama": LlamaForCausalLM, "neox": GPTNeoXForCausalLM}[kind]
    torch.manual_seed(0)
    model = cls(hf_config(kind, tokenizer))
    if state is not None:
        model.load_state_dict(state)
        return model
    with torch.no_grad():  # sharpen the near-uniform random attention, so heads differ
        for name, p in model.named_parameters():
            if any(part in name for part in ("c_attn", "q_proj", "k_proj", "query_key_value")):
                p.mul_(20.0)
    return model


def reference_attention(model, tokens: torch.Tensor) -> np.ndarray:
    """`[layers, heads, q, k]` from transformers' own `output_attentions`, on an eager copy."""
    import copy

    eager = copy.deepcopy(model).eval()
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        attentions = eager(input_ids=tokens, output_attentions=True).attentions
    return torch.stack([a[0] for a in attentions]).numpy()


PROMPT = "When mary and john went to the store mary gave a drink to john"


def precomputed_from_hf(model, tokenizer, numpy: bool) -> AttentionExplorer:
    ids = torch.tensor([[tokenizer.bos_token_id, *tokenizer(PROMPT)["input_ids"]]])
    patterns = reference_attention(model, ids)
    tokens = [tokenizer.decode([i]) for i in ids[0].tolist()]
    return AttentionExplorer(patterns if numpy else torch.from_numpy(patterns), tokens=tokens)
