"""Property tests: whatever the front end sends (any JSON, any sizes, any buffers), the kernel answers
with a reply or a clear error and keeps a consistent state; nothing escapes from the comm."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from traitlets import TraitError

from attn_widget import AttentionExplorer
from attn_widget.contract import MAX_TILE_CELLS
from attn_widget.errors import AttnWidgetError
from attn_widget.widget import protocol

PROMPT = "When mary and john went to the store mary gave a drink to john"
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
sizes = st.integers(-3, 80) | st.integers(-(2**70), 2**70) | st.sampled_from([0, 1, 1023, 1024, 1025])
FIELDS = ("id", "layer", "head", "q0", "q1", "k0", "k1", "rows", "cols", "index")


@st.composite
def requests(draw: st.DrawFn) -> dict:
    """Messages shaped like the front end's, with fields missing, of the wrong type, or out of range."""
    message: dict = {"type": draw(st.sampled_from(["pattern", "tile", "row", "nope"]) | json_values)}
    for name in FIELDS:
        if draw(st.integers(0, 9)) > 0:
            message[name] = draw(sizes if draw(st.integers(0, 9)) > 0 else json_values)
    if draw(st.booleans()):
        message["axis"] = draw(st.sampled_from(["query", "key"]) | json_values)
    return message


messages = requests() | json_values
buffers = st.lists(st.binary(max_size=64), max_size=3)


@pytest.fixture(scope="module")
def explorer(bridge):
    widget = AttentionExplorer(bridge, prompt=PROMPT, layer=1, head=2)
    widget.sent = []
    widget.send = lambda content, buffers=None: widget.sent.append((content, buffers or []))
    return widget


def assert_consistent(widget: AttentionExplorer) -> None:
    assert 0 <= widget.layer < widget.n_layers and 0 <= widget.head < widget.n_heads
    assert -1 <= widget.focus_token < len(widget.tokens)
    assert widget.metric in widget.score_table
    assert widget.color_scale in ("linear", "log", "row") and widget.shade_by in ("received", "given")
    assert widget.tokens == widget._session.current().tokens  # the prompt shown is the one analysed


@FUZZ
@given(content=messages)
def test_the_parser_returns_a_request_or_says_what_is_malformed(content):
    try:
        request = protocol.parse_request(content)
    except AttnWidgetError as err:
        assert str(err)
        return
    assert isinstance(request, protocol.PatternRequest | protocol.TileRequest | protocol.RowRequest)
    if isinstance(request, protocol.TileRequest):
        assert 0 < request.rows <= MAX_TILE_CELLS and 0 < request.cols <= MAX_TILE_CELLS


@FUZZ
@given(content=messages, extra=buffers)
def test_every_message_gets_one_json_answer(explorer, content, extra):
    explorer.sent.clear()
    explorer._on_front_end_message(explorer, content, extra)
    ((reply, data),) = explorer.sent
    json.dumps(reply, allow_nan=False)
    n = len(explorer.tokens)
    if reply["type"] == "error":
        assert reply["message"] and not data
        assert reply["id"] is None or reply["id"] == content.get("id")
        return
    assert reply["type"] == content["type"] and reply["id"] == content["id"] and reply["n"] == n
    expected = {
        "pattern": n * n * 2,
        "row": n * 2,
        "tile": reply.get("tile_rows", 0) * reply.get("tile_cols", 0),
    }[reply["type"]]
    assert len(data[0]) == expected
    if reply["type"] == "tile":
        assert 1 <= reply["tile_rows"] <= min(content["rows"], n) and 1 <= reply["tile_cols"] <= min(content["cols"], n)


trait_names = st.sampled_from(
    ["prompt", "layer", "head", "metric", "focus_token", "focus_locked", "color_scale", "shade_by", "error",
     "tokens", "revision", "score_table", "unknown_trait", "layout"]
)  # fmt: skip
trait_values = json_values | sizes | st.sampled_from(["entropy", "log", "given", "the cat", "", "mary " * 100])


@FUZZ
@given(update=st.dictionaries(trait_names, trait_values, max_size=4))
def test_any_state_update_is_applied_or_rolled_back_and_shown(explorer, update):
    before = {k: getattr(explorer, k) for k in ("prompt", "layer", "head", "metric", "color_scale", "revision")}
    explorer.set_state(update)  # never raises
    assert_consistent(explorer)
    if explorer.error:  # rejected: nothing of it stays
        after = {k: getattr(explorer, k) for k in before}
        assert {k: v for k, v in after.items() if k != "revision"} == {
            k: v for k, v in before.items() if k != "revision"
        }


@FUZZ
@given(name=st.sampled_from(["layer", "head", "focus_token", "metric", "color_scale", "shade_by"]), value=trait_values)
def test_validators_accept_a_valid_value_or_raise_a_clear_error(explorer, name, value):
    try:
        setattr(explorer, name, value)
    except (TraitError, AttnWidgetError) as err:
        assert str(err)
    assert_consistent(explorer)


def test_the_explorer_still_answers_after_the_fuzzing(explorer):
    explorer.sent.clear()
    explorer._on_front_end_message(explorer, {"type": "pattern", "id": 1, "layer": 0, "head": 0}, [])
    ((reply, (data,)),) = explorer.sent
    n = len(explorer.tokens)
    assert reply["type"] == "pattern"
    np.testing.assert_allclose(np.frombuffer(data, "<f2").reshape(n, n), explorer.pattern(0, 0), atol=1e-3)
