"""What crosses to the browser: single heads, tiles and rows as compact binary buffers.

Attention weights are probabilities in [0, 1], so a byte (steps of 1/255) is enough to draw
them; float16 keeps hover values exact to three decimals and is used while the buffer is small.
"""

from __future__ import annotations

from typing import Literal

import torch

from attn_widget.contract import WHOLE_HEAD_MAX_TOKENS
from attn_widget.maths.reductions import to_uint8

"""Up to this prompt length a head travels as float16 (512 KiB); longer ones as uint8."""

WireDtype = Literal["float16", "uint8"]


def undefined_mask(values: torch.Tensor) -> torch.Tensor:
    """uint8 1 where a weight is NaN or infinite (a float16 model overflowing, bad precomputed input):
    a uint8 buffer has no room for them (to_uint8 makes them 0), so this says where they were."""
    return (~torch.isfinite(values)).to(torch.uint8)


def _undefined_as_nan(values: torch.Tensor) -> torch.Tensor:
    """float16 carries NaN to the browser as is; an infinite weight is as undefined, so it goes as NaN too."""
    values = values.float()
    return torch.where(torch.isfinite(values), values, torch.full_like(values, float("nan")))


def wire_dtype(n_tokens: int) -> WireDtype:
    return "float16" if n_tokens <= WHOLE_HEAD_MAX_TOKENS else "uint8"


def encode_pattern(pattern: torch.Tensor) -> tuple[WireDtype, bytes]:
    """One head's `[q, k]` pattern as a row-major little-endian buffer."""
    dtype = wire_dtype(pattern.shape[-1])
    data = _undefined_as_nan(pattern).to(torch.float16) if dtype == "float16" else to_uint8(pattern)
    return dtype, to_bytes(data)


def to_bytes(values: torch.Tensor) -> bytes:
    """Row-major little-endian bytes of a tensor, wherever it lives."""
    return values.contiguous().cpu().numpy().tobytes()


def encode_line(values: torch.Tensor) -> bytes:
    """A row or column of weights as float16: small (2 bytes a token), exact to 3 decimals."""
    return to_bytes(_undefined_as_nan(values).to(torch.float16))
