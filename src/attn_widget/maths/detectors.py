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

    def expected(self, tokens: torch.Tensor) -> torch.Tensor:
        """The checked `[n, n]` float32 pattern for one prompt's ids `[n]` (CPU)."""
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
        if not bool(wide.isfinite().all()):
            raise DetectorError(f"Detector {self.name!r} returned NaN or infinite values.")
        largest = float(wide.abs().max()) if wide.numel() else 0.0
        if largest > torch.finfo(torch.float32).max:
            raise DetectorError(
                f"Detector {self.name!r} returned values up to {largest:.3g}, past float32's range: "
                "an expected pattern holds weights such as 0 and 1."
            )
        return wide.float()


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
