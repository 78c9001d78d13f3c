"""Why a head attends where it does, composed into the explorer: the query-key decomposition of one
score, head composition scores and ablation effects. Holds the circuit weights and the last
ablation sweep (shown in the score views while its prompt is shown), and answers the "why" panel's
messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from attn_widget.analysis.ablation import Target, ablation_effects
from attn_widget.analysis.prompt import PromptAnalysis, check_head, check_layer
from attn_widget.analysis.residual import QKDecomposition, decompose
from attn_widget.backends.base import Backend
from attn_widget.backends.tokens import token_id
from attn_widget.backends.weights import CircuitWeights, circuit_weights
from attn_widget.contract import ABLATION
from attn_widget.errors import AttnWidgetError, SelectionError
from attn_widget.maths.composition import composition_kind, composition_scores, writer_reader_matrix
from attn_widget.widget.json_numbers import json_matrix
from attn_widget.widget.traits import ExplorerTraits

WHY = "why"
"""The custom message type of the "why" panel: a request names layer, head, query and key."""


class DecompositionTable(list[dict[str, Any]]):
    """Every (query-side, key-side) pair's part of the score, largest first, as records (pandas is
    not installed); `.score` is the score they sum to."""

    score: float = float("nan")

    def __repr__(self) -> str:
        lines = [f"score {self.score:.4f} = sum of {len(self)} pairs; largest:"]
        lines += [
            f"  {r['query_component']:>14} . {r['key_component']:<14} {r['contribution']:+.4f}" for r in self[:10]
        ]
        return "\n".join(lines)


class Why:
    def __init__(self, widget: ExplorerTraits, backend: Backend, current: Callable[[], PromptAnalysis]) -> None:
        self.widget, self.backend, self.current = widget, backend, current
        self._weights: CircuitWeights | None = None
        self.ablation: tuple[PromptAnalysis, np.ndarray] | None = None
        self.compositions: dict[str, np.ndarray] = {}
        """Kind -> scores: they depend on the weights alone, so the view's Q/K/V choice costs nothing twice."""

    def weights(self) -> CircuitWeights:
        if self._weights is None:
            self._weights = circuit_weights(self.backend)
        return self._weights

    def decomposition(self, layer: int, head: int, query: int, key: int) -> QKDecomposition:
        check_layer(self.backend, layer)
        check_head(self.backend, head)
        analysis = self.current()
        n = analysis.n_tokens
        for name, value in (("query", query), ("key", key)):
            if not 0 <= int(value) < n:
                raise SelectionError(f"{name} must be a token position from 0 to {n - 1}, not {value}.")
        return decompose(self.backend, analysis.token_ids, layer, head, int(query), int(key), self.weights())

    def table(self, layer: int, head: int, query: int, key: int) -> Any:
        """The decomposition as a labelled table: a pandas DataFrame when pandas is installed."""
        result = self.decomposition(layer, head, query, key)
        records = result.records()
        try:
            import pandas as pd
        except ImportError:
            table = DecompositionTable(records)
            table.score = result.score
            return table
        frame = pd.DataFrame.from_records(records)
        frame.attrs["score"] = result.score
        return frame

    def composition(self, kind: str) -> np.ndarray:
        """`[layers, heads, layers, heads]` float32 (a copy: the caller may change it)."""
        try:
            key = composition_kind(kind)
        except ValueError as err:
            raise AttnWidgetError(str(err)) from err
        if key not in self.compositions:
            weights = self.weights()
            layers = [weights.layer(i) for i in range(weights.n_layers)]
            self.compositions[key] = composition_scores(layers, key).cpu().numpy()
        return np.array(self.compositions[key], copy=True)

    def composition_view(self, kind: str) -> dict[str, Any]:
        """The head composition view's data (the `composition` trait): writers as rows, later readers
        as columns, float32 bytes with NaN where the reader is not later."""
        scores = self.composition(kind)
        matrix = writer_reader_matrix(torch.from_numpy(scores)).numpy().astype(np.float32)
        n_layers, n_heads = scores.shape[:2]
        return {"kind": kind.lower(), "n_layers": n_layers, "n_heads": n_heads, "scores": matrix.tobytes()}

    def ablation_effect(
        self,
        method: str,
        answer: str,
        counterfactual: str,
        query: int,
        batch_size: int,
        progress: Callable[[int, int], None],
    ) -> np.ndarray:
        analysis = self.current()
        target = Target()
        if answer:
            answer_id = token_id(self.backend, answer)
            other = token_id(self.backend, counterfactual) if counterfactual else None
            target = Target(answer_id, other, query)
        effects = ablation_effects(self.weights(), analysis.token_ids, target, method, batch_size, progress)
        self.ablation = (analysis, effects)
        return effects

    def scores(self) -> dict[str, list[list[float | None]]]:
        """The ablation metric for the score views, while the prompt it was measured on is shown."""
        if self.ablation is None:
            return {}
        try:
            shown = self.current()
        except AttnWidgetError:
            return {}
        return {ABLATION: json_matrix(self.ablation[1])} if shown is self.ablation[0] else {}

    def answer_message(self, content: dict[str, Any]) -> dict[str, Any]:
        """A "why" request's reply: the decomposition's top components and pairs, or an error."""
        request_id = content.get("id")
        try:
            values = [int(content[name]) for name in ("layer", "head", "query", "key")]
            top = int(content.get("top", 8))
        except (KeyError, TypeError, ValueError):
            return {"type": WHY, "id": request_id, "error": "A why request needs integer layer, head, query and key."}
        try:
            summary = self.decomposition(*values).summary(top)
        except AttnWidgetError as err:
            return {"type": WHY, "id": request_id, "error": str(err)}
        return {"type": WHY, "id": request_id, **summary}
