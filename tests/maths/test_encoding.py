from __future__ import annotations

import numpy as np
import pytest
import torch

from attn_widget.contract import WHOLE_HEAD_MAX_TOKENS
from attn_widget.maths import encoding as wire


def test_to_uint8_rounds_and_clamps():
    got = wire.to_uint8(torch.tensor([-0.5, 0.0, 0.5, 1.0, 1.5]))
    assert got.tolist() == [0, 0, 128, 255, 255]


@pytest.mark.parametrize("n", [7, WHOLE_HEAD_MAX_TOKENS])
def test_short_patterns_travel_as_float16(n):
    pattern = torch.rand(n, n)
    dtype, data = wire.encode_pattern(pattern)
    assert dtype == "float16"
    decoded = np.frombuffer(data, dtype="<f2").reshape(n, n)
    np.testing.assert_allclose(decoded, pattern.numpy(), atol=1e-3)


def test_long_patterns_travel_as_one_byte_per_weight():
    n = WHOLE_HEAD_MAX_TOKENS + 1
    pattern = torch.rand(n, n)
    dtype, data = wire.encode_pattern(pattern)
    assert dtype == "uint8"
    assert len(data) == n * n
    decoded = np.frombuffer(data, dtype=np.uint8).reshape(n, n) / 255
    np.testing.assert_allclose(decoded, pattern.numpy(), atol=0.5 / 255 + 1e-6)
