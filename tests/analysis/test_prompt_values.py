"""Value weighting from the prompt's own pass: the same norms, scores and thumbnails as the separate
value pass (value_pass.py), and no second forward pass of the model when the budget allows."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest
import torch

from attn_widget.analysis import prompt as prompt_module
from attn_widget.analysis.prompt import PromptAnalysis
from attn_widget.analysis.value_pass import run_value_pass, running_model
from attn_widget.backends import backend_for
from attn_widget.backends.weights import output_weights
from attn_widget.maths.value_weighting import value_norms
from references import naive_weighted_norms

PROMPT = "When mary and john went to the store mary gave a drink to john"


@contextmanager
def counting_forwards(model: torch.nn.Module):
    """How many times the model ran: a hook on its token embedding, the first module of every pass
    (a pass stopped after a layer never returns from the model's own forward)."""
    calls: list[int] = []
    embedding = getattr(model, "embed", None) or model.get_input_embeddings()
    handle = embedding.register_forward_pre_hook(lambda *_args: calls.append(1))  # also for a pass stopped early
    try:
        yield calls
    finally:
        handle.remove()


def _one_layer_bytes(backend) -> int:
    return PromptAnalysis(backend, PROMPT)._kept[0].nbytes()


@pytest.mark.parametrize("budget", ["all", "one_layer", "none"])
def test_value_weighting_equals_the_value_pass(any_model, budget):
    backend = backend_for(any_model)
    budgets = {"all": None, "one_layer": _one_layer_bytes(backend), "none": 0}
    analysis = PromptAnalysis(backend, PROMPT, budget_bytes=budgets[budget])
    assert analysis.has_value_norms
    weights = output_weights(backend)
    reference = run_value_pass(backend, weights, analysis.token_ids, analysis.n_tokens - 1)
    for layer in range(backend.n_layers):
        want = value_norms(reference.values[layer], weights.w_o(layer))
        torch.testing.assert_close(analysis.value_norms[layer], want, atol=1e-5, rtol=1e-5)
    scores, thumbnails = analysis.value_reductions()
    assert reference.thumbnails is not None
    np.testing.assert_array_equal(thumbnails, reference.thumbnails)
    for metric, values in reference.scores.items():
        np.testing.assert_allclose(scores[metric], values, atol=1e-5, rtol=1e-5, err_msg=metric)


def test_value_pattern_is_the_naive_weighted_norms(full_bridge):
    """`||A[h, i, j] f_h(x_j)||` from the norms kept by the prompt's pass equals a plain computation."""
    from attn_widget.analysis.prompt_values import PromptValues

    backend = backend_for(full_bridge)
    analysis = PromptAnalysis(backend, PROMPT)
    weights = output_weights(backend)
    values = PromptValues(analysis, weights)
    reference = run_value_pass(backend, weights, analysis.token_ids, analysis.n_tokens - 1)
    for layer in range(backend.n_layers):
        w_o = weights.w_o(layer)
        moved = torch.einsum("knd,kde->kne", reference.values[layer], w_o)  # kv heads = heads here
        for head in range(backend.n_heads):
            want = naive_weighted_norms(analysis.head_pattern(layer, head)[None], moved[head : head + 1])[0]
            torch.testing.assert_close(values.value_pattern(layer, head), want, atol=1e-5, rtol=1e-4)


def test_selecting_value_weighting_runs_no_second_forward_pass(bridge):
    from attn_widget import AttentionExplorer

    explorer = AttentionExplorer(bridge, prompt=PROMPT)
    with counting_forwards(running_model(explorer._session.backend)) as calls:
        explorer.weighting = "value"
        explorer.pattern(1, 2, weighting="value")
    assert explorer.error == "" and calls == []
    assert explorer._session.current().forward_passes == 1


def test_past_the_budget_value_scores_cost_at_most_one_more_pass(bridge, monkeypatch):
    """With every layer past the budget and none swept in the prompt's pass, the value-weighted
    scores of them all come from one more pass, not one per layer."""
    monkeypatch.setattr(prompt_module, "VALUE_SWEEPS_IN_PASS", 0.0)
    backend = backend_for(bridge)
    analysis = PromptAnalysis(backend, PROMPT, budget_bytes=0)
    with counting_forwards(running_model(backend)) as calls:
        analysis.value_reductions()
    assert len(calls) == 1 and analysis.forward_passes == 2 and analysis.value_scored.all()
