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

from attn_widget.backends.attention_interface import (
    StopForward,
    can_capture,
    capturing_attention,
    probing_attention,
    routed_attention,
)
from attn_widget.backends.base import LayerCallback, PatternCallback, warn_once
from attn_widget.backends.token_text import token_strings
from attn_widget.errors import AttnWidgetError, ModelError
from attn_widget.maths.layer import DenseAttention, dense

EAGER = "eager"
HOW_TO_SWITCH = (
    'Load it with eager attention: from_pretrained(..., attn_implementation="eager"), '
    'or call model.set_attn_implementation("eager").'
)


def text_config(model: Any) -> Any:
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def input_embeddings(model: Any) -> Any:
    """The token embedding table; the first where a model has one per codebook (MusicGen)."""
    embeddings = model.get_input_embeddings()
    return embeddings[0] if isinstance(embeddings, torch.nn.ModuleList | list | tuple) else embeddings


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


PROBE_TOKENS = 12
"""Length of the probe pass that finds which attention calls run, in which order, and whether the
capture reproduces them."""


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
        config = text_config(model)
        self.n_ctx = _context(config)
        embeddings = input_embeddings(model)
        self.vocab_size = int(embeddings.num_embeddings)
        self.bos_token_id = getattr(tokenizer, "bos_token_id", None)
        self.device = embeddings.weight.device
        self.name = str(getattr(model.config, "name_or_path", "") or type(model).__name__)
        self.captures_queries = can_capture(model)
        self.why_eager: str | None = None
        """Why the model runs on eager attention for each prompt (None: its own kernel, captured)."""
        self.capture_problem: str | None = None
        """What the probe pass found the capture would get wrong, if anything."""
        probe = (torch.arange(PROBE_TOKENS) * 7 % max(self.vocab_size - 3, 1) + 3)[None]
        heads: list[int] = []
        self.layer_names: list[str] = []
        """Where each layer comes from: the module's path, and its pass where a looped model calls it again."""
        self.layer_modules: list[torch.nn.Module] | None = None
        """The attention module behind each layer, in call order (a looped model's modules recur): where
        its weights are read. None on eager attention, whose layers are the modules in order."""
        if self.captures_queries:
            with _runs_on_token_ids(model):
                heads, self.why_eager = self._probe_capture(probe)
            self.capture_problem = self.why_eager
            self.captures_queries = self.why_eager is None
        else:
            self.why_eager = "it does not run its attention through transformers' attention interface"
        if not self.captures_queries:
            _check_can_be_eager(model)
            with _runs_on_token_ids(model):
                heads = [int(p.shape[1]) for p in self._eager_patterns(probe, None)]
            paths = {id(module): name for name, module in model.named_modules()}
            modules = [paths[id(module)] for module, _ in attention_modules(model)]
            # eager weights come one per module in order, where the counts agree
            by_index = [f"attentions[{i}]" for i in range(len(heads))]
            self.layer_names = modules if len(modules) == len(heads) else by_index
            warn_once(
                f"attn-widget runs {type(model).__name__} on eager attention for each prompt, because {self.why_eager} "
                "(slower, and memory grows with n x n)."
            )
        if not heads:
            raise ModelError(
                f"No attention layer of {type(model).__name__} ran on a text prompt, so there is no attention to show."
            )
        self.n_layers = len(heads)
        self.n_heads = max(heads)

    @staticmethod
    def accepts(model: Any) -> bool:
        return all(hasattr(model, a) for a in ("config", "named_modules", "get_input_embeddings"))

    def _probe_capture(self, probe: torch.Tensor) -> tuple[list[int], str | None]:
        """Query heads of each attention call on a short prompt, and why the capture cannot be relied on."""
        with ExitStack() as stack:
            stack.enter_context(_eval_mode(self.model))
            calls = stack.enter_context(probing_attention(self.model))
            self._forward(probe, None)
        problem = next((f"{c.problem} ({c.module})" for c in calls if c.problem), None)
        paths = {id(module): name for name, module in self.model.named_modules()}
        modules = {id(module): module for module in self.model.modules()}
        self.layer_modules = [modules[call.instance] for call in calls if call.instance in modules]
        if len(self.layer_modules) != len(calls):  # a call of a module the model does not hold
            self.layer_modules = None
        passes: dict[int, int] = {}
        for call in calls:
            passes[call.instance] = passes.get(call.instance, 0) + 1
            self.layer_names.append(f"{paths.get(call.instance, call.module)} (pass {passes[call.instance]})")
        if max(passes.values(), default=1) == 1:  # no loop: the path alone
            self.layer_names = [name.rsplit(" (pass", 1)[0] for name in self.layer_names]
        return [c.heads for c in calls], problem

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
            for layer, pattern in enumerate(self._eager_patterns(tokens, attention_mask, last_layer)):
                on_layer(layer, DenseAttention(pattern))
            return
        with ExitStack() as stack:
            stack.enter_context(_eval_mode(self.model))
            seen = stack.enter_context(capturing_attention(self.model, on_layer, last_layer, keep_values))
            self._forward(tokens, attention_mask)
        expected = self.n_layers if last_layer is None else last_layer + 1
        if len(seen) < expected:
            raise ModelError(
                f"Only {len(seen)} of the {expected} attention layers of {type(self.model).__name__} "
                "ran on this prompt."
            )

    def run(self, tokens: torch.Tensor, on_pattern: PatternCallback, last_layer: int | None = None) -> None:
        self.capture(tokens, lambda layer, attention: on_pattern(layer, dense(attention)), last_layer)

    @contextmanager
    def routed(self) -> Iterator[None]:
        """The model as the explorer runs it, recording nothing (its outputs must not change)."""
        if not self.captures_queries:
            yield
            return
        with routed_attention(self.model):
            yield

    def _forward(self, tokens: torch.Tensor, attention_mask: torch.Tensor | None, **options: Any) -> Any:
        body = getattr(self.model, "base_model", self.model)  # no language-model head: logits are not needed
        extra = {} if attention_mask is None else {"attention_mask": attention_mask.to(self.device)}
        try:
            with torch.inference_mode():
                return body(input_ids=tokens.to(self.device), use_cache=False, **extra, **options)
        except StopForward:
            return None

    def _eager_patterns(
        self, tokens: torch.Tensor, attention_mask: torch.Tensor | None, last_layer: int | None = None
    ) -> list[torch.Tensor]:
        """The fallback for attention the capture cannot reproduce: eager attention, the weights
        asked for (`output_attentions=True`) and taken where the model returns them."""
        calls: list[None] = []
        with ExitStack() as stack:
            stack.enter_context(_eager_attention(self.model))
            stack.enter_context(_eval_mode(self.model))
            for module, _ in attention_modules(self.model):
                handle = module.register_forward_hook(lambda *_: calls.append(None))
                stack.callback(handle.remove)
            output = self._forward(tokens, attention_mask, output_attentions=True)
        patterns = _returned_attentions(output)
        if not patterns:
            raise ModelError(
                f"{type(self.model).__name__} has no softmax attention layers: none returned attention weights "
                "on a text prompt, even on eager attention with output_attentions=True (a recurrent or state-space "
                "mixer forms none), so there is no attention to show."
            )
        if len(patterns) < len(calls):
            raise ModelError(
                f"{type(self.model).__name__} returned attention weights for only {len(patterns)} of the "
                f"{len(calls)} attention layers that ran, even on eager attention with output_attentions=True "
                "(a fused kernel, a recurrent mixer that forms no weights, or attention between other units than "
                f"the prompt's tokens, such as patches{self._why_not_captured()}), so its "
                "attention cannot be shown."
            )
        n = int(tokens.shape[-1])
        for pattern in patterns:
            if tuple(pattern.shape[-2:]) != (n, n):
                raise ModelError(
                    f"{type(self.model).__name__} attends to {int(pattern.shape[-1]) - n} keys besides the prompt's "
                    f"{n} tokens (entries of its own, prepended or appended), which have no place on the token axis, "
                    "so attn-widget cannot show its attention."
                )
        return patterns if last_layer is None else patterns[: last_layer + 1]

    def _why_not_captured(self) -> str:
        """Why the capture was not used, where the probe found a reason: it names the layer that is not
        over the prompt's tokens (a cross-attention to patches, say)."""
        problem = getattr(self, "capture_problem", None)
        return f"; its capture was not used because {problem}" if problem else ""


