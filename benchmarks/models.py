"""The benchmark's model and prompts: GPT-2-small-shaped random weights, prompts of exact length."""

from __future__ import annotations

import random
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from tiny_models import WORDS, make_tokenizer


def gpt2_small_shaped(n_ctx: int = 1024, device: str = "cpu", seed: int = 0):
    """12 layers x 12 heads, d_model 768 (GPT-2 small's shape), random weights, as a TransformerBridge."""
    from transformer_lens.model_bridge.sources._bridge_builder import build_bridge_from_module
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = make_tokenizer(Path(tempfile.mkdtemp(prefix="bench-tok-")))
    torch.manual_seed(seed)
    config = GPT2Config(n_positions=max(n_ctx, 1024), attn_implementation="eager")
    hf = GPT2LMHeadModel(config).eval().to(device)
    return build_bridge_from_module(hf, "GPT2LMHeadModel", hf_config=hf.config, tokenizer=tokenizer)


def prompt_of(model, n_tokens: int, seed: int = 0) -> str:
    """Random words that tokenize to exactly `n_tokens` tokens (BOS included)."""
    rng = random.Random(seed)
    single = [w for w in WORDS if len(model.tokenizer.encode(" " + w, add_special_tokens=False)) == 1]
    words = ["When"]
    while len(model.to_tokens(" ".join(words), truncate=False)[0]) < n_tokens:
        words.append(rng.choice(single))
    text = " ".join(words)
    assert len(model.to_tokens(text, truncate=False)[0]) == n_tokens, "prompt length drifted"
    return text


LLAMA_SHAPES = {
    # a few layers of a Llama-style model, grouped-query, d_head 64: the CPU rows
    "llama-small": {"num_hidden_layers": 2, "hidden_size": 256, "num_attention_heads": 4, "num_key_value_heads": 2,
                    "head_dim": 64, "intermediate_size": 688, "vocab_size": None},
    # Llama-3-8B: 32 layers, 32 query / 8 key-value heads, d_head 128 (the GPU rows)
    "llama3-8b": {"num_hidden_layers": 32, "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8,
                  "head_dim": 128, "intermediate_size": 14336, "vocab_size": 128256},
}  # fmt: skip


def llama_shaped(shape: str, n_ctx: int, device: str = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0):
    """A Hugging Face Llama of the named shape with random weights (sdpa), and the benchmark's tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = make_tokenizer(Path(tempfile.mkdtemp(prefix="bench-tok-")))
    dims = dict(LLAMA_SHAPES[shape])
    dims["vocab_size"] = dims["vocab_size"] or len(tokenizer)
    config = LlamaConfig(
        **dims, max_position_embeddings=max(n_ctx, 2048), bos_token_id=0, eos_token_id=0,
        attn_implementation="sdpa", torch_dtype=dtype,
    )  # fmt: skip
    torch.manual_seed(seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # built in its own dtype: an 8B model in float32 would need 32 GB first
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config).eval()
    finally:
        torch.set_default_dtype(default)
    return model, tokenizer


def hf_prompt_of(tokenizer, n_tokens: int, seed: int = 0) -> str:
    """Random words that a Hugging Face backend reads as exactly `n_tokens` tokens (BOS first)."""
    rng = random.Random(seed)
    single = [w for w in WORDS if len(tokenizer.encode(" " + w, add_special_tokens=False)) == 1]
    text = "When " + " ".join(rng.choice(single) for _ in range(n_tokens - 2))
    assert len(tokenizer.encode(text, add_special_tokens=False)) + 1 == n_tokens, "prompt length drifted"
    return text
