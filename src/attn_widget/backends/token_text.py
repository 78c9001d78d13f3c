"""Tokens as text a researcher can read: each token decoded as its tokenizer decodes it, except that
a token holding part of a UTF-8 character (byte-level BPE splits "é" into two tokens) shows its
bytes, `⟨c3⟩`, where the tokenizer would give the replacement character �."""

from __future__ import annotations

import codecs
import functools
import re
from collections.abc import Sequence
from typing import Any

REPLACEMENT = "\ufffd"
BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
"""SentencePiece's byte-fallback pieces (Llama, Gemma): `<0xC3>`."""


def _bytes_shown(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return "".join(f"\u27e8{b:02x}\u27e9" for b in bad), error.end


codecs.register_error("attn_widget.bytes", _bytes_shown)


def show_bytes(data: bytes) -> str:
    """UTF-8 text, with every byte that is not part of a whole character written `⟨xx⟩`."""
    return data.decode("utf-8", errors="attn_widget.bytes")


@functools.cache
def byte_level_table() -> dict[str, int]:
    """GPT-2's byte-level alphabet, reversed: the character a BPE piece uses for each byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def piece_bytes(piece: str) -> bytes | None:
    """The bytes a vocabulary piece stands for, when it is byte-level or a byte fallback; else None."""
    if match := BYTE_FALLBACK.match(piece):
        return bytes([int(match.group(1), 16)])
    table = byte_level_table()
    if piece and all(c in table for c in piece):
        return bytes(table[c] for c in piece)
    return None


def token_strings(tokenizer: Any, ids: Sequence[int], decoded: Sequence[str] | None = None) -> list[str]:
    """Each token as text: `decoded` (else the tokenizer's decode of the one token), unless that holds
    �, in which case the token's own bytes, incomplete characters as `⟨xx⟩`."""
    texts = list(decoded) if decoded is not None else [str(tokenizer.decode([i])) for i in ids]
    out = []
    for i, text in zip(ids, texts, strict=True):
        if REPLACEMENT in text:
            pieces = tokenizer.convert_ids_to_tokens([int(i)]) if hasattr(tokenizer, "convert_ids_to_tokens") else []
            data = piece_bytes(str(pieces[0])) if pieces else None
            if data is not None:
                text = show_bytes(data)
        out.append(text)
    return out
