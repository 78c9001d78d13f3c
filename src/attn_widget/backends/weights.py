"""The weights behind what a head reads and writes, read from each model family under one interface:
per-head output projections W_O, the unembedding W_U and the final norm (`OutputWeights`), and
every layer's W_Q, W_K, W_V, W_O, biases and norms (`CircuitWeights`, in TransformerLens' layout).

TransformerLens (TransformerBridge and HookedTransformer 2.x/3.x) names them `blocks[i].attn.W_O`
`[h, d_head, d_model]`, `W_U` `[d_model, vocab]` and `ln_final`. Hugging Face models keep each
layer's output projection in the attention module (`o_proj`, GPT-2's Conv1D `c_proj`, ...), the
unembedding in `get_output_embeddings()` and the final norm at the end of the base model.
Precomputed attention has no weights: asking for them says so.

A layer is a call of an attention module (see attention_interface.py): a looped model runs a module
several times, so layer i's weights are those of the module its backend names for call i
(`layer_modules`), not of the i-th module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from attn_widget.errors import ModelError, WeightsError
from attn_widget.maths.attribution import FinalNorm, NormKind
from attn_widget.maths.qk_decomposition import Norm

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

    def __init__(self, model: Any, layer_modules: list[torch.nn.Module] | None = None) -> None:
        self._w_o: Callable[[int], torch.Tensor]
        if _is_transformer_lens(model):

            def tl_w_o(layer: int) -> torch.Tensor:
                weight: torch.Tensor = model.blocks[layer].attn.W_O
                return weight

            self._w_o = tl_w_o
            self.n_layers = int(model.cfg.n_layers)
            self.n_heads = int(model.cfg.n_heads)
        else:
            self._w_o, self.n_layers, self.n_heads = _hf_output_projections(model, layer_modules)
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
    return OutputWeights(model, backend.layer_modules)


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


def layer_attention_modules(model: Any, layer_modules: list[torch.nn.Module] | None) -> list[torch.nn.Module]:
    """The attention module of each layer: the backend's call order where it has one, else the
    model's attention modules in order (one call each)."""
    from attn_widget.backends.huggingface import attention_modules

    return list(layer_modules) if layer_modules is not None else [m for m, _ in attention_modules(model)]


def _hf_output_projections(
    model: Any, layer_modules: list[torch.nn.Module] | None
) -> tuple[Callable[[int], torch.Tensor], int, int]:
    from attn_widget.backends.huggingface import text_config

    config = text_config(model)
    n_heads = int(config.num_attention_heads)
    projections = [_output_projection(module) for module in layer_attention_modules(model, layer_modules)]

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


MISSING_FOR_CIRCUITS = (
    "needs W_Q, W_K, W_V and W_O per head and the norm in front of each attention; {what}. It reads "
    "TransformerLens models (TransformerBridge, HookedTransformer) and Hugging Face GPT-2 and Llama-style "
    "models (q_proj/k_proj/v_proj/o_proj, including grouped keys, Gemma 2)."
)


@dataclass(frozen=True)
class LayerWeights:
    """One layer's attention weights in TransformerLens' layout, float32, keys and values repeated to
    every query head (grouped-query attention): W_Q, W_K, W_V `[h, d_model, d_head]`, W_O
    `[h, d_head, d_model]`, biases `[h, d_head]` / `[d_model]` (None: zero)."""

    w_q: torch.Tensor
    w_k: torch.Tensor
    w_v: torch.Tensor
    w_o: torch.Tensor
    b_q: torch.Tensor | None
    b_k: torch.Tensor | None
    b_v: torch.Tensor | None
    b_o: torch.Tensor | None
    norm: Norm
    """The norm in front of the attention (ln1, input_layernorm)."""
    post_norm: Norm | None
    """A norm applied to the attention's output before it joins the residual stream (Gemma 2), or None."""
    scaling: float | None
    """What q.k is multiplied by, where the module says (else the run's capture does)."""


