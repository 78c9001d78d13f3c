"""Queries and keys of a Hugging Face model, recorded while it runs its own attention kernel.

transformers 5 calls every attention layer through `AttentionInterface` by the name in
`config._attn_implementation`. For a run, the model is switched to a name of ours whose function
records what the softmax is made of (query, key, scaling, soft-cap, window, sinks, mask) and then
calls the implementation the model was configured with for the output. The matching mask function
is registered under the same name: without it the model hands the function no mask, and
sliding-window or padded inputs would be recomputed wrong.

A layer is a call of the attention function during the pass, numbered in call order: a module run
twice (a looped model) gives two layers (but one handing the same query and key over twice, as
differential attention does, gives one), and a module that does not run on a text prompt (cross-
attention, a vision tower, a linear-attention layer) gives none. A probe pass (`probe_calls`) checks
each call against the family's own eager attention before the explorer relies on the capture.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import torch

from attn_widget.backends.base import LayerCallback
from attn_widget.errors import ModelError
from attn_widget.maths.layer import LayerCapture, dense

PREFIX = "attn_widget_capture_"
UNDERSTOOD_TENSORS = frozenset({"position_ids", "s_aux", "cu_seq_lens_q", "cu_seq_lens_k"})
"""Tensor arguments of the attention function that the capture reads or that change nothing it
recomputes. Any other (top-k `indices`, extra keys) carries a key selection the capture would lose."""
PROBE_TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-6}
HALF_PROBE_TOLERANCE = 3e-2
TEXT_CONFIG = "text_config"


class StopForward(Exception):
    """Raised after the last wanted layer: the rest of the forward pass is not needed."""


@dataclass
class CallCheck:
    """One call of the attention function in a probe pass, checked against the family's eager attention."""

    module: str
    """The attention module's class."""
    instance: int
    """id() of the module: a looped model calls one module several times."""
    heads: int
    problem: str | None
    """Why the capture would not show this call's weights exactly; None when it does."""


@dataclass
class _Recorder:
    on_layer: LayerCallback
    last_layer: int | None
    keep_values: bool
    probe: list[CallCheck] | None = None
    calls: int = 0
    seen: set[int] = field(default_factory=set)
    last: tuple[torch.nn.Module, torch.Tensor, torch.Tensor] | None = None
    """The last call's module, query and key (held, so that a later tensor cannot take their id)."""

    def same_softmax_again(self, module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor) -> bool:
        """Whether this call repeats the last one's softmax: the same module handing over the very same
        query and key tensors (differential attention runs them against two halves of its values). A
        looped model calls a module again on new queries and keys: a layer each time."""
        last, self.last = self.last, (module, query, key)
        return last is not None and last[0] is module and last[1] is query and last[2] is key


_recorder: _Recorder | None = None


def can_capture(model: Any) -> bool:
    """Whether the model's attention goes through transformers' attention interface."""
    return bool(getattr(model, "_supports_attention_backend", False)) and hasattr(model, "set_attn_implementation")


def _text_config(model: Any) -> Any:
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def _configured(model: Any) -> str:
    return str(getattr(_text_config(model), "_attn_implementation", None) or "eager")


def _family_eager(module: torch.nn.Module) -> Callable[..., Any] | None:
    # eager lives in the model's own modeling file (some families change it: sinks, soft-cap)
    return getattr(sys.modules[type(module).__module__], "eager_attention_forward", None)


def _delegate_for(implementation: str, module: torch.nn.Module) -> Callable[..., Any]:
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if implementation in ALL_ATTENTION_FUNCTIONS:
        return cast(Callable[..., Any], ALL_ATTENTION_FUNCTIONS[implementation])
    eager = _family_eager(module)
    if eager is None:
        raise ModelError(f"Could not find the eager attention of {type(module).__name__}.")
    return eager


def _additive(capture: LayerCapture, dtype: torch.dtype) -> torch.Tensor | None:
    """The mask as eager attention adds it to the logits (where the kernel was handed none, the
    causal and window rule it applies by itself)."""
    mask = capture.mask
    if mask is None and capture.causal:
        n = capture.n
        offset = torch.arange(n, device=capture.device)[:, None] - torch.arange(n, device=capture.device)[None, :]
        window = capture.sliding_window or n + 1
        mask = ((offset >= 0) & (offset < window))[None, None]
    if mask is None or mask.dtype != torch.bool:
        return mask
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)


