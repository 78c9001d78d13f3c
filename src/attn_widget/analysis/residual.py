"""The residual stream entering one layer, at a few positions, split into the components that wrote
it (token embedding, position embedding, each earlier head's output, each earlier attention bias,
each earlier MLP), from one pass that stops after that layer. Only those positions are kept, so it
costs d_model numbers per component and position at any prompt length.

Heads: each head's `z` (the attention-weighted values, the input of the output projection) times its
rows of W_O, normed like the layer's whole output where the model norms it afterwards (Gemma 2).
MLPs: what the block added beyond its attention, `resid_pre[i+1] - resid_pre[i] - attention_i`, so
the components sum to the residual stream exactly. The token embedding is the stream entering
block 0 less the position embedding (which covers models that scale their embeddings).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from attn_widget.analysis.forward import capture_layers
from attn_widget.backends.weights import CircuitWeights, circuit_weights
from attn_widget.contract import head_label
from attn_widget.errors import ModelError
from attn_widget.maths.layer import LayerAttention
from attn_widget.maths.qk_decomposition import BIAS, HeadQK, Rotation, decompose_score, normed_components, rotate_half

EMBED, POS_EMBED = "embed", "pos_embed"
AGREEMENT = 1e-3
"""Largest relative gap between the heads' summed outputs and the attention's own output to accept the split."""


@dataclass
class ResidualComponents:
    positions: list[int]
    labels: list[str]
    kinds: list[str]
    """Per component: "embedding", "position", "head", "bias" or "mlp"."""
    components: torch.Tensor
    """`[C, len(positions), d_model]` float64."""
    residual: torch.Tensor
    """`[len(positions), d_model]` float64: the stream entering the layer, as the model had it."""
    rotations: list[Rotation] | None
    """Per position, the layer's rotary rotation (None: no rotary embedding)."""
    attention: LayerAttention
    """The layer's captured attention (queries, keys, scaling, soft-cap) from the same pass."""


def residual_components(
    backend: Any, tokens: torch.Tensor, layer: int, positions: list[int], weights: CircuitWeights | None = None
) -> ResidualComponents:
    """One pass over `tokens` `[1, n]` up to `layer`, keeping the components of the stream entering it."""
    weights = weights or circuit_weights(backend)
    kept: dict[str, torch.Tensor] = {}
    captured: dict[int, LayerAttention] = {}
    index = torch.tensor(positions, device=tokens.device)

    def keep(name: str) -> Callable[[torch.Tensor], None]:
        def store(x: torch.Tensor) -> None:
            kept[name] = x[0].index_select(0, index.to(x.device)).detach().double()

        return store

    def on_layer(i: int, attention: LayerAttention) -> None:
        if i == layer:
            captured[i] = attention

    with ExitStack() as stack:
        hooks = _tl_points(weights, layer) if weights.transformer_lens else _hf_points(weights, layer)
        for module, name, where in hooks:
            stack.enter_context(_hooked(module, keep(name), where))
        capture_layers(backend, tokens, on_layer, last_layer=layer)
    if layer not in captured:
        raise ModelError(f"The pass did not reach layer {layer}.")
    return _assemble(weights, layer, positions, kept, captured[layer])


def _assemble(
    weights: CircuitWeights, layer: int, positions: list[int], kept: dict[str, torch.Tensor], attention: LayerAttention
) -> ResidualComponents:
    labels: list[str] = []
    kinds: list[str] = []
    parts: list[torch.Tensor] = []

    def add(label: str, kind: str, value: torch.Tensor) -> None:
        labels.append(label)
        kinds.append(kind)
        parts.append(value)

    pos = kept.get(POS_EMBED)
    add(EMBED, "embedding", kept["resid_pre.0"] - (pos if pos is not None else 0.0))
    if pos is not None:
        add(POS_EMBED, "position", pos)
    for i in range(layer):
        lw = weights.layer(i)
        z = kept[f"z.{i}"].reshape(len(positions), lw.w_o.shape[0], -1)  # [p, h, d_head]
        heads = torch.einsum("phd,hdm->hpm", z, lw.w_o.double())
        bias = lw.b_o.double().expand(len(positions), -1) if lw.b_o is not None else None
        raw = heads.sum(0) + (bias if bias is not None else 0.0)
        if lw.post_norm is not None:  # norm each head's part with the scale the whole output had
            heads = torch.stack(
                [normed_components(heads[:, p], raw[p], lw.post_norm)[:-1] for p in range(len(positions))], dim=1
            )
            bias = (
                None
                if bias is None
                else torch.stack(
                    [normed_components(bias[p : p + 1], raw[p], lw.post_norm)[0] for p in range(len(positions))]
                )
            )
            if lw.post_norm.bias is not None:
                bias = (bias if bias is not None else 0.0) + lw.post_norm.bias.double()
        written = heads.sum(0) + (bias if bias is not None else 0.0)
        if any(
            out is not None and (mine - out).norm() > AGREEMENT * max(out.norm().item(), 1e-6)
            for mine, out in ((written, kept.get(f"attn_out.{i}")), (raw, kept.get(f"attn_out_raw.{i}")))
        ):
            raise ModelError(
                f"Layer {i}'s heads, through W_O, do not add up to its attention output: this model's layout "
                "is not one the query-key decomposition reads."
            )
        for h in range(heads.shape[0]):
            add(head_label(i, h), "head", heads[h])
        if bias is not None:
            add(f"L{i} attn bias", "bias", bias)
        if weights.has_mlp:
            add(f"MLP{i}", "mlp", kept[f"resid_pre.{i + 1}"] - kept[f"resid_pre.{i}"] - written)
    rotations = None
    if weights.rotary:
        rotations = _rotations(weights, layer, positions, kept)
    return ResidualComponents(
        positions, labels, kinds, torch.stack(parts), kept[f"resid_pre.{layer}"], rotations, attention
    )


