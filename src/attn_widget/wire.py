"""What crosses to the browser: thumbnails and single-head patterns as compact binary buffers.

Attention weights are probabilities in [0, 1], so a byte (steps of 1/255) is enough to draw
them; float16 keeps hover values exact to three decimals and is used while the buffer is small.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

THUMBNAIL_SIZE = 48
"""Thumbnails are max-pooled to at most this many cells a side, so no strong weight vanishes."""

FLOAT16_MAX_TOKENS = 512
"""Up to this prompt length a head travels as float16 (512 KiB); longer ones as uint8."""

WireDtype = Literal["float16", "uint8"]


def to_uint8(values: torch.Tensor) -> torch.Tensor:
    """Weights in [0, 1] to bytes 0..255 (rounded, clamped)."""
    return (values.float().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


def thumbnail_side(n_tokens: int) -> int:
    return min(n_tokens, THUMBNAIL_SIZE)


def thumbnails(pattern: torch.Tensor) -> torch.Tensor:
    """`[head, q, k]` weights to `[head, s, s]` uint8, max-pooled to s = thumbnail_side(q)."""
    side = thumbnail_side(pattern.shape[-1])
    pooled = F.adaptive_max_pool2d(pattern.float()[:, None], side)[:, 0]
    return to_uint8(pooled)


def wire_dtype(n_tokens: int) -> WireDtype:
    return "float16" if n_tokens <= FLOAT16_MAX_TOKENS else "uint8"


def encode_pattern(pattern: torch.Tensor) -> tuple[WireDtype, bytes]:
    """One head's `[q, k]` pattern as a row-major little-endian buffer."""
    dtype = wire_dtype(pattern.shape[-1])
    data = pattern.to(torch.float16) if dtype == "float16" else to_uint8(pattern)
    return dtype, to_bytes(data)


def tile(pattern: torch.Tensor, q0: int, q1: int, k0: int, k1: int, rows: int, cols: int) -> torch.Tensor:
    """A window of one head's `[q, k]` pattern, max-pooled to at most rows x cols, as uint8.

    Windows past the prompt's end are clipped. Max-pooling keeps every strong weight visible
    at any zoom; cell i of the tile covers tokens [start + floor(i * len / cells), ...).
    """
    n = pattern.shape[-1]
    window = pattern[min(q0, n - 1) : min(q1, n), min(k0, n - 1) : min(k1, n)].float()
    size = (min(rows, window.shape[0]), min(cols, window.shape[1]))
    return to_uint8(F.adaptive_max_pool2d(window[None], size)[0])


def to_bytes(values: torch.Tensor) -> bytes:
    """Row-major little-endian bytes of a tensor, wherever it lives."""
    return values.contiguous().cpu().numpy().tobytes()


def encode_line(values: torch.Tensor) -> bytes:
    """A row or column of weights as float16: small (2 bytes a token), exact to 3 decimals."""
    return to_bytes(values.to(torch.float16))
