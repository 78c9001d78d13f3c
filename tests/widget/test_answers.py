"""The batched "heads" request (prefetch) and heads pushed unasked: what the kernel sends, checked
against the explorer's own float32 patterns."""

from __future__ import annotations

import numpy as np
import pytest

from attn_widget.errors import AttnWidgetError
from attn_widget.widget import protocol

EMPTY_WINDOW = {"q0": 3, "q1": 1, "k0": 0, "k1": 2}
PROMPT = "When mary and john went to the store mary gave a drink to john"


def as_uint8(values: np.ndarray) -> np.ndarray:
    """An independent rounding of weights to bytes."""
    return np.floor(np.clip(values, 0, 1) * 255 + 0.5).astype(np.uint8)


def test_parses_heads_requests_whole_and_tiled():
    whole = protocol.parse_request({"type": "heads", "id": 4, "heads": [[0, 1], [2, 3]]})
    assert whole == protocol.HeadsRequest(4, ((0, 1), (2, 3)), None)
    window = {"q0": 0, "q1": 8, "k0": 2, "k1": 6, "rows": 4, "cols": 2}
    tiled = protocol.parse_request({"type": "heads", "id": 5, "heads": [[1, 1]], "tile": window})
    assert tiled.tile == protocol.TileRequest(0, 0, 0, 0, 8, 2, 6, 4, 2)


@pytest.mark.parametrize(
    "content",
    [
        {"type": "heads", "id": 1, "heads": []},
        {"type": "heads", "id": 1, "heads": [[0]]},
        {"type": "heads", "id": 1, "heads": [[0, "1"]]},
        {"type": "heads", "id": 1, "heads": [[0, True]]},
        {"type": "heads", "id": 1, "heads": "all"},
        {"type": "heads", "heads": [[0, 0]]},
        {"type": "heads", "id": 1, "heads": [[0, 0]], "tile": {**EMPTY_WINDOW, "rows": 1, "cols": 1}},
        {"type": "heads", "id": 1, "heads": [[0, 0]], "tile": [0, 1]},
    ],
)
def test_rejects_malformed_heads_requests(content):
    with pytest.raises(AttnWidgetError, match="malformed message"):
        protocol.parse_request(content)


def test_answers_whole_heads_as_bytes_in_the_order_asked(explorer):
    pairs = [[2, 3], [0, 1], [2, 0]]
    explorer._on_front_end_message(explorer, {"type": "heads", "id": 9, "heads": pairs}, [])
    reply, buffers = explorer.sent[-1]
    n = len(explorer.tokens)
    assert reply["type"] == "heads" and reply["id"] == 9 and reply["heads"] == pairs
    assert reply["revision"] == explorer.revision and reply["n"] == n and reply["dtype"] == "uint8"
    assert len(buffers) == len(pairs)
    for (layer, head), data in zip(pairs, buffers, strict=True):
        got = np.frombuffer(data, np.uint8).reshape(n, n).astype(int)
        want = as_uint8(explorer.pattern(layer, head)).astype(int)
        assert np.abs(got - want).max() <= 1  # float16 on the way: at most one step apart


def test_answers_tiles_of_one_window_for_each_head(explorer):
    n = len(explorer.tokens)
    window = {"q0": 2, "q1": n, "k0": 0, "k1": 6, "rows": 3, "cols": 3}
    explorer._on_front_end_message(explorer, {"type": "heads", "id": 3, "heads": [[1, 0], [1, 3]], "tile": window}, [])
    reply, buffers = explorer.sent[-1]
    assert (reply["tile_rows"], reply["tile_cols"], reply["q0"], reply["k1"]) == (3, 3, 2, 6)
    for (layer, head), data in zip([(1, 0), (1, 3)], buffers, strict=True):
        cells = np.frombuffer(data, np.uint8).reshape(3, 3).astype(int)
        pattern = explorer.pattern(layer, head)[2:n, 0:6]
        # adaptive max-pool bins: cell i covers [floor(i * len / 3), ceil((i + 1) * len / 3))
        rows = [(i * (n - 2) // 3, -(-(i + 1) * (n - 2) // 3)) for i in range(3)]
        cols = [(i * 6 // 3, -(-(i + 1) * 6 // 3)) for i in range(3)]
        want = np.array([[pattern[a:b, c:d].max() for c, d in cols] for a, b in rows])
        assert np.abs(cells - as_uint8(want).astype(int)).max() <= 1


def test_a_bad_head_in_a_batch_is_an_error_reply_and_the_widget_keeps_working(explorer):
    explorer._on_front_end_message(explorer, {"type": "heads", "id": 6, "heads": [[0, 0], [7, 0]]}, [])
    reply, buffers = explorer.sent[-1]
    assert reply["type"] == "error" and reply["id"] == 6 and "layer 7" in reply["message"] and buffers == []
    explorer._on_front_end_message(explorer, {"type": "heads", "id": 7, "heads": [[0, 0]]}, [])
    assert explorer.sent[-1][0]["type"] == "heads"
