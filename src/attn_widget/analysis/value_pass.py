"""One more forward pass over a prompt, through the backend's own capture (the model's fast kernel),
that keeps what value weighting and logit attribution need beyond the queries and keys:

- each layer's value vectors `[kv_heads, n, d_head]` (`x W_V + b_V`, before the grouped-query repeat);
- the final norm's scale sigma `[n]` at every position, frozen from the run (a pre-hook on the norm);
- every layer's attention rows `[heads, n]` of the attributed query;
- every layer's scores and thumbnails under value weighting, reduced in query blocks as it runs.

All of it is small: n x d per layer, never n x n.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from attn_widget.analysis.forward import capture_layers
from attn_widget.backends.weights import OutputWeights, final_norm_module
from attn_widget.contract import PROMPT_METRICS
from attn_widget.errors import ModelError
from attn_widget.maths.attribution import final_scale
from attn_widget.maths.layer import LayerAttention, full_rows
from attn_widget.maths.reductions import reduce_layer, thumbnail_side, token_pairs
from attn_widget.maths.value_weighting import ValueWeighted, value_norms


@dataclass
class ValuePass:
    values: list[torch.Tensor]
    """Per layer `[kv_heads, n, d_head]` float32 on the layer's device."""
    scale: torch.Tensor | None
    """`[n]` float32: the final norm's divisor at each position; None when no final norm ran."""
    rows: dict[int, list[torch.Tensor]] = field(default_factory=dict)
    """query -> per layer `[heads, n]` float32: that query's attention over every source."""
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    """Value-weighted scores, metric -> `[layers, heads]`."""
    thumbnails: np.ndarray | None = None
    """Value-weighted thumbnails `[layers, heads, side, side]` uint8."""


def running_model(backend: Any) -> Any:
    """The module the backend runs: a bridge over a Hugging Face model runs an unwrapped copy."""
    unwrapped = getattr(backend, "unwrapped", None)
    return unwrapped.model if unwrapped is not None else getattr(backend, "model", None)


def run_value_pass(backend: Any, weights: OutputWeights, tokens: torch.Tensor, query: int) -> ValuePass:
    """One pass over `tokens` `[1, n]` keeping values, the final scale, `query`'s rows and the
    value-weighted scores and thumbnails of every layer."""
    n_layers, n_heads, n = backend.n_layers, backend.n_heads, tokens.shape[-1]
    values: dict[int, torch.Tensor] = {}
    rows: dict[int, torch.Tensor] = {}
    table = {m: np.full((n_layers, n_heads), np.nan, np.float32) for m in PROMPT_METRICS}
    side = thumbnail_side(n)
    thumbs = np.zeros((n_layers, n_heads, side, side), np.uint8)
    pairs = token_pairs(tokens)
    residual: list[torch.Tensor] = []

    def on_layer(layer: int, attention: LayerAttention) -> None:
        value = getattr(attention, "value", None)
        if value is None:
            raise ModelError("This model's attention was captured without its value vectors, so it cannot be weighed.")
        values[layer] = value[0].float()
        rows[layer] = full_rows(attention, query, query + 1)[0, :, 0]
        norms = value_norms(values[layer], weights.w_o(layer))
        reduction = reduce_layer(ValueWeighted(attention, norms), tokens, pairs=pairs)
        for metric, per_head in reduction.scores.items():
            table[metric][layer] = per_head.float().cpu().numpy()
        thumbs[layer] = reduction.thumbnails.cpu().numpy()

    norm = final_norm_module(running_model(backend))
    with _pre_hook(norm, residual.append) if norm is not None else nullcontext():
        capture_layers(backend, tokens, on_layer, keep_values=True)
    scale = final_scale(residual[-1][0], weights.final_norm()) if residual else None
    layers = sorted(values)
    return ValuePass([values[i] for i in layers], scale, {query: [rows[i] for i in layers]}, table, thumbs)


def run_query_rows(backend: Any, tokens: torch.Tensor, query: int) -> list[torch.Tensor]:
    """Per layer `[heads, n]`: `query`'s attention over every source, from one pass."""
    rows: dict[int, torch.Tensor] = {}

    def keep(layer: int, attention: LayerAttention) -> None:
        rows[layer] = full_rows(attention, query, query + 1)[0, :, 0]

    capture_layers(backend, tokens, keep)
    return [rows[layer] for layer in sorted(rows)]


@contextmanager
def _pre_hook(module: torch.nn.Module, keep: Any) -> Iterator[None]:
    def hook(_module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        x = args[0] if args else kwargs.get("hidden_states", next(iter(kwargs.values()), None))
        if isinstance(x, torch.Tensor):
            keep(x.detach().float())

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()
