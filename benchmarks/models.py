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
