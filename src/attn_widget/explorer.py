"""The widget: synced traits and the message protocol. No tensor maths here (see analysis.py)."""

from __future__ import annotations

import gc
import math
import pathlib
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import anywidget
import numpy as np
import torch
import traitlets
from traitlets import Bool, Bytes, Dict, Enum, Float, Int, List, TraitError, Unicode

from . import circuits_vis, compare, protocol, reductions, saving, snapshot, wire
from .analysis import PromptAnalysis, check_head, check_layer, repeated_tokens_scores
from .backends import backend_for
from .classify import classify_heads
from .contract import COLOR_SCALES, REPEATED_TOKENS, SHADE_BY
from .errors import AttnWidgetError, ModelError, SelectionError, WeightsError
from .explorer_extras import ExplorerExtras
from .loading import resolve_model
from .summary import HeadSummary, summarize
from .weighing import Weighing
from .weighting import WEIGHTINGS

STATIC = pathlib.Path(__file__).parent / "static"
DEFAULT_PROMPT = (
    "When Mary and John went to the store, Mary gave a drink to John. "
    "Then Mary and John went to the park, Mary gave a ball to"
)
PROGRESS_INTERVAL_S = 0.5
"""How often the score views hear of layers finished while a long prompt is reduced."""
INTERRUPTED = "Interrupted while running the model: the previous prompt is still shown."


