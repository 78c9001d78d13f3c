"""Model adapters behind one small protocol: tokenize a prompt, run it, hand over each layer's
attention as it is produced (queries and keys where the model allows, see capture.py).
Everything else (scores, thumbnails, wire) is shared."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch

from ..capture import LayerAttention
from ..errors import ModelError

PatternCallback = Callable[[int, torch.Tensor], None]
"""Called once per layer with (layer, pattern `[batch, head, query, key]` on the model's device)."""
LayerCallback = Callable[[int, LayerAttention], None]
"""Called once per layer with (layer, its attention, readable in query blocks, on the layer's device)."""

_warned: set[str] = set()


def warn_once(message: str) -> None:
    """Say a thing about a model once per session, not once per prompt."""
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, stacklevel=3)


class Backend(Protocol):
    n_layers: int
    n_heads: int
    """Query heads: a grouped-query model shows every query head."""
    n_ctx: int | None
    vocab_size: int
    bos_token_id: int | None
    device: torch.device
    name: str
    runs_tokens: bool
    """Whether any token ids can run (a model), or only the prompt it came with (precomputed attention)."""
    fixed_prompt: str | None
    """The one prompt it can show, for precomputed attention; None for a model."""

    def tokenize(self, prompt: str) -> tuple[torch.Tensor, list[str]]:
        """Token ids `[1, n]` on the model's device, and the tokens as strings."""
        ...

    def capture(self, tokens: torch.Tensor, on_layer: LayerCallback, last_layer: int | None = None) -> None:
        """One forward pass over `tokens` `[batch, n]`, stopping after `last_layer` if given; each
        layer's attention goes to `on_layer` as that layer runs."""
        ...

    def run(self, tokens: torch.Tensor, on_pattern: PatternCallback, last_layer: int | None = None) -> None:
        """The same pass, with each layer's whole pattern: for short prompts and batches only."""
        ...


def backend_for(model: Any, *, tokenizer: Any = None, tokens: Sequence[str] | None = None) -> Backend:
    """The adapter for `model`, chosen by what it can do (no import of its library needed)."""
    from .huggingface import HuggingFaceBackend
    from .precomputed import PrecomputedBackend
    from .transformer_lens import TransformerLensBackend

    if PrecomputedBackend.accepts(model):
        _reject("tokenizer", tokenizer, "Hugging Face models; precomputed attention takes tokens=[...]")
        return PrecomputedBackend(model, tokens)
    _reject("tokens", tokens, "precomputed attention (an array or ActivationCache); a model tokenizes its prompt")
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
