"""Block-by-block reductions equal the dense references: scores, thumbnails and tiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attn_widget.contract import PROMPT_METRICS
from attn_widget.maths import dense_scores as scores
from attn_widget.maths import reductions
from attn_widget.maths.layer import DenseAttention, LayerCapture, dense
from attn_widget.maths.reductions import THUMBNAIL_SIZE, head_column, pooled_window, reduce_layer, to_uint8


def random_capture(batch=2, heads=4, kv_heads=2, n=37, d=8, seed=0, **options) -> LayerCapture:
    g = torch.Generator().manual_seed(seed)
    return LayerCapture(
        query=torch.randn(batch, heads, n, d, generator=g) * 2,
        key=torch.randn(batch, kv_heads, n, d, generator=g) * 2,
        scaling=d**-0.5,
        **options,
    )


def repeated_tokens(batch: int, n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 6, (batch, n), generator=torch.Generator().manual_seed(seed))  # many repeats


@pytest.mark.parametrize(
    "options",
    [{}, {"sliding_window": 5}, {"softcap": 3.0}, {"sinks": torch.tensor([0.5, -1.0, 2.0, 0.0])}, {"causal": False}],
    ids=["causal", "window", "softcap", "sinks", "bidirectional"],
)
@pytest.mark.parametrize("budget", [None, 1], ids=["one-block", "row-by-row"])
@pytest.mark.parametrize("pairs", ["listed", "masked"])
def test_block_scores_equal_the_dense_scores(options, budget, pairs, monkeypatch):
    if pairs == "masked":  # as for a prompt of one word repeated: masks per block, not a list of cells
        monkeypatch.setattr(reductions, "MAX_PAIRS_PER_TOKEN", 0)
    capture = random_capture(**options)
    tokens = repeated_tokens(2, capture.n)
    got = reduce_layer(capture, tokens, budget_bytes=budget)
    expected = scores.layer_scores(dense(capture), tokens)
    for metric in PROMPT_METRICS:
        torch.testing.assert_close(got.scores[metric], expected[metric], atol=2e-5, rtol=1e-5, msg=metric)


def test_block_thumbnails_equal_adaptive_max_pooling():
    capture = random_capture(batch=1, n=131)
    got = reduce_layer(capture, repeated_tokens(1, 131), budget_bytes=1).thumbnails
    expected = to_uint8(F.adaptive_max_pool2d(dense(capture)[0], THUMBNAIL_SIZE))
    assert got.shape == (4, THUMBNAIL_SIZE, THUMBNAIL_SIZE)
    torch.testing.assert_close(got, expected)


def test_thumbnails_keep_a_lone_strong_weight():
    pattern = torch.zeros(1, 2, 200, 200)
    pattern[0, :, :, 0] = 0.05
    pattern[0, 1, 137, 3] = 0.9  # one sharp weight in a long prompt
    thumbs = reduce_layer(DenseAttention(pattern), torch.zeros(1, 200, dtype=torch.long)).thumbnails
    assert thumbs.dtype == torch.uint8
    row, col = divmod(int(thumbs[1].argmax()), THUMBNAIL_SIZE)
    assert thumbs[1, row, col] == round(0.9 * 255)
    assert (row, col) == (137 * THUMBNAIL_SIZE // 200, 3 * THUMBNAIL_SIZE // 200)


def test_short_prompts_keep_one_cell_per_token():
    pattern = torch.rand(1, 3, 5, 5)
    thumbs = reduce_layer(DenseAttention(pattern), torch.zeros(1, 5, dtype=torch.long)).thumbnails
    np.testing.assert_array_equal(thumbs.numpy(), to_uint8(pattern[0]).numpy())


@pytest.mark.parametrize("window", [(0, 131, 0, 131, 40, 40), (50, 90, 20, 60, 10, 7), (100, 300, 0, 5, 64, 64)])
def test_pooled_window_equals_dense_pooling(window):
    capture = random_capture(batch=1, n=131, sliding_window=50)
    q0, q1, k0, k1, rows, cols = window
    got = pooled_window(capture, 2, q0, q1, k0, k1, rows, cols)
    head = dense(capture)[0, 2, q0:q1, k0:k1]
    expected = F.adaptive_max_pool2d(head[None], (min(rows, head.shape[0]), min(cols, head.shape[1])))[0]
    torch.testing.assert_close(got, expected)


def test_a_tile_keeps_the_max_of_each_block():
    pattern = torch.zeros(1, 1, 100, 100)
    pattern[0, 0, 60, 21] = 0.8
    pattern[0, 0, 61, 22] = 0.3
    cells = pooled_window(DenseAttention(pattern), 0, 50, 90, 20, 60, rows=10, cols=10)  # 4 x 4 tokens a cell
    assert cells.shape == (10, 10)
    assert cells[(60 - 50) // 4, (21 - 20) // 4] == pytest.approx(0.8)
    assert int((cells > 0).sum()) == 1  # both weights share a block; the max wins


def test_a_column_is_what_every_query_gives_the_key():
    capture = random_capture(batch=1, n=60)
    torch.testing.assert_close(head_column(capture, 3, 17), dense(capture)[0, 3, :, 17])
