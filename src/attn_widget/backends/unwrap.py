"""A TransformerBridge's Hugging Face model, unwrapped: same class, same parameter tensors.

A bridge replaces the modules of the model it wraps in place, and its attention always forms the
dense pattern. A fresh model of the original class, built on the meta device and given the
bridge's own parameter and buffer tensors (shared, not copied), runs the model's fast kernel
through the capture path instead. It is used only after a short prompt shows that it gives the
bridge's own attention weights.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, cast

import torch

from attn_widget.backends.huggingface import HuggingFaceBackend
from attn_widget.maths.layer import dense

AGREEMENT = {torch.float32: 1e-4, torch.float64: 1e-6}
"""Largest difference between the bridge's weights and the unwrapped model's to accept it."""
HALF_AGREEMENT = 3e-2


def _original(obj: Any) -> Any:
    while hasattr(obj, "_original_component") and obj._original_component is not None:
        obj = obj._original_component
    return obj


def _resolve(root: torch.nn.Module, dotted: str) -> Any:
    """Follow `dotted` through the bridge's wrappers down to the original module's tensor."""
    obj: Any = root
    for part in dotted.split("."):
        obj = getattr(_original(obj), part)
    return obj


def _shared_copy(original: Any) -> torch.nn.Module | None:
    config = copy.deepcopy(original.config)
    if getattr(original, "_supports_sdpa", False):  # the bridge never used its own setting: take the fast one
        config._attn_implementation = "sdpa"
    with torch.device("meta"):
        fresh = type(original)(config)
    for name, _ in list(fresh.named_parameters(remove_duplicate=False)):
        tensor = _resolve(original, name)
        if not isinstance(tensor, torch.nn.Parameter):
            return None
        module_name, _, leaf = name.rpartition(".")
        fresh.get_submodule(module_name)._parameters[leaf] = tensor
    for name, _ in list(fresh.named_buffers(remove_duplicate=False)):
        tensor = _resolve(original, name)
        if not isinstance(tensor, torch.Tensor):
            return None
        module_name, _, leaf = name.rpartition(".")
        fresh.get_submodule(module_name)._buffers[leaf] = tensor
    if any(t.is_meta for t in [*fresh.parameters(), *fresh.buffers()]):
        return None
    return cast(torch.nn.Module, fresh.eval())


def unwrapped_hf_backend(
    bridge: Any, reference: Callable[[torch.Tensor], list[torch.Tensor]]
) -> HuggingFaceBackend | None:
    """The Hugging Face capture path for `bridge`, or None where it does not give the bridge's weights."""
    original = getattr(bridge, "original_model", None)
    tokenizer = getattr(bridge, "tokenizer", None)
    if original is None or tokenizer is None or not hasattr(original, "config"):
        return None
    try:
        fresh = _shared_copy(original)
        if fresh is None:
            return None
        backend = HuggingFaceBackend(fresh, tokenizer)
        if not backend.captures_queries:
            return None
        vocab = int(bridge.cfg.d_vocab)
        probe = (torch.arange(12) * 7 % vocab)[None].to(backend.device)
        expected = reference(probe)
        got: list[torch.Tensor] = []
        backend.capture(probe, lambda _layer, attention: got.append(dense(attention)))
    except Exception:  # any surprise in an unfamiliar bridge: stay on its own hooks
        return None
    if len(got) != len(expected):
        return None
    tolerance = AGREEMENT.get(next(fresh.parameters()).dtype, HALF_AGREEMENT)
    if any((g.float() - e).abs().max() > tolerance for g, e in zip(got, expected, strict=True)):
        return None
    return backend


def held_model(model: Any, tokenizer: Any) -> tuple[Any, Any]:
    """The Hugging Face model inside the wrappers researchers hold, and its tokenizer where the
    wrapper carries one: `torch.compile` (its original module, the same parameters), an nnsight
    `LanguageModel` (the model it traces) and a PEFT model (the base model with its adapters in place,
    so the adapters take part in the attention)."""
    for _ in range(8):  # wrappers nest (a compiled PEFT model); a cycle must not hang
        inner = _wrapped(model)
        if inner is None:
            break
        if tokenizer is None and _is_tokenizer(getattr(model, "tokenizer", None)):
            tokenizer = model.tokenizer
        model = inner
    return model, tokenizer


def _is_tokenizer(obj: Any) -> bool:
    return obj is not None and callable(obj) and hasattr(obj, "decode")


def _wrapped(model: Any) -> Any:
    if isinstance(model, torch.nn.Module) and isinstance(getattr(model, "_orig_mod", None), torch.nn.Module):
        return model._orig_mod  # torch.compile's OptimizedModule
    if callable(getattr(model, "get_base_model", None)) and hasattr(model, "peft_config"):
        return model.get_base_model()
    if isinstance(model, torch.nn.Module):
        return None
    for name in ("_module", "_model"):  # nnsight's Envoy (LanguageModel, NNsight): 0.8 and earlier
        inner = getattr(model, name, None)
        if isinstance(inner, torch.nn.Module):
            return inner
    return None
