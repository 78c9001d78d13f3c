"""The reference notebook's summary of a prompt's heads, as a small table."""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SummaryRow:
    finding: str
    layer: int
    head: int
    metric: str
    value: float


@dataclass(frozen=True)
class HeadSummary:
    rows: list[SummaryRow]

    def __str__(self) -> str:
        lines = [f"{'finding':<22} {'head':>7}  {'metric':<14} {'value':>8}"]
        for r in self.rows:
            lines.append(f"{r.finding:<22} {f'L{r.layer}H{r.head}':>7}  {r.metric:<14} {r.value:>8.4f}")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<tr><td>{html.escape(r.finding)}</td><td>L{r.layer}H{r.head}</td>"
            f"<td>{html.escape(r.metric)}</td><td>{r.value:.4f}</td></tr>"
            for r in self.rows
        )
        return (
            "<table><thead><tr><th>finding</th><th>head</th><th>metric</th><th>value</th></tr></thead>"
            f"<tbody>{cells}</tbody></table>"
        )


def _at(scores: np.ndarray, flat_index: int) -> tuple[int, int, float]:
    layer, head = np.unravel_index(flat_index, scores.shape)
    return int(layer), int(head), float(scores[layer, head])


def summarize(scores: dict[str, np.ndarray], induction: np.ndarray, top_k: int = 5) -> HeadSummary:
    """Top induction heads (repeated random token test), most focused and most diffuse head
    (lowest and highest entropy) and longest-range head (highest mean distance)."""
    rows = []
    for rank, flat in enumerate(np.argsort(-induction, axis=None, kind="stable")[:top_k], start=1):
        layer, head, value = _at(induction, int(flat))
        rows.append(SummaryRow(f"induction head #{rank}", layer, head, "induction_test", value))
    picks = [
        ("most focused", "entropy", int(np.argmin(scores["entropy"]))),
        ("most diffuse", "entropy", int(np.argmax(scores["entropy"]))),
        ("longest-range", "mean_distance", int(np.argmax(scores["mean_distance"]))),
    ]
    for finding, metric, flat in picks:
        layer, head, value = _at(scores[metric], flat)
        rows.append(SummaryRow(finding, layer, head, metric, value))
    return HeadSummary(rows)
