"""The public contract of AttentionExplorer, and its answers to the front end's messages."""

from __future__ import annotations

import numpy as np
import pytest

from attn_widget import AttentionExplorer
from attn_widget.contract import HEAD_CLASSES
from attn_widget.contract import PROMPT_METRICS as METRICS
from attn_widget.errors import AttnWidgetError, ModelError, PromptError, SelectionError

PROMPT = "When mary and john went to the store mary gave a drink to john"


def test_public_state_after_construction(explorer, bridge):
    assert explorer.layer == 1 and explorer.head == 2
    assert explorer.tokens == [str(t) for t in bridge.to_str_tokens(PROMPT)]
    assert explorer.tokens[0] == "<|endoftext|>"
    assert set(explorer.scores) == set(METRICS) | {"sink_share", "same_token", "successor"}
    for values in explorer.scores.values():
        assert values.shape == (3, 4) and np.isfinite(values).all()
    assert explorer.n_layers == 3 and explorer.n_heads == 4
    side = explorer.thumbnail_side
    assert len(explorer.thumbnails) == 3 * 4 * side * side


def test_pattern_is_a_float32_square_with_rows_summing_to_one(explorer):
    pattern = explorer.pattern(2, 3)
    n = len(explorer.tokens)
    assert pattern.shape == (n, n) and pattern.dtype == np.float32
    np.testing.assert_allclose(pattern.sum(-1), 1.0, atol=5e-3)
    assert np.allclose(np.triu(pattern, 1), 0)


def test_setting_the_prompt_reruns_the_model(explorer):
    revision = explorer.revision
    explorer.prompt = "the cat sat on the mat"
    assert "".join(explorer.tokens[1:]) == "the cat sat on the mat"
    assert explorer.revision == revision + 1
    n = len(explorer.tokens)
    assert explorer.pattern(0, 0).shape == (n, n)


def test_bad_prompt_raises_and_keeps_the_previous_one(explorer):
    tokens = explorer.tokens
    with pytest.raises(PromptError, match="empty"):
        explorer.prompt = ""
    with pytest.raises(PromptError, match="context"):
        explorer.prompt = "mary " * 200
    assert explorer.prompt == PROMPT and explorer.tokens == tokens
    explorer.prompt = "the cat"  # still works afterwards
    assert "".join(explorer.tokens[1:]) == "the cat"


def test_out_of_range_selection_raises_from_python(explorer):
    with pytest.raises(SelectionError, match="layer 3 is out of range"):
        explorer.layer = 3
    with pytest.raises(SelectionError, match="head 4 is out of range"):
        explorer.head = 4
    with pytest.raises(SelectionError):
        explorer.pattern(0, 9)
    assert (explorer.layer, explorer.head) == (1, 2)


def test_constructor_rejects_bad_input(bridge):
    with pytest.raises(SelectionError):
        AttentionExplorer(bridge, prompt=PROMPT, layer=5)
    with pytest.raises(PromptError):
        AttentionExplorer(bridge, prompt="")
    with pytest.raises(ModelError, match="does not know how to read attention"):
        AttentionExplorer(object())


def test_front_end_pattern_request_gets_the_head_as_binary(explorer):
    explorer._on_front_end_message(explorer, {"type": "pattern", "id": 41, "layer": 2, "head": 1}, [])
    (reply, buffers) = explorer.sent[-1]
    n = len(explorer.tokens)
    assert reply == {"type": "pattern", "id": 41, "layer": 2, "head": 1, "revision": explorer.revision,
                     "n": n, "dtype": "float16"}  # fmt: skip
    decoded = np.frombuffer(buffers[0], dtype="<f2").reshape(n, n)
    np.testing.assert_allclose(decoded, explorer.pattern(2, 1), atol=1e-3)


