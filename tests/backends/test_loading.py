from __future__ import annotations

import time

import pytest

from attn_widget import AttentionExplorer
from attn_widget.errors import ModelError


def test_hub_names_fail_fast_and_point_to_the_demo_model_when_offline(monkeypatch):
    # Port 9 on loopback refuses at once: a hub that cannot be reached, deterministically.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    start = time.perf_counter()
    with pytest.raises(ModelError, match="attn-widget-demo") as info:
        AttentionExplorer("gpt2-small")
    assert time.perf_counter() - start < 20
    assert "not reachable" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
