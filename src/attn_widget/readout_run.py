"""One forward pass that keeps what value weighting and logit attribution need beyond the attention:
each layer's value vectors `[kv_heads, n, d_head]` (`x W_V + b_V`, before the grouped-query repeat)
and the final norm's scale sigma `[n]` at every position, frozen from the run.

Both are small (n x d per layer and n numbers), unlike the `[heads, n, n]` patterns. When the
prompt's own pass captures values (`LayerCapture.value`), only the scale is needed from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from .attribution import final_scale
from .errors import AttnWidgetError, ModelError
from .model_weights import ReadoutWeights, _is_transformer_lens, final_norm_module


@dataclass
class Readout:
    values: list[torch.Tensor]
    """Per layer `[kv_heads, n, d_head]` float32 on the model's device (empty if not asked for)."""
    scale: torch.Tensor
    """`[n]` float32: the final norm's divisor at each position (ones without a norm)."""


def run_readout(model: Any, weights: ReadoutWeights, tokens: torch.Tensor, with_values: bool = True) -> Readout:
    """Runs `tokens` `[1, n]` once through `model`, keeping values (if asked) and the final scale."""
    try:
        with torch.inference_mode():
            if _is_transformer_lens(model):
                return _run_transformer_lens(model, weights, tokens, with_values)
            return _run_hugging_face(model, weights, tokens, with_values)
    except AttnWidgetError:
        raise
    except Exception as err:
        raise ModelError(f"The model failed while running: {type(err).__name__}: {err}") from err


def _run_transformer_lens(model: Any, weights: ReadoutWeights, tokens: torch.Tensor, with_values: bool) -> Readout:
    values: dict[int, torch.Tensor] = {}
    found: list[torch.Tensor] = []

    def keep_value(v: torch.Tensor, hook: Any) -> None:
        values[int(hook.name.split(".")[1])] = v[0].transpose(0, 1).float()  # [n, kv, d] -> [kv, n, d]

    def keep_scale(scale: torch.Tensor, hook: Any) -> None:
        found.append(scale[0, :, 0].float())

    hooks: list[tuple[Any, Any]] = [("ln_final.hook_scale", keep_scale)]
    if with_values:
        hooks.append((lambda name: name.endswith("attn.hook_v"), keep_value))
    model.run_with_hooks(tokens, fwd_hooks=hooks, return_type=None)
    n = tokens.shape[-1]
    no_norm = not found or weights.final_norm().kind == "none"
    scale = torch.ones(n, device=tokens.device) if no_norm else found[0]  # no final norm: nothing divides
    return Readout([values[layer] for layer in sorted(values)], scale)


def _run_hugging_face(model: Any, weights: ReadoutWeights, tokens: torch.Tensor, with_values: bool) -> Readout:
    from .backends.huggingface import _config, _eval_mode, attention_modules

    config = _config(model)
    n_heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or n_heads)
    values: dict[int, torch.Tensor] = {}
    residual: list[torch.Tensor] = []
    norm = final_norm_module(model)
    if norm is None:
        raise ModelError(f"Found no final norm in {type(model).__name__}, so its logits cannot be attributed.")
    body = getattr(model, "base_model", model)
    with ExitStack() as stack:
        stack.enter_context(_eval_mode(model))
        stack.enter_context(_pre_hook(norm, lambda x: residual.append(x[0].float())))
        if with_values:
            for layer, (module, _) in enumerate(attention_modules(model)):
                stack.enter_context(_value_hook(module, layer, n_heads, kv_heads, values))
        body(input_ids=tokens, use_cache=False)
    return Readout([values[layer] for layer in sorted(values)], final_scale(residual[0], weights.final_norm()))


@contextmanager
def _pre_hook(module: torch.nn.Module, keep: Any) -> Iterator[None]:
    handle = module.register_forward_pre_hook(lambda _m, args: keep(args[0]))
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def _value_hook(
    attention: torch.nn.Module, layer: int, n_heads: int, kv_heads: int, values: dict[int, torch.Tensor]
) -> Iterator[None]:
    """Values from the projection that makes them: `v_proj` (Llama-style) or GPT-2's fused `c_attn`."""
    if isinstance(getattr(attention, "v_proj", None), torch.nn.Module):
        source, heads, part = attention.v_proj, kv_heads, slice(None)
    elif isinstance(getattr(attention, "c_attn", None), torch.nn.Module):
        width = attention.c_attn.nf // 3  # [q | k | v]
        source, heads, part = attention.c_attn, n_heads, slice(2 * width, 3 * width)
    else:
        raise ModelError(
            f"Value vectors of {type(attention).__name__} cannot be read yet (no v_proj or c_attn), so value "
            "weighting and logit attribution are not available for this model."
        )

    def hook(_module: torch.nn.Module, _args: Any, output: torch.Tensor) -> None:
        v = output[0, :, part].float()  # [n, heads * d_head]
        values[layer] = v.reshape(v.shape[0], heads, -1).transpose(0, 1)

    handle = source.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
