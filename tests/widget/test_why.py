"""The explorer's why methods: decomposition table, composition, ablation metric, the panel's message."""

from __future__ import annotations

import itertools
import signal

import numpy as np
import pytest
import torch

from attn_widget.contract import ABLATION
from attn_widget.errors import AttnWidgetError
from attn_widget.widget import progress as progress_module


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


def _view_matrix(explorer) -> np.ndarray:
    data = explorer.composition
    side = data["n_layers"] * data["n_heads"]
    return np.frombuffer(data["scores"], dtype=np.float32).reshape(side, side)


def test_the_composition_view_draws_composition_scores(explorer):
    assert explorer.composition == {} and explorer.composition_kind == ""
    for kind in ("k", "Q"):
        scores = explorer.composition_scores(kind)
        assert explorer.composition_kind == kind.lower() == explorer.composition["kind"]
        shown = _view_matrix(explorer)
        layers, heads = scores.shape[:2]
        for writer in range(layers * heads):
            for reader in range(layers * heads):
                (lw, hw), (lr, hr) = divmod(writer, heads), divmod(reader, heads)
                if lr > lw:  # a later reader: the score itself
                    assert shown[writer, reader] == scores[lw, hw, lr, hr]
                else:  # no composition with a head of the same or an earlier layer: masked
                    assert np.isnan(shown[writer, reader])
    assert np.nanmax(shown) > 0


def test_the_front_end_chooses_the_kind_and_closes_the_view(explorer):
    explorer.set_state({"composition_kind": "v"})  # the view's V button
    np.testing.assert_array_equal(
        _view_matrix(explorer)[:4, 4:], explorer.composition_scores("v")[0, :, 1:].reshape(4, 8)
    )
    explorer.set_state({"composition_kind": "z"})  # a malformed choice: shown, nothing changes
    assert "composition_kind" in explorer.error and explorer.composition_kind == "v"
    explorer.set_state({"composition_kind": ""})
    assert explorer.composition == {}


def test_precomputed_attention_has_no_composition(tokenizer):
    from references import hf_model, precomputed_from_hf

    widget = precomputed_from_hf(hf_model("gpt2", tokenizer), tokenizer, numpy=True)
    with pytest.raises(AttnWidgetError):
        widget.composition_scores("k")
    widget.set_state({"composition_kind": "k"})  # the view's K button: the reason shows in the widget
    assert "weights" in widget.error.lower() and widget.composition == {} and widget.composition_kind == ""


def _send_after(model, passes: int, action):
    """A forward hook on the whole model that runs `action` once, at the end of pass `passes`."""
    count = []

    def hook(_module, _args, _out):
        count.append(1)
        if len(count) == passes:
            action()

    return model.register_forward_hook(hook)


def _logits(explorer):
    with torch.no_grad():
        return explorer.model(explorer._session.current().token_ids, return_type="logits")


def test_the_stop_button_stops_a_sweep_cleanly(explorer, capsys, monkeypatch):
    """The progress bar's stop message, sent during the third pass (a sweep run off the main thread
    reads it then): the sweep stops after that batch; nothing partial is shown; the model, its hooks
    and the explorer are as before; the stop reaches no later sweep."""
    clock = itertools.count()  # every step takes a second: the bar (and its stop button) shows
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: float(next(clock)))
    fresh = _logits(explorer)
    seen = []
    explorer.observe(lambda change: seen.append(change["new"]), names="progress")
    stop = lambda: explorer._on_front_end_message(explorer, {"type": "stop", "run": explorer.progress["run"]}, [])  # noqa: E731
    handle = _send_after(explorer.model, 3, stop)  # the clean pass, two batches
    try:
        partial = explorer.ablation_effect("zero", batch_size=3, progress=False)
    finally:
        handle.remove()
    assert np.isfinite(partial.reshape(-1)[:6]).all() and np.isnan(partial.reshape(-1)[6:]).all()
    assert "stopped after 6 of 12 heads" in explorer.error and "stopped after 6 of 12" in capsys.readouterr().out
    assert ABLATION not in explorer.score_table and explorer.progress == {}
    assert [p.get("done") for p in seen] == [3, None] and seen[0]["interrupt"] is True
    assert not any(p._forward_hooks or p._forward_pre_hooks for p in explorer.model.hook_dict.values())
    torch.testing.assert_close(_logits(explorer), fresh, atol=0, rtol=0)

    explorer._on_front_end_message(explorer, {"type": "stop", "run": seen[0]["run"]}, [])  # late: ignored
    effects = explorer.ablation_effect("zero", batch_size=3, progress=False)
    np.testing.assert_array_equal(effects.reshape(-1)[:6], partial.reshape(-1)[:6])
    np.testing.assert_allclose(np.array(explorer.score_table[ABLATION], dtype=float), effects, atol=1e-5)
    assert "stopped" not in explorer.error
    explorer.layer, explorer.head = 2, 3  # the explorer keeps working
    assert explorer.pattern(2, 3).shape == (len(explorer.tokens),) * 2


def test_the_kernels_interrupt_stops_a_sweep_mid_pass(explorer):
    """Jupyter's stop button (SIGINT) in the middle of the third pass: the last complete sweep stays shown."""
    first = explorer.ablation_effect("mean", batch_size=4, progress=False)
    fresh = _logits(explorer)
    block = explorer.model.blocks[1]
    handle = _send_after(block, 3, lambda: signal.raise_signal(signal.SIGINT))
    try:
        partial = explorer.ablation_effect("zero", batch_size=4, progress=False)
    finally:
        handle.remove()
    assert np.isfinite(partial.reshape(-1)[:4]).all() and np.isnan(partial.reshape(-1)[4:]).all()
    assert "stopped after 4 of 12 heads" in explorer.error and "last complete sweep" in explorer.error
    np.testing.assert_allclose(np.array(explorer.score_table[ABLATION], dtype=float), first, atol=1e-5)
    assert not any(p._forward_hooks or p._forward_pre_hooks for p in explorer.model.hook_dict.values())
    torch.testing.assert_close(_logits(explorer), fresh, atol=0, rtol=0)
