"""Detectors, sinks and columns from the sweep that scores a layer equal the dense references.

Each family is a tiny random model (causal, grouped-query, sliding window, soft-cap, sinks); the
reference is the model's own eager weights scored by the dense functions (`detector_score`,
`sinks.received_attention`, `sinks.sink_share`) and read column by column.
"""

from __future__ import annotations

import pytest
import torch

from attn_widget.backends.huggingface import HuggingFaceBackend
from attn_widget.maths import detectors, reductions, sinks
from attn_widget.maths.detectors import BUILT_IN, Detector, ExpectedCells, detector_score
from attn_widget.maths.layer import LayerCapture
from references import eager_weights, tiny_model

N = 20
FAMILIES = ["gpt2", "llama", "mistral", "gemma2", "gpt_oss"]
THRESHOLD = 0.1  # low, so the random heads have sinks to find


def _expected(tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    graded = torch.rand(N, N, generator=torch.Generator().manual_seed(3)).tril()
    graded[:, ::3] = 0.0  # some zero cells, as in a real pattern
    upper = torch.rand(N, N, generator=torch.Generator().manual_seed(4))  # weight where attention has none
    return {"same": BUILT_IN["same_token"](tokens), "successor": BUILT_IN["successor"](tokens), "graded": graded,
            "upper": upper}  # fmt: skip


@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("kind", FAMILIES)
def test_detectors_sinks_and_columns_equal_dense_references(kind, sparse, tokenizer, monkeypatch):
    if not sparse:  # every expected pattern kept dense, sliced per block
        monkeypatch.setattr(detectors, "SPARSE_CELLS_PER_TOKEN", -1)
    model = tiny_model(kind, len(tokenizer))
    tokens = torch.randint(1, 6, (1, N), generator=torch.Generator().manual_seed(1))  # many repeats
    layers: list[LayerCapture] = []
    HuggingFaceBackend(model, tokenizer).capture(tokens, lambda _layer, capture: layers.append(capture))
    expected = _expected(tokens[0])
    for layer, (capture, reference) in enumerate(zip(layers, eager_weights(model, tokens), strict=True)):
        cells = [ExpectedCells(Detector(name, lambda _t, e=e: e).expected(tokens[0]), measure)
                 for name, e in expected.items() for measure in ("mul", "abs")]  # fmt: skip
        assert all((c.dense is None) == sparse for c in cells)
        got = reductions.reduce_layer(capture, tokens, budget_bytes=1, detectors=cells)  # row by row
        dense = reference[0]
        want = [detector_score(dense, e, m) for e in expected.values() for m in ("mul", "abs")]
        for i, (g, w) in enumerate(zip(got.detectors, want, strict=True)):
            torch.testing.assert_close(g, w, atol=2e-5, rtol=1e-5, msg=f"{kind} layer {layer} detector {i}")
        received = reductions.received_attention(got.column_sums, capture.causal)
        torch.testing.assert_close(received, _received(dense), atol=2e-6, rtol=1e-5)
        if kind != "gpt_oss":  # sinks.py tells causality from weights, and a sink row sums to less than 1
            torch.testing.assert_close(received, sinks.received_attention(dense), atol=2e-6, rtol=1e-5)
        mask = sinks.passes(received, THRESHOLD)
        share = (dense * mask[:, None, :]).sum(dim=-1).mean(dim=-1)  # mean over queries of the weight on sinks
        torch.testing.assert_close(reductions.sink_share(got.column_sums, mask), share, atol=2e-6, rtol=1e-5)
        assert capture.row_lse is not None  # the sweep kept each row's log-sum-exp
        for head in range(capture.n_heads):
            for key in (0, 1, N // 2, N - 1):
                column = capture.column(head, key)
                assert column is not None
                torch.testing.assert_close(column, dense[head, :, key], atol=1e-5, rtol=0)
                torch.testing.assert_close(reductions.head_column(capture, head, key), dense[head, :, key], atol=1e-5,
                                           rtol=0)  # fmt: skip


def _received(dense: torch.Tensor) -> torch.Tensor:
    """Plain loop: each key's mean weight over the queries q >= k of a causal model."""
    heads, n, _ = dense.shape
    out = torch.zeros(heads, n)
    for h in range(heads):
        for k in range(n):
            out[h, k] = sum(float(dense[h, q, k]) for q in range(k, n)) / (n - k)
    return out


def test_a_column_before_the_sweep_is_read_in_blocks(tokenizer):
    model = tiny_model("llama", len(tokenizer))
    tokens = torch.randint(1, 50, (1, N), generator=torch.Generator().manual_seed(2))
    layers: list[LayerCapture] = []
    HuggingFaceBackend(model, tokenizer).capture(tokens, lambda _layer, capture: layers.append(capture))
    reference = eager_weights(model, tokens)[0][0]
    assert layers[0].column(1, 3) is None
    torch.testing.assert_close(reductions.head_column(layers[0], 1, 3), reference[1, :, 3], atol=1e-5, rtol=0)


def test_the_whole_head_is_filled_block_by_block(tokenizer, monkeypatch):
    """`head_pattern` asks for blocks of rows, never the whole layer at once."""
    model = tiny_model("mistral", len(tokenizer))
    tokens = torch.randint(1, 50, (1, N), generator=torch.Generator().manual_seed(5))
    layers: list[LayerCapture] = []
    HuggingFaceBackend(model, tokenizer).capture(tokens, lambda _layer, capture: layers.append(capture))
    asked: list[tuple[int, int]] = []
    original = LayerCapture.block

    def recording(self, q0, q1, heads=None):
        asked.append((q0, q1))
        return original(self, q0, q1, heads)

    monkeypatch.setattr(reductions, "block_budget", lambda _device: N * 4 * 3 * 4)  # four rows a block
    monkeypatch.setattr(LayerCapture, "block", recording)
    got = reductions.head_pattern(layers[1], 2)
    assert asked == [(q0, q0 + 4) for q0 in range(0, N, 4)]
    torch.testing.assert_close(got, eager_weights(model, tokens)[1][0, 2], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["same_token", "successor"])
@pytest.mark.parametrize("measure", ["mul", "abs"])
def test_built_in_detectors_list_the_cells_of_their_dense_pattern(name, measure):
    """The built-ins' cells, listed from the tokens, are the non-zero cells of their `[n, n]` patterns."""
    tokens = torch.randint(0, 7, (40,), generator=torch.Generator().manual_seed(6))
    detector = Detector(name, BUILT_IN[name], measure)
    listed = detectors.expected_cells(detector, tokens)
    dense = ExpectedCells(detector.expected(tokens), measure)
    assert listed.dense is None and dense.dense is None
    for field in ("query", "key", "value", "abs_row_sums"):
        torch.testing.assert_close(getattr(listed, field), getattr(dense, field).to(getattr(listed, field).dtype))
    weights = torch.rand(1, 2, 40, 40, generator=torch.Generator().manual_seed(7)).tril()
    got, want = torch.zeros(1, 2), torch.zeros(1, 2)
    listed.add_block(got, weights[..., :25, :25], 0, 0)
    listed.add_block(got, weights[..., 25:, :], 25, 0)
    want += torch.einsum("bhqk,qk->bh", weights, detector.expected(tokens)) if measure == "mul" else (
        (weights - detector.expected(tokens)).abs().sum(dim=(-2, -1)))  # fmt: skip
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("sparse", [True, False])
def test_a_detector_returning_nan_is_named(sparse, monkeypatch):
    if not sparse:
        monkeypatch.setattr(detectors, "SPARSE_CELLS_PER_TOKEN", -1)
    pattern = torch.eye(6)
    pattern[3, 1] = float("nan")
    with pytest.raises(detectors.DetectorError, match="'broken' returned NaN"):
        detectors.expected_cells(Detector("broken", lambda _t: pattern), torch.arange(6))
