"""The one protocol every model adapter implements: tokenize a prompt, run it, hand over each
layer's attention as it is produced (queries and keys where the model allows, see maths/layer.py)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Protocol

import torch

from attn_widget.maths.layer import LayerAttention

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
    layer_names: list[str]
    """Where each layer comes from (a module's path, and its pass where a looped model calls it
    again); empty where the layers are the model's blocks in order."""
    layer_modules: list[torch.nn.Module] | None
    """The attention module behind each layer of `model`, in call order, where its weights are read;
    None where the layers are the model's attention modules in order."""

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
