"""The explorer's state beyond plain attention: the selected weighting, the compare prompt and the
logit attribution target. It answers the explorer's questions (what to draw, which scores) and
keeps what each prompt computed, so switching back and forth costs no second pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from attn_widget.analysis.prompt import PromptAnalysis, check_head, check_layer
from attn_widget.analysis.prompt_values import PromptValues
from attn_widget.backends.tokens import token_id
from attn_widget.backends.weights import OutputWeights, output_weights
from attn_widget.contract import CHANGE, CHANGE_SUFFIX, DLA, WEIGHTINGS
from attn_widget.errors import AttnWidgetError, PromptError
from attn_widget.maths import difference as compare
from attn_widget.maths.difference import Difference
from attn_widget.maths.layer import LayerAttention
from attn_widget.maths.reductions import head_pattern


def _check_weighting(weighting: str) -> str:
    if weighting not in WEIGHTINGS:
        raise AttnWidgetError(f"unknown weighting {weighting!r}: choose one of {', '.join(WEIGHTINGS)}")
    return weighting


class ViewOptions:
    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self._weights: OutputWeights | None = None
        self._values: dict[int, PromptValues] = {}
        self._main: PromptAnalysis | None = None
        self._compare: PromptAnalysis | None = None
        self._compare_text = ""
        self._last_compare: tuple[str, PromptAnalysis] | None = None
        """The compare prompt last run: clearing and setting it again needs no second pass."""
        self._changes: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}
        """(id of the compare prompt's analysis, weighting) -> change metrics and thumbnails."""
        self._target: tuple[str, str, int] | None = None
        self.problem = ""
        """Why the compare prompt is not shown (another token count), or empty."""

    # ---- per prompt --------------------------------------------------------------------

    def weights(self) -> OutputWeights:
        if self._weights is None:
            self._weights = output_weights(self.backend)  # ModelError for precomputed attention
        return self._weights

    def values(self, analysis: PromptAnalysis) -> PromptValues:
        key = id(analysis)
        if key not in self._values:
            self._values[key] = PromptValues(analysis, self.weights())
        return self._values[key]

    def new_prompt(self, analysis: PromptAnalysis) -> None:
        self._main = analysis
        self._prune()
        self._changes = {}
        self.problem = ""
        if self._compare is not None:
            self.problem = _length_problem(analysis, self._compare) or ""

    def saved(self) -> tuple[Any, ...]:
        """What a new prompt changes here, to put back if its transition fails."""
        return self._main, self._changes, self.problem, self._target

    def restore(self, saved: tuple[Any, ...]) -> None:
        self._main, self._changes, self.problem, self._target = saved

    def pattern(self, analysis: PromptAnalysis, layer: int, head: int, weighting: str) -> torch.Tensor:
        if _check_weighting(weighting) == "value":
            return self.values(analysis).value_pattern(layer, head)
        return analysis.head_pattern(layer, head)

    def _attention(self, analysis: PromptAnalysis, layer: int, weighting: str) -> LayerAttention:
        check_layer(self.backend, layer)
        if _check_weighting(weighting) == "value":
            return self.values(analysis).attention(layer, weighting)
        return analysis.capture(layer)

    def shown(self, analysis: PromptAnalysis, layer: int, weighting: str) -> LayerAttention:
        """What the heatmap reads of a layer: attention in the weighting, or (with a compare prompt)
        its signed change `Difference(prompt, compare)`."""
        return (
            Difference(*self.shown_pair(analysis, layer, weighting))
            if self.comparing
            else self._attention(analysis, layer, weighting)
        )

    def shown_pair(self, analysis: PromptAnalysis, layer: int, weighting: str) -> tuple[LayerAttention, LayerAttention]:
        """Both prompts' attention of a layer in the weighting."""
        return self._attention(analysis, layer, weighting), self._attention(self._compared(), layer, weighting)

    def weighted_scores(self, analysis: PromptAnalysis, weighting: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
        if _check_weighting(weighting) == "value":
            return self.values(analysis).value_scores
        return analysis.scores, analysis.thumbnails

    # ---- two prompts -------------------------------------------------------------------

    @property
    def comparing(self) -> bool:
        return self._compare is not None and not self.problem

    def set_compare(self, text: str, analysis: PromptAnalysis | None) -> None:
        """Runs the compare prompt once; refuses one of another token count than the prompt."""
        if not text:
            self._compare, self._compare_text, self.problem = None, "", ""
        elif text != self._compare_text or self._compare is None:
            if self._last_compare is not None and self._last_compare[0] == text:
                other = self._last_compare[1]
            else:
                other = PromptAnalysis(self.backend, text)  # raises PromptError
                self._last_compare = (text, other)
            if analysis is not None and (problem := _length_problem(analysis, other)):
                raise PromptError(problem)
            self._compare, self._compare_text, self.problem = other, text, ""
        self._prune()

    def _prune(self) -> None:
        """Forget what prompts no longer shown computed (its values keep its analysis alive)."""
        last = self._last_compare[1] if self._last_compare else None
        keep = {id(a) for a in (self._main, self._compare, last) if a is not None}
        self._values = {k: v for k, v in self._values.items() if k in keep}
        self._changes = {k: v for k, v in self._changes.items() if k[0] in keep}

    def _compared(self) -> PromptAnalysis:
        if self._compare is None:
            raise AttnWidgetError("No compare prompt: set `compare_prompt` to a prompt of the same token count.")
        if self.problem:
            raise PromptError(self.problem)
        return self._compare

    def diff(self, analysis: PromptAnalysis, layer: int, head: int, weighting: str) -> torch.Tensor:
        check_head(self.backend, head)
        return head_pattern(Difference(*self.shown_pair(analysis, layer, weighting)), head)

    def _change(self, analysis: PromptAnalysis, weighting: str) -> tuple[np.ndarray, np.ndarray]:
        """Per head mean row L1 change `[layers, heads]` and change thumbnails, layer by layer."""
        key = (id(self._compared()), weighting)
        if key not in self._changes:
            l1, thumbs = [], []
            for layer in range(self.backend.n_layers):
                a, b = self.shown_pair(analysis, layer, weighting)
                l1.append(compare.row_l1_change(a, b))
                thumbs.append(compare.change_thumbnails(a, b, analysis.token_ids))
            self._changes[key] = (torch.stack(l1).cpu().numpy(), torch.stack(thumbs).cpu().numpy())
        return self._changes[key]

    def thumbnails(self, analysis: PromptAnalysis, weighting: str) -> np.ndarray:
        if self.comparing:
            return self._change(analysis, weighting)[1]
        return self.weighted_scores(analysis, weighting)[1]

    def score_table(self, analysis: PromptAnalysis, weighting: str) -> dict[str, np.ndarray]:
        """Scores in the weighting; with a compare prompt, the change metrics; with an answer, DLA."""
        table = dict(self.weighted_scores(analysis, weighting)[0])
        if self.comparing:
            other = self.weighted_scores(self._compared(), weighting)[0]
            table[CHANGE] = self._change(analysis, weighting)[0]
            for name in list(other):
                table[name + CHANGE_SUFFIX] = table[name] - other[name]
        if self._target is not None:
            answer, counterfactual, query = self._target
            table[DLA] = self.direct_logit_attribution(analysis, query, answer, counterfactual)
        return table

    # ---- logit attribution -------------------------------------------------------------

    def answer_id(self, text: str) -> int | None:
        if not text:
            return None
        self.weights()  # precomputed attention: say so before anything else
        return token_id(self.backend, text)

    def query(self, analysis: PromptAnalysis, query: int | None) -> int:
        return analysis.n_tokens - 1 if query is None else int(query)

    def _ids(self, answer: str, counterfactual: str) -> tuple[int, int | None]:
        answer_id = self.answer_id(answer)
        if answer_id is None:
            raise AttnWidgetError("Set `answer` (a token string such as ' John') before asking for logit attribution.")
        return answer_id, self.answer_id(counterfactual)

    def head_attribution(
        self, analysis: PromptAnalysis, layer: int, head: int, query: int, answer: str, counterfactual: str
    ) -> np.ndarray:
        check_layer(self.backend, layer), check_head(self.backend, head)
        return self.values(analysis).head_attribution(layer, head, query, *self._ids(answer, counterfactual))

    def direct_logit_attribution(
        self, analysis: PromptAnalysis, query: int, answer: str, counterfactual: str
    ) -> np.ndarray:
        return self.values(analysis).direct_logit_attribution(query, *self._ids(answer, counterfactual))

    def attribution_target(self, answer: str, counterfactual: str, query: int) -> None:
        """What the score table's DLA and the `attribution` trait are about (no answer: nothing)."""
        self._target = (answer, counterfactual, query) if answer else None

    def selected_attribution(self, analysis: PromptAnalysis, layer: int, head: int) -> np.ndarray | None:
        if self._target is None:
            return None
        answer, counterfactual, query = self._target
        return self.head_attribution(analysis, layer, head, query, answer, counterfactual)


def _length_problem(analysis: PromptAnalysis, other: PromptAnalysis) -> str | None:
    if analysis.n_tokens == other.n_tokens:
        return None
    return (
        f"The compare prompt is {other.n_tokens} tokens long and the prompt {analysis.n_tokens}: "
        "comparing patterns needs the same token count (change a name for another one-token name)."
    )
