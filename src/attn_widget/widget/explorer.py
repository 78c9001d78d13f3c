"""The explorer: traits (traits.py), their validators, and thin public methods. Head requests are
answered in answers.py, research features live in research.py, saving in saving.py and view.py."""

from __future__ import annotations

import gc
import pathlib
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
import traitlets
from traitlets import TraitError

from attn_widget.analysis.dataset import DatasetScores
from attn_widget.analysis.derived import DetectorsAndSinks
from attn_widget.analysis.prompt import PromptAnalysis, check_head, check_layer
from attn_widget.analysis.repeated_tokens import repeated_tokens_scores
from attn_widget.backends import backend_for
from attn_widget.backends.loading import resolve_model
from attn_widget.contract import REPEATED_TOKENS
from attn_widget.errors import AttnWidgetError, ModelError, SelectionError, WeightsError
from attn_widget.export import circuits_vis
from attn_widget.export.figure import ViewData
from attn_widget.export.snapshot import snapshot_html
from attn_widget.export.standalone import standalone_html
from attn_widget.maths.head_classes import classify_heads
from attn_widget.maths.similarity import HeadSimilarity
from attn_widget.maths.summary import HeadSummary, summarize
from attn_widget.widget import protocol, saving
from attn_widget.widget.answers import Shown, answer, pushed_head_request
from attn_widget.widget.display import WATCHED, SnapshotOutput
from attn_widget.widget.json_numbers import json_matrix, json_row
from attn_widget.widget.research import Research
from attn_widget.widget.traits import ExplorerTraits
from attn_widget.widget.view import page_data, page_title
from attn_widget.widget.view import view_data as current_view
from attn_widget.widget.view_options import ViewOptions

