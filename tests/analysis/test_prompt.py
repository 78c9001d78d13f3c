from __future__ import annotations

import numpy as np
import pytest
import torch

from attn_widget.analysis.prompt import PromptAnalysis
from attn_widget.analysis.repeated_tokens import repeated_token_ids, repeated_tokens_scores
from attn_widget.backends import backend_for
from attn_widget.errors import ModelError, PromptError, SelectionError

PROMPT = "When mary and john went to the store mary gave a drink to john"


def test_patterns_kept_and_recomputed_agree(bridge):
    backend = backend_for(bridge)
    kept = PromptAnalysis(backend, PROMPT)
    recomputed = PromptAnalysis(backend, PROMPT, budget_bytes=0)
    assert sorted(kept._kept) == list(range(backend.n_layers)) and not recomputed._kept
    for layer in range(backend.n_layers):
        for head in range(backend.n_heads):
            torch.testing.assert_close(recomputed.head_pattern(layer, head), kept.head_pattern(layer, head))
    np.testing.assert_allclose(recomputed.scores["entropy"], kept.scores["entropy"])


def test_budget_keeps_only_the_layers_that_fit(bridge):
    backend = backend_for(bridge)
    one_layer = PromptAnalysis(backend, PROMPT)._kept[0].nbytes()
    partial = PromptAnalysis(backend, PROMPT, budget_bytes=one_layer)
    assert sorted(partial._kept) == [0]
    full = PromptAnalysis(backend, PROMPT)
    torch.testing.assert_close(partial.head_pattern(2, 1), full.head_pattern(2, 1))


def test_pattern_matches_run_with_cache(any_model):
    """Recomputed from captured queries and keys, every head equals the model's own pattern."""
    analysis = PromptAnalysis(backend_for(any_model), PROMPT)
    _, cache = any_model.run_with_cache(any_model.to_tokens(PROMPT))
    for layer in range(any_model.cfg.n_layers):
        expected = cache[f"blocks.{layer}.attn.hook_pattern"][0]
        for head in range(any_model.cfg.n_heads):
            torch.testing.assert_close(analysis.head_pattern(layer, head), expected[head], atol=1e-5, rtol=0)


@pytest.mark.parametrize("prompt", ["", "   \n"])
def test_empty_prompt_is_refused(bridge, prompt):
    with pytest.raises(PromptError, match="empty"):
        PromptAnalysis(backend_for(bridge), prompt)


def test_prompt_longer_than_the_context_is_refused(bridge):
    with pytest.raises(PromptError, match="more than the model's context of 64"):
        PromptAnalysis(backend_for(bridge), "mary " * 100)


def test_out_of_range_head_is_refused(bridge):
    analysis = PromptAnalysis(backend_for(bridge), PROMPT)
    with pytest.raises(SelectionError, match="layer 3 is out of range"):
        analysis.head_pattern(3, 0)
    with pytest.raises(SelectionError, match="head -1 is out of range"):
        analysis.head_pattern(0, -1)


def test_a_failing_model_becomes_a_model_error(bridge, monkeypatch):
    backend = backend_for(bridge)

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(backend, "capture", broken)
    with pytest.raises(ModelError, match="CUDA out of memory"):
        PromptAnalysis(backend, PROMPT)


def notebook_repeated_tokens_test(model, half: int, segments: torch.Tensor, bos: int) -> np.ndarray:
    """The reference notebook's loop, one sequence at a time through run_with_cache."""
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    total = np.zeros((n_layers, n_heads))
    for segment in segments:
        seq = torch.cat([torch.tensor([bos]), segment, segment])[None]
        _, cache = model.run_with_cache(seq)
        for layer in range(n_layers):
            attn = cache[f"blocks.{layer}.attn.hook_pattern"][0]
            for head in range(n_heads):
                second = attn[head, 1 + half :, :]
                total[layer, head] += np.mean([second[i, 1 + i + 1].item() for i in range(half - 1)])
    return total / len(segments)


def test_repeated_tokens_scores_matches_the_notebook_loop(bridge):
    backend = backend_for(bridge)
    got = repeated_tokens_scores(backend, seq_len=20, batch=3, seed=5)
    segments = repeated_token_ids(backend.vocab_size, 3, 10, seed=5)
    expected = notebook_repeated_tokens_test(bridge, 10, segments, backend.bos_token_id)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    assert got.shape == (3, 4)


def test_each_copy_of_the_repeated_tokens_test_has_distinct_ids():
    ids = repeated_token_ids(8192, 4, 1000, seed=0)  # longer than the notebook's 900 ids
    assert ids.shape == (4, 1000) and int(ids.min()) >= 100 and int(ids.max()) < 1100
    assert all(len(set(row)) == 1000 for row in ids.tolist())  # one earlier occurrence: one target
    short = repeated_token_ids(8192, 2, 25, seed=0)
    assert int(short.min()) >= 100 and int(short.max()) < 1000  # the notebook's range
    tiny = repeated_token_ids(20, 2, 25, seed=0)  # too few ids to be distinct: drawn freely
    assert tiny.shape == (2, 25) and int(tiny.min()) >= 5 and int(tiny.max()) < 20
    assert torch.equal(repeated_token_ids(8192, 2, 25, seed=3), repeated_token_ids(8192, 2, 25, seed=3))


def test_repeated_tokens_scores_checks_its_arguments(bridge):
    with pytest.raises(ValueError, match="does not fit"):
        repeated_tokens_scores(backend_for(bridge), seq_len=200)
    with pytest.raises(ValueError, match="seq_len >= 4"):
        repeated_tokens_scores(backend_for(bridge), seq_len=2)


def test_a_prompt_as_long_as_a_4096_position_context(tokenizer):
    """GPT-2-shaped (learned positions, 4096 of them), narrow so the CPU gets through it in seconds."""
    from transformer_lens.model_bridge.sources._bridge_builder import build_bridge_from_module
    from transformers import GPT2Config, GPT2LMHeadModel

    from attn_widget.maths.reductions import pooled_window

    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_head=4, n_embd=32, n_positions=4096, vocab_size=len(tokenizer))
    hf = GPT2LMHeadModel(config).eval()
    model = build_bridge_from_module(hf, "GPT2LMHeadModel", hf_config=hf.config, tokenizer=tokenizer)
    prompt = " mary" * 4095  # one token each, after the BOS: exactly the context
    one_layer = 2 * 4 * 4096 * 8 * 4  # queries and keys of one layer, float32
    analysis = PromptAnalysis(backend_for(model), prompt, budget_bytes=one_layer)
    assert analysis.n_tokens == 4096
    assert sorted(analysis._kept) == [0]  # the budget holds one layer; the other is recomputed
    for values in analysis.scores.values():
        assert np.isfinite(values).all()
    last = analysis.head_pattern(1, 3)
    assert last.shape == (4096, 4096) and last.dtype == torch.float32
    torch.testing.assert_close(last.sum(-1), torch.ones(4096), atol=1e-4, rtol=0)
    tile = pooled_window(analysis.capture(1), 3, 0, 4096, 0, 4096, 512, 512)
    expected = torch.nn.functional.adaptive_max_pool2d(last[None], 512)[0]
    torch.testing.assert_close(tile, expected)
    with pytest.raises(PromptError, match="4097 tokens long"):
        PromptAnalysis(backend_for(model), prompt + " mary")
