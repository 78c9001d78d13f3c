"""Two prompts of the same length, layer by layer: pure functions over their attention, read in
query blocks (no `[heads, n, n]` tensor).

The difference `A(prompt) - A(compare)` lies in [-1, 1]. It crosses to the browser as float16
(short prompts) or as bytes with 0 at 127.5 (`signed` replies); tiles keep each cell's largest
change by magnitude, with its sign, so no strong change vanishes when zoomed out.
"""

from __future__ import annotations

import torch

from .capture import LayerAttention, block_budget, full_rows, rows_per_block
from .reductions import pooled_window, reduce_layer
from .weighted_attention import Difference


def row_l1_change(a: LayerAttention, b: LayerAttention) -> torch.Tensor:
    """`[heads]`: mean over query rows of the L1 distance between the two prompts' rows (0 to 2),
    first prompt of the batch."""
    n = a.n
    total = torch.zeros(a.n_heads, device=a.device)
    step = rows_per_block(a, 2 * a.n_heads, block_budget(a.device))
    for q0 in range(0, n, step):
        q1 = min(n, q0 + step)
        change = full_rows(a, q0, q1)[0] - full_rows(b, q0, q1)[0].to(a.device)
        total += change.abs().sum(dim=(-2, -1))
    return total / n


def change_thumbnails(a: LayerAttention, b: LayerAttention, token_ids: torch.Tensor) -> torch.Tensor:
    """`[heads, s, s]` uint8: where each head changed, |A - B| max-pooled like attention thumbnails."""
    return reduce_layer(Difference(a, b, "magnitude"), token_ids).thumbnails


def signed_window(
    a: LayerAttention, b: LayerAttention, head: int, q0: int, q1: int, k0: int, k1: int, rows: int, cols: int
) -> torch.Tensor:
    """Like `reductions.pooled_window` for the difference: each cell keeps the window's change
    largest in magnitude, with its sign, float32 `[r, c]`."""
    up = pooled_window(Difference(a, b, "positive"), head, q0, q1, k0, k1, rows, cols)
    down = pooled_window(Difference(a, b, "negative"), head, q0, q1, k0, k1, rows, cols)
    return torch.where(up >= down, up, -down)


def signed_to_uint8(values: torch.Tensor) -> torch.Tensor:
    """Values in [-1, 1] to bytes 0..255 (0 -> 127.5 rounds to 128; clamped)."""
    return ((values.float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
