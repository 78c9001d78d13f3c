"""Hugging Face `transformers` models (`PreTrainedModel`) with their tokenizer.

The model runs its own attention kernel (sdpa, flash, ...): attention_interface.py records each
layer's queries and keys on the way in (see maths/layer.py), so the weights are recomputed, never
formed whole. A model whose attention bypasses transformers' attention interface falls back to
eager attention, with a forward hook on every attention module handing over its weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch

from attn_widget.backends.attention_interface import StopForward, can_capture, capturing_attention
from attn_widget.backends.base import LayerCallback, PatternCallback, warn_once
from attn_widget.backends.token_text import token_strings
from attn_widget.errors import ModelError
from attn_widget.maths.layer import DenseAttention, dense

EAGER = "eager"
HOW_TO_SWITCH = (
    'Load it with eager attention: from_pretrained(..., attn_implementation="eager"), '
    'or call model.set_attn_implementation("eager").'
)


def text_config(model: Any) -> Any:
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def _attention_specs(model: Any) -> list[tuple[type, str, int]]:
    """(module class, name part, index of the weights in its output) from `_can_record_outputs`:
    transformers' own record of which modules return attention weights."""
    specs = (getattr(model, "_can_record_outputs", None) or {}).get("attentions")
    result = []
    for spec in specs if isinstance(specs, list) else [specs]:
        if spec is None:
            continue
        if isinstance(spec, type):
            result.append((spec, ".", 1))
        elif isinstance(getattr(spec, "target_class", None), type):  # an OutputRecorder
            part = f".{spec.layer_name.strip('.')}." if spec.layer_name else "."
            result.append((spec.target_class, part, spec.index))
    return result


def attention_modules(model: Any) -> list[tuple[torch.nn.Module, int]]:
    """The model's self-attention modules in forward order, each with the index of its weights."""
    specs = _attention_specs(model)
    found = []
    for name, module in model.named_modules():
        index = next((i for target, part, i in specs if isinstance(module, target) and part in f".{name}."), None)
        if index is not None:
            found.append((module, index))
    if not found:  # a model that does not say: its outermost modules named *Attention
        outer: list[str] = []
        for name, module in model.named_modules():
            if type(module).__name__.endswith("Attention") and not any(name.startswith(f"{o}.") for o in outer):
                outer.append(name)
                found.append((module, 1))
    return found


