"""The current prompt's extra metrics: custom detectors and attention sinks, at any length.

Both come from the sweep that scores the prompt (`PromptAnalysis`, maths/reductions.py): sinks from
the column sums it keeps (what each key receives), detectors from their expected patterns scored
block by block beside the other scores. A detector added after the prompt ran is scored by one more
block sweep over the layers' captures (kept ones cost no forward pass; layers past the memory
budget are recomputed as for any head request).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from attn_widget.analysis.prompt import PromptAnalysis
from attn_widget.contract import SINK_SHARE
from attn_widget.maths import reductions, sinks
from attn_widget.maths.detectors import Detector, DetectorError, ExpectedCells, expected_cells
from attn_widget.maths.summary import top_heads_text


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
    analysis: PromptAnalysis, detectors: Sequence[Detector], threshold: float = sinks.SINK_THRESHOLD
) -> DetectorsAndSinks:
    """Sinks from the prompt's column sums; detectors from its sweep, or one more sweep for those it
    was not given (kept with the analysis, so a later call does not sweep again)."""
    analysis.finish()
    columns = torch.from_numpy(analysis.column_sums)
    received = torch.stack(
        [reductions.received_attention(columns[layer], bool(causal)) for layer, causal in enumerate(analysis.causal)]
    )
    n = received.shape[-1]
    eligible = torch.stack([sinks.seen_by(n, bool(causal)) >= sinks.enough_queries(n) for causal in analysis.causal])
    mask = sinks.passes(received, threshold) & eligible[:, None, :]
    out = {SINK_SHARE: reductions.sink_share(columns, mask).double().numpy()}
    missing: dict[str, ExpectedCells] = {}
    for detector in detectors:
        if analysis.detectors.get(detector.name) is detector:
            continue  # scored (or failed) on this prompt already
        analysis.detectors[detector.name] = detector
        analysis.detector_scores.pop(detector.name, None)
        analysis.detector_errors.pop(detector.name, None)
        try:
            missing[detector.name] = expected_cells(detector, analysis.token_ids[0])
        except DetectorError as err:
            analysis.detector_errors[detector.name] = str(err)
    analysis.detector_scores.update(_sweep(analysis, missing))
    errors = [analysis.detector_errors[d.name] for d in detectors if d.name in analysis.detector_errors]
    for detector in detectors:
        if detector.name in analysis.detector_scores:
            out[detector.name] = analysis.detector_scores[detector.name].astype(np.float64)
    return DetectorsAndSinks(out, received.numpy(), mask.numpy(), threshold, errors)


def _sweep(analysis: PromptAnalysis, detectors: dict[str, ExpectedCells]) -> dict[str, np.ndarray]:
    """`detectors`' scores over every layer, one block sweep per layer."""
    if not detectors:
        return {}
    layers, heads = analysis.backend.n_layers, analysis.backend.n_heads
    out = {name: np.zeros((layers, heads), np.float32) for name in detectors}
    for layer in range(layers):
        reduction = reductions.reduce_layer(
            analysis.capture(layer), analysis.token_ids, detectors=list(detectors.values())
        )
        for name, values in zip(detectors, reduction.detectors, strict=True):
            out[name][layer] = values.float().cpu().numpy()
    return out