class CircuitWeights:
    """Every layer's Q, K, V, O weights and norms of a TransformerLens or Hugging Face model; anything
    else raises a ModelError naming what is missing."""

    def __init__(self, model: Any, layer_modules: list[torch.nn.Module] | None = None) -> None:
        self.model = model
        self.transformer_lens = _is_transformer_lens(model)
        if self.transformer_lens:
            cfg = model.cfg
            self.n_layers, self.n_heads = int(cfg.n_layers), int(cfg.n_heads)
            self.rotary = getattr(cfg, "positional_embedding_type", "standard") in ("rotary",)
            self.has_mlp = not bool(getattr(cfg, "attn_only", False))
            if getattr(cfg, "use_normalization_before_and_after", False):
                raise _cannot_read(
                    "this model's "
                    "attention output is normed again before the residual stream (use its Hugging Face model)"
                )
        else:
            self._hf_modules(layer_modules)
        self._cache: dict[int, LayerWeights] = {}

    def _hf_modules(self, layer_modules: list[torch.nn.Module] | None) -> None:
        from attn_widget.backends.huggingface import text_config

        model = self.model
        if not hasattr(model, "named_modules"):
            raise _cannot_read(f"{type(model).__name__} is neither")
        config = text_config(model)
        names = {id(m): n for n, m in model.named_modules()}
        self.attentions: list[Any] = layer_attention_modules(model, layer_modules)
        self.blocks: list[Any] = [model.get_submodule(names[id(m)].rpartition(".")[0]) for m in self.attentions]
        self.n_layers, self.n_heads = len(self.attentions), int(config.num_attention_heads)
        self.rotary = not hasattr(_find(model, ("wpe",)), "weight")
        self.has_mlp = True
        for attn in self.attentions[:1]:
            for q_norm in ("q_norm", "k_norm"):
                if getattr(attn, q_norm, None) is not None:
                    raise _cannot_read(
                        f"{type(attn).__name__} norms each head's query and key ({q_norm}), which it cannot split"
                    )
            if not (hasattr(attn, "c_attn") or all(hasattr(attn, p) for p in ("q_proj", "k_proj", "v_proj", "o_proj"))):
                raise _cannot_read(f"{type(attn).__name__} has neither c_attn (GPT-2) nor q_proj/k_proj/v_proj/o_proj")

    def layer(self, layer: int) -> LayerWeights:
        if layer not in self._cache:
            with torch.no_grad():
                self._cache[layer] = self._tl_layer(layer) if self.transformer_lens else self._hf_layer(layer)
        return self._cache[layer]

    def input_norm_module(self, layer: int) -> torch.nn.Module | None:
        found: torch.nn.Module | None
        if self.transformer_lens:
            found = getattr(self.model.blocks[layer], "ln1", None)
        else:
            found = _find(self.blocks[layer], ("input_layernorm", "ln_1", "ln1", "self_attn_layer_norm"))
        return found

    def _tl_layer(self, layer: int) -> LayerWeights:
        cfg, attn = self.model.cfg, self.model.blocks[layer].attn
        kind: NormKind = _TL_NORM_KINDS.get(cfg.normalization_type, "none")
        ln1 = getattr(self.model.blocks[layer], "ln1", None)
        norm = Norm(kind, float(getattr(cfg, "eps", 1e-5)), _gain(ln1), _norm_bias(ln1))

        def f(name: str) -> torch.Tensor | None:
            value = getattr(attn, name, None)
            return value.detach().float() if isinstance(value, torch.Tensor) else None

        w_q, w_k, w_v, w_o = (f(n) for n in ("W_Q", "W_K", "W_V", "W_O"))
        if w_q is None or w_k is None or w_v is None or w_o is None:
            raise _cannot_read("this model's attention has no W_Q/W_K/W_V/W_O")
        heads = w_q.shape[0]
        w_k, w_v = _repeat(w_k, heads), _repeat(w_v, heads)
        b_k, b_v = f("b_K"), f("b_V")
        return LayerWeights(
            w_q,
            w_k,
            w_v,
            w_o,
            f("b_Q"),
            None if b_k is None else _repeat(b_k, heads),
            None if b_v is None else _repeat(b_v, heads),
            f("b_O"),
            norm,
            None,
            None,
        )

    def _hf_layer(self, layer: int) -> LayerWeights:
        attn, block, h = self.attentions[layer], self.blocks[layer], self.n_heads
        if hasattr(attn, "c_attn"):  # GPT-2: one Conv1D [d_model, 3 d_model] for q, k and v
            weight, bias = attn.c_attn.weight.detach().float(), attn.c_attn.bias.detach().float()
            d_model = weight.shape[0]
            w_q, w_k, w_v = (w.reshape(d_model, h, -1).transpose(0, 1) for w in weight.split(d_model, dim=1))
            b_q, b_k, b_v = (b.reshape(h, -1) for b in bias.split(d_model))
            w_o = attn.c_proj.weight.detach().float().reshape(h, -1, d_model)
            b_o = attn.c_proj.bias.detach().float()
        else:

            def proj(name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
                module = getattr(attn, name)
                d_model = module.weight.shape[1]
                w = module.weight.detach().float().T.reshape(d_model, -1, _head_dim(attn, module, h)).transpose(0, 1)
                b = (
                    module.bias.detach().float().reshape(w.shape[0], -1)
                    if getattr(module, "bias", None) is not None
                    else None
                )
                return _repeat(w, h), (None if b is None else _repeat(b, h))

            (w_q, b_q), (w_k, b_k), (w_v, b_v) = proj("q_proj"), proj("k_proj"), proj("v_proj")
            o = attn.o_proj
            w_o = o.weight.detach().float().T.reshape(h, -1, o.weight.shape[0])
            b_o = o.bias.detach().float() if getattr(o, "bias", None) is not None else None
        norm_module = self.input_norm_module(layer)
        if norm_module is None:
            raise _cannot_read(f"found no norm in front of {type(attn).__name__} (input_layernorm, ln_1)")
        post = None
        if hasattr(block, "pre_feedforward_layernorm"):  # Gemma 2: post_attention_layernorm follows the attention
            post = hf_norm(block.post_attention_layernorm)
        scaling = getattr(attn, "scaling", None)
        return LayerWeights(
            w_q,
            w_k,
            w_v,
            w_o,
            b_q,
            b_k,
            b_v,
            b_o,
            hf_norm(norm_module),
            post,
            float(scaling) if isinstance(scaling, int | float) else None,
        )


def _cannot_read(what: str) -> ModelError:
    return ModelError("Query-key decomposition " + MISSING_FOR_CIRCUITS.format(what=what))


def circuit_weights(backend: Any) -> CircuitWeights:
    """The circuit weights of the model the backend runs (a bridge over Hugging Face: the unwrapped model)."""
    model = getattr(backend, "model", None)
    if model is None or not getattr(backend, "runs_tokens", True):
        raise WeightsError(
            "Query-key decomposition, composition and ablation need the model's weights; precomputed "
            "attention has none. Pass the model itself to AttentionExplorer."
        )
    unwrapped = getattr(backend, "unwrapped", None)
    if unwrapped is not None:
        return CircuitWeights(unwrapped.model, unwrapped.layer_modules)
    return CircuitWeights(model, backend.layer_modules)


def hf_norm(module: torch.nn.Module) -> Norm:
    """A Hugging Face LayerNorm or RMSNorm as a `Norm` (Gemma's `1 + weight` gain added)."""
    name = type(module).__name__
    if isinstance(module, torch.nn.LayerNorm) or name.endswith("LayerNorm"):
        return Norm("layernorm", float(getattr(module, "eps", 1e-5)), _gain(module), _norm_bias(module))
    if "RMSNorm" in name:
        eps = float(getattr(module, "variance_epsilon", None) or getattr(module, "eps", None) or 1e-6)
        gain = _gain(module)
        if gain is not None and name.startswith("Gemma"):
            gain = 1.0 + gain
        return Norm("rmsnorm", eps, gain, None)
    raise ModelError(
        f"The norm {name} is neither a LayerNorm nor an RMSNorm, so the residual stream cannot be split through it."
    )


def _norm_bias(module: torch.nn.Module | None) -> torch.Tensor | None:
    if module is None:
        return None
    for name, parameter in module.named_parameters():
        if name.rsplit(".", 1)[-1] in ("bias", "b") and parameter.dim() == 1:
            return parameter.detach().float()
    return None


def _find(owner: Any, names: tuple[str, ...]) -> Any:
    for module in [owner, *(m for _, m in owner.named_modules())] if hasattr(owner, "named_modules") else [owner]:
        for name in names:
            found = getattr(module, name, None)
            if isinstance(found, torch.nn.Module):
                return found
    return None


def _head_dim(attn: Any, module: Any, n_heads: int) -> int:
    head_dim = getattr(attn, "head_dim", None)
    return int(head_dim) if head_dim else int(module.weight.shape[0]) // n_heads


def _repeat(per_kv_head: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Grouped-query attention: each key/value head serves n_heads / kv_heads consecutive query heads."""
    groups = n_heads // per_kv_head.shape[0]
    return per_kv_head.repeat_interleave(groups, dim=0) if groups > 1 else per_kv_head
