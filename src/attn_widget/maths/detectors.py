"""Your own head detectors: an expected pattern per prompt, scored like TransformerLens `detect_head`.

A detector is `fn(tokens) -> [n, n]`: given one prompt's token ids (a 1-D int64 CPU tensor of
any length n) it returns the attention pattern its kind of head should show (numpy or torch).
TransformerLens's `get_*_detection_pattern` functions work as they are.

Measures, as in `transformer_lens.head_detector.compute_head_attention_similarity_score`:
- "mul": the share of the head's attention on the expected pattern, sum(A * D) / sum(A);
- "abs": 1 - mean |A - D| * n, i.e. 1 - (sum |A - D|) / n (1 is a perfect match, -1 the worst).
  TransformerLens rounds "abs" to 3 decimals; we do not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from attn_widget.errors import AttnWidgetError

DetectorFn = Callable[[torch.Tensor], Any]
MEASURES = ("mul", "abs")


class DetectorError(AttnWidgetError):
    """A custom detector failed or returned something that is not an `[n, n]` finite pattern."""


def same_token_pattern(tokens: torch.Tensor) -> torch.Tensor:
    """Built-in example: each query attends to earlier copies of its own token and to itself."""
    return (tokens[:, None] == tokens[None, :]).float().tril()


def successor_pattern(tokens: torch.Tensor) -> torch.Tensor:
    """Built-in example: each query attends to the token right after an earlier copy of itself
    (key k with tokens[k - 1] == tokens[q], k <= q): the induction stripe, by another name."""
    same = tokens[:, None] == tokens[None, :]
    pattern = torch.zeros(len(tokens), len(tokens))
    pattern[:, 1:] = same[:, :-1].float()
    return pattern.tril()


BUILT_IN: dict[str, DetectorFn] = {"same_token": same_token_pattern, "successor": successor_pattern}


@dataclass(frozen=True)
class Detector:
    name: str
    fn: DetectorFn
    measure: str = "mul"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise DetectorError("A detector needs a non-empty name.")
        if not callable(self.fn):
            raise DetectorError(f"Detector {self.name!r}: fn must be callable as fn(tokens) -> [n, n] pattern.")
        if self.measure not in MEASURES:
            raise DetectorError(f"Detector {self.name!r}: measure must be 'mul' or 'abs', not {self.measure!r}.")

    def expected(self, tokens: torch.Tensor, check_finite: bool = True) -> torch.Tensor:
        """The checked `[n, n]` float32 pattern for one prompt's ids `[n]` (CPU). `check_finite=False`:
        the caller checks the values it reads (NaN and infinity are non-zero cells)."""
        n = int(tokens.shape[-1])
        try:
            raw = self.fn(tokens.detach().cpu().long().clone())
        except Exception as err:  # the user's code: name it and say what it did
            raise DetectorError(f"Detector {self.name!r} raised {type(err).__name__}: {err}") from err
        try:
            wide = torch.as_tensor(np.asarray(raw.detach().cpu() if torch.is_tensor(raw) else raw), dtype=torch.float64)
        except Exception as err:
            raise DetectorError(
                f"Detector {self.name!r} returned a {type(raw).__name__}, not an [n, n] array of numbers."
            ) from err
        if tuple(wide.shape) != (n, n):
            raise DetectorError(
                f"Detector {self.name!r} returned shape {tuple(wide.shape)} for a {n}-token prompt; "
                f"it must return ({n}, {n})."
            )
        if check_finite:
            self.check_finite(wide)
        return wide.float()

    def check_finite(self, values: torch.Tensor) -> None:
        if not bool(values.isfinite().all()):
            raise DetectorError(f"Detector {self.name!r} returned NaN or infinite values.")
        largest = float(values.abs().max()) if values.numel() else 0.0
        if largest > torch.finfo(torch.float32).max:
            raise DetectorError(
                f"Detector {self.name!r} returned values up to {largest:.3g}, past float32's range: "
                "an expected pattern holds weights such as 0 and 1."
            )


def detector_score(pattern: torch.Tensor, expected: torch.Tensor, measure: str) -> torch.Tensor:
    """`[head]` scores of one prompt's layer, pattern `[head, n, n]` against expected `[n, n]`."""
    pattern = pattern.float()
    expected = expected.to(pattern.device)
    if measure == "mul":
        return (pattern * expected).sum(dim=(-2, -1)) / pattern.sum(dim=(-2, -1))
    n = pattern.shape[-1]
    return 1.0 - (pattern - expected).abs().sum(dim=(-2, -1)) / n


def check_name(name: str, taken: set[str]) -> None:
    if name in taken:
        raise DetectorError(f"Detector name {name!r} is already a metric: choose another name.")


SPARSE_CELLS_PER_TOKEN = 64
"""An expected pattern with at most this many non-zero cells per token is kept as a list of cells."""