class AttentionExplorer(anywidget.AnyWidget, ExplorerExtras):
    """Interactive attention explorer for a model's heads on a prompt.

    `prompt`, `layer`, `head` and `metric` are synced with the front end both ways; the rest
    is read-only state the views draw. Single-head patterns travel on request as binary messages.
    """

    _esm = STATIC / "widget.js"
    _css = STATIC / "widget.css"

    prompt = Unicode("").tag(sync=True)
    layer = Int(0).tag(sync=True)
    head = Int(0).tag(sync=True)
    metric = Unicode(REPEATED_TOKENS).tag(sync=True)

    tokens = List(Unicode(), read_only=True).tag(sync=True)
    n_layers = Int(0, read_only=True).tag(sync=True)
    n_heads = Int(0, read_only=True).tag(sync=True)
    model_name = Unicode("", read_only=True).tag(sync=True)
    score_table = Dict(read_only=True).tag(sync=True)
    scored_layers = Int(0, read_only=True).tag(sync=True)
    """How many layers' scores are in `score_table` so far (rows of the others are null)."""
    thumbnails = Bytes(b"", read_only=True).tag(sync=True)
    thumbnail_side = Int(0, read_only=True).tag(sync=True)
    revision = Int(0, read_only=True).tag(sync=True)
    error = Unicode("").tag(sync=True)
    read_only_prompt = Bool(False, read_only=True).tag(sync=True)
    head_classes = List(List(Unicode()), read_only=True).tag(sync=True)
    summary_rows = List(Dict(), read_only=True).tag(sync=True)

    color_scale = Enum(COLOR_SCALES, "linear").tag(sync=True)
    focus_token = Int(-1).tag(sync=True)
    """The token the views focus on (hovered or locked in the token strip), -1 for none."""
    focus_locked = Bool(False).tag(sync=True)
    shade_by = Enum(SHADE_BY, "received").tag(sync=True)
    """Token strip shading: attention each token receives from the focused one, or gives to it."""
    snapshot_key = Unicode(read_only=True).tag(sync=True)
    """Names this explorer's static snapshot output (snapshot.py), which the live view hides."""

    weighting = Enum(WEIGHTINGS, "attention").tag(sync=True)
    """What the heatmap, thumbnails and scores weigh: attention, or `||A f(x)||` (value-weighted)."""
    compare_prompt = Unicode("").tag(sync=True)
    """A second prompt of the same token count; the views then show A(prompt) - A(compare_prompt)."""
    answer = Unicode("").tag(sync=True)
    counterfactual = Unicode("").tag(sync=True)
    """Token strings for logit attribution: answer minus counterfactual (empty: the answer's logit)."""
    attribution = List(Float(), read_only=True).tag(sync=True)
    """Per-source logit attribution of the selected head at the attributed query (empty: no answer)."""
    attribution_query = Int(-1, read_only=True).tag(sync=True)

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
        self.model = resolve_model(model)
        self._backend = backend_for(self.model, tokenizer=tokenizer, tokens=tokens)
        self._analysis: PromptAnalysis | None = None
        self._weighing = Weighing(self._backend)
        # A property of the model, not of the prompt: one batched pass, kept for every prompt.
        # Precomputed attention has no model to run it on; its score views go without.
        self._repeated_tokens_result: np.ndarray | None = (
            repeated_tokens_scores(self._backend) if self._backend.runs_tokens else None
        )
        # Traits whose validity depends on the prompt's results are set once it has run.
        after_prompt = {name: kwargs.pop(name) for name in ("metric", "focus_token", "focus_locked") if name in kwargs}
        super().__init__(**kwargs)
        self.set_trait("snapshot_key", f"attn-widget-{uuid.uuid4().hex}")
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

    # ---- Python API -------------------------------------------------------------------

    @property
    def scores(self) -> dict[str, np.ndarray]:
        """Per-head scores for the current prompt: metric -> `(n_layers, n_heads)` array."""
        return {name: values.copy() for name, values in self._current().scores.items()} | self._extra_scores()

    def pattern(self, layer: int, head: int, weighting: str = "attention") -> np.ndarray:
        """The `(n_tokens, n_tokens)` float32 attention pattern of one head on the current prompt;
        `weighting="value"`: `||A[i, j] f(x_j)||`, the size of what the head moves from j to i."""
        return self._weighing.pattern(self._current(), layer, head, weighting).float().cpu().numpy()

    def pattern_diff(self, layer: int, head: int, weighting: str | None = None) -> np.ndarray:
        """`A(prompt) - A(compare_prompt)` of one head, in the given (default: selected) weighting
        (value weighting: the difference of the rows' shares, as the views show them)."""
        weighting = self.weighting if weighting is None else weighting
        return self._weighing.diff(self._current(), layer, head, weighting).float().cpu().numpy()

    def logit_attribution(self, layer: int, head: int, query: int | None = None) -> np.ndarray:
        """`(n_tokens,)` float32: what each source position contributes, through this head, to
        logit(answer) - logit(counterfactual) at `query` (default: the last token)."""
        query = self._weighing.query(self._current(), query)
        return self._weighing.head_attribution(self._current(), layer, head, query, self.answer, self.counterfactual)

    def direct_logit_attribution(self, query: int | None = None) -> np.ndarray:
        """`(n_layers, n_heads)`: each head's direct logit attribution (its sources summed)."""
        query = self._weighing.query(self._current(), query)
        return self._weighing.direct_logit_attribution(self._current(), query, self.answer, self.counterfactual)

    def circuitsvis(self, layer: int | None = None) -> Any:
        """The reference notebook's CircuitsVis view of a layer (default: the selected one)."""
        layer = self.layer if layer is None else check_layer(self._backend, layer)
        patterns = self._current().layer_pattern(layer).float().cpu().numpy()
        return circuits_vis.attention_heads(self.tokens, patterns)

    def run_repeated_tokens_test(self, seq_len: int = 50, batch: int = 8, seed: int = 0) -> np.ndarray:
        """Runs the repeated random token test again with these settings and shows its result as the
        "repeated_tokens" metric: `(n_layers, n_heads)` induction scores (see analysis.py)."""
        result = repeated_tokens_scores(self._backend, seq_len=seq_len, batch=batch, seed=seed)
        self._repeated_tokens_result = result
        self._publish_scores()
        return np.array(result, copy=True)

    def summary(self, top_k: int = 5) -> HeadSummary:
        """The reference notebook's summary: top induction heads (repeated random token test),
        most focused, most diffuse and longest-range heads on the current prompt."""
        scores = self._current().scores
        induction = scores["induction"] if self._repeated_tokens_result is None else self._repeated_tokens_result
        return summarize(scores, induction, top_k=top_k)

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
        return saving.save(self, path, view, scale, theme, layers)  # type: ignore[arg-type]

    def _ipython_display_(self) -> None:
        snapshot.show(self)  # the live widget, and a snapshot that saved notebooks keep

    # ---- trait validation: bad values raise from Python, show in the widget -----------

    @traitlets.validate("prompt")
    def _validate_prompt(self, proposal: dict[str, Any]) -> str:
        """A prompt is valid when the model runs on it: run it, and refuse it if that fails."""
        prompt = str(proposal["value"])  # a Unicode trait: already a str
        if not self._keep_analysis:
            self._run_model(prompt)
        return prompt

    def _run_model(self, prompt: str) -> None:
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
            self._forget_extras()
            self._publish_analysis(previous)
            self._refresh_extras()

    @traitlets.validate("weighting")
    def _check_weighting(self, proposal: dict[str, Any]) -> str:
        weighting = str(proposal["value"])
        if weighting == "value" and self._analysis is not None:
            with _refused_as_trait_error():
                self._weighing.summary(self._analysis, "value")  # raises before the switch
        return weighting

    @traitlets.validate("compare_prompt")
    def _run_compare(self, proposal: dict[str, Any]) -> str:
        text = str(proposal["value"])
        self._weighing.set_compare(text, self._analysis)  # raises PromptError
        return text

    @traitlets.validate("answer", "counterfactual")
    def _check_answer(self, proposal: dict[str, Any]) -> str:
        text = str(proposal["value"])
        with _refused_as_trait_error():
            self._weighing.answer_id(text)  # raises AnswerError / WeightsError
        return text

    @traitlets.observe("weighting", "compare_prompt", "answer", "counterfactual")
    def _on_weighing_change(self, change: dict[str, Any]) -> None:
        if self._analysis is not None and not self._keep_analysis:
            self._publish_weighed(bump_revision=change["name"] in ("weighting", "compare_prompt"))

    @traitlets.observe("layer", "head", "focus_token", "focus_locked")
    def _on_selection_change(self, change: dict[str, Any]) -> None:
        if not self.answer or self._analysis is None:
            return
        moved = self._attributed_query() != self.attribution_query  # only a locked focus moves it
        if moved or change["name"] in ("layer", "head"):
            self._publish_weighed(scores_too=moved)

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

    def set_state(self, sync_data: dict[str, Any]) -> None:
        """Front-end updates: a rejected value shows in the widget instead of a kernel traceback, and
        every trait of the update goes back to its previous value, here and in every view."""
        if not isinstance(sync_data, dict):
            self.error = str(protocol.malformed(f"a state update must be an object, got {sync_data!r:.200}"))
            return
        synced = [name for name in sync_data if name in self.keys]
        before = {name: getattr(self, name) for name in synced}
        analysis_before = self._analysis
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

    # ---- internals --------------------------------------------------------------------

    def _current(self) -> PromptAnalysis:
        if self._analysis is None:
            raise AttnWidgetError("No prompt has been run yet: set `prompt` first.")
        return self._analysis

    def _analyse_and_publish(self, prompt: str) -> None:
        """One forward pass; the selected head goes out at once, the scores as layers finish."""
        analysis = PromptAnalysis(self._backend, prompt, defer_scores=True)  # raises PromptError / ModelError
        self._analysis = analysis
        self._forget_extras()  # the last prompt's detectors and sinks
        self._weighing.new_prompt(analysis)
        self._publish_analysis(analysis)
        if not analysis.scored.all():
            self._push_selected_head(analysis)
            last = time.monotonic()

            def publish_progress(_layer: int) -> None:
                nonlocal last
                if time.monotonic() - last > PROGRESS_INTERVAL_S:
                    self._publish_partial(analysis)
                    last = time.monotonic()

            analysis.finish(publish_progress)
        self._refresh_extras()  # detectors and sinks: one more (dense) pass, for prompts up to 512 tokens
        self._publish_weighed(analysis)  # thumbnails, scores and attribution in the selected weighting
        if self._weighing.problem:  # a compare prompt of another token count: shown without it
            self.error = self._weighing.problem

    def _push_selected_head(self, analysis: PromptAnalysis) -> None:
        """The selected head, unasked (id None), so it is drawn before the scores are all in."""
        n, side = analysis.n_tokens, min(analysis.n_tokens, protocol.MAX_TILE_CELLS // 2)
        if n <= wire.FLOAT16_MAX_TOKENS:
            request: protocol.Request = protocol.PatternRequest(id=-1, layer=self.layer, head=self.head)
        else:
            request = protocol.TileRequest(-1, self.layer, self.head, 0, n, 0, n, side, side)
        try:
            reply, buffers = self._answer(request)
        except AttnWidgetError:
            return  # the front end asks for it as usual
        self.send({**reply, "id": None, "pushed": True}, buffers)

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
            self._publish_spread()
            classes = classify_heads(analysis.scores, analysis.n_tokens, self._repeated_tokens_result)
            self.set_trait("head_classes", classes)
            self.set_trait("summary_rows", [_json_row(asdict(row)) for row in self.summary().rows])
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
                    thumbnails = self._weighing.thumbnails(analysis, self.weighting)
                    self.set_trait("thumbnails", thumbnails.tobytes())
                    self.set_trait("thumbnail_side", int(thumbnails.shape[-1]))
                    self._weighing.attribution_target(self.answer, self.counterfactual, self._attributed_query())
                    self._publish_scores(analysis)
                if bump_revision:
                    self.set_trait("revision", self.revision + 1)  # the front end asks for heads again
                row = self._weighing.selected_attribution(analysis, self.layer, self.head)
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
        shown = self._weighing.score_table(analysis, self.weighting) if analysis.scored.all() else analysis.scores
        table = {name: _rounded(values) for name, values in shown.items()}
        if self._repeated_tokens_result is not None:
            table[REPEATED_TOKENS] = _rounded(self._repeated_tokens_result)
        table.update(self._extra_table())
        return table

    def _on_front_end_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        try:
            if isinstance(content, dict) and content.get("type") == "export":  # the save buttons
                reply, buffers = saving.export_reply(self, content)
                self.send(reply, buffers)
                return
            request = protocol.parse_request(content)
            reply, buffers = self._answer(request)
        except Exception as err:  # never let a message kill the comm: answer with the reason
            request_id = content.get("id") if isinstance(content, dict) else None
            reply, buffers = protocol.error_reply(request_id, err), []
        except KeyboardInterrupt:  # the stop button while a layer was recomputed: answer, then stop
            request_id = content.get("id") if isinstance(content, dict) else None
            self.send(protocol.error_reply(request_id, protocol.malformed(INTERRUPTED)), [])
            raise
        self.send(reply, buffers)

    def _answer(self, request: protocol.Request) -> tuple[dict[str, Any], list[bytes]]:
        analysis = self._current()
        if isinstance(request, protocol.HeadsRequest):
            return self._answer_heads(analysis, request)
        check_layer(self._backend, request.layer), check_head(self._backend, request.head)
        attention = self._weighing.shown(analysis, request.layer, self.weighting)
        n = analysis.n_tokens
        signed = self._weighing.comparing  # a difference in [-1, 1]: the views use diverging colours
        extra = {"signed": True} if signed else {}
        if isinstance(request, protocol.TileRequest) and signed:
            r = request
            mine, theirs = self._weighing.shown_pair(analysis, r.layer, self.weighting)
            cells = compare.signed_window(mine, theirs, r.head, r.q0, r.q1, r.k0, r.k1, r.rows, r.cols)
            meta = {"tile_rows": cells.shape[0], "tile_cols": cells.shape[1], **extra}
            return protocol.reply(r, self.revision, n, "uint8", **meta), [wire.to_bytes(compare.signed_to_uint8(cells))]
        if isinstance(request, protocol.TileRequest):
            r = request
            window = reductions.pooled_window(attention, r.head, r.q0, r.q1, r.k0, r.k1, r.rows, r.cols)
            undefined = wire.undefined_mask(window)
            n_undefined = int(undefined.sum())
            meta = {"tile_rows": window.shape[0], "tile_cols": window.shape[1], "undefined": n_undefined}
            buffers = [wire.to_bytes(reductions.to_uint8(window))]
            if n_undefined:  # a byte has no room for "undefined": say which cells are, in a second buffer
                buffers.append(wire.to_bytes(undefined))
            return protocol.reply(r, self.revision, n, "uint8", **meta), buffers
        if isinstance(request, protocol.RowRequest):
            if not 0 <= request.index < n:
                raise SelectionError(f"token {request.index} is out of range: the prompt has tokens 0 to {n - 1}")
            i = request.index
            if request.axis == "query":
                line = reductions.head_rows(attention, request.head, i, i + 1)[0]
            else:
                line = reductions.head_column(attention, request.head, i)
            return protocol.reply(request, self.revision, n, "float16", **extra), [wire.encode_line(line)]
        head = reductions.head_pattern(attention, request.head)
        if not signed and self.weighting == "attention":
            head = self._without_sinks(head, request.layer, request.head)
        if signed and wire.wire_dtype(n) == "uint8":
            data = wire.to_bytes(compare.signed_to_uint8(head))
            return protocol.reply(request, self.revision, n, "uint8", **extra), [data]
        dtype, data = wire.encode_pattern(head)
        return protocol.reply(request, self.revision, n, dtype, **extra), [data]

    def _answer_heads(
        self, analysis: PromptAnalysis, request: protocol.HeadsRequest
    ) -> tuple[dict[str, Any], list[bytes]]:
        """Prefetch: several heads as uint8 (enough to draw), each exactly what a request of its own
        would get (weighting, sinks), in layer order so that each layer is captured once."""
        for layer, head in request.heads:  # all checked before any work
            check_layer(self._backend, layer), check_head(self._backend, head)
        order = sorted(range(len(request.heads)), key=lambda i: request.heads[i][0])
        buffers: list[bytes] = [b""] * len(request.heads)
        shape = None
        n = analysis.n_tokens
        for i in order:
            layer, head = request.heads[i]
            t = request.tile
            single: protocol.Request = (
                protocol.PatternRequest(request.id, layer, head)
                if t is None
                else protocol.TileRequest(request.id, layer, head, t.q0, t.q1, t.k0, t.k1, t.rows, t.cols)
            )
            reply, data = self._answer(single)
            if t is not None:
                shape = (int(reply["tile_rows"]), int(reply["tile_cols"]))
            # Signed differences and undefined weights do not fit plain bytes: those heads go
            # empty, and the front end asks for them alone.
            if reply.get("signed") or reply.get("undefined") or len(data) != 1:
                continue
            if reply["dtype"] == "float16":
                weights = torch.from_numpy(np.frombuffer(data[0], np.float16).astype(np.float32))
                if not bool(weights.isfinite().all()):
                    continue
                buffers[i] = wire.to_bytes(reductions.to_uint8(weights.reshape(n, n)))
            else:
                buffers[i] = data[0]
        return protocol.heads_reply(request, self.revision, n, shape), buffers


@contextmanager
def _refused_as_trait_error() -> Iterator[None]:
    """A model that cannot weigh: a TraitError too, so traitlets keeps the old value."""
    try:
        yield
    except ModelError as err:
        if isinstance(err, TraitError):
            raise
        raise WeightsError(str(err)) from err


def _rounded(values: np.ndarray) -> list[list[float | None]]:
    """Scores for JSON: NaN and infinity (from NaN weights, or a float16 model overflowing) are not
    JSON numbers, so an undefined score travels as null and the views say it is undefined."""
    return [[_json_number(v) for v in row] for row in values.astype(np.float64).round(5).tolist()]


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _json_number(v) if isinstance(v, float) else v for k, v in row.items()}


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
