"""The reference notebook's summary of a prompt's heads, as a small table."""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np

from attn_widget.contract import METRIC_LABELS, REPEATED_TOKENS, head_label


@dataclass(frozen=True)
class SummaryRow:
    finding: str
    layer: int
    head: int
    metric: str
    value: float

    @property
    def metric_label(self) -> str:
        """The metric as the score views name it (`repeated_tokens` reads "induction (repeated random tokens)")."""
        return METRIC_LABELS.get(self.metric, self.metric)


@dataclass(frozen=True)
class HeadSummary:
    rows: list[SummaryRow]

    def __str__(self) -> str:
        width = max([len("metric"), *(len(r.metric_label) for r in self.rows)])
        lines = [f"{'finding':<22} {'head':>7}  {'metric':<{width}} {'value':>8}"]
        for r in self.rows:
            lines.append(f"{r.finding:<22} {head_label(r.layer, r.head):>7}  {r.metric_label:<{width}} {r.value:>8.4f}")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<tr><td>{html.escape(r.finding)}</td><td>{head_label(r.layer, r.head)}</td>"
            f"<td>{html.escape(r.metric_label)}</td><td>{r.value:.4f}</td></tr>"
            for r in self.rows
        )
        return (
            "<table><thead><tr><th>finding</th><th>head</th><th>metric</th><th>value</th></tr></thead>"
            f"<tbody>{cells}</tbody></table>"
        )


def _nan_last(values: np.ndarray, lowest_first: bool) -> np.ndarray:
    """Flat indices in order of value; undefined (NaN) scores last, whatever the order."""
    key = np.where(np.isnan(values), np.inf, values if lowest_first else -values)
    return np.argsort(key, axis=None, kind="stable")


def _at(scores: np.ndarray, flat_index: int) -> tuple[int, int, float]:
    layer, head = np.unravel_index(flat_index, scores.shape)
    return int(layer), int(head), float(scores[layer, head])


def summarize(scores: dict[str, np.ndarray], induction: np.ndarray, top_k: int = 5) -> HeadSummary:
    """Top induction heads (repeated random token test), most focused and most diffuse head
    (lowest and highest entropy) and longest-range head (highest mean distance)."""
    rows = []
    for rank, flat in enumerate(_nan_last(induction, lowest_first=False)[:top_k], start=1):
        layer, head, value = _at(induction, int(flat))
        rows.append(SummaryRow(f"induction head #{rank}", layer, head, REPEATED_TOKENS, value))
    picks = [
        ("most focused", "entropy", int(_nan_last(scores["entropy"], lowest_first=True)[0])),
        ("most diffuse", "entropy", int(_nan_last(scores["entropy"], lowest_first=False)[0])),
        ("longest-range", "mean_distance", int(_nan_last(scores["mean_distance"], lowest_first=False)[0])),
    ]
    for finding, metric, flat in picks:
        layer, head, value = _at(scores[metric], flat)
        rows.append(SummaryRow(finding, layer, head, metric, value))
    return HeadSummary(rows)


def top_heads_text(scores: np.ndarray, k: int = 3) -> str:
    """`L1H2 0.91, L1H1 0.84, ...`: the k highest-scoring heads of a `(layers, heads)` map, NaN skipped."""
    flat = np.asarray(scores, dtype=np.float64).reshape(-1)
    heads = int(np.asarray(scores).shape[-1]) if np.ndim(scores) == 2 else 1
    order = [int(i) for i in np.argsort(-np.nan_to_num(flat, nan=-np.inf), kind="stable") if not np.isnan(flat[i])][:k]
    return ", ".join(f"{head_label(i // heads, i % heads)} {flat[i]:.2f}" for i in order)
