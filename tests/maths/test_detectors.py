"""Custom detectors score like TransformerLens `detect_head`, and bad ones say which they are."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformer_lens.head_detector import (
    compute_head_attention_similarity_score,
    get_duplicate_token_head_detection_pattern,
    get_induction_head_detection_pattern,
)

from attn_widget.maths.detectors import BUILT_IN, Detector, DetectorError, detector_score

PROMPT = "When mary and john went to the store mary gave a drink to john"


def _random_patterns(heads: int, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(heads, n, n, generator=g) * 3
    logits = logits.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
    return logits.softmax(-1)


@pytest.mark.parametrize("measure", ["mul", "abs"])
def test_score_equals_transformer_lens(measure):
    tokens = torch.tensor([5, 7, 9, 5, 7, 2, 9, 5, 3, 3])
    patterns = _random_patterns(4, len(tokens))
    rng = np.random.default_rng(0)
    expectations = {
        "induction": get_induction_head_detection_pattern(tokens[None]),
        "duplicate": get_duplicate_token_head_detection_pattern(tokens[None]),
        "graded": torch.tensor(np.tril(rng.random((10, 10))), dtype=torch.float32),
    }
    for name, expected in expectations.items():
        got = detector_score(patterns, Detector(name, lambda t, e=expected: e).expected(tokens), measure)
        for head in range(4):
            reference = compute_head_attention_similarity_score(
                patterns[head].clone(), expected, exclude_bos=False, exclude_current_token=False, error_measure=measure
            )
            # TransformerLens rounds "abs" to 3 decimals; "mul" is exact.
            assert got[head].item() == pytest.approx(reference, abs=5e-4 if measure == "abs" else 1e-6), name


def test_score_against_a_plain_loop():
    tokens = torch.tensor([1, 2, 1, 2, 3])
    patterns = _random_patterns(3, 5, seed=4)
    expected = BUILT_IN["same_token"](tokens)
    got = detector_score(patterns, expected, "mul")
    for h in range(3):
        on = sum(patterns[h, q, k].item() for q in range(5) for k in range(5) if tokens[q] == tokens[k] and k <= q)
        assert got[h].item() == pytest.approx(on / 5, rel=1e-5)


def test_built_ins_are_the_patterns_they_name():
    tokens = torch.tensor([4, 6, 4, 6, 8])
    same = BUILT_IN["same_token"](tokens).numpy()
    assert same[2, 0] == 1 and same[2, 2] == 1 and same[2, 1] == 0 and same[0, 2] == 0
    successor = BUILT_IN["successor"](tokens).numpy()
    np.testing.assert_array_equal(successor, get_induction_head_detection_pattern(tokens[None]).numpy())


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (lambda t: torch.zeros(3, 3), r"'bad' returned shape \(3, 3\) for a 5-token prompt"),
        (lambda t: torch.full((len(t), len(t)), float("nan")), "'bad' returned NaN"),
        (lambda t: 1 / 0, "'bad' raised ZeroDivisionError"),
        (lambda t: "nope", "'bad' returned"),
    ],
)
def test_bad_detectors_name_themselves(fn, message):
    with pytest.raises(DetectorError, match=message):
        Detector("bad", fn).expected(torch.arange(5))


def test_bad_arguments():
    with pytest.raises(DetectorError, match="measure"):
        Detector("x", lambda t: t, measure="max")
    with pytest.raises(DetectorError, match="callable"):
        Detector("x", 3)  # type: ignore[arg-type]
    with pytest.raises(DetectorError, match="name"):
        Detector("", lambda t: t)
