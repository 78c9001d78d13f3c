"""Byte-level tokens read as the tokenizer decodes them, incomplete UTF-8 as `⟨xx⟩`, never �."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from attn_widget.backends.token_text import piece_bytes, show_bytes, token_strings

DEMO_TOKENIZER = Path(__file__).resolve().parents[2] / "src" / "attn_widget" / "models" / "demo" / "tokenizer.json"


def as_bytes(text: str) -> bytes:
    """Undo the display: `⟨c3⟩` back to its byte, the rest as UTF-8."""
    parts = re.split(r"\u27e8([0-9a-f]{2})\u27e9", text)
    return b"".join(bytes([int(p, 16)]) if i % 2 else p.encode() for i, p in enumerate(parts))


def test_show_bytes_keeps_whole_characters_and_writes_the_rest_as_bytes():
    assert show_bytes("café".encode()) == "café"
    assert show_bytes("é".encode()[:1]) == "\u27e8c3\u27e9"
    assert show_bytes(b"a\xe2\x82") == "a\u27e8e2\u27e9\u27e882\u27e9"


def test_byte_level_and_byte_fallback_pieces():
    assert piece_bytes("<0xC3>") == b"\xc3"
    assert piece_bytes("Ġcaf") == b" caf"  # Ġ is the space byte in GPT-2's alphabet
    assert piece_bytes("Ã") == b"\xc3"


@pytest.mark.parametrize("text", ["café", "naïve 日本語 ok", "emoji 🙂 end"])
def test_demo_tokenizer_pieces_never_show_the_replacement_character(text):
    transformers = pytest.importorskip("transformers")
    tok = transformers.PreTrainedTokenizerFast(tokenizer_file=str(DEMO_TOKENIZER))
    ids = tok(text)["input_ids"]
    shown = token_strings(tok, ids)
    assert all("\ufffd" not in s for s in shown), shown
    # every token's shown text stands for its bytes: together they are the prompt's bytes
    assert b"".join(as_bytes(s) for s in shown) == tok.decode(ids).encode()
    plain = [tok.decode([i]) for i in ids]
    whole = [p for p in plain if "\ufffd" not in p]
    assert [s for s, p in zip(shown, plain, strict=True) if "\ufffd" not in p] == whole
