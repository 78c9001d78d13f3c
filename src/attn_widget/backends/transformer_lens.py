"""TransformerLens models: the 4.x `TransformerBridge` and the 2.x/3.x `HookedTransformer`.

Both expose `cfg`, `to_tokens`, `to_str_tokens` and `run_with_hooks(..., stop_at_layer=)`, and
name their hooks `blocks.{layer}.attn.hook_q` / `hook_k` (`hook_rot_q` / `hook_rot_k` after
rotary embeddings), so one adapter serves both: queries and keys are captured there and the
weights recomputed (maths/layer.py).

A bridge's own attention always forms the dense pattern. A bridge over a Hugging Face model is
therefore run as an unwrapped model of the same class sharing the bridge's parameters, through
the Hugging Face capture path, once a short prompt shows both give the same weights.

A hook the researcher put on a layer's `attn.hook_pattern` (an ablation, a patch) changes the
weights themselves, which no recomputation from queries and keys would see: while such a hook is
attached, the model runs through its own hooks and those layers are read from `hook_pattern`
after the researcher's hooks, as the model used them.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from attn_widget.backends.base import LayerCallback, PatternCallback, warn_once
from attn_widget.backends.token_text import token_strings
from attn_widget.backends.unwrap import unwrapped_hf_backend
from attn_widget.errors import ModelError
from attn_widget.maths.layer import DenseAttention, LayerCapture, dense

Q_HOOKS = ("attn.hook_rot_q", "attn.hook_q")
K_HOOKS = ("attn.hook_rot_k", "attn.hook_k")


class HookedPattern(DenseAttention):
    """A layer's weights as the model's `hook_pattern` hooks left them, with its value vectors."""

    def __init__(self, pattern: torch.Tensor, value: torch.Tensor | None) -> None:
        super().__init__(pattern)
        self.value = value


class TransformerLensBackend:
    runs_tokens = True
    fixed_prompt: str | None = None

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
        self._hook_names = [_hook_pair(model, layer) for layer in range(self.n_layers)]
        self.unwrapped = unwrapped_hf_backend(model, self._reference_patterns)
        # The bridge's layers are its blocks in order, so its weights need no module list, and a block
        # index names a layer, except in a looped model, where the unwrapped model names each pass.
        self.layer_modules: list[torch.nn.Module] | None = None
        names = self.unwrapped.layer_names if self.unwrapped is not None else []
        looped = len(names) == self.n_layers and any(" (pass " in name for name in names)
        self.layer_names: list[str] = names if looped else []
        if self.unwrapped is None and hasattr(getattr(model, "original_model", None), "config"):
            warn_once(
                f"{self.name}: this TransformerBridge's attention forms each layer's whole pattern; attn-widget "
                "captures queries and keys from its hooks and frees each layer's pattern as it goes."
            )

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
        decoded = [str(t) for t in self.model.to_str_tokens(ids[0])]
        return ids, token_strings(self.model.tokenizer, ids[0].tolist(), decoded)

    def capture(
        self, tokens: torch.Tensor, on_layer: LayerCallback, last_layer: int | None = None, *, keep_values: bool = False
    ) -> None:
        hooked = self.pattern_hooked_layers()
        if self.unwrapped is not None and not hooked:
            self.unwrapped.capture(tokens, on_layer, last_layer, keep_values=keep_values)
            return
        self._capture_from_hooks(tokens, on_layer, last_layer, keep_values, hooked)

    def pattern_hooked_layers(self) -> set[int]:
        """Layers whose `attn.hook_pattern` has a forward hook of the researcher's attached now."""
        names = self.model.hook_dict
        hooked = set()
        for layer in range(self.n_layers):
            point = names.get(f"blocks.{layer}.attn.hook_pattern")
            if point is not None and getattr(point, "fwd_hooks", None):
                hooked.add(layer)
        return hooked

    def run(self, tokens: torch.Tensor, on_pattern: PatternCallback, last_layer: int | None = None) -> None:
        self.capture(tokens, lambda layer, attention: on_pattern(layer, dense(attention)), last_layer)

    def _capture_from_hooks(
        self, tokens: torch.Tensor, on_layer: LayerCallback, last_layer: int | None, keep_values: bool, hooked: set[int]
    ) -> None:
        captured: dict[int, dict[str, torch.Tensor]] = {}

        def hook(kind: str) -> Any:
            def record(activation: torch.Tensor, hook: Any) -> None:
                layer = int(hook.name.split(".")[1])
                parts = captured.setdefault(layer, {})
                # TransformerLens: q, k, v [batch, pos, head, d]; the pattern [batch, head, q, k] as hooked
                parts[kind] = activation.detach().clone() if kind == "pattern" else activation.transpose(1, 2)
                needed = {"q", "k"} | ({"v"} if keep_values else set()) | ({"pattern"} if layer in hooked else set())
                if needed <= parts.keys():
                    self._free_patterns(below=layer)
                    done = captured.pop(layer)
                    if layer in hooked:
                        on_layer(layer, HookedPattern(done["pattern"], done.get("v")))
                    else:
                        on_layer(layer, self._layer_capture(layer, done))

            return record

        hooks = []
        for layer, (q_name, k_name, v_name) in enumerate(self._hook_names):
            hooks += [(q_name, hook("q")), (k_name, hook("k"))]
            if keep_values:
                hooks.append((v_name, hook("v")))
            if layer in hooked:  # added after the researcher's hooks, so it sees what they made
                hooks.append((f"blocks.{layer}.attn.hook_pattern", hook("pattern")))
        stop = None if last_layer is None or last_layer + 1 >= self.n_layers else last_layer + 1
        try:
            with torch.inference_mode():
                self.model.run_with_hooks(tokens.to(self.device), fwd_hooks=hooks, return_type=None, stop_at_layer=stop)
        finally:
            self._free_patterns(below=self.n_layers)

    def _layer_capture(self, layer: int, parts: dict[str, torch.Tensor]) -> LayerCapture:
        cfg = self.model.cfg
        attn = self.model.blocks[layer].attn
        softcap = float(getattr(cfg, "attn_scores_soft_cap", -1.0) or -1.0)
        attn_types: list[str] = list(getattr(cfg, "attn_types", None) or [])
        local = bool(attn_types) and attn_types[layer % len(attn_types)] == "local"
        return LayerCapture(
            query=parts["q"],
            key=parts["k"],
            scaling=1.0 / _attn_scale(attn, cfg, layer),
            softcap=softcap if softcap > 0 else None,
            sliding_window=int(cfg.window_size) if local and getattr(cfg, "window_size", None) else None,
            causal=getattr(cfg, "attention_dir", "causal") == "causal",
            value=parts.get("v"),
        )

    def _free_patterns(self, below: int) -> None:
        # The GPT-2 bridge keeps each layer's pattern alive after the pass: let it go as we go.
        for block in list(self.model.blocks)[:below]:
            if getattr(block.attn, "_pattern", None) is not None:
                block.attn._pattern = None

    def _reference_patterns(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """The model's own `hook_pattern` of every layer: what an unwrapped model must reproduce."""
        patterns: dict[int, torch.Tensor] = {}

        def keep(pattern: torch.Tensor, hook: Any) -> None:
            patterns[int(hook.name.split(".")[1])] = pattern.detach().float().clone()

        with torch.inference_mode():
            self.model.run_with_hooks(
                tokens, fwd_hooks=[(lambda name: name.endswith("attn.hook_pattern"), keep)], return_type=None
            )
        self._free_patterns(below=self.n_layers)
        return [patterns[layer] for layer in sorted(patterns)]


def _hook_pair(model: Any, layer: int) -> tuple[str, str, str]:
    names = model.hook_dict
    q = next((f"blocks.{layer}.{h}" for h in Q_HOOKS if f"blocks.{layer}.{h}" in names), None)
    k = next((f"blocks.{layer}.{h}" for h in K_HOOKS if f"blocks.{layer}.{h}" in names), None)
    if q is None or k is None:
        raise ModelError(f"Layer {layer} of this TransformerLens model has no query/key hooks (attn.hook_q, hook_k).")
    return q, k, f"blocks.{layer}.attn.hook_v"


def _attn_scale(attn: Any, cfg: Any, layer: int) -> float:
    """What TransformerLens divides q.k by: the module's own `attn_scale` where it has one."""
    scale = getattr(attn, "attn_scale", None)
    if isinstance(scale, int | float) and scale > 0:
        return float(scale)
    configured = float(getattr(cfg, "attn_scale", -1.0) or -1.0)
    scale = configured if configured > 0 else (math.sqrt(cfg.d_head) if getattr(cfg, "use_attn_scale", True) else 1.0)
    if getattr(cfg, "scale_attn_by_inverse_layer_idx", False):
        scale *= layer + 1
    return scale
