"""The snapshot a saved notebook keeps: shown beside the widget, kept current, small at 1024 tokens."""

from __future__ import annotations

import random
import re
import urllib.parse

import pytest

from attn_widget import AttentionExplorer
from attn_widget.export import snapshot
from tiny_models import native_model, random_prompt

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def published(ipython_shell, monkeypatch):
    """What the explorer's display sends to the front end: (data, display_id, update) per output."""
    sent: list[tuple[dict, str | None, bool]] = []

    def publish(data, metadata=None, source=None, *, transient=None, update=False, **_kw):
        sent.append((data, (transient or {}).get("display_id"), update))

    monkeypatch.setattr(ipython_shell.display_pub, "publish", publish)
    return sent


def snapshot_svg(html: str) -> str:
    src = re.search(r'<img [^>]*src="data:image/svg\+xml,([^"]*)"', html)
    assert src, html[:300]
    return urllib.parse.unquote(src.group(1))


def test_display_shows_the_widget_then_a_snapshot_kept_current(bridge, published):
    from IPython.display import display

    w = AttentionExplorer(bridge, prompt="When mary and john went to the store", layer=0, head=1)
    display(w)
    (widget, _, _), (snap, snap_id, update) = published
    assert WIDGET_VIEW in widget and "text/html" not in widget  # the live view stays the widget's alone
    assert widget["text/plain"].startswith("AttentionExplorer(")
    assert snap_id == w.snapshot_key and not update
    assert f'data-aw-snapshot="{w.snapshot_key}"' in snap["text/html"]
    assert "L0H1 \u00b7" in snapshot_svg(snap["text/html"])
    w.head = 3  # no event loop runs here: the snapshot is redrawn at once
    data, display_id, update = published[-1]
    assert update and display_id == w.snapshot_key and "L0H3 \u00b7" in snapshot_svg(data["text/html"])
    w.prompt = "a different prompt entirely"
    assert "a different prompt entirely" in snapshot_svg(published[-1][0]["text/html"])


def test_snapshot_is_under_300_kb_at_1024_tokens_for_12_layers_of_12_heads(tokenizer):
    model = native_model(tokenizer, n_layers=12, n_heads=12, n_ctx=1024)
    prompt = random_prompt(random.Random(0), 1100)
    tokens = model.to_str_tokens(prompt)[:1024] if hasattr(model, "to_str_tokens") else None
    w = AttentionExplorer(model, prompt="".join(tokens[1:]) if tokens else prompt, layer=5, head=3)
    assert len(w.tokens) >= 1000
    html = snapshot.snapshot_html(w.view_data(), w.snapshot_key)
    assert len(html.encode()) < 300_000, len(html.encode())
    svg = snapshot_svg(html)
    assert "<script" not in svg and "http://" not in svg.replace("http://www.w3.org/2000/svg", "")