def _rotations(
    weights: CircuitWeights, layer: int, positions: list[int], kept: dict[str, torch.Tensor]
) -> list[Rotation]:
    if weights.transformer_lens:
        attn = weights.model.blocks[layer].attn
        cos, sin, rotate = (
            getattr(attn, "rotary_cos", None),
            getattr(attn, "rotary_sin", None),
            getattr(attn, "rotate_every_two", None),
        )
        if cos is None or sin is None or rotate is None:
            raise ModelError(
                "This TransformerLens model's rotary embedding is not readable (rotary_cos, rotary_sin, "
                "rotate_every_two), so the query-key decomposition cannot rotate its components."
            )
        return [Rotation(cos[p].double(), sin[p].double(), rotate) for p in positions]
    if "cos" not in kept:
        raise ModelError("Found no rotary embedding module (rotary_emb) in this model, so its queries cannot be split.")
    return [Rotation(kept["cos"][i], kept["sin"][i], rotate_half) for i in range(len(positions))]


Point = tuple[torch.nn.Module, str, str]
"""A module, the key its tensor is kept under, and where: "in" (first input), "out" or "out.K" (K-th output)."""


def _tl_points(weights: CircuitWeights, layer: int) -> list[Point]:
    points = weights.model.hook_dict
    found: list[Point] = []
    for name, key in [("blocks.0.hook_resid_pre", "resid_pre.0"), ("hook_pos_embed", POS_EMBED)]:
        if name in points and not (key == POS_EMBED and weights.rotary):
            found.append((points[name], key, "out"))
    for i in range(layer):
        found += [
            (points[f"blocks.{i}.attn.hook_z"], f"z.{i}", "out"),
            (points[f"blocks.{i}.hook_attn_out"], f"attn_out.{i}", "out"),
        ]
    for i in range(1, layer + 1):
        found.append((points[f"blocks.{i}.hook_resid_pre"], f"resid_pre.{i}", "out"))
    return found


def _hf_points(weights: CircuitWeights, layer: int) -> list[Point]:
    found: list[Point] = [(weights.blocks[i], f"resid_pre.{i}", "in") for i in range(layer + 1)]
    for i in range(layer):
        attn = weights.attentions[i]
        out = getattr(attn, "c_proj", None) if hasattr(attn, "c_attn") else getattr(attn, "o_proj", None)
        if out is None:
            raise ModelError(f"Found no output projection in {type(attn).__name__}.")
        found += [(out, f"z.{i}", "in"), (out, f"attn_out_raw.{i}", "out")]
    wpe = _named(weights.model, "wpe")
    if wpe is not None:
        found.append((wpe, POS_EMBED, "out"))
    rotary = _named(weights.model, "rotary_emb")
    if weights.rotary and rotary is not None:
        found += [(rotary, "cos", "out.0"), (rotary, "sin", "out.1")]
    return found


def _named(model: torch.nn.Module, leaf: str) -> torch.nn.Module | None:
    found: torch.nn.Module | None = None
    for name, module in model.named_modules():
        if name.rsplit(".", 1)[-1] == leaf:
            found = module
            break
    return found


