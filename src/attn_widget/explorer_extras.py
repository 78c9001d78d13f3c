"""The explorer's research API: dataset mode, custom detectors, retrieval test, sinks, head similarity.

A mixin of AttentionExplorer (kept apart so explorer.py stays the widget's core); it relies on the
explorer's `_backend`, `_current()`, `_publish_scores()` and `prompt`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import traitlets
from traitlets import Bool, Dict, Float, Int, List

from . import dataset as dataset_mode
from . import prompt_extras, retrieval
from . import similarity as _similarity
from . import sinks as _sinks
from .contract import REPEATED_TOKENS
from .detectors import BUILT_IN, Detector, DetectorError
from .errors import AttnWidgetError, SelectionError
from .passes import prompt_patterns

if TYPE_CHECKING:
    from .analysis import PromptAnalysis
    from .backends import Backend

DATASET_PREFIX = "dataset:"
"""Score-table name of a metric's mean over the last dataset run (its spread is in `score_spread`)."""
RETRIEVAL_TEST = "retrieval"
RESERVED = {REPEATED_TOKENS, RETRIEVAL_TEST, prompt_extras.SINK_SHARE}


class ExplorerExtras(traitlets.HasTraits):
    if TYPE_CHECKING:  # what the explorer provides
        _backend: Backend
        revision: int

        def _current(self) -> PromptAnalysis: ...
        def _publish_scores(self, analysis: PromptAnalysis | None = None) -> None: ...
        @property
        def scores(self) -> dict[str, np.ndarray]: ...

    dataset_size = Int(0, read_only=True).tag(sync=True)
    """Prompts in the last dataset run; the prompt box steps through them with `dataset_index`."""
    dataset_index = Int(-1).tag(sync=True)
    """The dataset prompt shown (re-run on demand), -1 for a prompt of one's own."""
    score_spread = Dict(read_only=True).tag(sync=True)
    """`dataset:<metric>` -> standard deviation over prompts, `(n_layers, n_heads)` lists."""
    progress = Dict(read_only=True).tag(sync=True)
    """Long work under way: {"label", "done", "total"}; empty when idle."""
    exclude_sinks = Bool(False).tag(sync=True)
    """Heatmap: zero each head's sink positions and renormalise its rows."""
    sink_threshold = Float(_sinks.SINK_THRESHOLD).tag(sync=True)
    sink_positions: List[list[list[int]]] = List(read_only=True).tag(sync=True)
    """`[layer][head]` -> sink key positions on the current prompt."""
    show_similarity = Bool(False).tag(sync=True)
    """While true, `similarity` follows the prompt (the view's button sets it)."""
    similarity = Dict(read_only=True).tag(sync=True)
    """{"order": [[layer, head], ...], "distance": clustered matrix} for the head similarity view."""

    # ---- state (set up lazily: the explorer's constructor runs the prompt before anything else) ----

    @property
    def _detectors(self) -> dict[str, Detector]:
        if "_detector_registry" not in self.__dict__:
            self.__dict__["_detector_registry"] = {name: Detector(name, fn) for name, fn in BUILT_IN.items()}
        registry: dict[str, Detector] = self.__dict__["_detector_registry"]
        return registry

    @property
    def _extras(self) -> prompt_extras.PromptExtras | None:
        return self.__dict__.get("_prompt_extras")

    # ---- Python API -------------------------------------------------------------------

    def add_detector(self, name: str, fn: Callable[[torch.Tensor], Any], measure: str = "mul") -> np.ndarray | None:
        """Score every head against your expected pattern `fn(token_ids [n]) -> [n, n]`, like TransformerLens
        `detect_head` ("mul": share of attention on it; "abs": 1 - mean |difference| * n). The metric shows
        in every score view, in `scores` and in later dataset runs. Returns its scores on the current prompt
        (None past `prompt_extras.MAX_TOKENS` tokens, where only dataset runs score it)."""
        if name in self._builtin_names() or str(name).startswith(DATASET_PREFIX):
            raise DetectorError(f"Detector name {name!r} is already a metric: choose another name.")
        detector = Detector(name, fn, measure)
        detector.expected(self._current().token_ids.reshape(-1).cpu())  # fails now, naming it, if it is bad
        self._detectors[name] = detector
        self._refresh_extras()
        return self.scores.get(name)

    def remove_detector(self, name: str) -> None:
        if self._detectors.pop(name, None) is None:
            raise DetectorError(f"No detector named {name!r}: the detectors are {', '.join(self._detectors)}.")
        self._refresh_extras()

    @property
    def detectors(self) -> list[str]:
        return list(self._detectors)

    def run_dataset(
        self, prompts: Sequence[str], batch_size: int = 8, progress: bool = True
    ) -> dataset_mode.DatasetScores:
        """Every metric over `prompts` (batched, one pass per batch). Ctrl-C keeps the batches that finished.
        Means and spreads show in the score views as `dataset:<metric>`; `dataset_index` steps through them."""
        prompts = list(prompts) if not isinstance(prompts, str) else prompts
        with self._progress_bar("dataset", len(prompts), progress) as tick:
            result = dataset_mode.run_dataset(
                self._backend, prompts, batch_size=batch_size, detectors=list(self._detectors.values()), progress=tick
            )
        if result.interrupted:
            print(
                f"run_dataset: interrupted; kept the {result.n_prompts} of {result.n_requested} prompts that finished."
            )
        self.__dict__["_dataset"] = result
        self.__dict__["_dataset_prompts"] = list(prompts[: result.n_prompts])
        self.set_trait("dataset_size", result.n_prompts)
        self._publish_scores()
        return result

    @property
    def dataset(self) -> dataset_mode.DatasetScores | None:
        """The last dataset run (per-prompt scores, counts, `table()`), or None."""
        return self.__dict__.get("_dataset")

    @property
    def dataset_scores(self) -> dict[str, dict[str, np.ndarray]]:
        """metric -> {"mean": (n_layers, n_heads), "std": (n_layers, n_heads)} over the last dataset run."""
        if self.dataset is None:
            raise AttnWidgetError("No dataset has been run yet: call run_dataset(prompts) first.")
        return self.dataset.as_dict()

    def retrieval_test(
        self, haystack_len: int = 40, needle_len: int = 8, samples: int = 8, seed: int = 0
    ) -> np.ndarray:
        """Retrieval score per head (Wu et al. 2024) on a synthetic needle in a haystack (see retrieval.py),
        shown as the "retrieval" metric."""
        result = retrieval.retrieval_test(self._backend, haystack_len, needle_len, samples, seed)
        self.__dict__["_retrieval"] = result
        self._publish_scores()
        return np.array(result, copy=True)

    def sinks(self) -> prompt_extras.PromptExtras:
        """The current prompt's received attention per key, sink positions and sink share per head."""
        if self._extras is None:
            raise AttnWidgetError(
                f"Sinks are computed for prompts up to {prompt_extras.MAX_TOKENS} tokens: use a shorter prompt."
            )
        return self._extras

    def head_similarity(self, metric: str = "js") -> _similarity.HeadSimilarity:
        """Mean Jensen-Shannon divergence between every two heads' patterns, in clustered order; also drawn
        in the head similarity view (click a cell to select a head)."""
        result = _similarity.head_similarity(prompt_patterns(self._backend, self._current().token_ids), metric)
        self.set_trait("similarity", {"order": [list(o) for o in result.order], "distance": _rounded(result.ordered())})
        return result

    # ---- hooks the explorer calls -------------------------------------------------------

    def _builtin_names(self) -> set[str]:
        return set(self._current().scores) | RESERVED

    def _extra_scores(self) -> dict[str, np.ndarray]:
        extras = self._extras
        return {} if extras is None else {k: v.copy() for k, v in extras.scores.items()}

    def _extra_table(self) -> dict[str, list[list[float | None]]]:
        """Score-table entries beyond the prompt's built-in metrics."""
        table = {name: _rounded(v) for name, v in self._extra_scores().items()}
        if "_retrieval" in self.__dict__:
            table[RETRIEVAL_TEST] = _rounded(self.__dict__["_retrieval"])
        if self.dataset is not None and self.dataset.n_prompts:
            for metric in self.dataset.metrics:
                table[DATASET_PREFIX + metric] = _rounded(self.dataset.mean[metric])
        return table

    def _compute_extras(self) -> None:
        """Detectors and sinks for the current prompt, in one more pass (before its scores are published)."""
        extras = None
        try:  # precomputed attention too: it re-runs its own tokens
            extras = prompt_extras.compute_extras(
                self._backend, self._current().token_ids, list(self._detectors.values()), self.sink_threshold
            )
        except AttnWidgetError as err:  # the prompt itself ran: show it without the extras
            self.__dict__["_extras_failure"] = str(err)
        self.__dict__["_prompt_extras"] = extras
        self.set_trait("sink_positions", [] if extras is None else _positions(extras))

    def _report_extras(self) -> None:
        """After a prompt is published: say which detectors failed (their metric is left out, the rest
        of the widget goes on), follow the similarity view, leave dataset stepping if the prompt is new."""
        if self.dataset_index >= 0 and not self.__dict__.get("_stepping"):  # a prompt of one's own
            self.set_trait("dataset_index", -1)
        if self.show_similarity:
            self._try(self.head_similarity)
        failure = self.__dict__.pop("_extras_failure", "")
        errors = ([failure] if failure else []) + (self._extras.errors if self._extras is not None else [])
        if errors:
            self.error = " ".join(errors)

    def _forget_extras(self) -> None:
        self.__dict__["_prompt_extras"] = None

    def _refresh_extras(self) -> None:
        self._compute_extras()
        self._publish_scores()
        self._report_extras()

    def _publish_spread(self) -> None:
        data = self.dataset
        spread = {} if data is None else {DATASET_PREFIX + m: _rounded(data.std[m]) for m in data.metrics}
        self.set_trait("score_spread", spread)

    def _without_sinks(self, pattern: torch.Tensor, layer: int, head: int) -> torch.Tensor:
        """The selected head's pattern as the heatmap shows it: sinks excluded when asked."""
        extras = self._extras
        if not self.exclude_sinks or extras is None:
            return pattern
        mask = torch.as_tensor(extras.sink_mask[layer, head], device=pattern.device)
        return _sinks.without_sinks(pattern, mask)

    def _try(self, action: Callable[[], Any]) -> None:
        try:
            action()
        except AttnWidgetError as err:
            self.error = str(err)

    @contextlib.contextmanager
    def _progress_bar(self, label: str, total: int, show: bool) -> Iterator[Callable[[int, int], None]]:
        bar = None
        if show:
            try:
                from tqdm.auto import tqdm

                bar = tqdm(total=total, desc=label, unit="prompt")
            except ImportError:  # the widget's own bar (the `progress` trait) still shows
                bar = None

        def tick(done: int, all_: int) -> None:
            self.set_trait("progress", {"label": label, "done": done, "total": all_})
            if bar is not None:
                bar.update(done - bar.n)

        self.set_trait("progress", {"label": label, "done": 0, "total": total})
        try:
            yield tick
        finally:
            if bar is not None:
                bar.close()
            self.set_trait("progress", {})

    # ---- trait reactions ----------------------------------------------------------------

    @traitlets.validate("dataset_index")
    def _step_dataset(self, proposal: dict[str, Any]) -> int:
        index = int(proposal["value"])
        prompts: list[str] = self.__dict__.get("_dataset_prompts", [])
        if index == -1:
            return index
        if not 0 <= index < len(prompts):
            raise SelectionError(
                f"dataset prompt {index} is out of range: the dataset has prompts 0 to {len(prompts) - 1}"
            )
        self.__dict__["_stepping"] = True
        try:
            self.prompt = prompts[index]  # re-run on demand: nothing per prompt is kept
        finally:
            self.__dict__["_stepping"] = False
        return index

    @traitlets.observe("exclude_sinks")
    def _redraw_heatmap(self, _change: dict[str, Any]) -> None:
        self.set_trait("revision", self.revision + 1)  # the front end asks for the head again

    @traitlets.observe("sink_threshold")
    def _rethreshold(self, _change: dict[str, Any]) -> None:
        if self.__dict__.get("_analysis") is not None:
            self._refresh_extras()
            self.set_trait("revision", self.revision + 1)

    @traitlets.observe("show_similarity")
    def _follow_similarity(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self._try(self.head_similarity)
        else:
            self.set_trait("similarity", {})


def _positions(extras: prompt_extras.PromptExtras) -> list[list[list[int]]]:
    layers, heads = extras.sink_mask.shape[:2]
    return [[extras.sink_positions(layer, head) for head in range(heads)] for layer in range(layers)]


def _rounded(values: np.ndarray) -> list[list[float | None]]:
    """JSON has no NaN: an undefined score (an empty dataset's mean) travels as null."""
    rounded = np.asarray(values, dtype=np.float64).round(5)
    return [[float(v) if np.isfinite(v) else None for v in row] for row in rounded]
