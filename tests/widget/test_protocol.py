from __future__ import annotations

import pytest

from attn_widget.contract import MAX_TILE_CELLS
from attn_widget.errors import AttnWidgetError
from attn_widget.widget import protocol


def test_parses_a_pattern_request():
    assert protocol.parse_request({"type": "pattern", "id": 3, "layer": 1, "head": 2}) == protocol.PatternRequest(
        3, 1, 2
    )


@pytest.mark.parametrize(
    "content",
    [
        None,
        "pattern",
        [],
        {"type": "nonsense", "id": 1, "layer": 0, "head": 0},
        {"type": "pattern", "layer": 0, "head": 0},
        {"type": "pattern", "id": 1, "layer": "0", "head": 0},
        {"type": "pattern", "id": 1, "layer": 0, "head": 1.5},
        {"type": "pattern", "id": True, "layer": 0, "head": 0},
    ],
)
def test_rejects_malformed_messages_with_a_clear_error(content):
    with pytest.raises(AttnWidgetError, match="malformed message"):
        protocol.parse_request(content)


def test_error_reply_names_the_problem():
    reply = protocol.error_reply(7, AttnWidgetError("layer 9 is out of range"))
    assert reply == {"type": "error", "id": 7, "message": "layer 9 is out of range"}
    assert protocol.error_reply("x", RuntimeError("boom"))["id"] is None
    assert protocol.error_reply(None, RuntimeError("boom"))["message"] == "RuntimeError: boom"


def test_parses_tile_and_row_requests():
    tile = {
        "type": "tile",
        "id": 1,
        "layer": 0,
        "head": 2,
        "q0": 0,
        "q1": 64,
        "k0": 10,
        "k1": 74,
        "rows": 32,
        "cols": 32,
    }
    assert protocol.parse_request(tile) == protocol.TileRequest(1, 0, 2, 0, 64, 10, 74, 32, 32)
    row = {"type": "row", "id": 2, "layer": 1, "head": 0, "index": 5, "axis": "key"}
    assert protocol.parse_request(row) == protocol.RowRequest(2, 1, 0, 5, "key")


@pytest.mark.parametrize(
    "change",
    [{"q1": 0}, {"k0": -1}, {"rows": 0}, {"cols": MAX_TILE_CELLS + 1}, {"q0": "0"}],
)
def test_rejects_impossible_tiles(change):
    tile = {"type": "tile", "id": 1, "layer": 0, "head": 0, "q0": 0, "q1": 8, "k0": 0, "k1": 8, "rows": 8, "cols": 8}
    with pytest.raises(AttnWidgetError, match="malformed message"):
        protocol.parse_request({**tile, **change})


def test_rejects_a_row_without_an_axis():
    with pytest.raises(AttnWidgetError, match="'axis' must be"):
        protocol.parse_request({"type": "row", "id": 1, "layer": 0, "head": 0, "index": 0, "axis": "diagonal"})