@contextmanager
def _hooked(module: torch.nn.Module, store: Callable[[torch.Tensor], None], where: str) -> Iterator[None]:
    def pre_hook(_m: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        x = args[0] if args else kwargs.get("hidden_states", next(iter(kwargs.values()), None))
        if isinstance(x, torch.Tensor):
            store(x)

    def post_hook(_m: torch.nn.Module, _args: Any, output: Any) -> None:
        x = output[int(where.split(".")[1])] if "." in where else output
        if isinstance(x, torch.Tensor):
            store(x)

    handle = (
        module.register_forward_pre_hook(pre_hook, with_kwargs=True)
        if where == "in"
        else module.register_forward_hook(post_hook)
    )
    try:
        yield
    finally:
        handle.remove()


@dataclass
class QKDecomposition:
    """One pre-softmax score split into (query-side component, key-side component) pairs."""

    layer: int
    head: int
    query: int
    key: int
    score: float
    """The score as the model computed it this run (q . k x scaling, before any soft-cap)."""
    contributions: torch.Tensor
    """`[Cq, Ck]` float64, summing to `score`; the last row and column are the biases."""
    labels: list[str]
    kinds: list[str]
    """Row and column labels (the same components on both sides, then "bias")."""

    @property
    def query_side(self) -> torch.Tensor:
        """`[C]`: each query-side component's part of the score (summed over the key side)."""
        return self.contributions.sum(1)

    @property
    def key_side(self) -> torch.Tensor:
        return self.contributions.sum(0)

    def records(self) -> list[dict[str, Any]]:
        """Every pair, largest |contribution| first: query/key component, their kinds and the contribution."""
        flat = self.contributions.flatten()
        order = flat.abs().argsort(descending=True).tolist()
        k = len(self.labels)
        return [
            {
                "query_component": self.labels[i // k],
                "query_kind": self.kinds[i // k],
                "key_component": self.labels[i % k],
                "key_kind": self.kinds[i % k],
                "contribution": float(flat[i]),
            }
            for i in order
        ]

    def summary(self, top: int = 8) -> dict[str, Any]:
        """The top query-side and key-side components and pairs, as plain data for the widget."""

        def ranked(values: torch.Tensor) -> list[dict[str, Any]]:
            order = values.abs().argsort(descending=True)[:top].tolist()
            return [{"label": self.labels[i], "kind": self.kinds[i], "value": float(values[i])} for i in order]

        pairs = [
            {
                "query": r["query_component"],
                "key": r["key_component"],
                "query_kind": r["query_kind"],
                "key_kind": r["key_kind"],
                "value": r["contribution"],
            }
            for r in self.records()[:top]
        ]
        return {
            "layer": self.layer,
            "head": self.head,
            "query": self.query,
            "key": self.key,
            "score": self.score,
            "query_side": ranked(self.query_side),
            "key_side": ranked(self.key_side),
            "pairs": pairs,
        }


BIAS_KIND = "bias"


def decompose(
    backend: Any,
    tokens: torch.Tensor,
    layer: int,
    head: int,
    query: int,
    key: int,
    weights: CircuitWeights | None = None,
) -> QKDecomposition:
    """The score of (`query`, `key`) in `layer`/`head` on `tokens` `[1, n]`, split by residual components."""
    weights = weights or circuit_weights(backend)
    parts = residual_components(backend, tokens, layer, [query, key], weights)
    lw = weights.layer(layer)
    capture = parts.attention
    scaling = getattr(capture, "scaling", None) or lw.scaling
    if scaling is None:
        raise ModelError("This model's attention scaling is unknown, so its scores cannot be split.")
    head_qk = HeadQK(
        lw.w_q[head],
        None if lw.b_q is None else lw.b_q[head],
        lw.w_k[head],
        None if lw.b_k is None else lw.b_k[head],
        lw.norm,
        float(scaling),
    )
    rotations: list[Rotation | None] = list(parts.rotations) if parts.rotations else [None, None]
    table = decompose_score(
        parts.components[:, 0],
        parts.components[:, 1],
        head_qk,
        rotations[0],
        rotations[-1],
        parts.residual[0],
        parts.residual[1],
    )
    score = _captured_score(capture, head, query, key, float(scaling))
    return QKDecomposition(layer, head, query, key, score, table, [*parts.labels, BIAS], [*parts.kinds, BIAS_KIND])


def _captured_score(capture: Any, head: int, query: int, key: int, scaling: float) -> float:
    q, k = getattr(capture, "query", None), getattr(capture, "key", None)
    if q is None or k is None:
        return float("nan")
    kv = k.shape[1]
    group = q.shape[1] // kv
    return float((q[0, head, query].double() @ k[0, head // group, key].double()) * scaling)
