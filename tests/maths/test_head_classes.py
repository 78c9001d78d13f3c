from __future__ import annotations

import numpy as np
import torch

from attn_widget.maths.dense_scores import layer_scores
from attn_widget.maths.head_classes import classify_heads, uniform_entropy


def scores_of(patterns: list[torch.Tensor], tokens: torch.Tensor) -> dict[str, np.ndarray]:
    got = layer_scores(torch.stack(patterns)[None], tokens[None])
    return {k: v.numpy()[None] for k, v in got.items()}


def test_each_textbook_pattern_gets_its_name():
    n = 12
    tokens = torch.tensor([0, 5, 6, 7, 8, 9, 5, 6, 7, 8, 9, 5])
    eye = torch.eye(n)
    previous = torch.zeros(n, n)
    previous[0, 0] = 1
    previous[torch.arange(1, n), torch.arange(n - 1)] = 1
    sink = torch.zeros(n, n)
    sink[:, 0] = 1
    uniform = torch.ones(n, n).tril()
    uniform = uniform / uniform.sum(-1, keepdim=True)
    induction = sink.clone()
    for q in range(6, n):  # attend to the token after the previous copy of the query's token
        induction[q, 0] = 0
        induction[q, q - 5 + 1] = 1
    duplicate = sink.clone()
    for q in range(6, n):
        duplicate[q, 0] = 0
        duplicate[q, q - 5] = 1
    scores = scores_of([previous, sink, uniform, eye, induction, duplicate], tokens)
    assert classify_heads(scores, n) == [
        ["previous-token", "first-token sink", "diffuse", "other", "induction", "duplicate-token"]
    ]


def test_the_repeated_token_test_can_name_an_induction_head():
    scores = {k: np.zeros((1, 2)) for k in ("previous_token", "induction", "duplicate_token", "first_token")}
    scores["entropy"] = np.zeros((1, 2))
    assert classify_heads(scores, 10) == [["other", "other"]]
    assert classify_heads(scores, 10, repeated_tokens=np.array([[0.9, 0.1]])) == [["induction", "other"]]


def test_a_mechanism_outranks_resting_on_the_first_token():
    scores = {k: np.zeros((1, 1)) for k in ("previous_token", "induction", "duplicate_token", "entropy")}
    scores["first_token"] = np.array([[0.87]])
    assert classify_heads(scores, 10) == [["first-token sink"]]
    assert classify_heads(scores, 10, repeated_tokens=np.array([[0.86]])) == [["induction"]]


def test_uniform_entropy():
    assert uniform_entropy(1) == 0
    assert np.isclose(uniform_entropy(3), (0 + np.log(2) + np.log(3)) / 3)
