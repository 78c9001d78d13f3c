"""Model adapters behind one protocol (base.py); `backend_for` picks the one a model needs.
Everything above them (scores, thumbnails, wire) is shared."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from attn_widget.backends.base import Backend, LayerCallback, PatternCallback
from attn_widget.errors import ModelError

__all__ = ["Backend", "LayerCallback", "PatternCallback", "backend_for"]


def backend_for(model: Any, *, tokenizer: Any = None, tokens: Sequence[str] | None = None) -> Backend:
    """The adapter for `model`, chosen by what it can do (no import of its library needed); a
    compiled, PEFT or nnsight model is read through the Hugging Face model it wraps."""
    from attn_widget.backends.huggingface import HuggingFaceBackend
    from attn_widget.backends.precomputed import PrecomputedBackend
    from attn_widget.backends.transformer_lens import TransformerLensBackend
    from attn_widget.backends.unwrap import held_model

    if PrecomputedBackend.accepts(model):
        _reject("tokenizer", tokenizer, "Hugging Face models; precomputed attention takes tokens=[...]")
        return PrecomputedBackend(model, tokens)
    _reject("tokens", tokens, "precomputed attention (an array or ActivationCache); a model tokenizes its prompt")
    model, tokenizer = held_model(model, tokenizer)
    if TransformerLensBackend.accepts(model):
        _reject("tokenizer", tokenizer, "Hugging Face models; a TransformerLens model brings its own")
        return TransformerLensBackend(model)
    if HuggingFaceBackend.accepts(model):
        return HuggingFaceBackend(model, tokenizer)
    raise ModelError(
        f"AttentionExplorer does not know how to read attention from a {type(model).__name__}. Pass a "
        "TransformerLens TransformerBridge or HookedTransformer, a Hugging Face model with tokenizer=..., "
        "or precomputed attention [layers, heads, query, key] (array or ActivationCache) with tokens=[...]."
    )


def _reject(argument: str, value: Any, what_for: str) -> None:
    if value is not None:
        raise ModelError(f"{argument}= is only for {what_for}.")
