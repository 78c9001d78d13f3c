"""The explorer's kernel side for one model: the current prompt's analysis, the view options and
research it is shown through, and the one transition that runs a prompt and publishes its state.
Also the answers to the front end's custom messages.

A prompt's state (the prompt, its tokens, thumbnails, scores, head types, sinks, attribution,
focus, errors) is computed first with no trait touched, then published as one unit under the
session's lock with the stop button held back (interrupts.py): whoever sets the prompt (Python,
the prompt box, the dataset stepper, another thread), the traits always describe exactly one
prompt, and a failure or Ctrl-C before the publication leaves the previous state whole.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from attn_widget.analysis.prompt import PromptAnalysis
from attn_widget.analysis.repeated_tokens import repeated_tokens_scores
from attn_widget.backends.base import Backend
from attn_widget.contract import REPEATED_TOKENS
from attn_widget.errors import AttnWidgetError
from attn_widget.maths.head_classes import classify_heads
from attn_widget.maths.summary import HeadSummary, summarize
from attn_widget.widget import arguments, interrupts, protocol, saving
from attn_widget.widget.answers import Shown, answer, pushed_head_request
from attn_widget.widget.json_numbers import json_matrix, json_row
from attn_widget.widget.progress import progress
from attn_widget.widget.requests import Prefetch
from attn_widget.widget.research import Research
from attn_widget.widget.traits import ExplorerTraits
from attn_widget.widget.view import view_data
from attn_widget.widget.view_options import ViewOptions

INTERRUPTED = "Interrupted while running the model: the previous prompt is still shown."


class Session:
    def __init__(self, widget: ExplorerTraits, backend: Backend) -> None:
        self.widget, self.backend = widget, backend
        self.lock = threading.RLock()
        """Held by every transition, trait change, message and save: one state at a time."""
        self.analysis: PromptAnalysis | None = None
        self.options = ViewOptions(backend)
        self.research = Research(widget, backend, self.current)
        self.prefetch = Prefetch(lambda reply, buffers: widget.send(reply, buffers), lambda: widget.revision)
        self.more_scores: list[Callable[[], dict[str, list[list[float | None]]]]] = []
        """More metrics for the score views, each from a helper composed into the explorer."""
        # A property of the model, not of the prompt: one batched pass, kept for every prompt.
        # Precomputed attention has no model to run it on; its score views go without.
        self.repeated_tokens: np.ndarray | None = repeated_tokens_scores(backend) if backend.runs_tokens else None
        self.keep_analysis = False
        """Set while a rejected front-end update is rolled back: setting the prompt runs nothing."""
        self.stepping_index = -1
        """The dataset prompt the next transition shows (the dataset stepper), -1 for one's own."""
        self.publishing = False
        """Set while a state is published: observers wait for the whole of it."""
        self.on_published: list[Callable[[], None]] = []
        self.from_front_end = False
        """Set while the front end's update is applied (AttentionExplorer.set_state)."""

    def summary(self, top_k: int = 5) -> HeadSummary:
        scores = self.current().scores
        induction = scores["induction"] if self.repeated_tokens is None else self.repeated_tokens
        return summarize(scores, induction, top_k=top_k)

    def current(self) -> PromptAnalysis:
        if self.analysis is None:
            raise AttnWidgetError("No prompt has been run yet: set `prompt` first.")
        return self.analysis

    def shown(self) -> Shown:
        sinks = self.research.derived if self.widget.exclude_sinks else None
        return Shown(self.backend, self.current(), self.options, self.widget.weighting, self.widget.revision, sinks)

    # ---- the one transition of a prompt ---------------------------------------------------

    def run_prompt(self, prompt: str, store: Callable[[], None]) -> None:
        """`prompt` through the model, then its whole state published with `store()` (which sets
        the prompt trait itself). On any failure before the publication (a bad prompt, the model
        raising or running out of memory, the stop button) nothing of the new prompt is shown:
        the previous state stays and `error` says what happened, then the error goes on."""
        with self.lock:
            saved = self._saved()
            try:
                state = self._prepare(prompt)
            except KeyboardInterrupt:
                self._restore(saved)
                self.show_errors(INTERRUPTED)
                raise
            except Exception as err:
                self._restore(saved)
                gc.collect()  # a failed pass may leave large intermediate tensors behind (out of memory above all)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                self.show_errors(protocol.describe(err))
                raise
            finally:
                self.stepping_index = -1
            self.publish(state, store)
            self._push_selected_head()

    def _saved(self) -> tuple[Any, ...]:
        return self.analysis, self.options.saved(), self.research.derived, self.research.failure

    def _restore(self, saved: tuple[Any, ...]) -> None:
        self.analysis, options, self.research.derived, self.research.failure = saved
        self.options.restore(options)

    def _prepare(self, prompt: str) -> dict[str, Any]:
        """Everything the new prompt's views show, computed before any trait changes."""
        detectors = list(self.research.detectors.values())  # scored in the same sweep as the scores
        # a notebook bar only for a run asked from Python: the front end's own runs have no cell to show it in
        n = self.backend.n_layers
        bars = progress(self.widget, "running the model", n, "layer", notebook=not self.from_front_end)
        with bars as tick:  # raises PromptError / ModelError
            analysis = PromptAnalysis(
                self.backend, prompt, defer_scores=True, detectors=detectors, on_layer_run=lambda i: tick(i + 1)
            )
            analysis.finish(lambda _layer: tick(int(analysis.scored.sum()), n, "scores"))
        self.analysis = analysis
        self.options.new_prompt(analysis)
        self.research.compute()
        state: dict[str, Any] = {
            "tokens": list(analysis.tokens),
            "focus_locked": False,
            "focus_token": -1,
            "sink_positions": self.research.positions(),
            "dataset_index": self.stepping_index,
            "revision": self.widget.revision + 1,
        }
        if self.widget.show_similarity:
            try:
                state["similarity"] = self.research.similarity_state()
            except AttnWidgetError:
                state["similarity"] = {}
        return state | self.derived_state(analysis, analysis.n_tokens - 1)

    def derived_state(self, analysis: PromptAnalysis, query: int, scores_too: bool = True) -> dict[str, Any]:
        """What depends on the prompt and the view options: thumbnails, scores and attribution in the
        selected weighting (and against the compare prompt), and the errors that still hold."""
        state: dict[str, Any] = {}
        problem = ""
        try:
            if scores_too:
                thumbnails = self.options.thumbnails(analysis, self.widget.weighting)
                state["thumbnails"] = thumbnails.tobytes()
                state["thumbnail_side"] = int(thumbnails.shape[-1])
                self.options.attribution_target(self.widget.answer, self.widget.counterfactual, query)
                state |= self.score_state(analysis)
            row = self.options.selected_attribution(analysis, self.widget.layer, self.widget.head)
            state["attribution"] = [] if row is None else row.astype(np.float64).round(6).tolist()
            state["attribution_query"] = query if row is not None else -1
        except AttnWidgetError as err:
            problem = str(err)
            state.setdefault("attribution", [])
            state.setdefault("attribution_query", -1)
        state["error"] = self.errors(problem)
        return state

    def score_state(self, analysis: PromptAnalysis) -> dict[str, Any]:
        """Score table, head types and summary: small, so they travel as traits."""
        table = self.score_table_json(analysis)
        state: dict[str, Any] = {
            "score_table": table,
            "scored_layers": self.widget.n_layers,
            "score_spread": self.research.spread(),
            "head_classes": classify_heads(analysis.scores, analysis.n_tokens, self.repeated_tokens),
            "summary_rows": [json_row(asdict(row)) for row in self.summary().rows],
        }
        if self.widget.metric not in table:  # a change metric of a compare prompt that is gone
            state["metric"] = REPEATED_TOKENS if REPEATED_TOKENS in table else "induction"
        return state

    def publish(self, state: dict[str, Any], store: Callable[[], None] | None = None) -> None:
        """Sets `state` (and the prompt, through `store`) as one unit: one message to the front end,
        the stop button held back until the last trait is set, observers told once it is whole."""
        with self.lock, interrupts.deferred():
            self.publishing = True
            try:
                with self.widget.hold_sync(), self.widget.hold_trait_notifications():
                    if store is not None:
                        store()
                    for name in ("tokens", "score_table"):  # what the validators of the others read
                        if name in state:
                            self.widget.set_trait(name, state[name])
                    for name, value in state.items():
                        self.widget.set_trait(name, value)
            finally:
                self.publishing = False
        for hook in self.on_published:
            hook()

    def errors(self, transient: str = "") -> str:
        """The error bar: what just failed, then every problem whose cause still holds (a compare
        prompt of another length, detectors that fail on this prompt). Empty once they are gone."""
        standing = [self.options.problem] if self.options.problem else []
        standing += self.research.errors()
        return " ".join(dict.fromkeys(m for m in [transient, *standing] if m))

    def show_errors(self, transient: str = "") -> None:
        self.widget.error = self.errors(transient)

    def _push_selected_head(self) -> None:
        """The selected head, unasked (id None), so the heatmap is drawn without a round trip."""
        try:
            shown = self.shown()
            reply, buffers = answer(pushed_head_request(shown, self.widget.layer, self.widget.head), shown)
        except AttnWidgetError:
            return  # the front end asks for it as usual
        self.widget.send({**reply, "id": None, "pushed": True}, buffers)

    # ---- changes of the view options and research ------------------------------------------

    def refresh_research(self) -> None:
        """The prompt's detectors and sinks again (a detector added or removed, a new threshold),
        then the scores and errors, as one unit."""
        with self.lock:
            analysis = self.current()
            self.research.compute()
            state = {"sink_positions": self.research.positions()} | self.score_state(analysis)
            state["error"] = self.errors()
            self.publish(state)

    def publish_scores(self, more: dict[str, Any] | None = None) -> None:
        """The score table again (a new dataset, retrieval or repeated-token run), with `more` traits."""
        with self.lock:
            self.publish(self.score_state(self.current()) | (more or {}))

    def publish_weighed(self, bump_revision: bool = False, scores_too: bool = True) -> None:
        """Thumbnails, scores and attribution in the selected weighting (and against the compare
        prompt); a failure shows in `error` while its cause holds."""
        with self.lock:
            state = self.derived_state(self.current(), self.attributed_query(), scores_too)
            if bump_revision:
                state["revision"] = self.widget.revision + 1  # the front end asks for heads again
            self.publish(state)

    def attributed_query(self) -> int:
        """The locked focus token, else the last one."""
        n = self.current().n_tokens
        focus = self.widget.focus_token
        return focus if self.widget.focus_locked and 0 <= focus < n else n - 1

    def roll_back(self, before: dict[str, Any], analysis: PromptAnalysis | None, message: str) -> None:
        """Puts the traits of a rejected front-end update back (without re-running the model) and
        re-sends them: traitlets rolls back a TraitError only, and the front end already shows the
        rejected values. A new prompt that ran before another value of the same update failed is
        undone too."""
        with self.lock:
            if analysis is not None and self.analysis is not analysis:
                self.analysis = analysis
                self.options.new_prompt(analysis)
                self.research.compute()
                state = {"tokens": list(analysis.tokens), "sink_positions": self.research.positions()}
                state |= self.derived_state(analysis, analysis.n_tokens - 1)
                state["revision"] = self.widget.revision + 1
                self.publish(state)
            self.keep_analysis = True
            try:
                with self.widget.hold_sync():
                    for name, value in before.items():
                        self.widget.set_trait(name, value)
            finally:
                self.keep_analysis = False
            self.show_errors(message)
            self.widget.send_state(list(before))

    def front_end_update(self, sync_data: Any, apply: Callable[[dict[str, Any]], None]) -> None:
        """A front-end update (`apply`: ipywidgets' own `set_state`) under the lock, through the same
        transitions as Python's. A rejected value shows in the widget instead of a kernel traceback,
        and every trait of the update goes back to its previous value, here and in every view. The
        dataset stepper sends `dataset_index` with the prompt: the index decides the prompt, and the
        model runs once."""
        widget = self.widget
        if not isinstance(sync_data, dict):
            widget.error = str(protocol.malformed(f"a state update must be an object, got {sync_data!r:.200}"))
            return
        with self.lock:
            synced = [name for name in sync_data if name in widget.keys]
            before = {name: getattr(widget, name) for name in synced}
            analysis_before = self.analysis
            try:
                read_only = [name for name in synced if widget.traits()[name].read_only]
                if read_only:
                    raise protocol.malformed(
                        f"the front end cannot set {', '.join(read_only)}: the kernel computes them"
                    )
                update = dict(sync_data)
                if "dataset_index" in update:
                    index = arguments.whole("dataset_index", update.pop("dataset_index"), -1)
                    update.pop("prompt", None)
                    apply(update)
                    widget.dataset_index = index
                else:
                    apply(update)
                self.show_errors()
            except KeyboardInterrupt:
                self.roll_back(before, analysis_before, INTERRUPTED)
                raise
            except Exception as err:  # never let an update kill the comm: show the reason instead
                self.roll_back(before, analysis_before, protocol.describe(err))

    def score_table_json(self, analysis: PromptAnalysis) -> dict[str, list[list[float | None]]]:
        """Scores as JSON (undefined scores travel as null), in the selected weighting, with change
        metrics (compare prompt), DLA (answer) and the research metrics."""
        shown = self.options.score_table(analysis, self.widget.weighting)
        table = {name: json_matrix(values) for name, values in shown.items()}
        if self.repeated_tokens is not None:
            table[REPEATED_TOKENS] = json_matrix(self.repeated_tokens)
        for more in self.more_scores:
            table |= more()
        return table | self.research.table()

    # ---- messages ------------------------------------------------------------------------

    def on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        try:
            with self.lock:
                if isinstance(content, dict) and content.get("type") == "export":  # the save buttons
                    reply, buffers = saving.export_reply(
                        content, lambda theme: view_data(self.widget, self.shown(), theme)
                    )
                else:
                    self.prefetch.touch()
                    request = protocol.parse_request(content)
                    if isinstance(request, protocol.HeadsRequest):  # answered a head at a time, after asked heads
                        done = self.prefetch.start(request, self.shown())
                        if done is None:
                            return
                        reply, buffers = done
                    else:
                        reply, buffers = answer(request, self.shown())
        except Exception as err:  # never let a message kill the comm: answer with the reason
            request_id = content.get("id") if isinstance(content, dict) else None
            reply, buffers = protocol.error_reply(request_id, err), []
        except KeyboardInterrupt:  # the stop button while a layer was recomputed: answer, then stop
            request_id = content.get("id") if isinstance(content, dict) else None
            self.widget.send(protocol.error_reply(request_id, protocol.malformed(INTERRUPTED)), [])
            raise
        self.widget.send(reply, buffers)

    def attempt(self, action: Callable[[], Any]) -> None:
        try:
            action()
        except AttnWidgetError as err:
            self.show_errors(str(err))