def first_bin(length: int, cells: int) -> int:
    """Adaptive max-pooling's first bin ends at ceil(length / cells)."""
    return -(-length // cells)


def test_front_end_tile_request_gets_a_max_pooled_window(explorer):
    n = len(explorer.tokens)
    request = {"type": "tile", "id": 9, "layer": 1, "head": 3, "q0": 2, "q1": n, "k0": 0, "k1": n, "rows": 4, "cols": 5}
    explorer._on_front_end_message(explorer, request, [])
    reply, (data,) = explorer.sent[-1]
    assert reply["type"] == "tile" and reply["id"] == 9 and (reply["tile_rows"], reply["tile_cols"]) == (4, 5)
    cells = np.frombuffer(data, dtype=np.uint8).reshape(4, 5) / 255
    window = explorer.pattern(1, 3)[2:, :]
    assert cells.max() == pytest.approx(window.max(), abs=1 / 255)
    assert cells[0, 0] == pytest.approx(window[: first_bin(n - 2, 4), : first_bin(n, 5)].max(), abs=1 / 255)


@pytest.mark.parametrize("axis", ["query", "key"])
def test_front_end_row_request_gets_one_tokens_weights(explorer, axis):
    explorer._on_front_end_message(
        explorer, {"type": "row", "id": 4, "layer": 2, "head": 0, "index": 3, "axis": axis}, []
    )
    reply, (data,) = explorer.sent[-1]
    assert reply["type"] == "row" and reply["dtype"] == "float16"
    pattern = explorer.pattern(2, 0)
    expected = pattern[3] if axis == "query" else pattern[:, 3]
    np.testing.assert_allclose(np.frombuffer(data, dtype="<f2"), expected, atol=1e-3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"type": "pattern", "id": 1, "layer": 7, "head": 0}, "layer 7 is out of range"),
        ({"type": "pattern", "id": 2, "layer": 0}, "malformed message"),
        ("not a dict", "malformed message"),
        ({"type": "row", "id": 5, "layer": 0, "head": 0, "index": 500, "axis": "query"}, "token 500 is out of range"),
    ],
)
def test_front_end_bad_messages_get_an_error_reply(explorer, content, message):
    explorer._on_front_end_message(explorer, content, [])
    reply, buffers = explorer.sent[-1]
    assert reply["type"] == "error" and message in reply["message"]
    assert not buffers
    # and the widget keeps answering
    explorer._on_front_end_message(explorer, {"type": "pattern", "id": 3, "layer": 0, "head": 0}, [])
    assert explorer.sent[-1][0]["type"] == "pattern"


def test_front_end_bad_values_show_in_the_widget_not_as_exceptions(explorer):
    explorer.set_state({"layer": 99})  # what a front-end update goes through
    assert explorer.layer == 1
    assert "layer 99 is out of range" in explorer.error
    explorer.set_state({"prompt": ""})
    assert "empty" in explorer.error and explorer.prompt == PROMPT
    explorer.set_state({"head": 3})
    assert explorer.head == 3 and explorer.error == ""


def test_front_end_prompt_reruns_the_model(explorer):
    explorer.set_state({"prompt": "the cat sat"})
    assert explorer.prompt == "the cat sat"
    assert explorer.tokens[0] == "<|endoftext|>" and "".join(explorer.tokens[1:]) == "the cat sat"


def test_repeated_tokens_test_and_its_score_view(explorer):
    result = explorer.run_repeated_tokens_test(seq_len=30, batch=2, seed=1)
    assert result.shape == (3, 4)
    np.testing.assert_allclose(np.array(explorer.score_table["repeated_tokens"]), result, atol=1e-5)
    np.testing.assert_array_equal(explorer.run_repeated_tokens_test(seq_len=30, batch=2, seed=1), result)


def test_the_score_view_offers_every_metric_and_the_repeated_tokens_test(explorer):
    assert set(explorer.score_table) == {*METRICS, "repeated_tokens", "sink_share", "same_token", "successor"}
    assert explorer.metric == "repeated_tokens"
    explorer.metric = "entropy"
    np.testing.assert_allclose(np.array(explorer.score_table["entropy"]), explorer.scores["entropy"], atol=1e-5)
    with pytest.raises(AttnWidgetError, match="unknown metric 'vibes'"):
        explorer.metric = "vibes"
    assert explorer.metric == "entropy"


def test_scored_layers_reports_every_layer_once_the_scores_are_published(explorer):
    assert explorer.scored_layers == explorer.n_layers == len(explorer.score_table["entropy"]) == 3
    explorer.prompt = "the cat sat on the mat"
    assert explorer.scored_layers == 3


def test_heads_are_classified_and_summarised_for_the_views(explorer):
    assert np.array(explorer.head_classes).shape == (3, 4)
    assert set(np.array(explorer.head_classes).flat) <= set(HEAD_CLASSES)
    assert [row["finding"] for row in explorer.summary_rows] == [row.finding for row in explorer.summary().rows]


