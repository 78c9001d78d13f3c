"""The weights behind what a head writes: per-head output projections W_O, the unembedding W_U and
the final norm, read from each model family under one interface.

TransformerLens (TransformerBridge and HookedTransformer 2.x/3.x) names them `blocks[i].attn.W_O`
`[h, d_head, d_model]`, `W_U` `[d_model, vocab]` and `ln_final`. Hugging Face models keep each
layer's output projection in the attention module (`o_proj`, GPT-2's Conv1D `c_proj`, ...), the
unembedding in `get_output_embeddings()` and the final norm at the end of the base model.
Precomputed attention has no weights: asking for them says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from attn_widget.errors import ModelError, WeightsError
from attn_widget.maths.attribution import FinalNorm, NormKind

_OUTPUT_PROJECTIONS = ("o_proj", "c_proj", "out_proj", "dense", "o")
_FINAL_NORMS = ("ln_final", "norm", "ln_f", "final_layer_norm", "final_norm", "norm_f", "final_layernorm")
_TL_NORM_KINDS: dict[str | None, NormKind] = {
    "LN": "layernorm",
    "LNPre": "layernorm",
    "RMS": "rmsnorm",
    "RMSPre": "rmsnorm",
}

NO_WEIGHTS = (
    "Value weighting and logit attribution need the model's weights (W_V, W_O, W_U); precomputed "
    "attention has none. Pass the model itself to AttentionExplorer."
)


class OutputWeights:
    """One model's W_O per layer (read when asked, one layer at a time), W_U and final norm."""

    def __init__(self, model: Any) -> None:
        self._w_o: Callable[[int], torch.Tensor]
        if _is_transformer_lens(model):

            def tl_w_o(layer: int) -> torch.Tensor:
                weight: torch.Tensor = model.blocks[layer].attn.W_O
                return weight

            self._w_o = tl_w_o
            self.n_layers = int(model.cfg.n_layers)
            self.n_heads = int(model.cfg.n_heads)
        else:
            self._w_o, self.n_layers, self.n_heads = _hf_output_projections(model)
        self._model = model
        self._final_norm: FinalNorm | None = None

    def w_o(self, layer: int) -> torch.Tensor:
        """`[h, d_head, d_model]` float32 on the model's device: head h's rows of the output projection."""
        with torch.no_grad():
            weight: torch.Tensor = self._w_o(layer)
            return weight.detach().float()

    def w_u(self) -> torch.Tensor:
        """`[d_model, vocab]`: logits are (normed residual) @ W_U (+ bias)."""
        if _is_transformer_lens(self._model):
            w_u: torch.Tensor = self._model.W_U
            return w_u.detach()
        head = self._model.get_output_embeddings() if hasattr(self._model, "get_output_embeddings") else None
        if head is None or not hasattr(head, "weight"):
            raise ModelError(
                f"{type(self._model).__name__} has no language-model head (unembedding), so logits cannot be "
                "attributed: load it with AutoModelForCausalLM."
            )
        weight: torch.Tensor = head.weight
        return weight.detach().T

    def final_norm(self) -> FinalNorm:
        if self._final_norm is None:
            self._final_norm = _final_norm(self._model)
        return self._final_norm


def output_weights(backend: Any) -> OutputWeights:
    """The weights of the model behind an explorer's backend; a clear error for precomputed attention."""
    model = getattr(backend, "model", None)
    if model is None or not getattr(backend, "runs_tokens", True):
        raise WeightsError(NO_WEIGHTS)
    return OutputWeights(model)


def _is_transformer_lens(model: Any) -> bool:
    return hasattr(model, "cfg") and hasattr(model, "blocks") and hasattr(model, "W_U")


def final_norm_module(model: Any) -> torch.nn.Module | None:
    """The norm applied to the residual stream right before the unembedding, if any."""
    if _is_transformer_lens(model):
        return getattr(model, "ln_final", None)
    body = getattr(model, "base_model", model)
    for owner in (body, getattr(body, "model", None), getattr(body, "decoder", None)):
        for name in _FINAL_NORMS:
            module = getattr(owner, name, None) if owner is not None else None
            if isinstance(module, torch.nn.Module):
                return module
    return None


def _final_norm(model: Any) -> FinalNorm:
    module = final_norm_module(model)
    if _is_transformer_lens(model):
        cfg = model.cfg
        kind = "rmsnorm" if getattr(cfg, "final_rms", False) else _TL_NORM_KINDS.get(cfg.normalization_type, "none")
        return FinalNorm(kind, float(getattr(cfg, "eps", 1e-5)), _gain(module))
    if module is None:
        raise ModelError(f"Found no final norm in {type(model).__name__}, so its logits cannot be attributed.")
    name = type(module).__name__
    if isinstance(module, torch.nn.LayerNorm) or name.endswith(("LayerNorm", "LayerNorm2d")):
        return FinalNorm("layernorm", float(getattr(module, "eps", 1e-5)), _gain(module))
    if "RMSNorm" in name:
        eps = float(getattr(module, "variance_epsilon", None) or getattr(module, "eps", None) or 1e-6)
        gain = _gain(module)
        if gain is not None and name.startswith("Gemma"):  # Gemma scales by (1 + weight)
            gain = 1.0 + gain
        return FinalNorm("rmsnorm", float(eps), gain)
    raise ModelError(f"The final norm {name} of {type(model).__name__} is neither a LayerNorm nor an RMSNorm.")


def _gain(module: torch.nn.Module | None) -> torch.Tensor | None:
    """The norm's elementwise gain (`weight`, TransformerLens' `w`), None when it has none."""
    if module is None:
        return None
    for name, parameter in module.named_parameters():
        if name.rsplit(".", 1)[-1] in ("weight", "w") and parameter.dim() == 1:
            return parameter.detach().float()
    return None


def _hf_output_projections(model: Any) -> tuple[Callable[[int], torch.Tensor], int, int]:
    from attn_widget.backends.huggingface import attention_modules, text_config

    config = text_config(model)
    n_heads = int(config.num_attention_heads)
    projections = [_output_projection(module) for module, _ in attention_modules(model)]

    def w_o(layer: int) -> torch.Tensor:
        projection = projections[layer]
        stored: torch.Tensor = projection.weight  # type: ignore[assignment]
        # Conv1D (GPT-2) stores [in, out]; Linear stores [out, in]. Rows of [in, out] are the heads'.
        weight = stored if hasattr(projection, "nf") else stored.T
        d_in, d_model = weight.shape
        return weight.reshape(n_heads, d_in // n_heads, d_model)

    return w_o, len(projections), n_heads


def _output_projection(attention: torch.nn.Module) -> torch.nn.Module:
    for name in _OUTPUT_PROJECTIONS:
        module = getattr(attention, name, None)
        if isinstance(module, torch.nn.Module) and isinstance(getattr(module, "weight", None), torch.Tensor):
            return module
    raise ModelError(
        f"Found no output projection ({', '.join(_OUTPUT_PROJECTIONS)}) in {type(attention).__name__}, "
        "so what its heads write cannot be measured."
    )
