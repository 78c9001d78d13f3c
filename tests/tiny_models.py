"""Tiny random TransformerLens models with a real (small) BPE tokenizer: CPU, seconds.

Shared by the pytest fixtures and by the notebooks the browser tests run in a real kernel.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

WORDS = [
    "when",
    "mary",
    "and",
    "john",
    "went",
    "to",
    "the",
    "store",
    "gave",
    "a",
    "drink",
    "then",
    "park",
    "ball",
    "cat",
    "sat",
    "on",
    "mat",
    "attention",
    "head",
    "layer",
    "token",
    "model",
    "the",
    "of",
    "in",
    "is",
    "was",
    "it",
    "for",
    "with",
    "as",
    "his",
    "her",
    "they",
]


def random_prompt(rng: random.Random, n_words: int) -> str:
    """Words drawn with repeats, so duplicate and induction masks are not empty."""
    return " ".join(rng.choice(WORDS).capitalize() if i == 0 else rng.choice(WORDS) for i in range(n_words))


def make_tokenizer(folder: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    rng = random.Random(0)
    core.train_from_iterator([random_prompt(rng, 30) for _ in range(200)], trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    # TransformerLens reloads tokenizers by name_or_path, so an in-memory one must go through disk.
    tok.save_pretrained(folder)
    return PreTrainedTokenizerFast.from_pretrained(folder)


def native_model(tokenizer, *, n_layers: int = 3, n_heads: int = 4, n_ctx: int = 64, attn_only: bool = True):
    from transformer_lens import TransformerBridge, TransformerBridgeConfig

    cfg = TransformerBridgeConfig(
        d_model=32, d_head=8, n_heads=n_heads, n_layers=n_layers, n_ctx=n_ctx,
        d_vocab=len(tokenizer), attn_only=attn_only, d_mlp=None if attn_only else 64, act_fn="gelu", seed=0,
    )  # fmt: skip
    model = TransformerBridge.boot_native(cfg, tokenizer=tokenizer)
    # Sharper-than-random attention, so scores differ between heads and tests can tell them apart.
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4.0)
    return model.eval()


def hooked_transformer(rotary: bool):
    """A 3-layer TransformerLens 2.x/3.x HookedTransformer: learned positions and LayerNorm, or rotary
    with grouped keys and RMSNorm. Skips the test under TransformerLens 4 (no HookedTransformer)."""
    import pytest

    try:
        from transformer_lens import HookedTransformer, HookedTransformerConfig
    except (ImportError, AttributeError):
        pytest.skip("TransformerLens 4 has no HookedTransformer: run `make test-tl3`")
    cfg = HookedTransformerConfig(
        n_layers=3, n_heads=4, d_model=32, d_head=8, n_ctx=32, d_vocab=50, act_fn="gelu", d_mlp=64, seed=0,
        normalization_type="RMS" if rotary else "LN",
        positional_embedding_type="rotary" if rotary else "standard", n_key_value_heads=2 if rotary else None,
    )  # fmt: skip
    return HookedTransformer(cfg).eval()
