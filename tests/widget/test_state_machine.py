"""The explorer driven through random sequences of what a researcher and the front end do: prompts
from Python and from the prompt box (including refused ones), the selection, weighting, compare
prompt, answer, sinks, focus, detectors, the dataset stepper, head/tile/row requests and saves.
After every step: prompt, tokens, thumbnails, scores, attribution and sinks belong to one prompt,
each error is there exactly while its cause holds, and a saved figure shows the requested head."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from PIL import Image
from prompt_consistency import assert_one_prompt

from attn_widget import AttentionExplorer
from attn_widget.analysis.prompt import PromptAnalysis
from attn_widget.errors import AttnWidgetError
from attn_widget.export.colormaps import apply_scale, lut_index, pattern_lut, signed_lut, signed_shades
from attn_widget.export.figure import heatmap
from conftest import recording
from tiny_models import make_tokenizer, native_model

PROMPTS = [
    "When mary and john went to the store mary gave a drink to john",
    "When john and mary went to the store john gave a drink to mary",  # the first's token count
    "the cat sat on the mat",
    "the cat sat",
    "mary gave john a ball and the cat sat on the mat in the park",
]
BAD_PROMPTS = ["", "   ", "John \udc80"]
LONG = 8
"""The detector below fails on prompts longer than this: its error holds exactly then."""

_model = None


def tiny_model():
    global _model
    if _model is None:
        _model = native_model(make_tokenizer(Path(tempfile.mkdtemp())), n_layers=2, attn_only=False)
    return _model


def short_only(ids: torch.Tensor) -> torch.Tensor:
    if len(ids) > LONG:
        raise RuntimeError("too long for me")
    return torch.eye(len(ids))


def requested(w, layer: int, head: int) -> tuple[np.ndarray, bool]:
    w._on_front_end_message(w, {"type": "pattern", "id": 77, "layer": layer, "head": head}, [])
    reply, buffers = w.sent[-1]
    assert reply["type"] == "pattern", reply
    n = reply["n"]
    return np.frombuffer(buffers[0], "<f2").astype(np.float32).reshape(n, n), bool(reply.get("signed"))


class ExplorerMachine(RuleBasedStateMachine):
    @initialize()
    def start(self):
        self.w = recording(AttentionExplorer(tiny_model(), prompt=PROMPTS[0], layer=1, head=2))
        self.w.run_dataset(PROMPTS[2:], batch_size=2, progress=False)
        self.prompt = PROMPTS[0]
        self.references: dict[str, PromptAnalysis] = {}
        self.folder = Path(tempfile.mkdtemp())
        self.refused_compare = False
        """A compare prompt was just refused: the error says why until the next change republishes."""

    # ---- prompts ------------------------------------------------------------------------

    @rule(prompt=st.sampled_from(PROMPTS), from_front_end=st.booleans())
    def set_prompt(self, prompt, from_front_end):
        # never refused because of the compare prompt, answer or focus of the previous one
        if from_front_end:
            self.w.set_state({"prompt": prompt})
        else:
            self.w.prompt = prompt
        self.prompt, self.refused_compare = prompt, False

    @rule(prompt=st.sampled_from(BAD_PROMPTS))
    def refused_prompt(self, prompt):
        self.w.set_state({"prompt": prompt})
        assert self.w.error and self.w.prompt == self.prompt
        with pytest.raises(AttnWidgetError):
            self.w.prompt = prompt

    @rule(index=st.integers(-1, 4), with_prompt=st.booleans())
    def dataset_step(self, index, with_prompt):
        update = {"dataset_index": index}
        if with_prompt and 0 <= index < 3:
            update["prompt"] = PROMPTS[2 + index]
        self.w.set_state(update)
        if 0 <= index < 3:
            self.prompt, self.refused_compare = PROMPTS[2 + index], False
            assert self.w.dataset_index == index
        elif index > 2:
            assert "out of range" in self.w.error

    # ---- what the views show the prompt through -------------------------------------------

    @rule(layer=st.integers(-1, 2), head=st.integers(-1, 4) | st.booleans(), from_front_end=st.booleans())
    def select(self, layer, head, from_front_end):
        if from_front_end:
            self.w.set_state({"layer": layer, "head": head})
        else:
            with contextlib.suppress(AttnWidgetError):  # refused: the previous selection stays
                self.w.layer, self.w.head = layer, head

    @rule(weighting=st.sampled_from(["attention", "value"]))
    def weigh(self, weighting):
        self.w.set_state({"weighting": weighting})
        self.refused_compare = False

    @rule(compare=st.sampled_from(["", PROMPTS[0], PROMPTS[1], PROMPTS[2]]), from_front_end=st.booleans())
    def compare(self, compare, from_front_end):
        if from_front_end:
            self.w.set_state({"compare_prompt": compare})
        else:
            with contextlib.suppress(AttnWidgetError):  # another token count: refused
                self.w.compare_prompt = compare
        self.refused_compare = self.w.compare_prompt != compare

    @rule(answer=st.sampled_from(["", " mary", " john"]))
    def attribute(self, answer):
        self.w.set_state({"answer": answer})

    @rule(exclude=st.booleans(), scale=st.sampled_from(["linear", "log", "row"]))
    def style(self, exclude, scale):
        self.w.set_state({"exclude_sinks": exclude, "color_scale": scale})

    @rule(token=st.integers(-1, 20), lock=st.booleans())
    def focus(self, token, lock):
        self.w.set_state({"focus_token": token, "focus_locked": lock})

    @rule(add=st.booleans())
    def detector(self, add):
        with contextlib.suppress(AttnWidgetError):  # already there, not there, or failing on this prompt
            if add:
                self.w.add_detector("short_only", short_only)
            else:
                self.w.remove_detector("short_only")

    # ---- messages and saves -----------------------------------------------------------------

    @rule(
        kind=st.sampled_from(["pattern", "tile", "row"]),
        layer=st.integers(0, 2),
        head=st.integers(0, 3),
        a=st.integers(0, 20),
        b=st.integers(1, 20),
    )
    def request(self, kind, layer, head, a, b):
        message = {"type": kind, "id": 5, "layer": layer, "head": head}
        if kind == "tile":
            message |= {"q0": a, "q1": a + b, "k0": 0, "k1": b, "rows": 4, "cols": 4}
        elif kind == "row":
            message |= {"index": a, "axis": "query" if b % 2 else "key"}
        self.w._on_front_end_message(self.w, message, [])
        reply, _ = self.w.sent[-1]
        n = len(self.w.tokens)
        inside = layer < self.w.n_layers and (
            kind == "pattern" or (kind == "tile" and a + b <= n and b <= n) or (kind == "row" and a < n)
        )
        assert reply["type"] == (kind if inside else "error"), (message, reply)
        if inside:
            assert reply["n"] == n and reply["revision"] == self.w.revision

    @rule(theme=st.sampled_from(["light", "dark"]))
    def save(self, theme):
        w = self.w
        path = w.save(self.folder / "head.png", view="heatmap", scale=1, theme=theme)
        image = np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB"))
        matrix = next(i for i in heatmap(w.view_data(theme)).items if getattr(i, "role", "") == "matrix")
        n = len(w.tokens)
        ys = (matrix.y + 12 + 40 + (np.arange(n) + 0.5) * matrix.cell).astype(int)
        xs = (matrix.x + 12 + (np.arange(n) + 0.5) * matrix.cell).astype(int)
        head, signed = requested(w, w.layer, w.head)
        if signed:
            expected = signed_lut(theme)[lut_index(signed_shades(head, w.color_scale))]
        else:
            expected = pattern_lut(theme)[lut_index(apply_scale(head, w.color_scale))]
        np.testing.assert_array_equal(image[np.ix_(ys, xs)], expected)

    # ---- after every step ---------------------------------------------------------------------

    @invariant()
    def one_prompt(self):
        w = self.w
        assert w.prompt == self.prompt
        if self.prompt not in self.references:
            self.references[self.prompt] = PromptAnalysis(w._session.backend, self.prompt)
        assert_one_prompt(w, self.references[self.prompt])
        shown, _ = requested(w, w.layer, w.head)
        assert shown.shape == (len(w.tokens),) * 2
        np.testing.assert_array_equal(shown, w.view_data().pattern)

    @invariant()
    def errors_while_their_cause_holds(self):
        w = self.w
        n = len(w.tokens)
        different_length = w.compare_prompt and len(w._session.options._compare.tokens) != n
        if different_length:  # shown without the comparison, and said so
            assert "compare prompt is" in w.error, w.error
        elif not self.refused_compare:
            assert "compare prompt is" not in w.error, (w.compare_prompt, w.error)
        failing = "short_only" in w.detectors and n > LONG
        assert ("too long for me" in w.error) == failing, w.error
        assert ("short_only" in w.score_table) == ("short_only" in w.detectors and not failing)


TestExplorerMachine = ExplorerMachine.TestCase
TestExplorerMachine.settings = settings(
    max_examples=30,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