class HuggingFaceBackend:
    runs_tokens = True
    fixed_prompt: str | None = None

    def __init__(self, model: Any, tokenizer: Any) -> None:
        if tokenizer is None:
            raise ModelError(
                f"A Hugging Face {type(model).__name__} needs its tokenizer to read a prompt: "
                "AttentionExplorer(model, tokenizer=AutoTokenizer.from_pretrained(...))."
            )
        self.model, self.tokenizer = model, tokenizer
        self._attention = attention_modules(model)
        if not self._attention:
            raise ModelError(f"Found no attention modules in {type(model).__name__}, so its attention cannot be shown.")
        config = text_config(model)
        self.n_layers = len(self._attention)
        self.n_heads = int(config.num_attention_heads)
        n_ctx = getattr(config, "max_position_embeddings", None)
        self.n_ctx = int(n_ctx) if n_ctx else None
        self.vocab_size = int(model.get_input_embeddings().num_embeddings)
        self.bos_token_id = getattr(tokenizer, "bos_token_id", None)
        self.device = model.get_input_embeddings().weight.device
        self.name = str(getattr(model.config, "name_or_path", "") or type(model).__name__)
        self.captures_queries = can_capture(model)
        if not self.captures_queries:
            _check_can_be_eager(model)
            warn_once(
                f"{type(model).__name__} does not run its attention through transformers' attention interface, "
                "so attn-widget switches it to eager attention for each run (slower, and memory grows with n x n)."
            )

    @staticmethod
    def accepts(model: Any) -> bool:
        return all(hasattr(model, a) for a in ("config", "named_modules", "get_input_embeddings"))

    def tokenize(self, prompt: str) -> tuple[torch.Tensor, list[str]]:
        ids = list(self.tokenizer(prompt)["input_ids"])
        # Like TransformerLens, start with BOS where the tokenizer has one: a first token to rest on.
        if self.bos_token_id is not None and ids[:1] != [self.bos_token_id]:
            ids.insert(0, self.bos_token_id)
        strings = token_strings(self.tokenizer, ids)
        return torch.tensor([ids], device=self.device), strings

    def capture(
        self,
        tokens: torch.Tensor,
        on_layer: LayerCallback,
        last_layer: int | None = None,
        *,
        attention_mask: torch.Tensor | None = None,
        keep_values: bool = False,
    ) -> None:
        """One forward pass with the model's own attention kernel; each layer's queries and keys
        are handed over as that layer runs (see maths/layer.py)."""
        if not self.captures_queries:
            self._run_eager(tokens, lambda layer, p: on_layer(layer, DenseAttention(p)), last_layer, attention_mask)
            return
        layers = {id(module): layer for layer, (module, _) in enumerate(self._attention)}
        with ExitStack() as stack:
            stack.enter_context(_eval_mode(self.model))
            seen = stack.enter_context(capturing_attention(self.model, layers, on_layer, last_layer, keep_values))
            self._forward(tokens, attention_mask)
        expected = self.n_layers if last_layer is None else last_layer + 1
        if len(seen) < expected:
            raise ModelError(
                f"Only layers {sorted(seen)} of {type(self.model).__name__} ran through the attention interface. "
                + HOW_TO_SWITCH
            )

    def run(self, tokens: torch.Tensor, on_pattern: PatternCallback, last_layer: int | None = None) -> None:
        self.capture(tokens, lambda layer, attention: on_pattern(layer, dense(attention)), last_layer)

    def _forward(self, tokens: torch.Tensor, attention_mask: torch.Tensor | None) -> None:
        body = getattr(self.model, "base_model", self.model)  # no language-model head: logits are not needed
        extra = {} if attention_mask is None else {"attention_mask": attention_mask.to(self.device)}
        try:
            with torch.inference_mode():
                body(input_ids=tokens.to(self.device), use_cache=False, **extra)
        except StopForward:
            pass

    def _run_eager(
        self,
        tokens: torch.Tensor,
        on_pattern: PatternCallback,
        last_layer: int | None,
        attention_mask: torch.Tensor | None,
    ) -> None:
        """Today's fallback for models outside the attention interface: eager weights, one layer at a time."""
        with ExitStack() as stack:
            stack.enter_context(_eager_attention(self.model))
            stack.enter_context(_eval_mode(self.model))
            for layer, (module, index) in enumerate(self._attention):
                stack.enter_context(_pattern_hook(module, layer, index, on_pattern, layer == last_layer))
            self._forward(tokens, attention_mask)


def _check_can_be_eager(model: Any) -> None:
    implementation = getattr(model.config, "_attn_implementation", EAGER)
    can_switch = getattr(model, "_can_set_attn_implementation", None)
    switchable = can_switch() if can_switch is not None else hasattr(model, "set_attn_implementation")
    if implementation not in (None, EAGER) and not switchable:
        raise ModelError(
            f"{type(model).__name__} uses {implementation!r} attention, which never forms the attention weights, "
            f"and cannot switch to eager attention by itself. {HOW_TO_SWITCH}"
        )


@contextmanager
def _eager_attention(model: Any) -> Iterator[None]:
    """Eager attention for the run, then the model's own implementation again."""
    previous = getattr(model.config, "_attn_implementation", EAGER)
    if previous in (None, EAGER):
        yield
        return
    try:
        model.set_attn_implementation(EAGER)
    except Exception as err:
        raise ModelError(
            f"Could not switch {type(model).__name__} to eager attention ({err}). {HOW_TO_SWITCH}"
        ) from err
    try:
        if model.config._attn_implementation != EAGER:
            raise ModelError(f"{type(model).__name__} stayed on {previous!r} attention. {HOW_TO_SWITCH}")
        yield
    finally:
        model.set_attn_implementation(previous)


@contextmanager
def _eval_mode(model: Any) -> Iterator[None]:
    """Dropout off for the run (a model built from a config starts in training mode)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


@contextmanager
def _pattern_hook(
    module: torch.nn.Module, layer: int, index: int, on_pattern: PatternCallback, last: bool
) -> Iterator[None]:
    def hook(_module: torch.nn.Module, _args: Any, output: Any) -> None:
        weights = output[index] if isinstance(output, tuple | list) and len(output) > index else None
        if not isinstance(weights, torch.Tensor) or weights.dim() != 4:
            raise ModelError(
                f"The attention module of layer {layer} ({type(module).__name__}) returned no attention weights. "
                + HOW_TO_SWITCH
            )
        on_pattern(layer, weights)
        if last:
            raise StopForward

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
