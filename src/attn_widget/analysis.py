"""One prompt through one model: tokens, head scores and thumbnails from a single forward pass,
and any head, tile or row on demand, recomputed from the layer's captured queries and keys
(kept on the device within a memory budget)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from . import reductions, scores
from .backends import Backend, LayerCallback
from .capture import DenseAttention, LayerAttention, LayerCapture, dense
from .errors import AttnWidgetError, ModelError, PromptError, SelectionError
from .reductions import reduce_layer, thumbnail_side

CAPTURE_BUDGET_BYTES = {"cuda": 2 * 2**30, "cpu": 256 * 2**20}
"""Memory for keeping layers' queries and keys between head switches; layers past it are
recomputed by a pass that stops after them. Kept small next to a forward pass's own working set."""


def _default_budget(device: torch.device) -> int:
    return CAPTURE_BUDGET_BYTES["cuda" if device.type == "cuda" else "cpu"]


def _check_index(kind: str, value: int, count: int) -> int:
    if not 0 <= value < count:
        raise SelectionError(f"{kind} {value} is out of range: this model has {kind}s 0 to {count - 1}")
    return value


def check_layer(backend: Backend, layer: int) -> int:
    return _check_index("layer", layer, backend.n_layers)


def check_head(backend: Backend, head: int) -> int:
    return _check_index("head", head, backend.n_heads)


def _run_or_explain(
    backend: Backend, tokens: torch.Tensor, on_layer: LayerCallback, last_layer: int | None = None, **options: Any
) -> None:
    try:
        backend.capture(tokens, on_layer, last_layer, **options)
    except AttnWidgetError:  # already says what went wrong and what to do
        raise
    except Exception as err:  # the model's own failure: name it, keep the kernel going
        raise ModelError(f"The model failed while running: {type(err).__name__}: {err}") from err


def _nbytes(attention: LayerAttention) -> int:
    if isinstance(attention, DenseAttention):
        return attention.pattern.numel() * attention.pattern.element_size()
    return attention.nbytes() if isinstance(attention, LayerCapture) else 0


