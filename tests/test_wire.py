from __future__ import annotations

import numpy as np
import pytest
import torch

from attn_widget import wire


def test_thumbnails_max_pool_keeps_a_lone_strong_weight():
    pattern = torch.zeros(2, 200, 200)
    pattern[1, 137, 3] = 0.9  # one sharp weight in a long prompt
    thumbs = wire.thumbnails(pattern)
    assert thumbs.shape == (2, wire.THUMBNAIL_SIZE, wire.THUMBNAIL_SIZE)
    assert thumbs.dtype == torch.uint8
    assert thumbs[0].max() == 0
    row, col = divmod(int(thumbs[1].argmax()), wire.THUMBNAIL_SIZE)
    assert thumbs[1, row, col] == round(0.9 * 255)
    assert (row, col) == (137 * wire.THUMBNAIL_SIZE // 200, 3 * wire.THUMBNAIL_SIZE // 200)


def test_short_prompts_keep_one_cell_per_token():
    pattern = torch.rand(3, 5, 5)
    thumbs = wire.thumbnails(pattern)
    assert thumbs.shape == (3, 5, 5)
    np.testing.assert_array_equal(thumbs.numpy(), wire.to_uint8(pattern).numpy())


def test_to_uint8_rounds_and_clamps():
    got = wire.to_uint8(torch.tensor([-0.5, 0.0, 0.5, 1.0, 1.5]))
    assert got.tolist() == [0, 0, 128, 255, 255]


@pytest.mark.parametrize("n", [7, wire.FLOAT16_MAX_TOKENS])
def test_short_patterns_travel_as_float16(n):
    pattern = torch.rand(n, n)
    dtype, data = wire.encode_pattern(pattern)
    assert dtype == "float16"
    decoded = np.frombuffer(data, dtype="<f2").reshape(n, n)
    np.testing.assert_allclose(decoded, pattern.numpy(), atol=1e-3)


def test_long_patterns_travel_as_one_byte_per_weight():
    n = wire.FLOAT16_MAX_TOKENS + 1
    pattern = torch.rand(n, n)
    dtype, data = wire.encode_pattern(pattern)
    assert dtype == "uint8"
    assert len(data) == n * n
    decoded = np.frombuffer(data, dtype=np.uint8).reshape(n, n) / 255
    np.testing.assert_allclose(decoded, pattern.numpy(), atol=0.5 / 255 + 1e-6)


def test_tile_of_a_window_keeps_the_max_of_each_block():
    pattern = torch.zeros(100, 100)
    pattern[60, 21] = 0.8
    pattern[61, 22] = 0.3
    cells = wire.tile(pattern, 50, 90, 20, 60, rows=10, cols=10)  # 40 x 40 tokens, 4 x 4 per cell
    assert cells.shape == (10, 10)
    assert cells[(60 - 50) // 4, (21 - 20) // 4] == round(0.8 * 255)
    assert int((cells > 0).sum()) == 1  # both weights share a block; the max wins


def test_tile_never_upsamples_and_clips_at_the_prompt_end():
    pattern = torch.rand(30, 30)
    cells = wire.tile(pattern, 20, 40, 0, 5, rows=64, cols=64)
    assert cells.shape == (10, 5)
    np.testing.assert_array_equal(cells.numpy(), wire.to_uint8(pattern[20:30, 0:5]).numpy())