class ExpectedCells:
    """One detector's expected pattern, read a block of query rows at a time.

    Most expected patterns (a stripe, earlier copies of a token) have a few cells per row: those are
    kept as sorted (query, key, value) lists, so a block is scored by gathering its weights at those
    cells and no `[n, n]` tensor is kept or formed per head. Denser patterns stay one `[n, n]` float32
    tensor on the CPU, sliced per block.
    """

    def __init__(self, expected: torch.Tensor | None, measure: str, n: int | None = None) -> None:
        self.measure = measure
        self.dense: torch.Tensor | None = None
        if expected is None:  # filled by `from_cells`
            self.n = int(n or 0)
            return
        self.n = int(expected.shape[-1])
        expected = expected.float().cpu()
        nonzero = int(torch.count_nonzero(expected))
        if nonzero > SPARSE_CELLS_PER_TOKEN * self.n:
            self.dense = expected
            self.abs_row_sums = expected.abs().sum(dim=-1)
            """`[n]`: sum |D| of each row, for the cells outside a block's keys (where A is 0)."""
            return
        q, k = expected.nonzero(as_tuple=True)  # row-major: sorted by query
        self.query, self.key, self.value = q, k, expected[q, k]
        self.abs_row_sums = torch.zeros(self.n).index_add_(0, q, self.value.abs())

    @classmethod
    def from_cells(cls, query: torch.Tensor, key: torch.Tensor, n: int, measure: str) -> ExpectedCells:
        """An expected pattern of ones on the cells (query, key), sorted by query, with no `[n, n]`."""
        cells = cls(None, measure, n)
        cells.query, cells.key = query.long().cpu(), key.long().cpu()
        cells.value = torch.ones(len(query))
        cells.abs_row_sums = torch.bincount(cells.query, minlength=n).float()
        return cells

    def add_block(self, total: torch.Tensor, weights: torch.Tensor, q0: int, k0: int) -> None:
        """Adds to `total` `[batch, heads]` this block's part of the detector's sum:
        sum A * D ("mul") or sum |A - D| ("abs") over rows [q0, q0 + rows) and every key."""
        rows, keys = weights.shape[-2:]
        q1, k1 = q0 + rows, k0 + keys
        if self.dense is not None:
            cells = self.dense[q0:q1, k0:k1].to(weights.device)
            if self.measure == "mul":
                total += torch.einsum("bhqk,qk->bh", weights, cells)
            else:
                outside = self.abs_row_sums[q0:q1].sum() - cells.abs().sum()
                total += (weights - cells).abs().sum(dim=(-2, -1)) + outside.to(weights.device)
            return
        lo, hi = (int(i) for i in torch.searchsorted(self.query, torch.tensor([q0, q1])))
        q, k, d = (t[lo:hi].to(weights.device) for t in (self.query, self.key, self.value))
        inside = (k >= k0) & (k < k1)
        a = torch.zeros(*weights.shape[:2], len(q), device=weights.device, dtype=weights.dtype)
        a[..., inside] = weights[:, :, q[inside] - q0, k[inside] - k0]
        if self.measure == "mul":
            total += a @ d
            return
        # sum |A - D| = sum A (every cell) + sum over D's cells of (|A - D| - A); A is 0 off the keys
        total += weights.sum(dim=(-2, -1)) + ((a - d).abs() - a).sum(dim=-1)

    def score(self, total: torch.Tensor, weight_sums: torch.Tensor) -> torch.Tensor:
        """The score from the accumulated sums, as `detector_score` computes it from a dense pattern."""
        if self.measure == "mul":
            return total / weight_sums
        return 1.0 - total / self.n


def _repeat_pairs(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Every (q, k) with k < q and the same token, or None when there are too many to list."""
    n = len(tokens)
    counts = torch.bincount(tokens - tokens.min())
    if int((counts * (counts - 1) // 2).sum()) > SPARSE_CELLS_PER_TOKEN * n:
        return None
    order = torch.argsort(tokens * n + torch.arange(n))  # by token, then position
    ranked = tokens[order]
    q_parts, k_parts = [torch.zeros(0, dtype=torch.long)], [torch.zeros(0, dtype=torch.long)]
    for d in range(1, int(counts.max())):
        same = ranked[d:] == ranked[:-d]
        q_parts.append(order[d:][same])
        k_parts.append(order[:-d][same])
    return torch.cat(q_parts), torch.cat(k_parts)


def _sorted_cells(q: torch.Tensor, k: torch.Tensor, n: int, measure: str) -> ExpectedCells:
    order = torch.argsort(q * n + k)
    return ExpectedCells.from_cells(q[order], k[order], n, measure)


def expected_cells(detector: Detector, tokens: torch.Tensor) -> ExpectedCells:
    """A detector's expected pattern on one prompt's ids `[n]`, as cells read per block. The
    built-in detectors list their cells from the tokens (no `[n, n]` at any length); others
    return their `[n, n]` pattern, checked (DetectorError when it is bad)."""
    ids = tokens.detach().cpu().long().reshape(-1)
    n = len(ids)
    if detector.fn in (same_token_pattern, successor_pattern) and (pairs := _repeat_pairs(ids)) is not None:
        q, k = pairs
        if detector.fn is same_token_pattern:  # the earlier copies and the token itself
            diagonal = torch.arange(n)
            return _sorted_cells(torch.cat([q, diagonal]), torch.cat([k, diagonal]), n, detector.measure)
        return _sorted_cells(q, k + 1, n, detector.measure)  # the key after an earlier copy, k + 1 <= q
    # Finiteness is checked on the cells kept (NaN and infinity are non-zero): one pass over an
    # [n, n] pattern fewer, which at 8k tokens costs as much as the rest of the detector.
    cells = ExpectedCells(detector.expected(ids, check_finite=False), detector.measure)
    detector.check_finite(cells.dense if cells.dense is not None else cells.value)
    return cells
