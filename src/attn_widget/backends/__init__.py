"""Model adapters behind one small protocol: tokenize a prompt, run it, hand over each layer's
attention pattern as it is produced. Everything else (scores, thumbnails, wire) is shared."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch

from ..errors import ModelError

PatternCallback = Callable[[int, torch.Tensor], None]
"""Called once per layer with (layer, pattern `[batch, head, query, key]` on the model's device)."""


class Backend(Protocol):
    n_layers: int
    n_heads: int
    n_ctx: int | None
    vocab_size: int
    bos_token_id: int | None
    device: torch.device

    def tokenize(self, prompt: str) -> tuple[torch.Tensor, list[str]]:
        """Token ids `[1, n]` on the model's device, and the tokens as strings."""
        ...

    def run(self, tokens: torch.Tensor, on_pattern: PatternCallback, last_layer: int | None = None) -> None:
        """One forward pass over `tokens` `[batch, n]`, stopping after `last_layer` if given."""
        ...


def backend_for(model: Any) -> Backend:
    """The adapter for `model`, chosen by what it can do (no import of its library needed)."""
    from .transformer_lens import TransformerLensBackend

    if TransformerLensBackend.accepts(model):
        return TransformerLensBackend(model)
    raise ModelError(
        f"AttentionExplorer does not know how to read attention from a {type(model).__name__}. "
        "Pass a TransformerLens TransformerBridge (or HookedTransformer)."
    )