DEFAULT_PROMPT = (
    "When Mary and John went to the store, Mary gave a drink to John. "
    "Then Mary and John went to the park, Mary gave a ball to"
)
PROGRESS_INTERVAL_S = 0.5
"""How often the score views hear of layers finished while a long prompt is reduced."""
INTERRUPTED = "Interrupted while running the model: the previous prompt is still shown."


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
        _reject_unknown_arguments(type(self), kwargs)
        self._keep_analysis = False  # set while a rejected front-end update is rolled back
        self._from_front_end = False  # set while the front end's update is applied
        self._stepping = False  # set while the dataset stepper sets the prompt
        self.model = resolve_model(model)
        self._backend = backend_for(self.model, tokenizer=tokenizer, tokens=tokens)
        self._analysis: PromptAnalysis | None = None
        self._options = ViewOptions(self._backend)
        self._research = Research(self, self._backend, self._current)
        # A property of the model, not of the prompt: one batched pass, kept for every prompt.
        # Precomputed attention has no model to run it on; its score views go without.
        self._repeated_tokens: np.ndarray | None = (
            repeated_tokens_scores(self._backend) if self._backend.runs_tokens else None
        )
        # Traits whose validity depends on the prompt's results are set once it has run.
        after_prompt = {name: kwargs.pop(name) for name in ("metric", "focus_token", "focus_locked") if name in kwargs}
        super().__init__(**kwargs)
        self.set_trait("snapshot_key", f"attn-widget-{uuid.uuid4().hex}")
        self._snapshot = SnapshotOutput(self.snapshot_key, self._snapshot_bundle)
        self.set_trait("n_layers", self._backend.n_layers)
        self.set_trait("n_heads", self._backend.n_heads)
        self.set_trait("model_name", self._backend.name)
        self.set_trait("read_only_prompt", self._backend.fixed_prompt is not None)
        self.layer, self.head = layer, head  # the validators below refuse an index outside the model
        self.prompt = prompt if prompt is not None else self._backend.fixed_prompt or DEFAULT_PROMPT
        if self.metric not in self.score_table:  # no repeated random token test without a model
            self.metric = "induction"
        for name, value in after_prompt.items():
            setattr(self, name, value)
        self.on_msg(self._on_front_end_message)

    # ---- Python API: the prompt's attention ----------------------------------------------

    @property
    def scores(self) -> dict[str, np.ndarray]:
        """Per-head scores for the current prompt: metric -> `(n_layers, n_heads)` array."""
        return {name: values.copy() for name, values in self._current().scores.items()} | self._research.scores()

    def pattern(self, layer: int, head: int, weighting: str = "attention") -> np.ndarray:
        """The `(n_tokens, n_tokens)` float32 attention pattern of one head on the current prompt;
        `weighting="value"`: `||A[i, j] f(x_j)||`, the size of what the head moves from j to i."""
        return self._options.pattern(self._current(), layer, head, weighting).float().cpu().numpy()

    def pattern_diff(self, layer: int, head: int, weighting: str | None = None) -> np.ndarray:
        """`A(prompt) - A(compare_prompt)` of one head, in the given (default: selected) weighting
        (value weighting: the difference of the rows' shares, as the views show them)."""
        weighting = self.weighting if weighting is None else weighting
        return self._options.diff(self._current(), layer, head, weighting).float().cpu().numpy()

    def logit_attribution(self, layer: int, head: int, query: int | None = None) -> np.ndarray:
        """`(n_tokens,)` float32: what each source position contributes, through this head, to
        logit(answer) - logit(counterfactual) at `query` (default: the last token)."""
        query = self._options.query(self._current(), query)
        return self._options.head_attribution(self._current(), layer, head, query, self.answer, self.counterfactual)

    def direct_logit_attribution(self, query: int | None = None) -> np.ndarray:
        """`(n_layers, n_heads)`: each head's direct logit attribution (its sources summed)."""
        query = self._options.query(self._current(), query)
        return self._options.direct_logit_attribution(self._current(), query, self.answer, self.counterfactual)

    def circuitsvis(self, layer: int | None = None) -> Any:
        """The reference notebook's CircuitsVis view of a layer (default: the selected one)."""
        layer = self.layer if layer is None else check_layer(self._backend, layer)
        patterns = self._current().layer_pattern(layer).float().cpu().numpy()
        return circuits_vis.attention_heads(self.tokens, patterns)

    def run_repeated_tokens_test(self, seq_len: int = 50, batch: int = 8, seed: int = 0) -> np.ndarray:
        """Runs the repeated random token test again with these settings and shows its result as the
        "repeated_tokens" metric: `(n_layers, n_heads)` induction scores (analysis/repeated_tokens.py)."""
        self._repeated_tokens = repeated_tokens_scores(self._backend, seq_len=seq_len, batch=batch, seed=seed)
        self._publish_scores()
        return np.array(self._repeated_tokens, copy=True)

    def summary(self, top_k: int = 5) -> HeadSummary:
        """The reference notebook's summary: top induction heads (repeated random token test),
        most focused, most diffuse and longest-range heads on the current prompt."""
        scores = self._current().scores
        induction = scores["induction"] if self._repeated_tokens is None else self._repeated_tokens
        return summarize(scores, induction, top_k=top_k)

    # ---- Python API: research -------------------------------------------------------------

    def add_detector(self, name: str, fn: Callable[[torch.Tensor], Any], measure: str = "mul") -> np.ndarray | None:
        """Score every head against your expected pattern `fn(token_ids [n]) -> [n, n]`, like TransformerLens
        `detect_head` ("mul": share of attention on it; "abs": 1 - mean |difference| * n). The metric shows
        in every score view, in `scores` and in later dataset runs. Returns its scores on the current prompt
        (None where the prompt is too long for them)."""
        self._research.add_detector(name, fn, measure)
        self._refresh_research()
        return self.scores.get(name)

    def remove_detector(self, name: str) -> None:
        self._research.remove_detector(name)
        self._refresh_research()

    @property
    def detectors(self) -> list[str]:
        return list(self._research.detectors)

    def run_dataset(self, prompts: Sequence[str], batch_size: int = 8, progress: bool = True) -> DatasetScores:
        """Every metric over `prompts` (batched, one pass per batch). Ctrl-C keeps the batches that finished.
        Means and spreads show in the score views as `dataset:<metric>`; `dataset_index` steps through them."""
        result = self._research.run_dataset(prompts, batch_size, progress)
        self._publish_scores()
        return result

    @property
    def dataset(self) -> DatasetScores | None:
        """The last dataset run (per-prompt scores, counts, `table()`), or None."""
        return self._research.dataset

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
        result = self._research.retrieval_test(haystack_len, needle_len, samples, seed)
        self._publish_scores()
        return np.array(result, copy=True)

    def sinks(self) -> DetectorsAndSinks:
        """The current prompt's received attention per key, sink positions and sink share per head."""
        return self._research.sinks()

    def head_similarity(self, metric: str = "js") -> HeadSimilarity:
        """Mean Jensen-Shannon distance between every two heads' patterns, in clustered order; also drawn
        in the head similarity view (click a cell to select a head)."""
        return self._research.head_similarity(metric)

    # ---- Python API: what is shown, saved ----------------------------------------------------

    def view_data(self, theme: str = "light") -> ViewData:
        """What the explorer shows now, as plain data: the figures, the snapshot and `save` draw this."""
        return current_view(self, self._shown(), saving.check_theme(theme))

    def save(
        self,
        path: str | pathlib.Path,
        view: str = "heatmap",
        scale: float = 2,
        theme: str = "light",
        layers: Iterable[int] | None = None,
    ) -> pathlib.Path:
        """Save what the explorer shows: `.png` / `.svg` a figure of `view` ("heatmap", "grid",
        "scores" or "all") in the current colour scale and `theme` ("light" or "dark"), `scale`
        pixels per unit; `.html` a standalone offline page with `layers` (default: the selected one)."""
        path = pathlib.Path(path)
        if saving.file_format(path) == "html":
            chosen = [self.layer] if layers is None else sorted({check_layer(self._backend, x) for x in layers})
            page = page_data(self, self._shown(), chosen)
            data = standalone_html(page, page_title(self)).encode("utf-8")
        else:
            if not scale > 0:
                raise AttnWidgetError(f"scale must be positive, got {scale}")
            data = saving.figure_bytes(self.view_data(theme), path.suffix[1:].lower(), saving.check_view(view), scale)
        saving.write_atomically(path, data)
        return path

    def _ipython_display_(self) -> None:
        """The live widget, and a snapshot that saved notebooks keep (display.py)."""
        bundle: Any = self._repr_mimebundle_()
        self._snapshot.show(bundle[0] if isinstance(bundle, tuple) else bundle, _text_line(self))
        if not self._snapshot.watching:
            self._snapshot.watching = True
            self.observe(lambda _change: self._snapshot.schedule(self._from_front_end), names=WATCHED)

    def _snapshot_bundle(self) -> dict[str, str]:
        try:
            return {"text/html": snapshot_html(self.view_data(), self.snapshot_key), "text/plain": _text_line(self)}
        except AttnWidgetError:  # no prompt run yet: nothing to show
            return {"text/plain": _text_line(self)}

    # ---- trait validation: bad values raise from Python, show in the widget -------------------

    @traitlets.validate("prompt")
    def _validate_prompt(self, proposal: dict[str, Any]) -> str:
        """A prompt is valid when the model runs on it: run it, and refuse it if that fails."""
        prompt = str(proposal["value"])  # a Unicode trait: already a str
        if not self._keep_analysis:
            self._run_prompt(prompt)
        return prompt

    @traitlets.validate("weighting")
    def _check_weighting(self, proposal: dict[str, Any]) -> str:
        weighting = str(proposal["value"])
        if weighting == "value" and self._analysis is not None:
            with _refused_as_trait_error():
                self._options.weighted_scores(self._analysis, "value")  # raises before the switch
        return weighting

    @traitlets.validate("compare_prompt")
    def _run_compare(self, proposal: dict[str, Any]) -> str:
        text = str(proposal["value"])
        self._options.set_compare(text, self._analysis)  # raises PromptError
        return text

    @traitlets.validate("answer", "counterfactual")
    def _check_answer(self, proposal: dict[str, Any]) -> str:
        text = str(proposal["value"])
        with _refused_as_trait_error():
            self._options.answer_id(text)  # raises AnswerError / WeightsError
        return text

    @traitlets.validate("layer")
    def _check_layer(self, proposal: dict[str, Any]) -> int:
        return check_layer(self._backend, proposal["value"])

    @traitlets.validate("head")
    def _check_head(self, proposal: dict[str, Any]) -> int:
        return check_head(self._backend, proposal["value"])

    @traitlets.validate("focus_token")
    def _check_focus(self, proposal: dict[str, Any]) -> int:
        value = int(proposal["value"])
        if not -1 <= value < len(self.tokens):
            raise SelectionError(f"token {value} is out of range: the prompt has tokens 0 to {len(self.tokens) - 1}")
        return value

    @traitlets.validate("metric")
    def _check_metric(self, proposal: dict[str, Any]) -> str:
        metric = str(proposal["value"])
        if metric not in self.score_table:
            raise SelectionError(f"unknown metric {metric!r}: choose one of {', '.join(self.score_table)}")
        return metric

    @traitlets.validate("dataset_index")
    def _step_dataset(self, proposal: dict[str, Any]) -> int:
        index = int(proposal["value"])
        if index != -1:
            prompt = self._research.dataset_prompt(index)
            self._stepping = True
            try:
                self.prompt = prompt  # re-run on demand: nothing per prompt is kept
            finally:
                self._stepping = False
        return index

    # ---- trait reactions ---------------------------------------------------------------------

    @traitlets.observe("weighting", "compare_prompt", "answer", "counterfactual")
    def _on_options_change(self, change: dict[str, Any]) -> None:
        if self._analysis is not None and not self._keep_analysis:
            self._publish_weighed(bump_revision=change["name"] in ("weighting", "compare_prompt"))

    @traitlets.observe("layer", "head", "focus_token", "focus_locked")
    def _on_selection_change(self, change: dict[str, Any]) -> None:
        if not self.answer or self._analysis is None:
            return
        moved = self._attributed_query() != self.attribution_query  # only a locked focus moves it
        if moved or change["name"] in ("layer", "head"):
            self._publish_weighed(scores_too=moved)

    @traitlets.observe("exclude_sinks")
    def _redraw_heatmap(self, _change: dict[str, Any]) -> None:
        self.set_trait("revision", self.revision + 1)  # the front end asks for the head again

    @traitlets.observe("sink_threshold")
    def _rethreshold(self, _change: dict[str, Any]) -> None:
        if self._analysis is not None:
            self._refresh_research()
            self.set_trait("revision", self.revision + 1)

    @traitlets.observe("show_similarity")
    def _follow_similarity(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self._try(lambda: self._research.head_similarity("js"))
        else:
            self.set_trait("similarity", {})

    def set_state(self, sync_data: dict[str, Any]) -> None:
        """Front-end updates: a rejected value shows in the widget instead of a kernel traceback, and
        every trait of the update goes back to its previous value, here and in every view."""
        if not isinstance(sync_data, dict):
            self.error = str(protocol.malformed(f"a state update must be an object, got {sync_data!r:.200}"))
            return
        synced = [name for name in sync_data if name in self.keys]
        before = {name: getattr(self, name) for name in synced}
        analysis_before = self._analysis
        self._from_front_end = True
        try:
            read_only = [name for name in synced if self.traits()[name].read_only]
            if read_only:
                raise protocol.malformed(f"the front end cannot set {', '.join(read_only)}: the kernel computes them")
            super().set_state(sync_data)
            self.error = ""
        except KeyboardInterrupt:
            self._roll_back(before, analysis_before, INTERRUPTED)
            raise
        except Exception as err:  # never let an update kill the comm: show the reason instead
            self._roll_back(before, analysis_before, protocol.describe(err))
        finally:
            self._from_front_end = False

    def _roll_back(self, before: dict[str, Any], analysis: PromptAnalysis | None, message: str) -> None:
        """Puts the traits of a rejected update back (without re-running the model) and re-sends them:
        traitlets rolls back a TraitError only, and the front end already shows the rejected values.
        A new prompt that ran before another value of the same update failed is undone too."""
        self._show_again(analysis)
        self._keep_analysis = True
        try:
            with self.hold_sync():
                for name, value in before.items():
                    self.set_trait(name, value)
        finally:
            self._keep_analysis = False
        self.error = message
        self.send_state(list(before))

    # ---- running a prompt and publishing its results --------------------------------------

    def _current(self) -> PromptAnalysis:
        if self._analysis is None:
            raise AttnWidgetError("No prompt has been run yet: set `prompt` first.")
        return self._analysis

    def _shown(self) -> Shown:
        sinks = self._research.derived if self.exclude_sinks else None
        return Shown(self._backend, self._current(), self._options, self.weighting, self.revision, sinks)

    def _run_prompt(self, prompt: str) -> None:
        """`prompt` through the model, its results published. On any failure (bad prompt, the model
        raising or running out of memory, the stop button), even once the new prompt's first results
        are out, the previous prompt's analysis is shown again and `error` says what happened; the
        backend has already put the model back as it was. KeyboardInterrupt is the notebook's stop
        button: it goes on to the user once that is done."""
        previous = self._analysis
        try:
            self._analyse_and_publish(prompt)
        except KeyboardInterrupt:
            self._after_failure(previous, INTERRUPTED)
            raise
        except Exception as err:
            self._after_failure(previous, protocol.describe(err))
            raise

    def _after_failure(self, previous: PromptAnalysis | None, message: str) -> None:
        self._show_again(previous)
        # A failed pass may leave large intermediate tensors behind (out of memory above all).
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # a no-op until CUDA is in use
        self.error = message

    def _show_again(self, previous: PromptAnalysis | None) -> None:
        """Publishes `previous` again if a newer analysis replaced it."""
        if previous is not None and self._analysis is not previous:
            self._analysis = previous
            self._research.forget_prompt()
            self._publish_analysis(previous)
            self._refresh_research()

    def _analyse_and_publish(self, prompt: str) -> None:
        """One forward pass; the selected head goes out at once, the scores as layers finish."""
        analysis = PromptAnalysis(self._backend, prompt, defer_scores=True)  # raises PromptError / ModelError
        self._analysis = analysis
        self._research.forget_prompt()
        self._options.new_prompt(analysis)
        self._publish_analysis(analysis)
        if not analysis.scored.all():
            self._push_selected_head()
            last = time.monotonic()

            def publish_progress(_layer: int) -> None:
                nonlocal last
                if time.monotonic() - last > PROGRESS_INTERVAL_S:
                    self._publish_partial(analysis)
                    last = time.monotonic()

            analysis.finish(publish_progress)
        self._refresh_research()  # detectors and sinks
        self._publish_weighed(analysis)  # thumbnails, scores and attribution in the selected weighting
        if self._options.problem:  # a compare prompt of another token count: shown without it
            self.error = self._options.problem

    def _push_selected_head(self) -> None:
        """The selected head, unasked (id None), so it is drawn before the scores are all in."""
        shown = self._shown()
        try:
            reply, buffers = answer(pushed_head_request(shown, self.layer, self.head), shown)
        except AttnWidgetError:
            return  # the front end asks for it as usual
        self.send({**reply, "id": None, "pushed": True}, buffers)

    def _refresh_research(self) -> None:
        """The prompt's detectors and sinks, then the scores; say which detectors failed (their metric
        is left out), follow the similarity view, leave dataset stepping if the prompt is new."""
        self._research.compute()
        self._publish_scores()
        if self.dataset_index >= 0 and not self._stepping:  # a prompt of one's own
            self.set_trait("dataset_index", -1)
        if self.show_similarity:
            self._try(lambda: self._research.head_similarity("js"))
        if errors := self._research.errors():
            self.error = " ".join(errors)

    def _publish_partial(self, analysis: PromptAnalysis) -> None:
        with self.hold_sync():
            self.set_trait("thumbnails", analysis.thumbnails.tobytes())
            self.set_trait("score_table", self._score_table(analysis))
            self.set_trait("scored_layers", int(analysis.scored.sum()))

    def _publish_analysis(self, analysis: PromptAnalysis) -> None:
        with self.hold_sync():
            self.set_trait("tokens", analysis.tokens)
            self.set_trait("thumbnails", analysis.thumbnails.tobytes())
            self.set_trait("thumbnail_side", int(analysis.thumbnails.shape[-1]))
            self.focus_locked, self.focus_token = False, -1
            if analysis.scored.all():
                self._publish_scores(analysis)
            else:
                self._publish_partial(analysis)
            self.set_trait("revision", self.revision + 1)
            self.error = ""

    def _publish_scores(self, analysis: PromptAnalysis | None = None) -> None:
        """Score table, head types and summary: small, so they travel as traits."""
        analysis = analysis or self._current()
        with self.hold_sync():
            self.set_trait("score_table", self._score_table(analysis))
            self.set_trait("scored_layers", self.n_layers)
            self.set_trait("score_spread", self._research.spread())
            classes = classify_heads(analysis.scores, analysis.n_tokens, self._repeated_tokens)
            self.set_trait("head_classes", classes)
            self.set_trait("summary_rows", [json_row(asdict(row)) for row in self.summary().rows])
            if self.metric not in self.score_table:  # a change metric of a compare prompt that is gone
                self.metric = REPEATED_TOKENS if REPEATED_TOKENS in self.score_table else "induction"

    def _publish_weighed(
        self, analysis: PromptAnalysis | None = None, bump_revision: bool = False, scores_too: bool = True
    ) -> None:
        """Thumbnails, scores and attribution in the selected weighting (and against the compare
        prompt); a failure (say, a compare prompt of another length) shows in `error`."""
        analysis = analysis or self._current()
        try:
            with self.hold_sync():
                if scores_too:
                    thumbnails = self._options.thumbnails(analysis, self.weighting)
                    self.set_trait("thumbnails", thumbnails.tobytes())
                    self.set_trait("thumbnail_side", int(thumbnails.shape[-1]))
                    self._options.attribution_target(self.answer, self.counterfactual, self._attributed_query())
                    self._publish_scores(analysis)
                if bump_revision:
                    self.set_trait("revision", self.revision + 1)  # the front end asks for heads again
                row = self._options.selected_attribution(analysis, self.layer, self.head)
                self.set_trait("attribution", [] if row is None else row.astype(np.float64).round(6).tolist())
                self.set_trait("attribution_query", self._attributed_query() if row is not None else -1)
        except AttnWidgetError as err:
            self.error = str(err)

    def _attributed_query(self) -> int:
        """The locked focus token, else the last one."""
        return self.focus_token if self.focus_locked and self.focus_token >= 0 else len(self.tokens) - 1

    def _score_table(self, analysis: PromptAnalysis) -> dict[str, list[list[float | None]]]:
        """Scores as JSON: layers not yet scored (and undefined scores) travel as null. Once all are
        in: in the selected weighting, with change metrics (compare prompt) and DLA (answer)."""
        done = analysis.scored.all()
        shown = self._options.score_table(analysis, self.weighting) if done else analysis.scores
        table = {name: json_matrix(values) for name, values in shown.items()}
        if self._repeated_tokens is not None:
            table[REPEATED_TOKENS] = json_matrix(self._repeated_tokens)
        return table | self._research.table()

    def _on_front_end_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        try:
            if isinstance(content, dict) and content.get("type") == "export":  # the save buttons
                reply, buffers = saving.export_reply(content, lambda theme: current_view(self, self._shown(), theme))
                self.send(reply, buffers)
                return
            reply, buffers = answer(protocol.parse_request(content), self._shown())
        except Exception as err:  # never let a message kill the comm: answer with the reason
            request_id = content.get("id") if isinstance(content, dict) else None
            reply, buffers = protocol.error_reply(request_id, err), []
        except KeyboardInterrupt:  # the stop button while a layer was recomputed: answer, then stop
            request_id = content.get("id") if isinstance(content, dict) else None
            self.send(protocol.error_reply(request_id, protocol.malformed(INTERRUPTED)), [])
            raise
        self.send(reply, buffers)

    def _try(self, action: Callable[[], Any]) -> None:
        try:
            action()
        except AttnWidgetError as err:
            self.error = str(err)


@contextmanager
def _refused_as_trait_error() -> Iterator[None]:
    """A model that cannot weigh: a TraitError too, so traitlets keeps the old value."""
    try:
        yield
    except ModelError as err:
        if isinstance(err, TraitError):
            raise
        raise WeightsError(str(err)) from err


def _text_line(w: AttentionExplorer) -> str:
    return f"AttentionExplorer({w.model_name}, L{w.layer}H{w.head}, {len(w.tokens)} tokens)"


def _reject_unknown_arguments(cls: type[AttentionExplorer], kwargs: dict[str, Any]) -> None:
    """Keyword arguments beyond the named ones must be widget traits the user may set."""
    settable = {name for name, trait in cls.class_traits().items() if not trait.read_only}
    unknown = sorted(name for name in kwargs if name not in settable and name not in ("_esm", "_css"))
    if unknown:
        raise TypeError(
            f"AttentionExplorer() got unexpected keyword argument{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))}. It takes model, prompt, layer, head, tokenizer=, tokens=, "
            "and widget traits such as metric=, color_scale= or layout=."
        )
