"""Custom messages between the front end and the kernel, checked on arrival.

front end -> kernel  {"type": "pattern", "id": int, "layer": int, "head": int}
kernel -> front end  {"type": "pattern", "id", "layer", "head", "revision", "n", "dtype"} + one buffer
                     {"type": "error", "id": int | None, "message": str}
The front end tags each request with a fresh id and drops replies to all but its latest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import AttnWidgetError


@dataclass(frozen=True)
class PatternRequest:
    id: int
    layer: int
    head: int


def _int_field(content: dict[str, Any], name: str) -> int:
    value = content.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise AttnWidgetError(f"malformed message from the front end: {name!r} must be an integer, got {value!r}")
    return value


def parse_request(content: Any) -> PatternRequest:
    if not isinstance(content, dict) or content.get("type") != "pattern":
        raise AttnWidgetError(f"malformed message from the front end: {content!r:.200}")
    return PatternRequest(_int_field(content, "id"), _int_field(content, "layer"), _int_field(content, "head"))


def pattern_reply(request: PatternRequest, revision: int, n_tokens: int, dtype: str) -> dict[str, Any]:
    return {
        "type": "pattern",
        "id": request.id,
        "layer": request.layer,
        "head": request.head,
        "revision": revision,
        "n": n_tokens,
        "dtype": dtype,
    }


def error_reply(request_id: Any, err: Exception) -> dict[str, Any]:
    message = str(err) if isinstance(err, AttnWidgetError) else f"{type(err).__name__}: {err}"
    return {"type": "error", "id": request_id if isinstance(request_id, int) else None, "message": message}
