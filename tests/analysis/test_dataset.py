"""Dataset mode: batched, right-padded passes give each prompt the scores it gets alone."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from transformer_lens.head_detector import (
    compute_head_attention_similarity_score,
    get_duplicate_token_head_detection_pattern,
    get_induction_head_detection_pattern,
    get_previous_token_head_detection_pattern,
)

from attn_widget.analysis.dataset import DATASET_METRICS, run_dataset
from attn_widget.analysis.prompt import PromptAnalysis
from attn_widget.backends import backend_for
from attn_widget.contract import PROMPT_METRICS as METRICS
from attn_widget.errors import PromptError
from attn_widget.maths.detectors import Detector
from tiny_models import random_prompt

TL_DETECTORS = {
    "previous_token": get_previous_token_head_detection_pattern,
    "duplicate_token": get_duplicate_token_head_detection_pattern,
    "induction": get_induction_head_detection_pattern,
}


def _prompts(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [random_prompt(rng, rng.randint(3, 25)) for _ in range(count)]


def naive_scores(model, prompt: str) -> dict[str, np.ndarray]:
    """One prompt alone through run_with_cache; TransformerLens's scorer and plain loops."""
    tokens = model.to_tokens(prompt)
    _, cache = model.run_with_cache(tokens)
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    out = {m: np.zeros((n_layers, n_heads)) for m in (*TL_DETECTORS, "first_token", "entropy", "sink_share")}
    for layer in range(n_layers):
        attn = cache[f"blocks.{layer}.attn.hook_pattern"][0].double()
        for head in range(n_heads):
            a = attn[head]
            for name, get in TL_DETECTORS.items():
                out[name][layer, head] = compute_head_attention_similarity_score(
                    a, get(tokens.cpu()).double(), exclude_bos=False, exclude_current_token=False, error_measure="mul"
                )
            out["first_token"][layer, head] = a[:, 0].mean().item()
            out["entropy"][layer, head] = -(a * torch.log(a + 1e-30)).sum(-1).mean().item()
            n = a.shape[-1]
            # the queries that see k (n - k of them, enough: 4 and a quarter of the prompt); past rounding
            sinks = [k for k in range(n) if a[k:, k].mean() > 0.3 + 1e-6 and n - k >= min(n, max(4, -(-n // 4)))]
            out["sink_share"][layer, head] = np.mean([sum(a[q, k].item() for k in sinks) for q in range(n)])
    return out


def test_dataset_means_match_each_prompt_run_alone(any_model):
    prompts = _prompts(7)
    backend = backend_for(any_model)
    result = run_dataset(backend, prompts, batch_size=3)
    assert result.n_prompts == 7 and not result.interrupted
    alone = [PromptAnalysis(backend, p) for p in prompts]
    assert result.n_tokens == sum(a.n_tokens for a in alone)
    assert len({a.n_tokens for a in alone}) > 2  # the batches really are padded
    for metric in METRICS:
        each = np.stack([a.scores[metric] for a in alone])
        np.testing.assert_allclose(result.per_prompt[metric], each, rtol=1e-4, atol=1e-5, err_msg=metric)
        np.testing.assert_allclose(result.mean[metric], each.mean(0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(result.std[metric], each.std(0), rtol=1e-3, atol=1e-5)


def test_dataset_scores_match_an_independent_loop(bridge):
    prompts = _prompts(5, seed=3)
    result = run_dataset(backend_for(bridge), prompts, batch_size=4)
    naive = [naive_scores(bridge, p) for p in prompts]
    for metric in naive[0]:
        each = np.stack([n[metric] for n in naive])
        np.testing.assert_allclose(result.mean[metric], each.mean(0), rtol=1e-4, atol=1e-5, err_msg=metric)
        np.testing.assert_allclose(result.std[metric], each.std(0), rtol=1e-3, atol=1e-5, err_msg=metric)


def test_batch_size_does_not_change_the_result(bridge):
    prompts = _prompts(6, seed=1)
    one = run_dataset(backend_for(bridge), prompts, batch_size=1)
    many = run_dataset(backend_for(bridge), prompts, batch_size=6)
    for metric in METRICS:
        np.testing.assert_allclose(one.mean[metric], many.mean[metric], rtol=1e-4, atol=1e-5)


def test_one_pass_per_batch_and_progress(bridge):
    backend = backend_for(bridge)
    calls, seen = [], []
    original = backend.run

    def counting(tokens, on_pattern, last_layer=None):
        calls.append(tuple(tokens.shape))
        return original(tokens, on_pattern, last_layer)

    backend.run = counting
    run_dataset(backend, _prompts(7), batch_size=3, progress=lambda done, total: seen.append((done, total)))
    assert [c[0] for c in calls] == [3, 3, 1]
    assert seen == [(3, 7), (6, 7), (7, 7)]


def test_interrupting_keeps_the_finished_batches(bridge):
    backend = backend_for(bridge)
    original, calls = backend.run, []

    def interrupted_on_third(tokens, on_pattern, last_layer=None):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(tokens, on_pattern, last_layer)

    backend.run = interrupted_on_third
    prompts = _prompts(10)
    result = run_dataset(backend, prompts, batch_size=2)
    assert result.interrupted and result.n_prompts == 4 and result.n_requested == 10
    full = run_dataset(backend_for(bridge), prompts[:4], batch_size=2)
    np.testing.assert_allclose(result.mean["induction"], full.mean["induction"])


def test_custom_detectors_in_dataset_mode(bridge):
    prompts = _prompts(5, seed=2)
    tl_induction = Detector("tl_induction", get_induction_head_detection_pattern)
    result = run_dataset(backend_for(bridge), prompts, batch_size=2, detectors=[tl_induction])
    np.testing.assert_allclose(result.per_prompt["tl_induction"], result.per_prompt["induction"], rtol=1e-5, atol=1e-6)
    assert result.metrics[-1] == "tl_induction"


def test_a_non_causal_model_falls_back_to_one_prompt_per_pass(bridge):
    """A bidirectional model would let padding leak into real tokens: caught and rerun unpadded."""
    backend = backend_for(bridge)
    original = backend.run

    def bidirectional(tokens, on_pattern, last_layer=None):
        def widen(layer, pattern):  # uniform attention over the whole (padded) row
            on_pattern(layer, torch.full_like(pattern, 1.0 / pattern.shape[-1]))

        return original(tokens, widen, last_layer)

    backend.run = bidirectional
    prompts = _prompts(4)
    result = run_dataset(backend, prompts, batch_size=4)
    lengths = [len(backend.tokenize(p)[1]) for p in prompts]
    expected = np.mean([np.log(n) for n in lengths])  # uniform over its own n tokens
    np.testing.assert_allclose(result.mean["entropy"], expected, rtol=1e-5)


def test_table_and_bad_input(bridge):
    result = run_dataset(backend_for(bridge), _prompts(3), batch_size=2)
    table = result.table()
    assert len(table) == len(DATASET_METRICS) * 3 * 4
    row = table[(table["metric"] == "induction") & (table["layer"] == 2) & (table["head"] == 1)].iloc[0]
    assert row["mean"] == pytest.approx(result.mean["induction"][2, 1])
    assert set(result.as_dict()["entropy"]) == {"mean", "std"}
    with pytest.raises(PromptError, match="Prompt 1 is empty"):
        run_dataset(backend_for(bridge), ["the cat", "  "])
    with pytest.raises(PromptError, match="list of prompts"):
        run_dataset(backend_for(bridge), "the cat")
    with pytest.raises(PromptError, match=r"Prompt 0 is .* tokens long"):
        run_dataset(backend_for(bridge), ["mary " * 200])


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_hugging_face_models_batch_like_each_prompt_alone(tokenizer, kind):
    """Learned positions (GPT-2) and rotary ones with grouped-query attention (Llama), right-padded."""
    from references import hf_model

    backend = backend_for(hf_model(kind, tokenizer), tokenizer=tokenizer)
    prompts = _prompts(5, seed=4)
    result = run_dataset(backend, prompts, batch_size=5)
    alone = [PromptAnalysis(backend, p) for p in prompts]
    assert len({a.n_tokens for a in alone}) > 2
    for metric in METRICS:
        each = np.stack([a.scores[metric] for a in alone])
        np.testing.assert_allclose(result.per_prompt[metric], each, rtol=1e-4, atol=1e-5, err_msg=metric)
