"""The explorer's why methods: decomposition table, composition, ablation metric, the panel's message."""

from __future__ import annotations

import numpy as np
import pytest

from attn_widget.contract import ABLATION
from attn_widget.errors import AttnWidgetError


def test_qk_decomposition_table_sums_to_the_score(explorer):
    table = explorer.qk_decomposition(2, 1, 9, 4)
    rows = table.to_dict("records") if hasattr(table, "to_dict") else list(table)
    score = table.attrs["score"] if hasattr(table, "attrs") else table.score
    assert sum(r["contribution"] for r in rows) == pytest.approx(score, abs=1e-4)
    assert {"query_component", "key_component", "query_kind", "key_kind"} <= set(rows[0])
    assert any(r["query_component"] == "L1H3" and r["query_kind"] == "head" for r in rows)
    with pytest.raises(AttnWidgetError, match="query must be a token position"):
        explorer.qk_decomposition(2, 1, 999, 0)
    with pytest.raises(AttnWidgetError, match="layer"):
        explorer.qk_decomposition(7, 1, 3, 0)


def test_composition_and_ablation(explorer):
    k = explorer.composition_scores("k")
    assert k.shape == (3, 4, 3, 4) and k[0, :, 1:].max() > 0 and k[1, :, :2].max() == 0
    with pytest.raises(AttnWidgetError, match="kind must be one of"):
        explorer.composition_scores("z")
    effects = explorer.ablation_effect("zero", progress=False)
    assert effects.shape == (3, 4) and np.abs(effects).max() > 0
    shown = np.array(explorer.score_table[ABLATION], dtype=float)
    np.testing.assert_allclose(shown, effects, atol=1e-5)
    explorer.prompt = explorer.prompt + " again"  # another prompt: the sweep no longer applies
    assert ABLATION not in explorer.score_table


def test_the_panel_message(explorer):
    sent = []
    explorer.send = lambda content, buffers=None: sent.append(content)
    explorer._on_front_end_message(explorer, {"type": "why", "id": 3, "layer": 1, "head": 2, "query": 5, "key": 2}, [])
    reply = sent[-1]
    assert reply["id"] == 3 and reply["key_side"] and reply["pairs"]
    assert sum(1 for c in reply["query_side"] if c["kind"] == "head") >= 1
    explorer._on_front_end_message(explorer, {"type": "why", "id": 4, "layer": 1, "head": 9, "query": 5, "key": 2}, [])
    assert "head" in sent[-1]["error"]
