"""The explorer: traits (traits.py), their validators, and thin public methods. The kernel side it
drives (running a prompt, publishing it, answering messages) is session.py."""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
import traitlets

from attn_widget.analysis.ablation import AblationStopped
from attn_widget.analysis.dataset import DatasetScores
from attn_widget.analysis.derived import DetectorsAndSinks
from attn_widget.analysis.prompt import check_head, check_layer
from attn_widget.analysis.repeated_tokens import repeated_tokens_scores
from attn_widget.backends import backend_for
from attn_widget.backends.loading import resolve_model
from attn_widget.contract import ABLATION, head_label
from attn_widget.errors import AnswerError, AttnWidgetError, PromptError, SelectionError
from attn_widget.export import circuits_vis
from attn_widget.export.figure import ViewData
from attn_widget.export.snapshot import snapshot_html
from attn_widget.maths.detectors import MEASURES
from attn_widget.maths.similarity import DISTANCES, HeadSimilarity
from attn_widget.maths.summary import HeadSummary
from attn_widget.widget import arguments, saving
from attn_widget.widget.display import WATCHED, SnapshotOutput
from attn_widget.widget.research import STOP
from attn_widget.widget.session import Session
from attn_widget.widget.traits import ExplorerTraits
from attn_widget.widget.view import view_data as current_view
from attn_widget.widget.why import WHY, Why

DEFAULT_PROMPT = (
    "When Mary and John went to the store, Mary gave a drink to John. "
    "Then Mary and John went to the park, Mary gave a ball to"
)


