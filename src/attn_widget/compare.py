"""Two prompts of the same length, head by head: pure tensor functions over their patterns.

The difference `A(prompt) - A(compare)` lies in [-1, 1]. It crosses to the browser as float16
(short prompts) or as bytes with 0 at 127.5 (`signed` replies); tiles keep each cell's largest
change by magnitude, with its sign, so no strong change vanishes when zoomed out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import wire


def row_l1_change(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`[..., h]`: mean over query rows of the L1 distance between the two patterns' rows (0 to 2)."""
    return (a.float() - b.float()).abs().sum(dim=-1).mean(dim=-1)


def change_thumbnails(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`[h, s, s]` uint8: where each head's pattern changed, |A - B| max-pooled like attention."""
    return wire.thumbnails((a.float() - b.float()).abs())


def signed_to_uint8(values: torch.Tensor) -> torch.Tensor:
    """Values in [-1, 1] to bytes 0..255 (0 -> 127.5 rounds to 128; clamped)."""
    return ((values.float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)


def signed_tile(change: torch.Tensor, q0: int, q1: int, k0: int, k1: int, rows: int, cols: int) -> torch.Tensor:
    """Like `wire.tile` for a difference: each cell keeps the window's change largest in magnitude."""
    n = change.shape[-1]
    window = change[min(q0, n - 1) : min(q1, n), min(k0, n - 1) : min(k1, n)].float()
    size = (min(rows, window.shape[0]), min(cols, window.shape[1]))
    _, where = F.adaptive_max_pool2d(window.abs()[None], size, return_indices=True)
    return signed_to_uint8(window.reshape(-1)[where[0]])
