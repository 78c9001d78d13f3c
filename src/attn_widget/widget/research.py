"""The explorer's research features, composed into it: custom detectors, dataset runs, the
retrieval test, sinks and head similarity. Holds what they computed; the explorer owns the traits
and calls in here."""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from attn_widget.analysis import dataset, retrieval
from attn_widget.analysis.derived import DetectorsAndSinks, detectors_and_sinks
from attn_widget.analysis.forward import prompt_patterns
from attn_widget.analysis.prompt import PromptAnalysis
from attn_widget.backends.base import Backend
from attn_widget.contract import CHANGE_SUFFIX, DATASET_PREFIX, RESERVED_METRICS, RETRIEVAL
from attn_widget.errors import AttnWidgetError, SelectionError
from attn_widget.maths.detectors import BUILT_IN, Detector, DetectorError
from attn_widget.maths.similarity import HeadSimilarity, head_similarity
from attn_widget.widget import progress
from attn_widget.widget.json_numbers import json_matrix
from attn_widget.widget.traits import ExplorerTraits

STOP = "stop"
"""The custom message of the progress bar's stop button: {"type": "stop", "run": the run it stops}."""


class Research:
    def __init__(self, widget: ExplorerTraits, backend: Backend, current: Callable[[], PromptAnalysis]) -> None:
        self.widget, self.backend, self.current = widget, backend, current
        self.detectors: dict[str, Detector] = {name: Detector(name, fn) for name, fn in BUILT_IN.items()}
        self.dataset: dataset.DatasetScores | None = None
        self.dataset_prompts: list[str] = []
        self.retrieval: np.ndarray | None = None
        self.derived: DetectorsAndSinks | None = None
        self.failure = ""
        """Why the prompt's detectors and sinks could not be computed, or empty."""
        self.runs = itertools.count(1)
        self.running = 0
        """The run the progress bar shows (dataset, ablation sweep), 0 when none."""
        self.stop_asked = 0
        """The run the stop button asked to stop: its next progress tick raises KeyboardInterrupt."""

    # ---- detectors ---------------------------------------------------------------------

    def add_detector(self, name: str, fn: Callable[[torch.Tensor], Any], measure: str) -> None:
        if not isinstance(name, str) or not name:
            raise DetectorError(f"A detector's name must be a non-empty string, got {name!r}.")
        taken = name in RESERVED_METRICS or name in self.current().scores or name in self.detectors
        if taken or name.startswith(DATASET_PREFIX) or name.endswith(CHANGE_SUFFIX):
            raise DetectorError(f"Detector name {name!r} is already a metric: choose another name.")
        detector = Detector(name, fn, measure)
        detector.expected(self.current().token_ids.reshape(-1).cpu())  # fails now, naming it, if it is bad
        self.detectors[name] = detector

    def remove_detector(self, name: str) -> None:
        if self.detectors.pop(name, None) is None:
            raise DetectorError(f"No detector named {name!r}: the detectors are {', '.join(self.detectors)}.")

    # ---- the prompt's detectors and sinks ----------------------------------------------

    def forget_prompt(self) -> None:
        self.derived, self.failure = None, ""

    def compute(self) -> None:
        """Detectors and sinks for the current prompt (before its scores are published)."""
        self.forget_prompt()
        try:  # from the prompt's own sweep; a detector added since costs one more sweep
            self.derived = detectors_and_sinks(
                self.current(), list(self.detectors.values()), self.widget.sink_threshold
            )
        except AttnWidgetError as err:  # the prompt itself ran: show it without them
            self.failure = str(err)

    def positions(self) -> list[list[list[int]]]:
        """`[layer][head]` -> sink key positions (the `sink_positions` trait)."""
        return [] if self.derived is None else _positions(self.derived)

    def errors(self) -> list[str]:
        """What went wrong with the prompt's detectors and sinks (each failing detector is left out)."""
        return ([self.failure] if self.failure else []) + (self.derived.errors if self.derived is not None else [])

    def sinks(self) -> DetectorsAndSinks:
        if self.derived is None:
            raise AttnWidgetError(self.failure or "No prompt's sinks yet: set `prompt` first.")
        return self.derived

    # ---- scores beyond the prompt's built-in metrics -----------------------------------

    def scores(self) -> dict[str, np.ndarray]:
        derived = self.derived
        return {} if derived is None else {k: v.copy() for k, v in derived.scores.items()}

    def table(self) -> dict[str, list[list[float | None]]]:
        table = {name: json_matrix(v) for name, v in self.scores().items()}
        if self.retrieval is not None:
            table[RETRIEVAL] = json_matrix(self.retrieval)
        if self.dataset is not None and self.dataset.n_prompts:
            for metric in self.dataset.metrics:
                table[DATASET_PREFIX + metric] = json_matrix(self.dataset.mean[metric])
        return table

    def spread(self) -> dict[str, list[list[float | None]]]:
        data = self.dataset
        return {} if data is None else {DATASET_PREFIX + m: json_matrix(data.std[m]) for m in data.metrics}

    # ---- datasets, retrieval, similarity ----------------------------------------------

    def run_dataset(self, prompts: Sequence[str], batch_size: int, progress: bool) -> dataset.DatasetScores:
        prompts = list(prompts) if not isinstance(prompts, str) else prompts
        with self.progress_bar("dataset", len(prompts), progress) as tick:
            result = dataset.run_dataset(
                self.backend, prompts, batch_size=batch_size, detectors=list(self.detectors.values()), progress=tick
            )
        if result.interrupted:
            print(
                f"run_dataset: interrupted; kept the {result.n_prompts} of {result.n_requested} prompts that finished."
            )
        self.dataset, self.dataset_prompts = result, list(prompts[: result.n_prompts])
        self.widget.set_trait("dataset_size", result.n_prompts)
        return result

    def dataset_prompt(self, index: int) -> str:
        if not 0 <= index < len(self.dataset_prompts):
            last = len(self.dataset_prompts) - 1
            raise SelectionError(f"dataset prompt {index} is out of range: the dataset has prompts 0 to {last}")
        return self.dataset_prompts[index]

    def retrieval_test(self, haystack_len: int, needle_len: int, samples: int, seed: int) -> np.ndarray:
        self.retrieval = retrieval.retrieval_test(self.backend, haystack_len, needle_len, samples, seed)
        return self.retrieval

    def head_similarity(self, metric: str) -> HeadSimilarity:
        result = head_similarity(prompt_patterns(self.backend, self.current().token_ids), metric)
        self.widget.set_trait("similarity", _similarity_json(result))
        return result

    def similarity_state(self) -> dict[str, Any]:
        """The head similarity view's data for the current prompt (the `similarity` trait)."""
        return _similarity_json(head_similarity(prompt_patterns(self.backend, self.current().token_ids), "js"))

    def stop(self, run: Any) -> None:
        """The stop button's message: the run still under way stops at its next tick. A message for a
        run that is over (it arrived after the kernel's interrupt ended it) is ignored."""
        if isinstance(run, int) and run == self.running:
            self.stop_asked = run

    @contextlib.contextmanager
    def progress_bar(self, label: str, total: int, show: bool, unit: str = "prompt") -> Iterator[progress.Tick]:
        """The widget's bar and, with `show`, a notebook bar, for runs over widget/progress.py's
        threshold. The bar names its run, and says whether it runs on the main thread: there only an
        interrupt reaches it (the kernel reads messages once the cell is done), elsewhere the stop
        message does."""
        run = self.running = next(self.runs)
        names = {"run": run, "interrupt": threading.current_thread() is threading.main_thread()}
        try:
            with progress.progress(self.widget, label, total, unit, show, names=names) as tick:

                def tick_or_stop(done: int, steps: int | None = None, phase: str | None = None) -> None:
                    if self.stop_asked == run:
                        raise KeyboardInterrupt
                    tick(done, steps, phase)

                yield tick_or_stop
        finally:
            self.running = 0


def _similarity_json(result: HeadSimilarity) -> dict[str, Any]:
    return {"order": [list(o) for o in result.order], "distance": json_matrix(result.ordered())}


def _positions(derived: DetectorsAndSinks) -> list[list[list[int]]]:
    layers, heads = derived.sink_mask.shape[:2]
    return [[derived.sink_positions(layer, head) for head in range(heads)] for layer in range(layers)]
