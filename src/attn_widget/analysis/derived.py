"""The current prompt's extra metrics: custom detectors and attention sinks, in one more pass.

They need dense patterns (a detector's expected pattern is `[n, n]`), so they run through the
backend protocol's dense pass, and only for prompts up to `MAX_TOKENS`; longer prompts go without.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from attn_widget.analysis.forward import run_dense
from attn_widget.backends.base import Backend
from attn_widget.contract import SINK_SHARE
from attn_widget.maths import sinks
from attn_widget.maths.detectors import Detector, DetectorError, detector_score
from attn_widget.maths.summary import top_heads_text

MAX_TOKENS = 512
"""Past this, the dense pass costs about as much as the prompt's own analysis (benchmarks/dataset_probe.py)."""


@dataclass
class DetectorsAndSinks:
    scores: dict[str, np.ndarray]
    """`sink_share` and each working detector's metric, `(n_layers, n_heads)`."""
    received: np.ndarray
    """`(n_layers, n_heads, n_tokens)`: the mean attention each key position receives."""
    sink_mask: np.ndarray
    """`(n_layers, n_heads, n_tokens)` bool: each head's sink positions."""
    threshold: float
    errors: list[str] = field(default_factory=list)
    """One message per detector that failed on this prompt (its metric is left out)."""

    def __repr__(self) -> str:
        layers, heads, n = self.sink_mask.shape
        top = top_heads_text(self.scores[SINK_SHARE])
        return f"<DetectorsAndSinks {layers}x{heads} heads, {n} tokens, most on sinks: {top}>"

    def sink_positions(self, layer: int, head: int) -> list[int]:
        return [int(k) for k in np.flatnonzero(self.sink_mask[layer, head])]


def detectors_and_sinks(
    backend: Backend, token_ids: torch.Tensor, detectors: Sequence[Detector], threshold: float = sinks.SINK_THRESHOLD
) -> DetectorsAndSinks | None:
    """None when the prompt is longer than MAX_TOKENS or the attention cannot be re-run."""
    n = int(token_ids.shape[-1])
    if n > MAX_TOKENS:
        return None
    ids = token_ids.reshape(1, n)
    errors: list[str] = []
    expected: dict[str, torch.Tensor] = {}
    for detector in detectors:
        try:
            expected[detector.name] = detector.expected(ids[0].cpu()).to(backend.device)
        except DetectorError as err:
            errors.append(str(err))
    working = [d for d in detectors if d.name in expected]
    L, H = backend.n_layers, backend.n_heads
    out = {name: torch.zeros(L, H) for name in [SINK_SHARE, *expected]}
    received = torch.zeros(L, H, n)
    mask = torch.zeros(L, H, n, dtype=torch.bool)

    def reduce_layer(layer: int, pattern: torch.Tensor) -> None:
        head_patterns = pattern[0].float()
        received[layer] = sinks.received_attention(head_patterns).cpu()
        mask[layer] = sinks.sink_mask(head_patterns, threshold).cpu()
        out[SINK_SHARE][layer] = sinks.sink_share(head_patterns, threshold).cpu()
        for d in working:
            out[d.name][layer] = detector_score(head_patterns, expected[d.name], d.measure).cpu()

    run_dense(backend, ids, reduce_layer)
    return DetectorsAndSinks(
        {k: v.numpy().astype(np.float64) for k, v in out.items()},
        received.numpy(),
        mask.numpy(),
        threshold,
        errors,
    )