def _check_call(
    module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
    capture: LayerCapture, kwargs: dict[str, Any],
) -> str | None:  # fmt: skip
    unknown = sorted(k for k, v in kwargs.items() if isinstance(v, torch.Tensor) and k not in UNDERSTOOD_TENSORS)
    if unknown:
        return f"its attention takes {', '.join(unknown)}= (a key selection of its own)"
    if key.shape[-2] != query.shape[-2]:
        return f"one of its attentions has {key.shape[-2]} keys for {query.shape[-2]} queries, not one per prompt token"
    eager = _family_eager(module)
    if eager is None:
        return None  # nothing to check against: the capture is what the interface handed over
    try:
        _, expected = eager(module, query, key, value, _additive(capture, query.dtype), **kwargs)
    except Exception:  # an eager function with other arguments: nothing to check against
        return None
    if not isinstance(expected, torch.Tensor) or expected.shape[-1] != query.shape[-2]:
        return None
    tolerance = PROBE_TOLERANCE.get(query.dtype, HALF_PROBE_TOLERANCE)
    difference = float((dense(capture).float() - expected.float()).abs().max())
    if not difference <= tolerance:
        return f"its own eager attention gives other weights than its queries and keys do (by {difference:.2g})"
    return None


def _make_capture(implementation: str) -> Callable[..., Any]:
    def capture_attention(
        module: torch.nn.Module,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attention_mask: torch.Tensor | None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        output = _delegate_for(implementation, module)(module, query, key, value, attention_mask, *args, **kwargs)
        recorder = _recorder
        if recorder is None or recorder.same_softmax_again(module, query, key):
            return output
        layer = recorder.calls
        recorder.calls += 1
        scaling = kwargs.get("scaling")
        sinks = kwargs.get("s_aux")
        if sinks is None:
            sinks = getattr(module, "sinks", None)
        window = kwargs.get("sliding_window")
        capture = LayerCapture(
            query=query,
            key=key,
            scaling=float(query.shape[-1] ** -0.5 if scaling is None else scaling),
            softcap=kwargs.get("softcap") or None,
            sliding_window=int(window) if window else None,
            sinks=sinks.detach() if isinstance(sinks, torch.Tensor) else None,
            mask=attention_mask if isinstance(attention_mask, torch.Tensor) else None,
            causal=bool(kwargs.get("is_causal", getattr(module, "is_causal", True))),
            value=value if recorder.keep_values else None,
        )
        if recorder.probe is not None:
            problem = _check_call(module, query, key, value, capture, kwargs)
            recorder.probe.append(CallCheck(type(module).__name__, id(module), int(query.shape[1]), problem))
            return output
        recorder.seen.add(layer)
        recorder.on_layer(layer, capture)
        if layer == recorder.last_layer:
            raise StopForward
        return output

    return capture_attention


def _register(implementation: str) -> str:
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    name = PREFIX + implementation.replace("|", "_")
    if name not in AttentionInterface._global_mapping:
        AttentionInterface.register(name, _make_capture(implementation))
        masks = ALL_MASK_ATTENTION_FUNCTIONS._global_mapping
        mask_function = masks.get(implementation.split("|")[-1], masks["sdpa"])
        AttentionMaskInterface.register(name, mask_function)  # type: ignore[arg-type]  # typed as a bare function
    return name


def _set_implementation(model: Any, name: str) -> None:
    """The implementation for the text model: a composite's vision or audio tower may refuse a name
    it does not know, and never runs on a text prompt anyway."""
    try:
        model.set_attn_implementation(name)
        return
    except Exception as err:
        if TEXT_CONFIG not in (getattr(model.config, "sub_configs", None) or {}):
            raise ModelError(
                f"Could not route {type(model).__name__}'s attention through attn-widget ({err})."
            ) from err
    try:
        model.set_attn_implementation({TEXT_CONFIG: name})
    except Exception as err:
        raise ModelError(f"Could not route {type(model).__name__}'s attention through attn-widget ({err}).") from err


@contextmanager
def _routed(model: Any, recorder: _Recorder) -> Iterator[_Recorder]:
    global _recorder
    configured = _configured(model)
    if configured.startswith(PREFIX):  # a run that was interrupted and left us in place
        raise ModelError("attn-widget's attention capture is already running on this model.")
    _set_implementation(model, _register(configured))
    previous, _recorder = _recorder, recorder
    try:
        yield recorder
    finally:
        _recorder = previous
        _set_implementation(model, configured)


@contextmanager
def capturing_attention(
    model: Any, on_layer: LayerCallback, last_layer: int | None, keep_values: bool
) -> Iterator[set[int]]:
    """The model records each layer's queries and keys for the duration; then it is as it was."""
    with _routed(model, _Recorder(on_layer, last_layer, keep_values)) as recorder:
        yield recorder.seen


@contextmanager
def probing_attention(model: Any) -> Iterator[list[CallCheck]]:
    """The model runs routed through the capture, each call checked and nothing handed over."""
    with _routed(model, _Recorder(lambda *_: None, None, False, probe=[])) as recorder:
        yield cast(list[CallCheck], recorder.probe)


@contextmanager
def routed_attention(model: Any) -> Iterator[None]:
    """The model as the explorer runs it, recording nothing: to check it computes what it did."""
    with _routed(model, _Recorder(lambda *_: None, -1, False)):
        yield
