"""One prompt through one model: tokens, head scores and thumbnails from a single forward pass,
and any head, tile or row on demand, recomputed from the layer's captured queries and keys
(kept on the device within a memory budget)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from attn_widget.analysis.forward import capture_layers
from attn_widget.backends.base import Backend
from attn_widget.backends.weights import OutputWeights, output_weights
from attn_widget.contract import PROMPT_METRICS
from attn_widget.errors import AttnWidgetError, PromptError, SelectionError
from attn_widget.maths import reductions
from attn_widget.maths.detectors import Detector, DetectorError, ExpectedCells, expected_cells
from attn_widget.maths.layer import DenseAttention, LayerAttention, LayerCapture, dense
from attn_widget.maths.reductions import reduce_layer, thumbnail_side
from attn_widget.maths.value_weighting import ValueWeighted, value_norms

CAPTURE_BUDGET_BYTES = {"cuda": 2 * 2**30, "cpu": 256 * 2**20}
"""Memory for keeping layers' queries and keys between head switches; layers past it are
recomputed by a pass that stops after them. Kept small next to a forward pass's own working set."""


VALUE_SWEEPS_IN_PASS = 0.25
"""Layers past the budget whose value-weighted scores are reduced during the prompt's pass, as a
share of the layers: up to it, selecting value weighting needs no second pass; past it (a long
prompt on a small budget) the prompt stays fast and the first selection costs one more pass."""


def _readable_weights(backend: Backend) -> OutputWeights | None:
    try:
        return output_weights(backend)
    except AttnWidgetError:  # precomputed attention: no values, no weighting
        return None


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


def _nbytes(attention: LayerAttention) -> int:
    if isinstance(attention, DenseAttention):
        return attention.pattern.numel() * attention.pattern.element_size()
    return attention.nbytes() if isinstance(attention, LayerCapture) else 0


