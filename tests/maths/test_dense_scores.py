"""Every score against a plain per-head loop, and three against TransformerLens's head_detector."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from transformer_lens import head_detector

from attn_widget.analysis.prompt import PromptAnalysis
from attn_widget.backends import backend_for
from attn_widget.contract import PROMPT_METRICS
from attn_widget.maths import dense_scores as scores
from tiny_models import random_prompt


def patterns_by_cache(model, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
    """All layers' patterns `[layer, head, q, k]` the plain way: a full run_with_cache."""
    tokens = model.to_tokens(prompt)
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_pattern"))
    n_layers = model.cfg.n_layers
    return torch.stack([cache[f"blocks.{i}.attn.hook_pattern"][0] for i in range(n_layers)]), tokens[0]


def loop_scores(patterns: torch.Tensor, tokens: torch.Tensor) -> dict[str, np.ndarray]:
    """The reference notebook's loop over heads, written out cell by cell."""
    n_layers, n_heads, n, _ = patterns.shape
    out = {m: np.zeros((n_layers, n_heads)) for m in PROMPT_METRICS}
    toks = tokens.tolist()
    for layer in range(n_layers):
        for head in range(n_heads):
            a = patterns[layer, head].double()
            total = a.sum().item()
            prev = cur = dup = ind = dist = ent = 0.0
            for q in range(n):
                for k in range(q + 1):
                    w = a[q, k].item()
                    prev += w if k == q - 1 else 0.0
                    cur += w if k == q else 0.0
                    dup += w if k < q and toks[k] == toks[q] else 0.0
                    ind += w if k >= 1 and k - 1 < q and toks[k - 1] == toks[q] else 0.0
                    dist += w * (q - k)
                    ent -= w * np.log(w + 1e-10)
            out["previous_token"][layer, head] = prev / total
            out["current_token"][layer, head] = cur / total
            out["duplicate_token"][layer, head] = dup / total
            out["induction"][layer, head] = ind / total
            out["first_token"][layer, head] = a[:, 0].mean().item()
            out["entropy"][layer, head] = ent / n
            out["max_attention"][layer, head] = a.max().item()
            out["mean_distance"][layer, head] = dist / n
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_match_a_plain_loop(any_model, seed):
    prompt = random_prompt(random.Random(seed), 18)
    analysis = PromptAnalysis(backend_for(any_model), prompt)
    expected = loop_scores(*patterns_by_cache(any_model, prompt))
    for metric in PROMPT_METRICS:
        np.testing.assert_allclose(analysis.scores[metric], expected[metric], rtol=1e-4, atol=1e-5, err_msg=metric)


@pytest.mark.parametrize("seed", [3, 4])
@pytest.mark.parametrize(
    ("metric", "head_name"),
    [("previous_token", "previous_token_head"), ("duplicate_token", "duplicate_token_head"),
     ("induction", "induction_head")],
)  # fmt: skip
def test_scores_match_head_detector(any_model, seed, metric, head_name):
    prompt = random_prompt(random.Random(seed), 20)
    analysis = PromptAnalysis(backend_for(any_model), prompt)
    expected = head_detector.detect_head(any_model, prompt, head_name, error_measure="mul").numpy()
    np.testing.assert_allclose(analysis.scores[metric], expected, rtol=1e-4, atol=1e-5)


def test_scores_of_known_patterns():
    """Hand-made patterns whose scores are known exactly."""
    n = 6
    tokens = torch.tensor([[5, 7, 8, 5, 7, 8]])
    previous = torch.zeros(n, n)
    previous[0, 0] = 1
    previous[torch.arange(1, n), torch.arange(n - 1)] = 1
    bos = torch.zeros(n, n)
    bos[:, 0] = 1
    induction = bos.clone()
    induction[3:, 0] = 0
    induction[3, 1] = induction[4, 2] = induction[5, 3] = 1  # key after the earlier copy of the query
    layer = torch.stack([previous, bos, induction])[None]
    got = scores.layer_scores(layer, tokens)
    torch.testing.assert_close(got["previous_token"], torch.tensor([5 / 6, 1 / 6, 1 / 6]))
    torch.testing.assert_close(got["first_token"], torch.tensor([2 / 6, 1.0, 0.5]))
    torch.testing.assert_close(got["induction"], torch.tensor([0.0, 0.0, 0.5]))
    torch.testing.assert_close(got["max_attention"], torch.ones(3))
    torch.testing.assert_close(got["entropy"], torch.zeros(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(got["mean_distance"], torch.tensor([5 / 6, 15 / 6, (0 + 1 + 2 + 2 + 2 + 2) / 6]))


def test_batch_scores_are_the_mean_of_each_sequence():
    torch.manual_seed(0)
    pattern = torch.rand(3, 2, 8, 8).tril().softmax(-1).tril()
    pattern = pattern / pattern.sum(-1, keepdim=True)
    tokens = torch.randint(0, 4, (3, 8))
    batch = scores.layer_scores(pattern, tokens)
    for metric, value in batch.items():
        one_by_one = torch.stack([scores.layer_scores(pattern[i : i + 1], tokens[i : i + 1])[metric] for i in range(3)])
        torch.testing.assert_close(value, one_by_one.mean(0), msg=metric)


def test_repeated_sequence_score_matches_the_notebook_loop():
    torch.manual_seed(1)
    half, offset, n = 7, 1, 15
    pattern = torch.rand(2, 3, n, n).tril()
    pattern = pattern / pattern.sum(-1, keepdim=True)
    got = scores.repeated_sequence_score(pattern, half, offset)
    expected = torch.zeros(3)
    for head in range(3):
        for b in range(2):
            second_half = pattern[b, head, offset + half :, :]
            expected[head] += np.mean([second_half[i, offset + i + 1].item() for i in range(half - 1)]) / 2
    torch.testing.assert_close(got, expected)


def test_bidirectional_patterns_get_their_true_mean_distance():
    torch.manual_seed(2)
    pattern = torch.rand(1, 2, 6, 6)  # an encoder: every query sees every key
    pattern = pattern / pattern.sum(-1, keepdim=True)
    pos = torch.arange(6.0)
    expected = (pattern * (pos[None, :] - pos[:, None]).abs()).sum(-1).mean(-1)[0]
    torch.testing.assert_close(scores.mean_distance(pattern), expected)


def test_blocked_entropy_of_long_causal_patterns_matches_the_loop(any_model, monkeypatch):
    monkeypatch.setattr(scores, "ENTROPY_BLOCK_ROWS", 4)  # blocks of 4 rows on an 18-word prompt
    prompt = random_prompt(random.Random(7), 18)
    analysis = PromptAnalysis(backend_for(any_model), prompt)
    expected = loop_scores(*patterns_by_cache(any_model, prompt))
    np.testing.assert_allclose(analysis.scores["entropy"], expected["entropy"], rtol=1e-4, atol=1e-5)
