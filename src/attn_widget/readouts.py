"""One prompt's attention weighed by what the heads move: value-weighted patterns, their scores and
thumbnails, and per-source logit attribution. Computed on first use from the prompt's analysis
plus the model's weights, then kept: per layer `[heads, n]` norms, never `[heads, n, n]` beyond
the layer at hand.

Extra forward passes (each at most once per prompt): one for the value vectors and the final
norm's scale, one for the value-weighted scores and thumbnails, one per attributed query.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import torch

from . import scores, wire
from .analysis import PromptAnalysis, _run_or_explain, check_head, check_layer
from .attribution import logit_direction, source_attribution
from .errors import SelectionError
from .model_weights import ReadoutWeights
from .readout_run import Readout, run_readout
from .weighting import row_shares, value_norms, value_weighted


class PromptReadout:
    def __init__(self, analysis: PromptAnalysis, weights: ReadoutWeights) -> None:
        self.analysis, self.weights = analysis, weights
        self._norms: dict[int, torch.Tensor] = {}
        self._rows: dict[int, list[torch.Tensor]] = {}

    @cached_property
    def readout(self) -> Readout:
        return run_readout(self.analysis.backend.model, self.weights, self.analysis.token_ids)  # type: ignore[attr-defined]

    def norms(self, layer: int) -> torch.Tensor:
        """`[h, n]` float32: `||v_j W_O^h||` for every head and source."""
        if layer not in self._norms:
            self._norms[layer] = value_norms(self.readout.values[layer], self.weights.w_o(layer))
        return self._norms[layer]

    def value_pattern(self, layer: int, head: int) -> torch.Tensor:
        """`[n, n]` float32: `||A[h, i, j] f_h(x_j)||`, absolute sizes."""
        pattern = self.analysis.head_pattern(layer, head)
        return value_weighted(pattern[None], self.norms(layer)[head : head + 1])[0]

    def shown_pattern(self, layer: int, head: int, weighting: str) -> torch.Tensor:
        """What the views draw: attention, or the value-weighted rows as shares (each sums to one)."""
        pattern = self.analysis.head_pattern(layer, head)
        if weighting != "value":
            return pattern
        # On every head switch: one float32 copy, scaled in place (a third fewer passes than
        # row_shares(value_pattern(...)), which the Python API keeps for clarity).
        shares = pattern.float().mul_(self.norms(layer)[head])
        return shares.div_(shares.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny))

    def shown_layer(self, layer: int, weighting: str) -> torch.Tensor:
        pattern = self.analysis.layer_pattern(layer)
        if weighting == "value":
            return row_shares(value_weighted(pattern, self.norms(layer)))
        return pattern

    @cached_property
    def value_summary(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Every score and thumbnail over the value-weighted shares: one pass over all layers."""
        backend, ids = self.analysis.backend, self.analysis.token_ids
        norms = [self.norms(layer) for layer in range(backend.n_layers)]  # their pass first: never nested
        per_layer: list[dict[str, torch.Tensor]] = [{}] * backend.n_layers
        thumbs: list[torch.Tensor] = [torch.empty(0)] * backend.n_layers

        def reduce_layer(layer: int, pattern: torch.Tensor) -> None:
            shares = row_shares(value_weighted(pattern[0], norms[layer]))
            per_layer[layer] = scores.layer_scores(shares[None], ids)
            thumbs[layer] = wire.thumbnails(shares)

        _run_or_explain(backend, ids, reduce_layer)
        table = {m: torch.stack([layer[m] for layer in per_layer]).float().cpu().numpy() for m in scores.METRICS}
        return table, torch.stack(thumbs).cpu().numpy()

    def query_rows(self, query: int) -> list[torch.Tensor]:
        """Per layer `[h, n]` float32: the attention of `query` over all sources, from one pass."""
        n = self.analysis.n_tokens
        if not 0 <= query < n:
            raise SelectionError(f"token {query} is out of range: the prompt has tokens 0 to {n - 1}")
        if query not in self._rows:
            rows: dict[int, torch.Tensor] = {}

            def keep(layer: int, pattern: torch.Tensor) -> None:
                rows[layer] = pattern[0, :, query].float()

            _run_or_explain(self.analysis.backend, self.analysis.token_ids, keep)
            self._rows = {query: [rows[layer] for layer in sorted(rows)]}  # keep one query's rows
        return self._rows[query]

    def attribution(self, layer: int, query: int, answer: int, counterfactual: int | None) -> torch.Tensor:
        """`[h, n]` float32: each source's contribution through each head of `layer` to the logit
        difference at `query`."""
        check_layer(self.analysis.backend, layer)
        direction = logit_direction(self.weights.w_u(), answer, counterfactual, self.weights.final_norm())
        rows = self.query_rows(query)[layer]
        scale = self.readout.scale[query]
        return source_attribution(rows, self.readout.values[layer], self.weights.w_o(layer), direction, scale)

    def head_attribution(
        self, layer: int, head: int, query: int, answer: int, counterfactual: int | None
    ) -> np.ndarray:
        check_head(self.analysis.backend, head)
        return self.attribution(layer, query, answer, counterfactual)[head].cpu().numpy()

    def direct_logit_attribution(self, query: int, answer: int, counterfactual: int | None) -> np.ndarray:
        """`[layers, heads]`: each head's direct logit attribution (its sources summed)."""
        layers = range(self.analysis.backend.n_layers)
        return (
            torch.stack([self.attribution(layer, query, answer, counterfactual).sum(-1) for layer in layers])
            .cpu()
            .numpy()
        )