class PromptAnalysis:
    """Runs `prompt` once with the model's own attention kernel, capturing each layer's queries
    and keys; scores and thumbnails are reduced from them in query blocks (maths/reductions.py).

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
        keep_values: bool = True,
        detectors: Sequence[Detector] = (),
        on_layer_run: Callable[[int], None] | None = None,
    ) -> None:
        """`on_layer_run(layer)`: called as the pass hands over each layer (progress of a long pass)."""
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
        self._weights = _readable_weights(backend) if keep_values else None
        self._kept: dict[int, LayerAttention] = {}
        self._kept_bytes = 0
        self._unreduced: list[int] = []
        self._recomputed: tuple[int, LayerAttention] | None = None
        layers, heads, side = backend.n_layers, backend.n_heads, thumbnail_side(n)
        self.scores: dict[str, np.ndarray] = {m: np.full((layers, heads), np.nan, np.float32) for m in PROMPT_METRICS}
        self.thumbnails = np.zeros((layers, heads, side, side), np.uint8)
        self.scored = np.zeros(layers, bool)
        """Which layers' scores and thumbnails are in (all of them once `finish()` has run)."""
        self.column_sums = np.zeros((layers, heads, n), np.float32)
        """What each key receives from every query, summed: received attention and sinks."""
        self.causal = np.ones(layers, bool)
        self.detector_errors: dict[str, str] = {}
        """Detector name -> why it failed on this prompt (its scores are left out)."""
        self.detectors = {detector.name: detector for detector in detectors}
        """The detectors scored (or failed) on this prompt, by name: a detector replaced under the
        same name is scored again."""
        self._cells: dict[str, ExpectedCells] = {}
        for detector in detectors:
            try:
                self._cells[detector.name] = expected_cells(detector, self.token_ids[0])
            except DetectorError as err:
                self.detector_errors[detector.name] = str(err)
        self.detector_scores: dict[str, np.ndarray] = {
            name: np.full((layers, heads), np.nan, np.float32) for name in self._cells
        }
        """Each working detector's scores, from the same sweep as the other scores."""

        self.value_norms: dict[int, torch.Tensor] = {}
        """Layer -> `[heads, n]` float32 `||v_j W_O^h||`, from the values of this pass (value weighting)."""
        self.value_scores = {m: np.full((layers, heads), np.nan, np.float32) for m in PROMPT_METRICS}
        self.value_thumbnails = np.zeros((layers, heads, side, side), np.uint8)
        self.value_scored = np.zeros(layers, bool)
        """Which layers' value-weighted scores are in (see `value_reductions`)."""
        self.forward_passes = 1
        """Passes over this prompt so far: this one, and any that recompute layers past the budget."""
        self._past_budget = 0

        def on_layer(layer: int, attention: LayerAttention) -> None:
            norms = self._take_value_norms(layer, attention)
            size = _nbytes(attention)
            if self._kept_bytes + size <= self._budget:
                self._kept[layer] = attention
                self._kept_bytes += size
                self._unreduced.append(layer)
                return
            self._reduce(layer, attention)
            self._past_budget += 1
            # Value-weighted scores of a layer let go cost another pass later: reduce them now while
            # few layers are past the budget (the sweep costs as much as the scores' own).
            if norms is not None and self._past_budget <= layers * VALUE_SWEEPS_IN_PASS:
                self._reduce_values(layer, attention)

        def on_layer_and_report(layer: int, attention: LayerAttention) -> None:
            on_layer(layer, attention)
            if on_layer_run is not None:
                on_layer_run(layer)

        values = {"keep_values": True} if self._weights is not None else {}  # a model's adapters only
        capture_layers(backend, self.token_ids, on_layer_and_report, **values)
        if not defer_scores:
            self.finish()

    def _take_value_norms(self, layer: int, attention: LayerAttention) -> torch.Tensor | None:
        """The value norms of a layer, from its captured values, which are then let go (n x d)."""
        value = getattr(attention, "value", None)
        if self._weights is None or value is None or not isinstance(attention, LayerCapture):
            return None
        attention.value = None
        try:
            self.value_norms[layer] = value_norms(value[0], self._weights.w_o(layer))
        except Exception:  # weights not readable outside the model's own forward (offloaded to
            # disk, say): the prompt goes on without them; value weighting then takes its own pass
            self._weights = None
            self.value_norms.clear()
            return None
        return self.value_norms[layer]

    def _reduce_values(self, layer: int, attention: LayerAttention) -> None:
        weighted = ValueWeighted(attention, self.value_norms[layer])
        reduction = reduce_layer(weighted, self.token_ids)
        for metric, values in reduction.scores.items():
            self.value_scores[metric][layer] = values.float().cpu().numpy()
        self.value_thumbnails[layer] = reduction.thumbnails.cpu().numpy()
        self.value_scored[layer] = True

    @property
    def has_value_norms(self) -> bool:
        """Whether this pass kept what value weighting needs of every layer."""
        return len(self.value_norms) == self.backend.n_layers

    def value_reductions(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Every layer's value-weighted scores and thumbnails (needs `has_value_norms`): kept layers
        are swept from their captures; layers let go during the pass were swept then, or, when many
        were, are swept in one more pass over the prompt."""
        missing = [layer for layer in range(self.backend.n_layers) if not self.value_scored[layer]]
        for layer in [layer for layer in missing if layer in self._kept]:
            self._reduce_values(layer, self._kept[layer])
            self._release(self._kept[layer])
        rest = [layer for layer in missing if layer not in self._kept]
        if rest:

            def on_layer(layer: int, attention: LayerAttention) -> None:
                if layer in rest:
                    self._reduce_values(layer, attention)

            self.forward_passes += 1
            capture_layers(self.backend, self.token_ids, on_layer, last_layer=max(rest))
        return self.value_scores, self.value_thumbnails

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
        reduction = reduce_layer(attention, self.token_ids, detectors=list(self._cells.values()))
        for metric, values in reduction.scores.items():
            self.scores[metric][layer] = values.float().cpu().numpy()
        self.thumbnails[layer] = reduction.thumbnails.cpu().numpy()
        self.column_sums[layer] = reduction.column_sums.cpu().numpy()
        self.causal[layer] = attention.causal
        for name, values in zip(self._cells, reduction.detectors, strict=True):
            self.detector_scores[name][layer] = values.float().cpu().numpy()
        self.scored[layer] = True
        self._release(attention)

    @staticmethod
    def _release(attention: LayerAttention) -> None:
        if isinstance(attention, LayerCapture):
            attention.release_blocks()

    def at_hand(self, layer: int) -> bool:
        """Whether the layer can be read without running the model (kept, or the one recomputed)."""
        return layer in self._kept or (self._recomputed is not None and self._recomputed[0] == layer)

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

        self.forward_passes += 1
        capture_layers(self.backend, self.token_ids, keep, last_layer=layer)
        self._recomputed = (layer, captured[layer])
        return captured[layer]

    def layer_pattern(self, layer: int) -> torch.Tensor:
        """`[head, q, k]` float32: the whole layer, for short prompts (CircuitsVis) only."""
        return dense(self.capture(layer))[0]

    def head_pattern(self, layer: int, head: int) -> torch.Tensor:
        """`[q, k]` float32 on the model's device."""
        check_layer(self.backend, layer), check_head(self.backend, head)
        return reductions.head_pattern(self.capture(layer), head)
