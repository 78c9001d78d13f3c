"""Forward passes for the whole-prompt extras (dataset mode, detectors, sinks, similarity, retrieval).

They use the backend protocol's dense `[batch, head, q, k]` patterns: these analyses are meant for
short prompts and batches, and each reduces a layer as soon as the pass hands it over.
"""

from __future__ import annotations

import torch

from .backends import Backend, PatternCallback
from .errors import AttnWidgetError, ModelError


def run_model(
    backend: Backend, tokens: torch.Tensor, on_pattern: PatternCallback, last_layer: int | None = None
) -> None:
    """One pass; the model's own failure becomes a ModelError, Ctrl-C passes through."""
    try:
        backend.run(tokens, on_pattern, last_layer)
    except AttnWidgetError:  # already says what went wrong and what to do
        raise
    except Exception as err:
        raise ModelError(f"The model failed while running: {type(err).__name__}: {err}") from err


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

    run_model(backend, token_ids[:1], keep)
    return torch.stack(layers)
