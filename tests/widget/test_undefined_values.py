"""NaN and infinite attention (a float16 model overflowing, bad precomputed input): the kernel sends
only JSON numbers, undefined scores as null, undefined weights as NaN (float16) or a mask (uint8)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from attn_widget import AttentionExplorer
from attn_widget.errors import AttnWidgetWarning

TOKENS = ["<bos>", "a", "b", "a", "b", "c"]


def causal_softmax(layers: int, heads: int, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(layers, heads, n, n)) * 2
    logits[..., np.triu_indices(n, 1)[0], np.triu_indices(n, 1)[1]] = -np.inf
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    return (weights / weights.sum(-1, keepdims=True)).astype(np.float32)


def with_undefined_weights() -> np.ndarray:
    patterns = causal_softmax(2, 3, len(TOKENS))
    patterns[1, 0, 3, 1] = np.nan
    patterns[1, 0, 4, 2] = np.inf
    return patterns


def make(patterns: np.ndarray) -> AttentionExplorer:
    widget = AttentionExplorer(patterns, tokens=TOKENS)
    widget.sent = []
    widget.send = lambda content, buffers=None: widget.sent.append((content, buffers))
    return widget


@pytest.fixture
def explorer() -> AttentionExplorer:
    with pytest.warns(AttnWidgetWarning):
        return make(with_undefined_weights())


def test_rows_that_do_not_sum_to_one_are_named_in_a_warning():
    patterns = causal_softmax(2, 3, len(TOKENS))
    patterns[0, 2, 4] *= 3.0  # unnormalised, but finite
    with pytest.warns(AttnWidgetWarning, match=r"L0H2 \(1 rows; row 4 sums to 3"):
        make(patterns)
    with pytest.warns(AttnWidgetWarning, match=r"L1H0 \(2 rows; row 3 sums to nan"):
        make(with_undefined_weights())


def test_normalised_attention_gives_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make(causal_softmax(2, 3, len(TOKENS)))


def test_every_synced_trait_is_json_without_nan(explorer):
    state = {k: v for k, v in explorer.get_state().items() if not isinstance(v, bytes | memoryview)}
    json.dumps(state, allow_nan=False)  # raises on NaN or infinity
    table = explorer.score_table
    undefined = {(layer, head) for rows in table.values() for layer, row in enumerate(rows)
                 for head, v in enumerate(row) if v is None}  # fmt: skip
    assert undefined == {(1, 0)}  # the head with NaN weights, and only it
    assert table["first_token"][0][0] is not None
    assert all(isinstance(row["value"], float | None) for row in explorer.summary_rows)


def test_summary_never_picks_an_undefined_head(explorer):
    for row in explorer.summary().rows:
        assert (row.layer, row.head) != (1, 0) or row.finding.startswith("induction head")


def test_whole_head_carries_undefined_weights_as_nan(explorer):
    explorer._on_front_end_message(explorer, {"type": "pattern", "id": 1, "layer": 1, "head": 0}, [])
    reply, (data,) = explorer.sent[-1]
    json.dumps(reply, allow_nan=False)
    values = np.frombuffer(data, dtype="<f2").reshape(6, 6)
    assert np.isnan(values[3, 1]) and np.isnan(values[4, 2])  # infinity goes as NaN: undefined too
    assert np.isfinite(np.delete(values.ravel(), [3 * 6 + 1, 4 * 6 + 2])).all()


def test_tiles_mark_undefined_cells_in_a_second_buffer(explorer):
    request = {"type": "tile", "id": 2, "layer": 1, "head": 0, "q0": 0, "q1": 6, "k0": 0, "k1": 6, "rows": 3, "cols": 3}
    explorer._on_front_end_message(explorer, request, [])
    reply, (cells, mask) = explorer.sent[-1]
    assert reply["undefined"] == 2
    mask = np.frombuffer(mask, dtype=np.uint8).reshape(3, 3)
    assert mask.tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 0]]  # cells over (3, 1) and (4, 2)
    assert np.frombuffer(cells, dtype=np.uint8).reshape(3, 3)[mask == 1].tolist() == [0, 0]
    explorer._on_front_end_message(explorer, {**request, "head": 1}, [])
    reply, buffers = explorer.sent[-1]
    assert reply["undefined"] == 0 and len(buffers) == 1


def test_rows_carry_undefined_weights_as_nan(explorer):
    explorer._on_front_end_message(
        explorer, {"type": "row", "id": 3, "layer": 1, "head": 0, "index": 3, "axis": "query"}, []
    )
    _, (data,) = explorer.sent[-1]
    assert np.isnan(np.frombuffer(data, dtype="<f2")[1])
