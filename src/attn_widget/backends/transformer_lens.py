"""TransformerLens models: the 4.x `TransformerBridge` and the 2.x/3.x `HookedTransformer`.

Both expose `cfg`, `to_tokens`, `to_str_tokens` and `run_with_hooks(..., stop_at_layer=)`, and
name their attention hooks `blocks.{layer}.attn.hook_pattern`, so one adapter serves both.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import ModelError
from . import PatternCallback

PATTERN_HOOK_SUFFIX = "attn.hook_pattern"


def _is_pattern_hook(name: str) -> bool:
    return name.endswith(PATTERN_HOOK_SUFFIX)


def _layer_of(hook_name: str) -> int:
    # "blocks.3.attn.hook_pattern" -> 3
    return int(hook_name.split(".")[1])


class TransformerLensBackend:
    runs_tokens = True
    fixed_prompt = None

    def __init__(self, model: Any) -> None:
        self.model = model
        cfg = model.cfg
        self.n_layers = int(cfg.n_layers)
        self.n_heads = int(cfg.n_heads)
        self.n_ctx = int(cfg.n_ctx) if getattr(cfg, "n_ctx", None) else None
        self.vocab_size = int(cfg.d_vocab)
        tokenizer = getattr(model, "tokenizer", None)
        self.bos_token_id = getattr(tokenizer, "bos_token_id", None)
        self.device = next(model.parameters()).device
        self.name = str(getattr(cfg, "model_name", "") or type(model).__name__)

    @staticmethod
    def accepts(model: Any) -> bool:
        return all(hasattr(model, a) for a in ("cfg", "run_with_hooks", "to_tokens", "to_str_tokens"))

    def tokenize(self, prompt: str) -> tuple[torch.Tensor, list[str]]:
        if getattr(self.model, "tokenizer", None) is None:
            raise ModelError(
                "This model has no tokenizer, so it cannot read a prompt. Give it one "
                "(e.g. TransformerBridge.boot_native(cfg, tokenizer=tok))."
            )
        # truncate=False: an over-long prompt must be reported, not silently cut.
        ids = self.model.to_tokens(prompt, truncate=False).to(self.device)
        return ids, [str(t) for t in self.model.to_str_tokens(ids[0])]

    def run(self, tokens: torch.Tensor, on_pattern: PatternCallback, last_layer: int | None = None) -> None:
        def hook(pattern: torch.Tensor, hook: Any) -> None:
            on_pattern(_layer_of(hook.name), pattern)

        stop = None if last_layer is None or last_layer + 1 >= self.n_layers else last_layer + 1
        with torch.inference_mode():
            self.model.run_with_hooks(
                tokens.to(self.device),
                fwd_hooks=[(_is_pattern_hook, hook)],
                return_type=None,
                stop_at_layer=stop,
            )
