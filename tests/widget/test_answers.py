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


def _all_heads(explorer) -> list[list[int]]:
    return [[layer, head] for layer in range(explorer.n_layers) for head in range(explorer.n_heads)]


def test_an_asked_head_is_answered_before_a_prefetch_queued_earlier(explorer, monkeypatch):
    """In a running event loop a prefetch goes a head at a time: a head asked for after it is
    answered before it ends, and the prefetch's reply is what it would have been at once."""
    import asyncio

    from attn_widget.widget import requests

    monkeypatch.setattr(requests, "PREFETCH_SLICE_S", 60.0)  # one slice: the whole prefetch
    session = explorer._session
    heads = {"type": "heads", "id": 50, "heads": _all_heads(explorer)}
    at_once, at_once_buffers = session.prefetch.start(protocol.parse_request(heads), session.shown())

    async def clicks() -> None:
        session.on_message(None, heads, [])
        await asyncio.sleep(0.002)  # a head or two of the prefetch
        session.on_message(None, {"type": "pattern", "id": 51, "layer": 2, "head": 3}, [])
        while session.prefetch.jobs:
            await asyncio.sleep(0.001)

    explorer.sent.clear()
    asyncio.run(clicks())
    ids = [reply["id"] for reply, _ in explorer.sent]
    assert ids == [51, 50]
    reply, buffers = explorer.sent[1]
    assert reply == at_once and [bytes(b) for b in buffers] == [bytes(b) for b in at_once_buffers]
    assert all(len(b) for b in buffers)


def test_a_long_prefetch_replies_in_slices(explorer, monkeypatch):
    """Past its slice a prefetch replies with the heads done (the others empty, asked again by the
    front end), so a view waiting on one of them is not held up by the whole batch."""
    import asyncio

    from attn_widget.widget import requests

    monkeypatch.setattr(requests, "PREFETCH_SLICE_S", 0.0)  # one head a slice
    session = explorer._session
    heads = {"type": "heads", "id": 80, "heads": _all_heads(explorer)}
    _, at_once = session.prefetch.start(protocol.parse_request(heads), session.shown())

    async def prefetch() -> None:
        session.on_message(None, heads, [])
        while session.prefetch.jobs:
            await asyncio.sleep(0.001)

    explorer.sent.clear()
    asyncio.run(prefetch())
    ((reply, buffers),) = explorer.sent
    assert reply["id"] == 80 and len(buffers) == len(at_once)
    assert [bytes(b) for b in buffers] == [bytes(at_once[0])] + [b""] * (len(at_once) - 1)  # layer order: 0:0 first


def test_a_prefetch_of_an_older_revision_is_cut_short(explorer, monkeypatch):
    from attn_widget.widget import requests

    monkeypatch.setattr(requests, "PREFETCH_SLICE_S", 60.0)
    import asyncio

    session = explorer._session

    async def new_prompt() -> None:
        session.on_message(None, {"type": "heads", "id": 60, "heads": _all_heads(explorer)}, [])
        await asyncio.sleep(0.002)
        explorer.prompt = "the cat sat on the mat"  # a new revision: the old prefetch is out of date
        while session.prefetch.jobs:
            await asyncio.sleep(0.001)

    explorer.sent.clear()
    asyncio.run(new_prompt())
    (reply, buffers), *_ = [(r, b) for r, b in explorer.sent if r.get("id") == 60]
    assert reply["revision"] < explorer.revision
    assert any(len(b) == 0 for b in buffers)  # the heads not answered yet go empty: asked alone if needed


def test_a_failing_prefetch_head_answers_with_an_error(explorer, monkeypatch):
    import asyncio

    from attn_widget.widget import answers

    session = explorer._session

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    async def prefetch() -> None:
        session.on_message(None, {"type": "heads", "id": 70, "heads": [[0, 0], [1, 1]]}, [])
        monkeypatch.setattr(answers, "answer", broken)
        while session.prefetch.jobs:
            await asyncio.sleep(0.001)

    explorer.sent.clear()
    asyncio.run(prefetch())
    assert explorer.sent[-1][0]["type"] == "error" and explorer.sent[-1][0]["id"] == 70
    assert "boom" in explorer.sent[-1][0]["message"]


def test_tiles_and_rows_exclude_sinks_as_the_whole_head_does(explorer):
    """With sinks excluded, a tile is the max-pooled pattern without sinks and a row is its row."""
    import torch

    layer, head = next((i, h) for i in range(3) for h in range(4) if explorer.sink_positions[i][h])
    explorer.exclude_sinks = True
    sinks = explorer.sink_positions[layer][head]
    raw = torch.from_numpy(explorer.pattern(layer, head))
    raw[:, sinks] = 0
    rows = raw.sum(-1, keepdim=True)
    expected = torch.where(rows > 1e-6, raw / rows.clamp_min(1e-6), torch.zeros_like(raw))
    n = len(explorer.tokens)
    explorer.sent.clear()
    explorer._on_front_end_message(
        explorer, {"type": "tile", "id": 2, "layer": layer, "head": head, "q0": 0, "q1": n, "k0": 0, "k1": n,
                   "rows": 4, "cols": 4}, [])  # fmt: skip
    explorer._on_front_end_message(
        explorer, {"type": "row", "id": 3, "layer": layer, "head": head, "index": n - 1, "axis": "query"}, []
    )
    (_tile_reply, tile), (_row_reply, row) = explorer.sent
    pooled = torch.nn.functional.adaptive_max_pool2d(expected[None], (4, 4))[0]
    got = torch.from_numpy(np.frombuffer(tile[0], np.uint8).reshape(4, 4).astype(np.float32))
    torch.testing.assert_close(got, (pooled * 255).round(), atol=1, rtol=0)
    got_row = np.frombuffer(row[0], "<f2").astype(np.float32)
    np.testing.assert_allclose(got_row, expected[n - 1].numpy(), atol=1e-3)


def test_a_spread_prefetch_leaves_out_layers_past_the_budget(bridge, monkeypatch):
    """A layer that would cost a pass is not run for a prefetch; asked for alone, it is."""
    import asyncio

    from attn_widget import AttentionExplorer
    from attn_widget.analysis import prompt as prompt_module
    from attn_widget.widget import requests
    from conftest import PROMPT, recording

    monkeypatch.setattr(prompt_module, "CAPTURE_BUDGET_BYTES", {"cuda": 0, "cpu": 0})
    monkeypatch.setattr(requests, "PREFETCH_SLICE_S", 60.0)
    explorer = recording(AttentionExplorer(bridge, prompt=PROMPT))
    session = explorer._session
    session.current().capture(1)  # the one recomputed layer is at hand

    async def prefetch() -> None:
        session.on_message(None, {"type": "heads", "id": 90, "heads": [[0, 0], [1, 0], [2, 0]]}, [])
        while session.prefetch.jobs:
            await asyncio.sleep(0.001)

    explorer.sent.clear()
    asyncio.run(prefetch())
    ((_reply, buffers),) = explorer.sent
    assert [len(b) > 0 for b in buffers] == [False, True, False]
    explorer._on_front_end_message(explorer, {"type": "pattern", "id": 91, "layer": 2, "head": 0}, [])
    assert explorer.sent[-1][0]["id"] == 91 and len(explorer.sent[-1][1][0]) > 0