def _returned_attentions(output: Any) -> list[torch.Tensor]:
    """Self-attention weights `[batch, heads, q, k]` from a model's output, wherever it puts them."""
    if output is None:
        return []
    found = None
    for name in ("attentions", "decoder_attentions"):
        value = output.get(name) if hasattr(output, "get") else getattr(output, name, None)
        if value is not None:
            found = value
            break
    if found is None:
        return []
    flat: list[torch.Tensor] = []
    for item in found:
        # XLNet returns two streams per layer; the first is the content stream, the one of the tokens
        pattern = item[0] if isinstance(item, tuple | list) else item
        if isinstance(pattern, torch.Tensor) and pattern.dim() == 4:
            flat.append(pattern)
    return flat


def _context(config: Any) -> int | None:
    """The longest prompt the model takes; None where it is unlimited (-1, 0 or absent)."""
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value if value > 0 else None
    return None


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
def _runs_on_token_ids(model: Any) -> Iterator[None]:
    """The probe pass: a model that fails on token ids alone is refused, naming its own error."""
    try:
        yield
    except AttnWidgetError:
        raise
    except Exception as err:
        raise ModelError(
            f"{type(model).__name__} did not run on a text prompt's token ids alone ({type(err).__name__}: {err}); "
            "attn-widget runs a model on token ids, so a model that needs other inputs (another model's "
            "key/value states, images, audio) cannot be explored by itself."
        ) from err


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
