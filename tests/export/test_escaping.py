"""What leaves the notebook is well-formed whatever the text: every character XML forbids (NUL,
ESC, BEL...) replaced in SVG figures, snapshots and page titles; files written atomically."""

from __future__ import annotations

import re
import urllib.parse
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from attn_widget import AttentionExplorer
from attn_widget.export.snapshot import snapshot_html
from attn_widget.export.svg import xml_safe
from attn_widget.widget import saving

CONTROL = "Mary\x00 gave\x1b[31m a\x07 drink\x0b to\x7f John\ufffe"


def _snapshot_svg(w) -> str:
    html = snapshot_html(w.view_data(), w.snapshot_key)
    return urllib.parse.unquote(re.search(r'src="data:image/svg\+xml,([^"]*)"', html).group(1))


def test_xml_safe_replaces_exactly_what_xml_forbids():
    forbidden = [chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"] + ["\ufffe", "\uffff"]
    for char in forbidden:
        ET.fromstring(f"<t>{xml_safe('a' + char + 'b')}</t>")  # parses
        assert char not in xml_safe(char)
    kept = "\t\n\r<>&\x7f\u00e9\u2028\U0001f600 plain"
    assert xml_safe(kept) == kept
    assert xml_safe("\x00\x1b\x07") == "\u2400\u241b\u2407"  # control pictures: still readable


def test_a_prompt_with_control_characters_saves_well_formed_svg_and_snapshot(bridge, tmp_path):
    w = AttentionExplorer(bridge, prompt=CONTROL)
    assert any(c in "".join(w.tokens) for c in "\x00\x1b\x07")  # the tokens hold them
    root = ET.fromstring(w.save(tmp_path / "all.svg", view="all").read_text(encoding="utf-8"))
    labels = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "\u2400" in labels and "\u241b" in labels  # shown as their pictures, not dropped
    ET.fromstring(_snapshot_svg(w))
    page = w.save(tmp_path / "page.html").read_text(encoding="utf-8")
    title = re.search("<title>(.*)</title>", page).group(1)
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f]", title)


def test_precomputed_tokens_with_control_characters_save_well_formed_svg(tmp_path):
    tokens = ["a\x00", "\x1bb", "c\x07", "<d>&"]
    patterns = np.tril(np.ones((1, 2, 4, 4), np.float32))
    patterns /= patterns.sum(-1, keepdims=True)
    w = AttentionExplorer(patterns, tokens=tokens)
    ET.fromstring(w.save(tmp_path / "x.svg", view="all").read_text(encoding="utf-8"))
    ET.fromstring(_snapshot_svg(w))


def test_an_interrupted_save_leaves_the_previous_file(explorer, tmp_path, monkeypatch):
    path = explorer.save(tmp_path / "head.svg")
    before = path.read_bytes()
    explorer.prompt = "the cat sat on the mat"

    class Interrupted:
        def __init__(self, file):
            self.file = file

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            self.file.write(data[: len(data) // 2])  # half written, then the stop button
            raise KeyboardInterrupt

    fdopen = saving.os.fdopen
    monkeypatch.setattr(saving.os, "fdopen", lambda fd, mode: Interrupted(fdopen(fd, mode)))
    with pytest.raises(KeyboardInterrupt):
        explorer.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["head.svg"]  # no temporary file left
    monkeypatch.setattr(saving.os, "fdopen", fdopen)
    assert explorer.save(path).read_bytes() != before