class PromptAnalysis:
    """Runs `prompt` once with the model's own attention kernel, capturing each layer's queries
    and keys; scores and thumbnails are reduced from them in query blocks (reductions.py).

    With `defer_scores`, layers kept within the budget are reduced by `finish()`, so a caller can
    show the first head before every score is done; layers past the budget are reduced during the
    pass and let go.
    """

    def __init__(
        self,
        backend: Backend,
        prompt: str,
        budget_bytes: int | None = None,
        *,
        defer_scores: bool = False,
        keep_values: bool = False,
    ) -> None:
        if not prompt.strip():
            raise PromptError("The prompt is empty: type some text to see its attention patterns.")
        self.backend = backend
        self.token_ids, self.tokens = backend.tokenize(prompt)
        n = len(self.tokens)
        if backend.n_ctx is not None and n > backend.n_ctx:
            raise PromptError(
                f"The prompt is {n} tokens long, more than the model's context of {backend.n_ctx} tokens."
            )
        self._budget = _default_budget(backend.device) if budget_bytes is None else budget_bytes
        self._options = {"keep_values": True} if keep_values else {}
        self._kept: dict[int, LayerAttention] = {}
        self._kept_bytes = 0
        self._unreduced: list[int] = []
        self._recomputed: tuple[int, LayerAttention] | None = None
        layers, heads, side = backend.n_layers, backend.n_heads, thumbnail_side(n)
        self.scores: dict[str, np.ndarray] = {m: np.full((layers, heads), np.nan, np.float32) for m in scores.METRICS}
        self.thumbnails = np.zeros((layers, heads, side, side), np.uint8)
        self.scored = np.zeros(layers, bool)
        """Which layers' scores and thumbnails are in (all of them once `finish()` has run)."""

        def on_layer(layer: int, attention: LayerAttention) -> None:
            size = _nbytes(attention)
            if self._kept_bytes + size <= self._budget:
                self._kept[layer] = attention
                self._kept_bytes += size
                self._unreduced.append(layer)
            else:
                self._reduce(layer, attention)

        _run_or_explain(backend, self.token_ids, on_layer, **self._options)
        if not defer_scores:
            self.finish()

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    def finish(self, on_layer_scored: Callable[[int], None] | None = None) -> None:
        """Reduce the kept layers not yet scored, calling `on_layer_scored(layer)` after each."""
        while self._unreduced:
            layer = self._unreduced.pop(0)
            self._reduce(layer, self._kept[layer])
            if on_layer_scored is not None:
                on_layer_scored(layer)

    def _reduce(self, layer: int, attention: LayerAttention) -> None:
        reduction = reduce_layer(attention, self.token_ids)
        for metric, values in reduction.scores.items():
            self.scores[metric][layer] = values.float().cpu().numpy()
        self.thumbnails[layer] = reduction.thumbnails.cpu().numpy()
        self.scored[layer] = True
        if isinstance(attention, LayerCapture):
            attention.release_blocks()

    def capture(self, layer: int) -> LayerAttention:
        """The layer's attention, readable in query blocks: kept, or recomputed (one at a time)."""
        check_layer(self.backend, layer)
        if layer in self._kept:
            return self._kept[layer]
        if self._recomputed is not None and self._recomputed[0] == layer:
            return self._recomputed[1]
        self._recomputed = None  # let the previous one go before the pass makes another
        captured: dict[int, LayerAttention] = {}

        def keep(at: int, attention: LayerAttention) -> None:
            if at == layer:
                captured[at] = attention

        _run_or_explain(self.backend, self.token_ids, keep, last_layer=layer, **self._options)
        self._recomputed = (layer, captured[layer])
        return captured[layer]

    def layer_pattern(self, layer: int) -> torch.Tensor:
        """`[head, q, k]` float32: the whole layer, for short prompts (CircuitsVis) only."""
        return dense(self.capture(layer))[0]

    def head_pattern(self, layer: int, head: int) -> torch.Tensor:
        """`[q, k]` float32 on the model's device."""
        check_layer(self.backend, layer), check_head(self.backend, head)
        return reductions.head_pattern(self.capture(layer), head)


def repeated_tokens_scores(backend: Backend, seq_len: int = 50, batch: int = 8, seed: int = 0) -> np.ndarray:
    """The reference notebook's repeated random token test, batched and in one forward pass.

    Each sequence is `seq_len // 2` random tokens repeated once (after a BOS token when the
    tokenizer has one). Returns `[n_layers, n_heads]` mean induction-stripe attention.
    """
    if not backend.runs_tokens:
        raise ModelError("The repeated random token test needs a model to run: precomputed attention cannot.")
    half = seq_len // 2
    if half < 2 or batch < 1:
        raise ValueError("the repeated random token test needs seq_len >= 4 and batch >= 1")
    offset = 0 if backend.bos_token_id is None else 1
    if backend.n_ctx is not None and offset + 2 * half > backend.n_ctx:
        raise ValueError(f"seq_len {seq_len} does not fit the model's context of {backend.n_ctx} tokens")
    # The notebook draws ids from [100, 1000): ordinary tokens, clear of specials at the start.
    high = min(1000, backend.vocab_size)
    low = min(100, high // 4)
    generator = torch.Generator().manual_seed(seed)
    segment = torch.randint(low, high, (batch, half), generator=generator)
    tokens = torch.cat([segment, segment], dim=1)
    if offset:
        tokens = torch.cat([torch.full((batch, 1), int(backend.bos_token_id or 0)), tokens], dim=1)
    result = torch.zeros(backend.n_layers, backend.n_heads)

    def score(layer: int, attention: LayerAttention) -> None:  # short sequences: the dense layer is small
        result[layer] = scores.repeated_sequence_score(dense(attention), half, offset).cpu()

    _run_or_explain(backend, tokens.to(backend.device), score)
    return result.numpy()
