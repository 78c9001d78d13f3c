"""The reference notebook's CircuitsVis view of one layer, for side-by-side comparison.

CircuitsVis embeds every weight of the layer as JSON in the page, so keep it to short prompts;
the explorer itself sends one head at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _inert(token: str) -> str:
    # CircuitsVis puts tokens inside a <script> tag: "</script>" in a token would end it early.
    return token.replace("</", "<\u200b/")


def attention_heads(tokens: list[str], layer_patterns: np.ndarray) -> Any:
    """CircuitsVis `attention_heads` for `[head, q, k]` patterns of one layer."""
    import circuitsvis as cv

    return cv.attention.attention_heads(
        attention=layer_patterns,
        tokens=[_inert(t) for t in tokens],
        attention_head_names=[f"Head {h}" for h in range(layer_patterns.shape[0])],
    )
