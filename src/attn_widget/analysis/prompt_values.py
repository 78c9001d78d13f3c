"""One prompt's attention weighed by what the heads move: value-weighted patterns, their scores and
thumbnails, and per-source logit attribution. Computed on first use from the prompt's analysis and
the model's weights, then kept: per layer `[heads, n]` numbers, never a `[heads, n, n]` tensor.

The prompt's own pass keeps each layer's value norms (`PromptAnalysis.value_norms`), so value-weighted
views and scores need no second forward pass, except the scores of layers past the capture budget
when many are (see `PromptAnalysis.value_reductions`). Logit attribution needs the values and the
final norm's scale: one extra pass (value_pass.py) on first use.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import torch

from attn_widget.analysis.prompt import PromptAnalysis, check_head, check_layer
from attn_widget.analysis.value_pass import ValuePass, run_query_rows, run_value_pass
from attn_widget.backends.weights import OutputWeights
from attn_widget.errors import ModelError, SelectionError
from attn_widget.maths.attribution import logit_direction, source_attribution
from attn_widget.maths.layer import LayerAttention
from attn_widget.maths.reductions import head_pattern
from attn_widget.maths.value_weighting import ValueWeighted, value_norms


class PromptValues:
    def __init__(self, analysis: PromptAnalysis, weights: OutputWeights) -> None:
        self.analysis, self.weights = analysis, weights
        self._norms: dict[int, torch.Tensor] = {}
        self._rows: tuple[int, list[torch.Tensor]] | None = None

    @cached_property
    def value_pass(self) -> ValuePass:
        last = self.analysis.n_tokens - 1
        return run_value_pass(self.analysis.backend, self.weights, self.analysis.token_ids, last)

    def norms(self, layer: int) -> torch.Tensor:
        """`[h, n]` float32: `||v_j W_O^h||` for every head and source."""
        if layer in self.analysis.value_norms:
            return self.analysis.value_norms[layer]
        if layer not in self._norms:
            self._norms[layer] = value_norms(self.value_pass.values[layer], self.weights.w_o(layer))
        return self._norms[layer]

    def value_pattern(self, layer: int, head: int) -> torch.Tensor:
        """`[n, n]` float32: `||A[h, i, j] f_h(x_j)||`, absolute sizes (the Python API)."""
        check_layer(self.analysis.backend, layer), check_head(self.analysis.backend, head)
        pattern = head_pattern(self.analysis.capture(layer), head)
        return pattern.mul_(self.norms(layer)[head].to(pattern.device))  # in place: no second [n, n]

    def attention(self, layer: int, weighting: str) -> LayerAttention:
        """What the views read of a layer: its attention, or the value-weighted shares."""
        attention = self.analysis.capture(layer)
        return ValueWeighted(attention, self.norms(layer), statistics=False) if weighting == "value" else attention

    @property
    def value_scores(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Every score and thumbnail over the value-weighted shares."""
        if self.analysis.has_value_norms:
            return self.analysis.value_reductions()
        value_pass = self.value_pass
        assert value_pass.thumbnails is not None
        return value_pass.scores, value_pass.thumbnails

    def query_rows(self, query: int) -> list[torch.Tensor]:
        """Per layer `[h, n]` float32: the attention of `query` over all sources."""
        n = self.analysis.n_tokens
        if not 0 <= query < n:
            raise SelectionError(f"token {query} is out of range: the prompt has tokens 0 to {n - 1}")
        if query in self.value_pass.rows:
            return self.value_pass.rows[query]
        if self._rows is None or self._rows[0] != query:  # one pass per attributed query, one kept
            self._rows = (query, run_query_rows(self.analysis.backend, self.analysis.token_ids, query))
        return self._rows[1]

    def attribution(self, layer: int, query: int, answer: int, counterfactual: int | None) -> torch.Tensor:
        """`[h, n]` float32: each source's contribution through each head of `layer` to the logit
        difference at `query`."""
        check_layer(self.analysis.backend, layer)
        if self.value_pass.scale is None:
            raise ModelError("The model's final norm did not run, so its logits cannot be attributed.")
        direction = logit_direction(self.weights.w_u(), answer, counterfactual, self.weights.final_norm())
        rows = self.query_rows(query)[layer]
        scale = self.value_pass.scale[query]
        return source_attribution(rows, self.value_pass.values[layer], self.weights.w_o(layer), direction, scale)

    def head_attribution(
        self, layer: int, head: int, query: int, answer: int, counterfactual: int | None
    ) -> np.ndarray:
        check_head(self.analysis.backend, head)
        return self.attribution(layer, query, answer, counterfactual)[head].cpu().numpy()

    def direct_logit_attribution(self, query: int, answer: int, counterfactual: int | None) -> np.ndarray:
        """`[layers, heads]`: each head's direct logit attribution (its sources summed)."""
        layers = range(self.analysis.backend.n_layers)
        heads = [self.attribution(layer, query, answer, counterfactual).sum(-1) for layer in layers]
        return torch.stack(heads).cpu().numpy()
