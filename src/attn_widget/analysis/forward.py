"""The one wrapper around a model's forward pass: a failure of the model becomes a ModelError that
names it (the kernel goes on), Ctrl-C passes through. `capture_layers` hands over each layer's
attention as queries and keys; `run_dense` the dense `[batch, head, q, k]` patterns, for short
prompts and batches (dataset mode, similarity, retrieval)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from attn_widget.backends.base import Backend, LayerCallback, PatternCallback
from attn_widget.errors import AttnWidgetError, ModelError


@contextmanager
def _explained() -> Iterator[None]:
    try:
        yield
    except AttnWidgetError:  # already says what went wrong and what to do
        raise
    except Exception as err:  # the model's own failure: name it, keep the kernel going
        raise ModelError(f"The model failed while running: {type(err).__name__}: {err}") from err


def capture_layers(
    backend: Backend, tokens: torch.Tensor, on_layer: LayerCallback, last_layer: int | None = None, **options: Any
) -> None:
    """One pass with the model's own attention kernel; each layer's attention goes to `on_layer`."""
    with _explained():
        backend.capture(tokens, on_layer, last_layer, **options)


def run_dense(
    backend: Backend, tokens: torch.Tensor, on_pattern: PatternCallback, last_layer: int | None = None
) -> None:
    """One pass; each layer's whole pattern goes to `on_pattern`."""
    with _explained():
        backend.run(tokens, on_pattern, last_layer)


def needs_a_model(backend: Backend, what: str) -> None:
    if not backend.runs_tokens:
        raise ModelError(f"{what} needs a model to run: precomputed attention cannot.")


def prompt_patterns(backend: Backend, token_ids: torch.Tensor, budget_bytes: int = 512 * 2**20) -> torch.Tensor:
    """Every layer's pattern of one prompt, `[layer, head, n, n]` float32 on the device."""
    n = int(token_ids.shape[-1])
    need = backend.n_layers * backend.n_heads * n * n * 4
    if need > budget_bytes:
        raise AttnWidgetError(
            f"This needs every head's pattern at once ({need / 2**20:.0f} MB for {n} tokens), more than "
            f"{budget_bytes / 2**20:.0f} MB: use a shorter prompt."
        )
    layers: list[torch.Tensor] = [torch.empty(0)] * backend.n_layers

    def keep(layer: int, pattern: torch.Tensor) -> None:
        layers[layer] = pattern[0].float()

    run_dense(backend, token_ids[:1], keep)
    return torch.stack(layers)
