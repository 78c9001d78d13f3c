"""attn-widget: an interactive attention-pattern explorer for Jupyter, over TransformerLens."""

from __future__ import annotations

from typing import Any

from attn_widget.widget.explorer import AttentionExplorer

__all__ = ["AttentionExplorer", "load_ipython_extension"]
__version__ = "0.1.0"


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext attn_widget`: registers the `%attn` magic."""
    from attn_widget.magics import register

    register(ipython)
