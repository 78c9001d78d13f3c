"""Attention computed elsewhere: a `[layers, heads, query, key]` array (numpy or torch) or a
TransformerLens `ActivationCache` (`blocks.{i}.attn.hook_pattern`), with the tokens it was run on.

There is no model, so the prompt is fixed (the tokens, joined) and no other token ids can run.
The patterns are copied once, detached from any autograd graph, on the device they came from: the
caller changing their array later cannot make the heatmap disagree with the scores computed on it.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from attn_widget.backends.base import LayerCallback, PatternCallback
from attn_widget.contract import head_label
from attn_widget.errors import AttnWidgetWarning, ModelError, PromptError
from attn_widget.maths.layer import DenseAttention

_PATTERN_KEY = re.compile(r"blocks\.(\d+)\.attn\.hook_pattern")


def _is_cache(data: Any) -> bool:
    keys = getattr(data, "keys", None)
    return callable(keys) and any(_PATTERN_KEY.fullmatch(str(k)) for k in keys())


def _layers_of_cache(cache: Any) -> list[torch.Tensor]:
    found = {int(m.group(1)): k for k in cache.keys() if (m := _PATTERN_KEY.fullmatch(str(k)))}  # noqa: SIM118
    if sorted(found) != list(range(len(found))):
        raise ModelError(f"The cache has attention patterns of layers {sorted(found)}: every layer from 0 is needed.")
    layers = []
    for layer in range(len(found)):
        pattern = _owned(cache[found[layer]])
        if pattern.dim() == 4:  # [batch, head, q, k]
            if pattern.shape[0] != 1:
                raise ModelError(
                    f"The cache holds a batch of {pattern.shape[0]} prompts: run one prompt, "
                    "or pass cache.remove_batch_dim() of a batch of one."
                )
            pattern = pattern[0]
        layers.append(pattern)
    return layers


def _owned(data: Any) -> torch.Tensor:
    """Our own copy, outside any autograd graph (`torch.stack(out.attentions)` outside `no_grad`)."""
    if isinstance(data, torch.Tensor):
        return data.detach().clone()
    try:
        return torch.tensor(np.array(data, copy=True))
    except (TypeError, ValueError, RuntimeError) as err:
        raise ModelError(
            f"Precomputed attention must be an array of numbers; got {type(data).__name__}: {err}"
        ) from None


def _layers_of_array(data: Any) -> list[torch.Tensor]:
    patterns = _owned(data)
    if patterns.dim() == 5 and patterns.shape[1] == 1:  # [layers, batch of one, head, q, k]
        patterns = patterns[:, 0]
    if patterns.dim() != 4:
        raise ModelError(
            f"Precomputed attention must be [layers, heads, query, key]; got shape {tuple(patterns.shape)}."
        )
    return [layer.contiguous() for layer in patterns.unbind(0)]


class PrecomputedBackend:
    runs_tokens = False

    def __init__(self, data: Any, tokens: Sequence[str] | None) -> None:
        if tokens is None:
            raise ModelError(
                "Precomputed attention needs the tokens it was run on: AttentionExplorer(patterns, tokens=[...])."
            )
        if isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens):
            raise ModelError("tokens must be a list of the token strings, one per query position.")
        layers = _layers_of_cache(data) if _is_cache(data) else _layers_of_array(data)
        _check_shapes(layers, len(tokens))
        _warn_if_not_normalised(layers)
        self._layers = layers
        self.tokens = list(tokens)
        self.fixed_prompt: str | None = "".join(self.tokens)
        # Scores only compare tokens for equality: equal strings get equal ids.
        vocabulary: dict[str, int] = {}
        ids = [vocabulary.setdefault(t, len(vocabulary)) for t in self.tokens]
        self.n_layers, self.n_heads = len(layers), int(layers[0].shape[0])
        self.n_ctx: int | None = len(self.tokens)
        self.vocab_size = len(vocabulary)
        self.bos_token_id: int | None = None
        self.device = layers[0].device
        self._ids = torch.tensor([ids], device=self.device)
        self.name = "precomputed attention"
        self.layer_names: list[str] = []
        self.layer_modules: list[torch.nn.Module] | None = None

    @staticmethod
    def accepts(data: Any) -> bool:
        return isinstance(data, np.ndarray | torch.Tensor) or _is_cache(data)

    def tokenize(self, prompt: str) -> tuple[torch.Tensor, list[str]]:
        if prompt != self.fixed_prompt:
            raise PromptError(
                "This explorer shows precomputed attention, so its prompt cannot change. "
                "Pass a model to explore other prompts."
            )
        return self._ids, list(self.tokens)

    def run(self, tokens: torch.Tensor, on_pattern: PatternCallback, last_layer: int | None = None) -> None:
        if not torch.equal(tokens.to(self.device), self._ids):
            raise ModelError("Precomputed attention can only show the tokens it was computed on.")
        last = self.n_layers - 1 if last_layer is None else last_layer
        for layer in range(last + 1):
            on_pattern(layer, self._layers[layer][None])

    def capture(self, tokens: torch.Tensor, on_layer: LayerCallback, last_layer: int | None = None) -> None:
        self.run(tokens, lambda layer, pattern: on_layer(layer, DenseAttention(pattern)), last_layer)


def _check_shapes(layers: list[torch.Tensor], n_tokens: int) -> None:
    if not layers:
        raise ModelError("Precomputed attention has no layers.")
    first = tuple(layers[0].shape)
    for layer, pattern in enumerate(layers):
        shape = tuple(pattern.shape)
        if len(shape) != 3 or shape != first:
            raise ModelError(
                f"Layer {layer}'s pattern has shape {shape}: every layer must be [heads, query, key], "
                f"the same as layer 0's {first}."
            )
        if not pattern.is_floating_point():
            raise ModelError(f"Attention patterns must be floating point weights; layer {layer} is {pattern.dtype}.")
    heads, queries, keys = first
    if queries != keys:
        raise ModelError(f"Attention patterns must be square (query = key positions); got {queries} x {keys}.")
    if queries != n_tokens:
        raise ModelError(f"The patterns cover {queries} positions but {n_tokens} tokens were given: they must match.")
    if heads == 0 or queries == 0:
        raise ModelError("Precomputed attention has no heads or no positions.")


ROW_SUM_TOLERANCE = 1e-3
"""A query's weights sum to 1 within this (float16 weights sum to 1 within about 1e-3 x 2**-11 x n)."""


def _warn_if_not_normalised(layers: list[torch.Tensor]) -> None:
    """Attention rows sum to 1: rows that do not (NaN included) are shown, with a warning that names
    the layer and head, as they may be logits, or unnormalised weights, or a float16 overflow."""
    off: list[str] = []
    for layer, pattern in enumerate(layers):
        sums = pattern.float().sum(-1)  # [heads, queries]
        bad = ~((sums - 1.0).abs() <= ROW_SUM_TOLERANCE)  # NaN compares False: bad too
        for head in bad.any(-1).nonzero().flatten().tolist():
            rows = bad[head].nonzero().flatten()
            first = int(rows[0])
            total = float(sums[head, first])
            off.append(f"{head_label(layer, head)} ({len(rows)} rows; row {first} sums to {total:.4g})")
    if off:
        shown = "; ".join(off[:8]) + (f"; and {len(off) - 8} more heads" if len(off) > 8 else "")
        warnings.warn(
            f"Precomputed attention rows should each sum to 1 (softmax weights); these do not: {shown}. "
            "They are shown as given; NaN and infinite weights are drawn in the 'undefined' colour.",
            AttnWidgetWarning,
            stacklevel=4,
        )
