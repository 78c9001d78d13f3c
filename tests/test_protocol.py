from __future__ import annotations

import pytest

from attn_widget import protocol
from attn_widget.errors import AttnWidgetError


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
