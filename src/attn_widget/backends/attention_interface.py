"""Queries and keys of a Hugging Face model, recorded while it runs its own attention kernel.

transformers 5 calls every attention layer through `AttentionInterface` by the name in
`config._attn_implementation`. For a run, the model is switched to a name of ours whose function
records what the softmax is made of (query, key, scaling, soft-cap, window, sinks, mask) and then
calls the implementation the model was configured with for the output. The matching mask function
is registered under the same name: without it the model hands the function no mask, and
sliding-window or padded inputs would be recomputed wrong.
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
from attn_widget.maths.layer import LayerCapture

PREFIX = "attn_widget_capture_"


class StopForward(Exception):
    """Raised after the last wanted layer: the rest of the forward pass is not needed."""


@dataclass
class _Recorder:
    layers: dict[int, int]
    """id(attention module) -> layer index"""
    on_layer: LayerCallback
    last_layer: int | None
    keep_values: bool
    seen: set[int] = field(default_factory=set)


_recorder: _Recorder | None = None


def can_capture(model: Any) -> bool:
    """Whether the model's attention goes through transformers' attention interface."""
    return bool(getattr(model, "_supports_attention_backend", False)) and hasattr(model, "set_attn_implementation")


def _configured(model: Any) -> str:
    return str(getattr(model.config, "_attn_implementation", None) or "eager")


def _delegate_for(implementation: str, module: torch.nn.Module) -> Callable[..., Any]:
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if implementation in ALL_ATTENTION_FUNCTIONS:
        return cast(Callable[..., Any], ALL_ATTENTION_FUNCTIONS[implementation])
    # eager lives in the model's own modeling file (some families change it: sinks, soft-cap)
    eager = getattr(sys.modules[type(module).__module__], "eager_attention_forward", None)
    if eager is None:
        raise ModelError(f"Could not find the eager attention of {type(module).__name__}.")
    return cast(Callable[..., Any], eager)


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
        layer = recorder.layers.get(id(module)) if recorder is not None else None
        if recorder is None or layer is None:
            return output
        scaling = kwargs.get("scaling")
        sinks = kwargs.get("s_aux")
        if sinks is None:
            sinks = getattr(module, "sinks", None)
        window = kwargs.get("sliding_window")
        recorder.seen.add(layer)
        recorder.on_layer(
            layer,
            LayerCapture(
                query=query,
                key=key,
                scaling=float(query.shape[-1] ** -0.5 if scaling is None else scaling),
                softcap=kwargs.get("softcap") or None,
                sliding_window=int(window) if window else None,
                sinks=sinks.detach() if isinstance(sinks, torch.Tensor) else None,
                mask=attention_mask if isinstance(attention_mask, torch.Tensor) else None,
                causal=bool(kwargs.get("is_causal", getattr(module, "is_causal", True))),
                value=value if recorder.keep_values else None,
            ),
        )
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


@contextmanager
def capturing_attention(
    model: Any, layers: dict[int, int], on_layer: LayerCallback, last_layer: int | None, keep_values: bool
) -> Iterator[set[int]]:
    """The model records each layer's queries and keys for the duration; then it is as it was."""
    global _recorder
    configured = _configured(model)
    if configured.startswith(PREFIX):  # a run that was interrupted and left us in place
        raise ModelError("attn-widget's attention capture is already running on this model.")
    name = _register(configured)
    try:
        model.set_attn_implementation(name)
    except Exception as err:
        raise ModelError(f"Could not route {type(model).__name__}'s attention through attn-widget ({err}).") from err
    previous, _recorder = _recorder, _Recorder(layers, on_layer, last_layer, keep_values)
    try:
        yield _recorder.seen
    finally:
        _recorder = previous
        model.set_attn_implementation(configured)
