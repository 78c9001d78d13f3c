"""The explorer's kernel side for one model: the current prompt's analysis, the view options and
research it is shown through, and the one path that runs a prompt and publishes its results to the
widget's traits. Also the answers to the front end's custom messages."""

from __future__ import annotations

import gc
import time
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
from attn_widget.widget import protocol, saving
from attn_widget.widget.answers import Shown, answer, pushed_head_request
from attn_widget.widget.json_numbers import json_matrix, json_row
from attn_widget.widget.research import Research
from attn_widget.widget.traits import ExplorerTraits
from attn_widget.widget.view import view_data
from attn_widget.widget.view_options import ViewOptions

PROGRESS_INTERVAL_S = 0.5
"""How often the score views hear of layers finished while a long prompt is reduced."""
INTERRUPTED = "Interrupted while running the model: the previous prompt is still shown."


class Session:
    def __init__(self, widget: ExplorerTraits, backend: Backend) -> None:
        self.widget, self.backend = widget, backend
        self.analysis: PromptAnalysis | None = None
        self.options = ViewOptions(backend)
        self.research = Research(widget, backend, self.current)
        self.more_scores: list[Callable[[], dict[str, list[list[float | None]]]]] = []
        """More metrics for the score views, each from a helper composed into the explorer."""
        # A property of the model, not of the prompt: one batched pass, kept for every prompt.
        # Precomputed attention has no model to run it on; its score views go without.
        self.repeated_tokens: np.ndarray | None = repeated_tokens_scores(backend) if backend.runs_tokens else None
        self.keep_analysis = False
        """Set while a rejected front-end update is rolled back: the prompt's validator runs nothing."""
        self.stepping = False
        """Set while the dataset stepper sets the prompt."""

    def summary(self, top_k: int = 5) -> HeadSummary:
        scores = self.current().scores
        induction = scores["induction"] if self.repeated_tokens is None else self.repeated_tokens
        return summarize(scores, induction, top_k=top_k)

    def roll_back(self, before: dict[str, Any], analysis: PromptAnalysis | None, message: str) -> None:
        """Puts the traits of a rejected update back (without re-running the model) and re-sends them:
        traitlets rolls back a TraitError only, and the front end already shows the rejected values.
        A new prompt that ran before another value of the same update failed is undone too."""
        self.show_again(analysis)
        self.keep_analysis = True
        try:
            with self.widget.hold_sync():
                for name, value in before.items():
                    self.widget.set_trait(name, value)
        finally:
            self.keep_analysis = False
        self.widget.error = message
        self.widget.send_state(list(before))

    # ---- running a prompt and publishing its results --------------------------------------

    def current(self) -> PromptAnalysis:
        if self.analysis is None:
            raise AttnWidgetError("No prompt has been run yet: set `prompt` first.")
        return self.analysis

    def shown(self) -> Shown:
        sinks = self.research.derived if self.widget.exclude_sinks else None
        return Shown(self.backend, self.current(), self.options, self.widget.weighting, self.widget.revision, sinks)

    def run_prompt(self, prompt: str) -> None:
        """`prompt` through the model, its results published. On any failure (bad prompt, the model
        raising or running out of memory, the stop button), even once the new prompt's first results
        are out, the previous prompt's analysis is shown again and `error` says what happened; the
        backend has already put the model back as it was. KeyboardInterrupt is the notebook's stop
        button: it goes on to the user once that is done."""
        previous = self.analysis
        try:
            self._analyse_and_publish(prompt)
        except KeyboardInterrupt:
            self._after_failure(previous, INTERRUPTED)
            raise
        except Exception as err:
            self._after_failure(previous, protocol.describe(err))
            raise

    def _after_failure(self, previous: PromptAnalysis | None, message: str) -> None:
        self.show_again(previous)
        # A failed pass may leave large intermediate tensors behind (out of memory above all).
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # a no-op until CUDA is in use
        self.widget.error = message

    def show_again(self, previous: PromptAnalysis | None) -> None:
        """Publishes `previous` again if a newer analysis replaced it."""
        if previous is not None and self.analysis is not previous:
            self.analysis = previous
            self.research.forget_prompt()
            self._publish_analysis(previous)
            self.refresh_research()

    def _analyse_and_publish(self, prompt: str) -> None:
        """One forward pass; the selected head goes out at once, the scores as layers finish."""
        analysis = PromptAnalysis(self.backend, prompt, defer_scores=True)  # raises PromptError / ModelError
        self.analysis = analysis
        self.research.forget_prompt()
        self.options.new_prompt(analysis)
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
        self.refresh_research()  # detectors and sinks
        self.publish_weighed(analysis)  # thumbnails, scores and attribution in the selected weighting
        if self.options.problem:  # a compare prompt of another token count: shown without it
            self.widget.error = self.options.problem

    def _push_selected_head(self) -> None:
        """The selected head, unasked (id None), so it is drawn before the scores are all in."""
        shown = self.shown()
        try:
            reply, buffers = answer(pushed_head_request(shown, self.widget.layer, self.widget.head), shown)
        except AttnWidgetError:
            return  # the front end asks for it as usual
        self.widget.send({**reply, "id": None, "pushed": True}, buffers)

    def refresh_research(self) -> None:
        """The prompt's detectors and sinks, then the scores; say which detectors failed (their metric
        is left out), follow the similarity view, leave dataset stepping if the prompt is new."""
        self.research.compute()
        self.publish_scores()
        if self.widget.dataset_index >= 0 and not self.stepping:  # a prompt of one's own
            self.widget.set_trait("dataset_index", -1)
        if self.widget.show_similarity:
            self.attempt(lambda: self.research.head_similarity("js"))
        if errors := self.research.errors():
            self.widget.error = " ".join(errors)

    def _publish_partial(self, analysis: PromptAnalysis) -> None:
        with self.widget.hold_sync():
            self.widget.set_trait("thumbnails", analysis.thumbnails.tobytes())
            self.widget.set_trait("score_table", self.score_table_json(analysis))
            self.widget.set_trait("scored_layers", int(analysis.scored.sum()))

    def _publish_analysis(self, analysis: PromptAnalysis) -> None:
        with self.widget.hold_sync():
            self.widget.set_trait("tokens", analysis.tokens)
            self.widget.set_trait("thumbnails", analysis.thumbnails.tobytes())
            self.widget.set_trait("thumbnail_side", int(analysis.thumbnails.shape[-1]))
            self.widget.focus_locked, self.widget.focus_token = False, -1
            if analysis.scored.all():
                self.publish_scores(analysis)
            else:
                self._publish_partial(analysis)
            self.widget.set_trait("revision", self.widget.revision + 1)
            self.widget.error = ""

    def publish_scores(self, analysis: PromptAnalysis | None = None) -> None:
        """Score table, head types and summary: small, so they travel as traits."""
        analysis = analysis or self.current()
        with self.widget.hold_sync():
            self.widget.set_trait("score_table", self.score_table_json(analysis))
            self.widget.set_trait("scored_layers", self.widget.n_layers)
            self.widget.set_trait("score_spread", self.research.spread())
            classes = classify_heads(analysis.scores, analysis.n_tokens, self.repeated_tokens)
            self.widget.set_trait("head_classes", classes)
            self.widget.set_trait("summary_rows", [json_row(asdict(row)) for row in self.summary().rows])
            if self.widget.metric not in self.widget.score_table:  # a change metric of a compare prompt that is gone
                self.widget.metric = REPEATED_TOKENS if REPEATED_TOKENS in self.widget.score_table else "induction"

    def publish_weighed(
        self, analysis: PromptAnalysis | None = None, bump_revision: bool = False, scores_too: bool = True
    ) -> None:
        """Thumbnails, scores and attribution in the selected weighting (and against the compare
        prompt); a failure (say, a compare prompt of another length) shows in `error`."""
        analysis = analysis or self.current()
        try:
            with self.widget.hold_sync():
                if scores_too:
                    thumbnails = self.options.thumbnails(analysis, self.widget.weighting)
                    self.widget.set_trait("thumbnails", thumbnails.tobytes())
                    self.widget.set_trait("thumbnail_side", int(thumbnails.shape[-1]))
                    self.options.attribution_target(
                        self.widget.answer, self.widget.counterfactual, self.attributed_query()
                    )
                    self.publish_scores(analysis)
                if bump_revision:
                    self.widget.set_trait("revision", self.widget.revision + 1)  # the front end asks for heads again
                row = self.options.selected_attribution(analysis, self.widget.layer, self.widget.head)
                self.widget.set_trait("attribution", [] if row is None else row.astype(np.float64).round(6).tolist())
                self.widget.set_trait("attribution_query", self.attributed_query() if row is not None else -1)
        except AttnWidgetError as err:
            self.widget.error = str(err)

    def attributed_query(self) -> int:
        """The locked focus token, else the last one."""
        return (
            self.widget.focus_token
            if self.widget.focus_locked and self.widget.focus_token >= 0
            else len(self.widget.tokens) - 1
        )

    def score_table_json(self, analysis: PromptAnalysis) -> dict[str, list[list[float | None]]]:
        """Scores as JSON: layers not yet scored (and undefined scores) travel as null. Once all are
        in: in the selected weighting, with change metrics (compare prompt) and DLA (answer)."""
        done = analysis.scored.all()
        shown = self.options.score_table(analysis, self.widget.weighting) if done else analysis.scores
        table = {name: json_matrix(values) for name, values in shown.items()}
        if self.repeated_tokens is not None:
            table[REPEATED_TOKENS] = json_matrix(self.repeated_tokens)
        for more in self.more_scores:
            table |= more()
        return table | self.research.table()

    def on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        try:
            if isinstance(content, dict) and content.get("type") == "export":  # the save buttons
                reply, buffers = saving.export_reply(content, lambda theme: view_data(self.widget, self.shown(), theme))
                self.widget.send(reply, buffers)
                return
            reply, buffers = answer(protocol.parse_request(content), self.shown())
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
            self.widget.error = str(err)