def test_focus_token_and_lock_are_traits(explorer):
    explorer.focus_token = 3
    explorer.focus_locked = True
    with pytest.raises(SelectionError, match="token 99 is out of range"):
        explorer.focus_token = 99
    explorer.set_state({"focus_token": 99})
    assert explorer.focus_token == 3 and "out of range" in explorer.error
    explorer.prompt = "the cat"  # a new prompt clears the focus
    assert (explorer.focus_token, explorer.focus_locked) == (-1, False)


def test_summary_names_the_notebook_findings(explorer):
    summary = explorer.summary()
    findings = [row.finding for row in summary.rows]
    assert findings[:5] == [f"induction head #{i}" for i in range(1, 6)]
    assert findings[5:] == ["most focused", "most diffuse", "longest-range"]
    entropy = explorer.scores["entropy"]
    focused = summary.rows[5]
    assert focused.value == pytest.approx(entropy.min())
    assert entropy[focused.layer, focused.head] == pytest.approx(entropy.min())
    longest = summary.rows[7]
    assert longest.value == pytest.approx(explorer.scores["mean_distance"].max())
    top = summary.rows[0]
    test = explorer.run_repeated_tokens_test()
    assert top.value == pytest.approx(test.max(), abs=1e-6)
    assert "most diffuse" in str(summary) and "<table>" in summary._repr_html_()


def test_tokens_that_look_like_html_stay_text(bridge):
    widget = AttentionExplorer(bridge, prompt="<script>alert(1)</script>")
    assert "".join(widget.tokens[1:]) == "<script>alert(1)</script>"


def test_circuitsvis_view_of_a_layer(explorer):
    html = str(explorer.circuitsvis(layer=2))
    assert "Head 3" in html and "Head 4" not in html
    assert all(token in html for token in explorer.tokens)


def test_circuitsvis_keeps_script_tags_inert(bridge):
    widget = AttentionExplorer(bridge, prompt="a</script><b>x")
    html = str(widget.circuitsvis())
    assert "</script><b>" not in html


def test_a_new_prompt_arrives_whole_then_its_selected_head_is_pushed(explorer, monkeypatch):
    """A long reduction shows in the progress bar; the prompt, its tokens and all its scores then
    change in one step, and the selected head follows unasked (no round trip for the first paint)."""
    import itertools

    import attn_widget.widget.progress as progress_module

    clock = itertools.count()  # every step takes a second: past the threshold, every layer reported
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: float(next(clock)))
    events: list[tuple[str, object]] = []
    for name in ("scored_layers", "tokens", "prompt", "progress"):
        explorer.observe(lambda change: events.append((change["name"], change["new"])), name)
    explorer.send = lambda content, buffers=None: events.append(("message", (content, buffers)))
    explorer.prompt = "Then mary and john went to the park"
    progress = [value for kind, value in events if kind == "progress" and value]
    steps = [(phase, d) for phase in ("running the model", "scores") for d in (1, 2, 3)]
    assert [(p["label"], p["done"]) for p in progress] == steps and events[len(progress)] == ("progress", {})
    kinds = [kind for kind, _ in events[len(progress) + 1 :]]
    assert sorted(kinds[:2]) == ["prompt", "tokens"] and kinds[-1] == "message"
    message, buffers = events[-1][1]
    assert message["id"] is None and message["pushed"]
    assert (message["type"], message["layer"], message["head"]) == ("pattern", 1, 2)
    n = len(explorer.tokens)
    pushed = np.frombuffer(buffers[0], dtype="<f2").reshape(n, n)
    np.testing.assert_allclose(pushed, explorer.pattern(1, 2), atol=1e-3)
    assert all(np.isfinite(values).all() for values in explorer.scores.values())


def test_scores_of_layers_not_yet_reduced_travel_as_null(bridge):
    from attn_widget.analysis.prompt import PromptAnalysis
    from attn_widget.backends import backend_for

    widget = AttentionExplorer(bridge, prompt=PROMPT)
    analysis = PromptAnalysis(backend_for(bridge), PROMPT, defer_scores=True)
    assert not analysis.scored.any()
    table = widget._session.score_table_json(analysis)
    assert table["entropy"] == [[None] * 4] * 3  # JSON-safe: no NaN on the wire
    analysis.finish()
    assert all(v is not None for row in widget._session.score_table_json(analysis)["entropy"] for v in row)
