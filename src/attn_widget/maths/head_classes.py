"""Naming each head by its strongest pattern, from its scores on the prompt."""

from __future__ import annotations

import math

import numpy as np

PATTERN_THRESHOLD = 0.3
"""A head is named after a pattern (previous token, current token, induction, duplicate token, then
first token) when at least this share of its attention follows it: the pattern's score in
contract.PROMPT_METRICS, a share of all its attention."""

DIFFUSE_FRACTION = 0.6
"""...else it is diffuse when its entropy is at least this fraction of uniform causal attention's."""

_MECHANISMS = {
    "previous-token": "previous_token",
    "induction": "induction",
    "duplicate-token": "duplicate_token",
    "current-token": "current_token",
}
"""Each pattern a head is named after when its score (a share of attention) reaches PATTERN_THRESHOLD;
on a tie the earlier one wins."""


def uniform_entropy(n_tokens: int) -> float:
    """Mean over query positions of the entropy of uniform causal attention (log of q + 1)."""
    return sum(math.log(q + 1) for q in range(n_tokens)) / max(n_tokens, 1)


def classify_heads(
    scores: dict[str, np.ndarray], n_tokens: int, repeated_tokens: np.ndarray | None = None
) -> list[list[str]]:
    """`[layer][head]` class names (contract.HEAD_CLASSES): the strongest of previous-token,
    induction, duplicate-token and current-token (attending to itself) when its share reaches
    PATTERN_THRESHOLD, else a first-token sink (the same threshold on the first key), else diffuse
    (entropy at least DIFFUSE_FRACTION of uniform attention's) or other.

    Mechanisms come before the sink because resting on the first token is what most heads do when
    their pattern finds nothing to attend to; an induction head on a prompt without repeats is
    still an induction head. Induction uses the repeated random token test when given."""
    mechanisms = {name: scores[metric] for name, metric in _MECHANISMS.items()}
    if repeated_tokens is not None:
        mechanisms["induction"] = np.maximum(scores["induction"], repeated_tokens)
    names = list(mechanisms)
    stacked = np.stack([mechanisms[n] for n in names])  # [mechanism, layer, head]
    strongest = stacked.argmax(axis=0)
    diffuse_at = DIFFUSE_FRACTION * uniform_entropy(n_tokens)
    n_layers, n_heads = strongest.shape
    classes = []
    for layer in range(n_layers):
        row = []
        for head in range(n_heads):
            best = int(strongest[layer, head])
            if stacked[best, layer, head] >= PATTERN_THRESHOLD:
                row.append(names[best])
            elif scores["first_token"][layer, head] >= PATTERN_THRESHOLD:
                row.append("first-token sink")
            elif scores["entropy"][layer, head] >= diffuse_at:
                row.append("diffuse")
            else:
                row.append("other")
        classes.append(row)
    return classes
