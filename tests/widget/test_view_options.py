"""The explorer's value weighting, compare prompt and logit attribution: Python calls against naive
references (TransformerLens caches, plain loops, a second explorer), the front end's replies, and
bad input that gives a clear error while the widget keeps working."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attn_widget import AttentionExplorer
from attn_widget.contract import PROMPT_METRICS as METRICS
from attn_widget.errors import AnswerError, AttnWidgetError, ModelError, PromptError
from attn_widget.maths.dense_scores import layer_scores
from conftest import recording
from references import naive_attribution, naive_moved, naive_weighted_norms

PROMPT = "When mary and john went to the store mary gave a drink to john"
COMPARE = "When john and mary went to the store john gave a drink to mary"  # same token count


@pytest.fixture
def explorer(full_bridge):
    return recording(AttentionExplorer(full_bridge, prompt=PROMPT, layer=1, head=2))


def _naive_value_layer(model, tokens, layer):
    """`[h, n, n]` ||A f(x)|| from the TransformerLens cache, one [d_model] vector per cell."""
    _, cache = model.run_with_cache(tokens)
    attn = model.blocks[layer].attn
    moved = naive_moved(cache[f"blocks.{layer}.ln1.hook_out"][0], attn.W_V, attn.b_V, attn.W_O)
    return naive_weighted_norms(cache[f"blocks.{layer}.attn.hook_pattern"][0], moved)


def _count_runs(explorer):
    calls = []
    capture = explorer._session.backend.capture
    explorer._session.backend.capture = lambda *args, **kwargs: (calls.append(1), capture(*args, **kwargs))[1]
    return calls


# ---- value weighting ------------------------------------------------------------------------


def test_value_pattern_and_views_follow_the_weighting(explorer, full_bridge):
    tokens = full_bridge.to_tokens(PROMPT)
    naive = _naive_value_layer(full_bridge, tokens, 1)
    np.testing.assert_allclose(explorer.pattern(1, 2, weighting="value"), naive[2].numpy(), rtol=2e-3, atol=1e-4)
    attention_scores, attention_thumbs, revision = explorer.scores, explorer.thumbnails, explorer.revision

    explorer.weighting = "value"
    assert explorer.revision == revision + 1  # the front end asks for its head again
    assert explorer.thumbnails != attention_thumbs
    shares = naive / naive.sum(-1, keepdim=True)
    expected = layer_scores(shares[None], tokens)
    for metric in METRICS:
        np.testing.assert_allclose(explorer.score_table[metric][1], expected[metric].numpy(), rtol=1e-3, atol=1e-3)
    assert not np.allclose(explorer.score_table["entropy"], attention_scores["entropy"], atol=1e-3)
    explorer._on_front_end_message(explorer, {"type": "pattern", "id": 5, "layer": 1, "head": 2}, [])
    reply, (data,) = explorer.sent[-1]
    drawn = np.frombuffer(data, dtype=np.float16).reshape(reply["n"], reply["n"])
    np.testing.assert_allclose(drawn, shares[2].numpy(), atol=2e-3)

    explorer.weighting = "attention"
    np.testing.assert_allclose(explorer.score_table["entropy"], attention_scores["entropy"].round(5), atol=1e-5)


def test_switching_weighting_back_and_forth_runs_no_more_passes(explorer):
    explorer.weighting = "value"
    calls = _count_runs(explorer)
    for weighting in ("attention", "value", "attention", "value"):
        explorer.weighting = weighting
    assert calls == []


# ---- two prompts ------------------------------------------------------------------------------


def test_compare_prompt_gives_differences_and_change_metrics(explorer, full_bridge):
    other = AttentionExplorer(full_bridge, prompt=COMPARE)
    calls = _count_runs(explorer)
    explorer.compare_prompt = COMPARE
    assert len(calls) == 1, "the compare prompt runs once"
    for layer, head in ((0, 0), (1, 2), (1, 3)):
        np.testing.assert_allclose(
            explorer.pattern_diff(layer, head), explorer.pattern(layer, head) - other.pattern(layer, head), atol=1e-6
        )
    l1 = np.array(
        [[np.abs(explorer.pattern(la, h) - other.pattern(la, h)).sum(-1).mean() for h in range(4)] for la in range(2)]
    )
    np.testing.assert_allclose(explorer.score_table["change_l1"], l1, atol=2e-3)
    assert l1.max() > 0.05, "the two prompts should differ somewhere"
    for metric in METRICS:
        np.testing.assert_allclose(
            explorer.score_table[f"{metric}_change"], explorer.scores[metric] - other.scores[metric], atol=2e-4
        )
    # the heatmap's head is the signed difference
    explorer._on_front_end_message(explorer, {"type": "pattern", "id": 6, "layer": 1, "head": 2}, [])
    reply, (data,) = explorer.sent[-1]
    assert reply["signed"] is True
    drawn = np.frombuffer(data, dtype=np.float16).reshape(reply["n"], reply["n"])
    np.testing.assert_allclose(drawn, explorer.pattern_diff(1, 2), atol=2e-3)
    assert drawn.min() < -0.05
    explorer.metric = "change_l1"
    explorer.compare_prompt = ""
    assert "change_l1" not in explorer.score_table and explorer.metric in explorer.score_table


def test_compare_in_value_weighting_differs_the_shares(explorer, full_bridge):
    other = AttentionExplorer(full_bridge, prompt=COMPARE)
    explorer.compare_prompt, explorer.weighting = COMPARE, "value"

    def shares(widget):
        weighted = widget.pattern(1, 2, weighting="value")
        return weighted / weighted.sum(-1, keepdims=True)

    np.testing.assert_allclose(explorer.pattern_diff(1, 2), shares(explorer) - shares(other), atol=1e-5)


def test_compare_prompt_of_another_length_is_refused(explorer):
    with pytest.raises(PromptError, match="same token count"):
        explorer.compare_prompt = "the cat"
    assert explorer.compare_prompt == ""
    explorer.set_state({"compare_prompt": "the cat"})
    assert "same token count" in explorer.error and explorer.compare_prompt == ""
    explorer.compare_prompt = COMPARE
    explorer.prompt = "the cat sat"  # a new prompt of another length: shown without the comparison
    assert "same token count" in explorer.error and "change_l1" not in explorer.score_table
    with pytest.raises(PromptError, match="same token count"):
        explorer.pattern_diff(0, 0)
    explorer._on_front_end_message(explorer, {"type": "pattern", "id": 7, "layer": 0, "head": 0}, [])
    assert explorer.sent[-1][0]["type"] == "pattern" and "signed" not in explorer.sent[-1][0]


def test_pattern_diff_without_compare_prompt_says_what_to_do(explorer):
    with pytest.raises(AttnWidgetError, match="compare_prompt"):
        explorer.pattern_diff(0, 0)


def test_long_compare_tiles_keep_the_sign_of_the_largest_change():
    from attn_widget.maths.difference import signed_to_uint8, signed_window
    from attn_widget.maths.layer import DenseAttention

    a, b = torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8)
    a[0, 0, 0, 0], b[0, 0, 1, 1], a[0, 0, 5, 6], b[0, 0, 5, 7] = 0.3, 0.9, 0.5, 0.2
    cells = signed_window(DenseAttention(a), DenseAttention(b), 0, 0, 8, 0, 8, 2, 2)
    np.testing.assert_allclose(cells.numpy(), [[-0.9, 0.0], [0.0, 0.5]], atol=1e-6)
    assert (signed_to_uint8(cells).float() / 127.5 - 1.0 - cells).abs().max() < 1e-2


# ---- logit attribution ------------------------------------------------------------------------


def test_logit_attribution_matches_a_naive_loop_and_dla(explorer, full_bridge):
    explorer.answer, explorer.counterfactual = " mary", " john"
    tokens = full_bridge.to_tokens(PROMPT)
    a, c = full_bridge.to_single_token(" mary"), full_bridge.to_single_token(" john")
    _, cache = full_bridge.run_with_cache(tokens)
    i = tokens.shape[-1] - 1
    direction = full_bridge.ln_final._original_component.weight * (full_bridge.W_U[:, a] - full_bridge.W_U[:, c])
    stack = (cache.stack_head_results(layer=-1, pos_slice=-1, apply_ln=True)[:, 0] @ direction).detach()
    np.testing.assert_allclose(explorer.direct_logit_attribution(), stack.reshape(2, 4).numpy(), atol=1e-4)
    np.testing.assert_allclose(explorer.score_table["direct_logit_attribution"], stack.reshape(2, 4), atol=1e-4)
    for layer in range(2):
        attn = full_bridge.blocks[layer].attn
        moved = naive_moved(cache[f"blocks.{layer}.ln1.hook_out"][0], attn.W_V, attn.b_V, attn.W_O)
        rows = cache[f"blocks.{layer}.attn.hook_pattern"][0, :, i]
        expected = naive_attribution(rows, moved, direction, cache["ln_final.hook_scale"][0, i, 0], center=True)
        for head in range(4):
            np.testing.assert_allclose(explorer.logit_attribution(layer, head), expected[head], atol=1e-5)
    # the selected head's row travels as a trait for the token strip
    np.testing.assert_allclose(explorer.attribution, explorer.logit_attribution(1, 2), atol=1e-5)
    assert explorer.attribution_query == i
    explorer.head = 3
    np.testing.assert_allclose(explorer.attribution, explorer.logit_attribution(1, 3), atol=1e-5)
    explorer.focus_token, explorer.focus_locked = 5, True  # a locked focus token is the attributed query
    assert explorer.attribution_query == 5
    np.testing.assert_allclose(explorer.attribution, explorer.logit_attribution(1, 3, query=5), atol=1e-5)


def test_bad_answers_give_clear_errors_and_the_widget_keeps_working(explorer):
    with pytest.raises(AnswerError, match="single token"):
        explorer.answer = " maryjohn"
    with pytest.raises(AttnWidgetError, match="Set `answer`"):
        explorer.logit_attribution(0, 0)
    explorer.set_state({"answer": " maryjohn"})
    assert "single token" in explorer.error and explorer.answer == ""
    explorer.set_state({"answer": " mary"})
    assert explorer.error == "" and len(explorer.attribution) == len(explorer.tokens)


def test_precomputed_attention_refuses_weighting_and_attribution():
    patterns = torch.rand(2, 4, 5, 5).tril().softmax(-1).numpy()
    widget = AttentionExplorer(patterns, tokens=list("abcde"))
    with pytest.raises(ModelError, match="precomputed attention has none"):
        widget.weighting = "value"
    with pytest.raises(ModelError, match="precomputed attention has none"):
        widget.answer = "a"
    with pytest.raises(ModelError, match="precomputed attention has none"):
        widget.pattern(0, 0, weighting="value")
    widget.set_state({"weighting": "value"})
    assert "precomputed" in widget.error and widget.weighting == "attention"
    assert widget.pattern(0, 0).shape == (5, 5)


def test_signed_tiles_match_a_naive_pooling_of_the_difference():
    from attn_widget.maths.difference import signed_window
    from attn_widget.maths.layer import DenseAttention

    torch.manual_seed(3)
    a, b = (torch.randn(1, 2, 40, 40).softmax(-1) for _ in range(2))
    got = signed_window(DenseAttention(a), DenseAttention(b), 1, 3, 37, 5, 40, 7, 9)
    change = (a - b)[0, 1, 3:37, 5:40]
    expected = torch.zeros(7, 9)
    for r in range(7):
        for c in range(9):
            rows = slice(r * 34 // 7, -(-(r + 1) * 34 // 7))
            cols = slice(c * 35 // 9, -(-(c + 1) * 35 // 9))
            cell = change[rows, cols].reshape(-1)
            expected[r, c] = cell[cell.abs().argmax()]
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-6)
