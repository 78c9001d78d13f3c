from __future__ import annotations

import numpy as np
import torch

from attn_widget import AttentionExplorer
from attn_widget.contract import HEAD_CLASSES
from attn_widget.maths.dense_scores import layer_scores
from attn_widget.maths.head_classes import PATTERN_THRESHOLD, classify_heads, uniform_entropy

MECHANISM_SCORES = ("previous_token", "current_token", "induction", "duplicate_token")


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
        ["previous-token", "first-token sink", "diffuse", "current-token", "induction", "duplicate-token"]
    ]


def test_the_repeated_token_test_can_name_an_induction_head():
    scores = {k: np.zeros((1, 2)) for k in (*MECHANISM_SCORES, "first_token")}
    scores["entropy"] = np.zeros((1, 2))
    assert classify_heads(scores, 10) == [["other", "other"]]
    assert classify_heads(scores, 10, repeated_tokens=np.array([[0.9, 0.1]])) == [["induction", "other"]]


def test_a_mechanism_outranks_resting_on_the_first_token():
    scores = {k: np.zeros((1, 1)) for k in (*MECHANISM_SCORES, "entropy")}
    scores["first_token"] = np.array([[0.87]])
    assert classify_heads(scores, 10) == [["first-token sink"]]
    assert classify_heads(scores, 10, repeated_tokens=np.array([[0.86]])) == [["induction"]]


def test_uniform_entropy():
    assert uniform_entropy(1) == 0
    assert np.isclose(uniform_entropy(3), (0 + np.log(2) + np.log(3)) / 3)


def test_a_head_that_attends_to_itself_is_a_current_token_head_from_the_threshold_up():
    def one_head(current: float, first: float = 0.0, previous: float = 0.0) -> list[list[str]]:
        scores = {k: np.zeros((1, 1)) for k in (*MECHANISM_SCORES, "entropy")}
        scores["current_token"][0, 0], scores["previous_token"][0, 0] = current, previous
        scores["first_token"] = np.array([[first]])
        return classify_heads(scores, 10)

    assert one_head(PATTERN_THRESHOLD) == [["current-token"]]
    assert one_head(PATTERN_THRESHOLD - 0.01) == [["other"]]
    assert one_head(0.35, first=0.65) == [["current-token"]]  # a mechanism outranks the first token
    assert one_head(0.4, previous=0.45) == [["previous-token"]]  # the strongest pattern names it
    assert one_head(0.2, first=0.8) == [["first-token sink"]]


def test_an_explorer_types_a_self_attending_head_and_scores_it():
    tokens = ["<bos>", "the", "cat", "sat", "on", "the", "mat", "."]
    n = len(tokens)
    self_attending = np.eye(n) * 0.9 + np.tril(np.ones((n, n))) * 0.1 / np.arange(1, n + 1)[:, None]
    self_attending[0, 0] = 1.0
    previous = np.zeros((n, n))
    previous[0, 0] = 1.0
    previous[np.arange(1, n), np.arange(n - 1)] = 1.0
    patterns = np.stack([self_attending, previous])[None].astype(np.float32)  # [layer, head, q, k]
    w = AttentionExplorer(patterns, tokens=tokens)
    assert w.head_classes == [["current-token", "previous-token"]]
    diagonal = [np.trace(patterns[0, h]) / n for h in range(2)]
    np.testing.assert_allclose(w.scores["current_token"][0], diagonal, rtol=1e-5)
    assert set(HEAD_CLASSES) >= {"current-token", "other"}