class AttentionExplorer(ExplorerTraits):
    """Interactive attention explorer for a model's heads on a prompt.

    `prompt`, `layer`, `head` and `metric` are synced with the front end both ways; the rest
    is read-only state the views draw. Single-head patterns travel on request as binary messages.
    """

    def __init__(
        self,
        model: Any = None,
        prompt: str | None = None,
        layer: int = 0,
        head: int = 0,
        *,
        tokenizer: Any = None,
        tokens: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """`model`: a TransformerLens model, a Hugging Face model (with `tokenizer`), or precomputed
        attention `[layers, heads, query, key]` / an ActivationCache (with its `tokens`).

        Other keyword arguments set widget traits (`metric=`, `color_scale=`, `layout=`...); any
        other name raises a TypeError rather than being dropped in silence."""
        arguments.reject_unknown(type(self), kwargs)
        if isinstance(tokens, list | tuple) and all(isinstance(t, str) for t in tokens):
            tokens = arguments.texts("tokens", tokens)  # text it can encode; the backend says the rest
        self._from_front_end = False  # set while the front end's update is applied
        self.model = resolve_model(model)
        self._session = Session(self, backend_for(self.model, tokenizer=tokenizer, tokens=tokens))
        self._session.on_published.append(self._published)
        self._why = Why(self, self._session.backend, self._session.current)
        self._session.more_scores.append(self._why.scores)
        # Traits whose validity depends on the prompt's results are set once it has run.
        after_prompt = {name: kwargs.pop(name) for name in ("metric", "focus_token", "focus_locked") if name in kwargs}
        super().__init__(**kwargs)
        self.set_trait("snapshot_key", f"attn-widget-{uuid.uuid4().hex}")
        self._snapshot = SnapshotOutput(self.snapshot_key, self._snapshot_bundle, self._session.prefetch.idle_for)
        self.set_trait("n_layers", self._session.backend.n_layers)
        self.set_trait("n_heads", self._session.backend.n_heads)
        self.set_trait("model_name", self._session.backend.name)
        self.set_trait("layer_names", list(self._session.backend.layer_names))
        self.set_trait("read_only_prompt", self._session.backend.fixed_prompt is not None)
        self.layer, self.head = layer, head  # the validators below refuse an index outside the model
        if prompt is not None:
            prompt = arguments.prompt_text("prompt", prompt)
        self.prompt = prompt if prompt is not None else self._session.backend.fixed_prompt or DEFAULT_PROMPT
        if self.metric not in self.score_table:  # no repeated random token test without a model
            self.metric = "induction"
        for name, value in after_prompt.items():
            setattr(self, name, value)
        self.on_msg(self._on_front_end_message)

    # ---- Python API: the prompt's attention ----------------------------------------------

    @property
    def scores(self) -> dict[str, np.ndarray]:
        """Per-head scores for the current prompt: metric -> `(n_layers, n_heads)` array."""
        return {
            name: values.copy() for name, values in self._session.current().scores.items()
        } | self._session.research.scores()

    def pattern(self, layer: int, head: int, weighting: str = "attention") -> np.ndarray:
        """The `(n_tokens, n_tokens)` float32 attention pattern of one head on the current prompt;
        `weighting="value"`: `||A[i, j] f(x_j)||`, the size of what the head moves from j to i."""
        layer, head = self._head("layer", layer, "head", head)
        return self._session.options.pattern(self._session.current(), layer, head, weighting).float().cpu().numpy()

    def pattern_diff(self, layer: int, head: int, weighting: str | None = None) -> np.ndarray:
        """`A(prompt) - A(compare_prompt)` of one head, in the given (default: selected) weighting
        (value weighting: the difference of the rows' shares, as the views show them)."""
        layer, head = self._head("layer", layer, "head", head)
        weighting = self.weighting if weighting is None else weighting
        return self._session.options.diff(self._session.current(), layer, head, weighting).float().cpu().numpy()

    def logit_attribution(self, layer: int, head: int, query: int | None = None) -> np.ndarray:
        """`(n_tokens,)` float32: what each source position contributes, through this head, to
        logit(answer) - logit(counterfactual) at `query` (default: the last token)."""
        layer, head = self._head("layer", layer, "head", head)
        query = self._query(query)
        return self._session.options.head_attribution(
            self._session.current(), layer, head, query, self.answer, self.counterfactual
        )

    def direct_logit_attribution(self, query: int | None = None) -> np.ndarray:
        """`(n_layers, n_heads)`: each head's direct logit attribution (its sources summed)."""
        query = self._query(query)
        return self._session.options.direct_logit_attribution(
            self._session.current(), query, self.answer, self.counterfactual
        )

    def circuitsvis(self, layer: int | None = None) -> Any:
        """The reference notebook's CircuitsVis view of a layer (default: the selected one)."""
        layer = self.layer if layer is None else check_layer(self._session.backend, arguments.whole("layer", layer))
        patterns = self._session.current().layer_pattern(layer).float().cpu().numpy()
        return circuits_vis.attention_heads(self.tokens, patterns)

    def run_repeated_tokens_test(self, seq_len: int = 50, batch: int = 8, seed: int = 0) -> np.ndarray:
        """Runs the repeated random token test again with these settings and shows its result as the
        "repeated_tokens" metric: `(n_layers, n_heads)` induction scores (analysis/repeated_tokens.py)."""
        seq_len, batch = arguments.whole("seq_len", seq_len, 4), arguments.whole("batch", batch, 1)
        seed = arguments.whole("seed", seed, 0)
        self._session.repeated_tokens = repeated_tokens_scores(
            self._session.backend, seq_len=seq_len, batch=batch, seed=seed
        )
        self._session.publish_scores()
        return np.array(self._session.repeated_tokens, copy=True)

    def summary(self, top_k: int = 5) -> HeadSummary:
        """The reference notebook's summary: top induction heads (repeated random token test),
        most focused, most diffuse and longest-range heads on the current prompt."""
        return self._session.summary(arguments.whole("top_k", top_k, 1))

    # ---- Python API: research -------------------------------------------------------------

    def add_detector(self, name: str, fn: Callable[[torch.Tensor], Any], measure: str = "mul") -> np.ndarray | None:
        """Score every head against your expected pattern `fn(token_ids [n]) -> [n, n]`, like TransformerLens
        `detect_head` ("mul": share of attention on it; "abs": 1 - mean |difference| * n). The metric shows
        in every score view, in `scores` and in later dataset runs. Returns its scores on the current prompt
        (None where the prompt is too long for them)."""
        name = arguments.text("name", name)
        self._session.research.add_detector(name, fn, arguments.choice("measure", measure, MEASURES))
        self._session.refresh_research()
        return self.scores.get(name)

    def remove_detector(self, name: str) -> None:
        self._session.research.remove_detector(name)
        self._session.refresh_research()

    @property
    def detectors(self) -> list[str]:
        return list(self._session.research.detectors)

    def run_dataset(self, prompts: Sequence[str], batch_size: int = 8, progress: bool = True) -> DatasetScores:
        """Every metric over `prompts` (batched, one pass per batch). Ctrl-C keeps the batches that finished.
        Means and spreads show in the score views as `dataset:<metric>`; `dataset_index` steps through them."""
        prompts = arguments.texts("prompts", prompts)
        batch_size = arguments.whole("batch_size", batch_size, 1)
        result = self._session.research.run_dataset(prompts, batch_size, arguments.flag("progress", progress))
        # the stepper counts the new prompts: at the shown prompt if it is one of them, else at none
        kept = prompts[: result.n_prompts]
        self._session.publish_scores({"dataset_index": kept.index(self.prompt) if self.prompt in kept else -1})
        return result

    @property
    def dataset(self) -> DatasetScores | None:
        """The last dataset run (per-prompt scores, counts, `table()`), or None."""
        return self._session.research.dataset

    @property
    def dataset_scores(self) -> dict[str, dict[str, np.ndarray]]:
        """metric -> {"mean": (n_layers, n_heads), "std": (n_layers, n_heads)} over the last dataset run."""
        if self.dataset is None:
            raise AttnWidgetError("No dataset has been run yet: call run_dataset(prompts) first.")
        return self.dataset.as_dict()

    def retrieval_test(
        self, haystack_len: int = 40, needle_len: int = 8, samples: int = 8, seed: int = 0
    ) -> np.ndarray:
        """Retrieval score per head (Wu et al. 2024) on a synthetic needle in a haystack
        (analysis/retrieval.py), shown as the "retrieval" metric."""
        haystack_len = arguments.whole("haystack_len", haystack_len, 0)
        needle_len = arguments.whole("needle_len", needle_len, 1)
        samples, seed = arguments.whole("samples", samples, 1), arguments.whole("seed", seed, 0)
        result = self._session.research.retrieval_test(haystack_len, needle_len, samples, seed)
        self._session.publish_scores()
        return np.array(result, copy=True)

    def sinks(self) -> DetectorsAndSinks:
        """The current prompt's received attention per key, sink positions and sink share per head."""
        return self._session.research.sinks()

    def head_similarity(self, metric: str = "js") -> HeadSimilarity:
        """Mean Jensen-Shannon distance between every two heads' patterns, in clustered order; also drawn
        in the head similarity view (click a cell to select a head)."""
        return self._session.research.head_similarity(arguments.choice("metric", metric, DISTANCES))

    # ---- Python API: why a head attends there (widget/why.py) ------------------------------

    def qk_decomposition(self, layer: int, head: int, query: int, key: int) -> Any:
        """The pre-softmax score of (query, key) in layer/head on the current prompt, split into
        (query-side, key-side) pairs of residual-stream components (embeddings, earlier heads `L0H1`,
        MLPs, biases), norm scales from this run: a pandas DataFrame (else records), largest first,
        whose `contribution` column sums to the score."""
        return self._why.table(layer, head, query, key)

    def composition_scores(self, kind: str = "k") -> np.ndarray:
        """`(n_layers, n_heads, n_layers, n_heads)`: Q-, K- or V-composition of each later head with
        each earlier one, from the weights (as TransformerLens' `all_composition_scores`); also drawn
        in the head composition view (click a cell to select the reading head)."""
        scores = self._why.composition(kind)
        self.composition_kind = kind.lower()
        return scores

    def ablation_effect(self, method: str = "mean", batch_size: int = 16, progress: bool = True) -> np.ndarray:
        """`(n_layers, n_heads)`: the change in logit(answer) - logit(counterfactual) at the attributed
        query (no `answer`: in the loss on the prompt) when each head's output is ablated ("mean" over
        the prompt's positions, or "zero"); `batch_size` heads per forward pass. Shown as a metric.
        The progress bar's stop button (or Ctrl-C) ends it early: NaN for the heads not measured, and
        the score views keep what they showed."""
        total = self._session.backend.n_layers * self._session.backend.n_heads
        try:
            with self._session.research.progress_bar("ablation", total, progress, "head") as tick:
                effects = self._why.ablation_effect(
                    method, self.answer, self.counterfactual, self._session.attributed_query(), batch_size, tick
                )
        except AblationStopped as stopped:  # the stop button: nothing partial passes for a sweep
            kept = "the last complete sweep" if ABLATION in self.score_table else "no ablation metric"
            message = (
                f"ablation_effect stopped after {stopped.done} of {stopped.total} heads: the score views keep "
                f"{kept}; the returned array has NaN for the heads not measured."
            )
            print(message)
            self._session.show_errors(message)
            return np.array(stopped.partial, copy=True)
        self._session.show_errors()  # a stopped sweep's message no longer holds
        self._session.publish_scores()
        return np.array(effects, copy=True)

    # ---- Python API: what is shown, saved ----------------------------------------------------

    def view_data(self, theme: str = "light") -> ViewData:
        """What the explorer shows now, as plain data: the figures, the snapshot and `save` draw this."""
        with self._session.lock:
            return current_view(self, self._session.shown(), saving.check_theme(theme))

    def save(
        self,
        path: str | pathlib.Path,
        view: str | None = None,
        scale: float | None = None,
        theme: str | None = None,
        layers: Iterable[int] | None = None,
    ) -> pathlib.Path:
        """Save what the explorer shows: `.png` / `.svg` a figure of `view` ("heatmap", "grid",
        "scores" or "all"; default "heatmap") in the current colour scale and `theme` ("light" or
        "dark"), `scale` pixels per unit (default 2); `.html` a standalone offline page with `layers`
        (default: the selected one), which takes none of the figure's options."""
        with self._session.lock:
            path, data = saving.saved_file(self, self._session.shown(), path, view, scale, theme, layers)
            saving.write_atomically(path, data)
        return path

    def _ipython_display_(self) -> None:
        """The live widget, and a snapshot that saved notebooks keep (display.py)."""
        bundle: Any = self._repr_mimebundle_()
        self._snapshot.show(bundle[0] if isinstance(bundle, tuple) else bundle, _text_line(self))
        if not self._snapshot.watching:
            self._snapshot.watching = True
            self.observe(self._redraw_snapshot, names=WATCHED)

    def _redraw_snapshot(self, _change: Any = None) -> None:
        if not self._session.publishing:  # a prompt's state is drawn once it is whole
            self._snapshot.schedule(self._from_front_end)

    def _published(self) -> None:
        if self._snapshot.watching:
            self._redraw_snapshot()

    def _head(self, layer_name: str, layer: Any, head_name: str, head: Any) -> tuple[int, int]:
        backend = self._session.backend
        return check_layer(backend, arguments.whole(layer_name, layer)), check_head(
            backend, arguments.whole(head_name, head)
        )

    def _query(self, query: Any) -> int:
        n = self._session.current().n_tokens
        return n - 1 if query is None else arguments.whole("query", query, 0, n - 1)

    def _on_front_end_message(self, widget: Any, content: Any, buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == WHY:
            self.send(self._why.answer_message(content))
            return
        if isinstance(content, dict) and content.get("type") == STOP:  # no lock: the sweep it stops holds none
            self._session.research.stop(content.get("run"))
            return
        self._session.on_message(widget, content, buffers)

    def _snapshot_bundle(self) -> dict[str, str]:
        try:
            return {"text/html": snapshot_html(self.view_data(), self.snapshot_key), "text/plain": _text_line(self)}
        except AttnWidgetError:  # no prompt run yet: nothing to show
            return {"text/plain": _text_line(self)}

    # ---- the prompt transition, and a lock around every change --------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        """Every trait change from Python waits for the transition under way (another thread's)."""
        session = self.__dict__.get("_session")
        if session is None:
            super().__setattr__(name, value)
            return
        with session.lock:
            super().__setattr__(name, value)

    def prompt_transition(self, prompt: str, store: Callable[[], None]) -> None:
        """Setting `prompt` (traits.PromptText): the model runs, then the prompt is stored with its
        whole state (session.py). The same prompt again runs again (a hook may have changed)."""
        session = self.__dict__.get("_session")
        if session is None or session.keep_analysis or session.publishing:  # publishing: traitlets sets it again
            store()
            return
        session.run_prompt(arguments.prompt_text("prompt", prompt), store)

    # ---- trait validation: bad values raise from Python, show in the widget -------------------

    @traitlets.validate("weighting")
    def _check_weighting(self, proposal: dict[str, Any]) -> str:
        weighting = str(proposal["value"])
        if weighting == "value" and self._session.analysis is not None:
            with arguments.refused_as_trait_error():
                self._session.options.weighted_scores(self._session.analysis, "value")  # raises before the switch
        return weighting

    @traitlets.validate("compare_prompt")
    def _run_compare(self, proposal: dict[str, Any]) -> str:
        text = arguments.prompt_text("compare_prompt", proposal["value"])
        if text and not text.strip():
            raise PromptError("The compare prompt is blank: set compare_prompt to '' to stop comparing.")
        self._session.options.set_compare(text, self._session.analysis)  # raises PromptError
        if self._session.analysis is not None and not self._session.publishing:
            self._session.show_errors()  # an earlier refusal's message goes, even when the value is the same
        return text

    @traitlets.validate("answer", "counterfactual")
    def _check_answer(self, proposal: dict[str, Any]) -> str:
        text = arguments.text(proposal["trait"].name, proposal["value"], AnswerError)
        with arguments.refused_as_trait_error():
            self._session.options.answer_id(text)  # raises AnswerError / WeightsError
        return text

    @traitlets.validate("layer")
    def _check_layer(self, proposal: dict[str, Any]) -> int:
        return check_layer(self._session.backend, arguments.whole("layer", proposal["value"]))

    @traitlets.validate("head")
    def _check_head(self, proposal: dict[str, Any]) -> int:
        return check_head(self._session.backend, arguments.whole("head", proposal["value"]))

    @traitlets.validate("focus_token")
    def _check_focus(self, proposal: dict[str, Any]) -> int:
        value = arguments.whole("focus_token", proposal["value"])
        if not -1 <= value < len(self.tokens):
            raise SelectionError(f"token {value} is out of range: the prompt has tokens 0 to {len(self.tokens) - 1}")
        return value

    @traitlets.validate("sink_threshold")
    def _check_threshold(self, proposal: dict[str, Any]) -> float:
        return arguments.real("sink_threshold", proposal["value"], 0.0, 1.0, open_low=True)

    @traitlets.validate("metric")
    def _check_metric(self, proposal: dict[str, Any]) -> str:
        metric = str(proposal["value"])
        if metric not in self.score_table:
            raise SelectionError(f"unknown metric {metric!r}: choose one of {', '.join(self.score_table)}")
        return metric

    @traitlets.validate("dataset_index")
    def _step_dataset(self, proposal: dict[str, Any]) -> int:
        index = arguments.whole("dataset_index", proposal["value"], -1)
        if index != -1 and not self._session.publishing:
            prompt = self._session.research.dataset_prompt(index)
            self._session.stepping_index = index
            self.prompt = prompt  # re-run on demand: nothing per prompt is kept
        return index

    # ---- trait reactions ---------------------------------------------------------------------

    @traitlets.observe("weighting", "compare_prompt", "answer", "counterfactual")
    def _on_options_change(self, change: dict[str, Any]) -> None:
        if self._session.analysis is not None and not self._session.keep_analysis and not self._session.publishing:
            self._session.publish_weighed(bump_revision=change["name"] in ("weighting", "compare_prompt"))

    @traitlets.observe("layer", "head", "focus_token", "focus_locked")
    def _on_selection_change(self, change: dict[str, Any]) -> None:
        if not self.answer or self._session.analysis is None or self._session.publishing:
            return
        moved = self._session.attributed_query() != self.attribution_query  # only a locked focus moves it
        if moved or change["name"] in ("layer", "head"):
            self._session.publish_weighed(scores_too=moved)

    @traitlets.observe("exclude_sinks")
    def _redraw_heatmap(self, _change: dict[str, Any]) -> None:
        self.set_trait("revision", self.revision + 1)  # the front end asks for the head again

    @traitlets.observe("sink_threshold")
    def _rethreshold(self, _change: dict[str, Any]) -> None:
        if self._session.analysis is not None and not self._session.keep_analysis:
            self._session.refresh_research()
            self.set_trait("revision", self.revision + 1)

    @traitlets.observe("show_similarity")
    def _follow_similarity(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self._session.attempt(lambda: self._session.research.head_similarity("js"))
        else:
            self.set_trait("similarity", {})

    @traitlets.observe("composition_kind")
    def _follow_composition(self, change: dict[str, Any]) -> None:
        kind = change["new"]
        try:
            self.set_trait("composition", self._why.composition_view(kind) if kind else {})
        except AttnWidgetError:  # no weights to read (precomputed attention): the view stays as it was
            self.set_trait("composition_kind", change["old"])
            raise

    def set_state(self, sync_data: dict[str, Any]) -> None:
        """Front-end updates, through the same transitions as Python's (session.py `front_end_update`):
        a rejected value shows in the widget, and every trait of the update goes back."""
        self._from_front_end = self._session.from_front_end = True
        try:
            self._session.front_end_update(sync_data, super().set_state)
        finally:
            self._from_front_end = self._session.from_front_end = False


def _text_line(w: AttentionExplorer) -> str:
    return f"AttentionExplorer({w.model_name}, {head_label(w.layer, w.head)}, {len(w.tokens)} tokens)"
