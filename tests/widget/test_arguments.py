"""Every public method and trait checks its arguments at the boundary: a clear AttnWidgetError (or
a traitlets TraitError for a trait's own type) naming the argument, never a deep KeyError or a
silent conversion. Bools are not integers, floats are not rounded, text must be encodable."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from traitlets import TraitError

from attn_widget import AttentionExplorer
from attn_widget.contract import RESERVED_METRICS
from attn_widget.errors import AttnWidgetError, PromptError
from attn_widget.maths.detectors import DetectorError

LONE = "John \udc80 Mary"  # what a bad decode with errors="surrogateescape" leaves


@pytest.mark.parametrize("name", ["layer", "head"])
@pytest.mark.parametrize("value", [True, False, 1.5, None, "1", np.float32(1.0)])
def test_layer_and_head_take_whole_numbers_only(explorer, name, value):
    before = getattr(explorer, name)
    with pytest.raises((AttnWidgetError, TraitError), match=name):
        setattr(explorer, name, value)
    assert getattr(explorer, name) == before and type(getattr(explorer, name)) is int
    explorer.set_state({name: value})  # from the front end: shown, not raised
    assert getattr(explorer, name) == before and explorer.error


def test_numpy_integers_are_whole_numbers(explorer):
    explorer.layer = np.int64(2)
    assert explorer.layer == 2 and type(explorer.layer) is int


CALLS = [
    ("pattern", {"layer": 1.5, "head": 0}, "layer"),
    ("pattern", {"layer": 0, "head": True}, "head"),
    ("pattern", {"layer": "0", "head": 0}, "layer"),
    ("pattern_diff", {"layer": None, "head": 0}, "layer"),
    ("circuitsvis", {"layer": 1.0}, "layer"),
    ("logit_attribution", {"layer": 0, "head": 0, "query": 1.5}, "query"),
    ("logit_attribution", {"layer": 0, "head": 0, "query": 99}, "query"),
    ("direct_logit_attribution", {"query": True}, "query"),
    ("summary", {"top_k": -1}, "top_k"),
    ("summary", {"top_k": 2.0}, "top_k"),
    ("run_repeated_tokens_test", {"seq_len": 20.5}, "seq_len"),
    ("run_repeated_tokens_test", {"seq_len": None}, "seq_len"),
    ("run_repeated_tokens_test", {"batch": "8"}, "batch"),
    ("run_repeated_tokens_test", {"batch": 0}, "batch"),
    ("run_repeated_tokens_test", {"seed": 1.5}, "seed"),
    ("retrieval_test", {"haystack_len": 1.5}, "haystack_len"),
    ("retrieval_test", {"needle_len": None}, "needle_len"),
    ("retrieval_test", {"samples": "8"}, "samples"),
    ("retrieval_test", {"samples": 0}, "samples"),
    ("retrieval_test", {"seed": False}, "seed"),
    ("run_dataset", {"prompts": ["a b"], "batch_size": 2.5}, "batch_size"),
    ("run_dataset", {"prompts": ["a b"], "batch_size": None}, "batch_size"),
    ("run_dataset", {"prompts": "just one string"}, "prompts"),
    ("run_dataset", {"prompts": ["fine", LONE]}, r"prompts\[1\]"),
    ("head_similarity", {"metric": "cosine"}, "metric"),
    ("view_data", {"theme": "sepia"}, "theme"),
]


@pytest.mark.parametrize(("method", "kwargs", "named"), CALLS, ids=[f"{m}-{k}" for m, k, _ in CALLS])
def test_public_methods_name_the_bad_argument(explorer, method, kwargs, named):
    explorer.answer = ""  # (logit attribution raises for want of an answer otherwise, naming nothing)
    with pytest.raises(AttnWidgetError, match=named):
        getattr(explorer, method)(**kwargs)


def test_query_must_be_a_token_of_the_prompt(full_bridge):
    w = AttentionExplorer(full_bridge, prompt="the cat sat on the mat")
    w.answer = " mary"
    n = len(w.tokens)
    with pytest.raises(AttnWidgetError, match=r"query must be a whole number, got float 1\.5"):
        w.logit_attribution(0, 0, query=1.5)
    with pytest.raises(AttnWidgetError, match=f"query must be at most {n - 1}"):
        w.direct_logit_attribution(query=n)
    np.testing.assert_allclose(w.logit_attribution(0, 0, query=np.int32(1)), w.logit_attribution(0, 0, query=1))


def test_summary_returns_top_k_rows(explorer):
    assert len(explorer.summary(top_k=2).rows) <= 4 * 2  # each list of heads is at most top_k long
    with pytest.raises(AttnWidgetError, match="top_k must be at least 1"):
        explorer.summary(top_k=0)


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0, 0.0, 2.0, True, "0.3"])
def test_sink_threshold_is_a_share_in_0_1(explorer, value):
    with pytest.raises((AttnWidgetError, TraitError), match="sink_threshold"):
        explorer.sink_threshold = value
    assert explorer.sink_threshold == 0.3
    explorer.set_state({"sink_threshold": value})
    assert explorer.sink_threshold == 0.3 and "sink_threshold" in explorer.error
    explorer.sink_threshold = 1.0  # the ends that make sense are taken
    assert explorer.sink_threshold == 1.0


@pytest.mark.parametrize("scale", [math.nan, math.inf, 0, -2, True, "2", 1000])
def test_save_refuses_a_scale_that_is_not_a_positive_number(explorer, tmp_path, scale):
    with pytest.raises(AttnWidgetError, match="scale"):
        explorer.save(tmp_path / "x.svg", scale=scale)
    assert not (tmp_path / "x.svg").exists()


@pytest.mark.parametrize("option", [{"view": "grid"}, {"theme": "dark"}, {"scale": 3}])
def test_a_standalone_page_refuses_the_figure_options_it_would_ignore(explorer, tmp_path, option):
    with pytest.raises(AttnWidgetError, match=f"takes no {next(iter(option))}"):
        explorer.save(tmp_path / "page.html", **option)
    with pytest.raises(AttnWidgetError, match="layers= is for a standalone page"):
        explorer.save(tmp_path / "x.png", layers=[0])


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ("01", "layers must be a list"),
        ([0, True], "layers item"),
        ([1.0], "layers item"),
        ([], "empty"),
        (5, "layers must be a list"),
    ],
)
def test_save_layers_are_a_collection_of_layer_indices(explorer, tmp_path, layers, message):
    with pytest.raises(AttnWidgetError, match=message):
        explorer.save(tmp_path / "page.html", layers=layers)


@pytest.mark.parametrize("name", sorted(RESERVED_METRICS))
def test_a_detector_cannot_take_a_built_in_metrics_name(explorer, name):
    table = explorer.score_table.get(name)
    with pytest.raises(DetectorError, match="already a metric"):
        explorer.add_detector(name, lambda ids: torch.eye(len(ids)))
    assert explorer.score_table.get(name) == table


def test_a_detector_with_huge_finite_values_is_told_so(explorer):
    with pytest.raises(DetectorError, match="past float32's range"):
        explorer.add_detector("huge", lambda ids: np.full((len(ids), len(ids)), 1e300))
    with pytest.raises(DetectorError, match="NaN or infinite"):
        explorer.add_detector("nan", lambda ids: np.full((len(ids), len(ids)), np.nan))


def test_lone_surrogates_are_named_in_prompt_answer_and_tokens(explorer, bridge):
    tokens = explorer.tokens
    with pytest.raises(PromptError, match="prompt holds a lone surrogate '\\\\udc80' at character 5"):
        explorer.prompt = LONE
    assert explorer.tokens == tokens
    explorer.set_state({"prompt": LONE})
    assert "lone surrogate" in explorer.error and explorer.tokens == tokens
    with pytest.raises(AttnWidgetError, match="answer holds a lone surrogate"):
        explorer.answer = LONE
    with pytest.raises(PromptError, match="compare_prompt holds a lone surrogate"):
        explorer.compare_prompt = LONE
    with pytest.raises(AttnWidgetError, match="prompt holds a lone surrogate"):
        AttentionExplorer(bridge, prompt=LONE)
    patterns = np.full((1, 1, 2, 2), 0.5, np.float32)
    with pytest.raises(AttnWidgetError, match=r"tokens\[1\] holds a lone surrogate"):
        AttentionExplorer(patterns, tokens=["a", "\ud800"])


def test_a_blank_compare_prompt_is_named_as_such(explorer):
    with pytest.raises(PromptError, match="compare prompt is blank"):
        explorer.compare_prompt = "   "
    explorer.set_state({"compare_prompt": " "})
    assert "compare prompt is blank" in explorer.error and explorer.compare_prompt == ""


def test_a_precomputed_explorers_retrieval_test_needs_a_model():
    patterns = np.tril(np.ones((1, 2, 4, 4), np.float32))
    patterns /= patterns.sum(-1, keepdims=True)
    w = AttentionExplorer(patterns, tokens=["a", "b", "c", "d"])
    with pytest.raises(AttnWidgetError, match="needs a model"):
        w.retrieval_test()


@pytest.mark.parametrize(
    "window",
    [{"q0": 0, "q1": 40, "k0": 0, "k1": 4}, {"q0": 0, "q1": 4, "k0": 30, "k1": 31}],
)
def test_a_tile_past_the_prompts_end_is_refused(explorer, window):
    n = len(explorer.tokens)
    tile = {"type": "tile", "id": 9, "layer": 1, "head": 2, "rows": 4, "cols": 4, **window}
    explorer._on_front_end_message(explorer, tile, [])
    reply, buffers = explorer.sent[-1]
    assert reply["type"] == "error" and reply["id"] == 9 and buffers == []
    assert f"past the prompt's end: it has {n} tokens" in reply["message"]
    heads = {"type": "heads", "id": 10, "heads": [[0, 0]], "tile": {**window, "rows": 4, "cols": 4}}
    explorer._on_front_end_message(explorer, heads, [])
    assert explorer.sent[-1][0]["type"] == "error" and explorer.sent[-1][0]["id"] == 10
    inside = {**tile, "q1": n, "k0": 0, "k1": n}
    explorer._on_front_end_message(explorer, inside, [])
    assert explorer.sent[-1][0]["type"] == "tile"
