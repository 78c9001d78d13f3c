"""Results print short: shapes and a few top heads, never their arrays; the demo model's BOS is a sink."""

from __future__ import annotations

import numpy as np

from attn_widget import AttentionExplorer
from attn_widget.analysis.dataset import DatasetScores
from attn_widget.contract import head_label
from attn_widget.maths.similarity import HeadSimilarity
from attn_widget.maths.summary import top_heads_text

PROMPT = "When Mary and John went to the store, Mary gave a drink to John because she was thirsty"


def test_top_heads_text_ranks_like_a_sort_and_skips_nan():
    scores = np.array([[0.1, np.nan, 0.7], [0.9, 0.2, 0.3]])
    assert top_heads_text(scores, 2) == "L1H0 0.90, L0H2 0.70"


def test_dataset_scores_repr_is_short():
    rng = np.random.default_rng(0)
    per_prompt = {m: rng.random((30, 12, 12)) for m in ("induction", "previous_token", "sink_share")}
    scores = DatasetScores(("induction", "previous_token", "sink_share"), per_prompt, 40, 30)
    text = repr(scores)
    best = np.unravel_index(np.argmax(scores.mean["induction"]), (12, 12))
    assert len(text) < 400, text
    assert "30 prompts x 12x12" in text and f"{head_label(int(best[0]), int(best[1]))} " in text
    assert "previous token: L" in text and "previous_token" not in text  # the score views' labels


def test_sinks_repr_is_short_and_the_demo_models_bos_is_a_sink():
    w = AttentionExplorer(None, prompt=PROMPT)
    sinks = w.sinks()
    assert len(repr(sinks)) < 300, repr(sinks)
    mask = sinks.sink_mask
    n = mask.shape[-1]
    assert mask[:, :, 0].any()  # some heads rest on the first token
    assert not mask[:, :, n - n // 4 :].any()  # keys seen by a few queries are no sinks


def test_head_similarity_repr_is_short_and_names_the_most_alike_heads():
    distance = np.full((6, 6), 0.5)
    np.fill_diagonal(distance, 0.0)
    distance[1, 4] = distance[4, 1] = 0.01  # L0H1 and L1H1 (3 heads a layer)
    distance[0, 5] = distance[5, 0] = 0.02
    result = HeadSimilarity(distance, [(0, 1), (1, 1), (0, 0), (1, 2), (0, 2), (1, 0)], 3)
    assert result.most_alike(2) == [((0, 1), (1, 1), 0.01), ((0, 0), (1, 2), 0.02)]
    text = repr(result)
    assert len(text) < 200 and "6 heads" in text and "L0H1\u2013L1H1 0.010, L0H0\u2013L1H2 0.020" in text
