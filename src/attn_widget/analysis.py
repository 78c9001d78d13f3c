"""One prompt through one model: tokens, head scores and thumbnails from a single forward pass,
and single-head patterns on demand, kept on the device only within a memory budget."""

from __future__ import annotations

import numpy as np
import torch

from . import scores, wire
from .backends import Backend, PatternCallback
from .errors import AttnWidgetError, ModelError, PromptError, SelectionError

PATTERN_BUDGET_BYTES = 512 * 2**20
"""Device memory for keeping float16 patterns between head switches; layers past it are recomputed."""


def _check_index(kind: str, value: int, count: int) -> int:
    if not 0 <= value < count:
        raise SelectionError(f"{kind} {value} is out of range: this model has {kind}s 0 to {count - 1}")
    return value


def check_layer(backend: Backend, layer: int) -> int:
    return _check_index("layer", layer, backend.n_layers)


def check_head(backend: Backend, head: int) -> int:
    return _check_index("head", head, backend.n_heads)


def _run_or_explain(
    backend: Backend, tokens: torch.Tensor, on_pattern: PatternCallback, last_layer: int | None = None
) -> None:
    try:
        backend.run(tokens, on_pattern, last_layer)
    except AttnWidgetError:  # already says what went wrong and what to do
        raise
    except Exception as err:  # the model's own failure: name it, keep the kernel going
        raise ModelError(f"The model failed while running: {type(err).__name__}: {err}") from err


class PromptAnalysis:
    """Runs `prompt` once; reduces every layer to scores and thumbnails while the pass runs."""

    def __init__(self, backend: Backend, prompt: str, budget_bytes: int = PATTERN_BUDGET_BYTES) -> None:
        if not prompt.strip():
            raise PromptError("The prompt is empty: type some text to see its attention patterns.")
        self.backend = backend
        self.token_ids, self.tokens = backend.tokenize(prompt)
        n = len(self.tokens)
        if backend.n_ctx is not None and n > backend.n_ctx:
            raise PromptError(
                f"The prompt is {n} tokens long, more than the model's context of {backend.n_ctx} tokens."
            )
        layer_bytes = backend.n_heads * n * n * 2
        self._kept_layers = min(backend.n_layers, budget_bytes // max(layer_bytes, 1))
        self._patterns: dict[int, torch.Tensor] = {}
        self._recomputed: tuple[int, torch.Tensor] | None = None
        per_layer: list[dict[str, torch.Tensor]] = [{}] * backend.n_layers
        thumbs: list[torch.Tensor] = [torch.empty(0)] * backend.n_layers

        def reduce_layer(layer: int, pattern: torch.Tensor) -> None:
            per_layer[layer] = scores.layer_scores(pattern, self.token_ids)
            thumbs[layer] = wire.thumbnails(pattern[0])
            if layer < self._kept_layers:
                self._patterns[layer] = pattern[0].to(torch.float16)

        _run_or_explain(backend, self.token_ids, reduce_layer)
        self.scores: dict[str, np.ndarray] = {
            metric: torch.stack([layer[metric] for layer in per_layer]).float().cpu().numpy()
            for metric in scores.METRICS
        }
        self.thumbnails: np.ndarray = torch.stack(thumbs).cpu().numpy()

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    def layer_pattern(self, layer: int) -> torch.Tensor:
        """`[head, q, k]` float16 on the device; layers past the budget are recomputed (one kept)."""
        if layer in self._patterns:
            return self._patterns[layer]
        if self._recomputed is not None and self._recomputed[0] == layer:
            return self._recomputed[1]
        captured: dict[int, torch.Tensor] = {}

        def keep(at: int, pattern: torch.Tensor) -> None:
            if at == layer:
                captured[at] = pattern[0].to(torch.float16)

        _run_or_explain(self.backend, self.token_ids, keep, last_layer=layer)
        self._recomputed = (layer, captured[layer])
        return captured[layer]

    def head_pattern(self, layer: int, head: int) -> torch.Tensor:
        check_layer(self.backend, layer), check_head(self.backend, head)
        return self.layer_pattern(layer)[head]


def induction_test(backend: Backend, seq_len: int = 50, batch: int = 8, seed: int = 0) -> np.ndarray:
    """The reference notebook's repeated random token test, batched and in one forward pass.

    Each sequence is `seq_len // 2` random tokens repeated once (after a BOS token when the
    tokenizer has one). Returns `[n_layers, n_heads]` mean induction-stripe attention.
    """
    if not backend.runs_tokens:
        raise ModelError("The repeated random token test needs a model to run: precomputed attention cannot.")
    half = seq_len // 2
    if half < 2 or batch < 1:
        raise ValueError("induction_test needs seq_len >= 4 and batch >= 1")
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

    def score(layer: int, pattern: torch.Tensor) -> None:
        result[layer] = scores.repeated_sequence_score(pattern, half, offset).cpu()

    _run_or_explain(backend, tokens.to(backend.device), score)
    return result.numpy()
