"""What "the explorer's state belongs to one prompt" means, checked against a fresh analysis."""

from __future__ import annotations

import numpy as np

from attn_widget.analysis.prompt import PromptAnalysis


def assert_one_prompt(w, reference: PromptAnalysis | None = None) -> None:
    """prompt, tokens, thumbnails, scores, focus, attribution and sinks all belong to `w.prompt`;
    thumbnails and scores are compared with a fresh analysis of it where they show plain attention."""
    backend = w._session.backend
    reference = reference or PromptAnalysis(backend, w.prompt)
    n = reference.n_tokens
    assert w.tokens == reference.tokens, (w.prompt, w.tokens)
    assert w._session.analysis.tokens == reference.tokens
    assert len(w.thumbnails) == w.n_layers * w.n_heads * w.thumbnail_side**2
    assert w.thumbnail_side == reference.thumbnails.shape[-1]
    if w.weighting == "attention" and not w._session.options.comparing:
        assert w.thumbnails == reference.thumbnails.tobytes()
        for metric, values in reference.scores.items():
            shown = np.array(w.score_table[metric], dtype=float)
            np.testing.assert_allclose(shown, values, atol=1e-5, err_msg=metric)
    assert -1 <= w.focus_token < n
    assert w.attribution == [] or len(w.attribution) == n
    assert w.attribution_query < n
    assert all(k < n for layer in w.sink_positions for head in layer for k in head)


def reference(w, prompt: str) -> PromptAnalysis:
    return PromptAnalysis(w._session.backend, prompt)
