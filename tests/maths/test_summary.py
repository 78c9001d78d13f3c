"""The summary table names heads and metrics as the score views do."""

from __future__ import annotations

import numpy as np

from attn_widget.contract import METRIC_LABELS
from attn_widget.maths.summary import summarize


def test_the_summary_prints_readable_metric_labels_and_head_labels():
    entropy = np.array([[0.5, 2.0], [1.0, 0.1]])
    scores = {"entropy": entropy, "mean_distance": np.array([[0.0, 3.0], [1.0, 2.0]])}
    summary = summarize(scores, induction=np.array([[0.1, 0.2], [0.9, 0.3]]), top_k=2)
    text, page = str(summary), summary._repr_html_()
    lines = text.splitlines()
    assert lines[1].split()[:4] == ["induction", "head", "#1", "L1H0"]
    assert METRIC_LABELS["repeated_tokens"] in lines[1] and "repeated_tokens" not in text
    assert "most focused" in lines[3] and "L1H1" in lines[3] and METRIC_LABELS["entropy"] in lines[3]
    assert "longest-range" in lines[5] and "L0H1" in lines[5] and METRIC_LABELS["mean_distance"] in lines[5]
    assert "mean_distance" not in text and "mean_distance" not in page and "<td>L1H0</td>" in page
    assert [row.metric for row in summary.rows][:1] == ["repeated_tokens"]  # the data keeps the key
