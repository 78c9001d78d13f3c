"""Composition scores equal TransformerLens' `all_composition_scores` (HookedTransformer under
TransformerLens 3.x, `make test-tl3`; a TransformerBridge under 4.x) and a dense computation."""

from __future__ import annotations

import pytest
import torch

from attn_widget.backends.weights import CircuitWeights
from attn_widget.maths.composition import composition_scores


def hooked_transformer(n_kv_heads: int | None = None):
    """A random HookedTransformer (TransformerLens 2.x/3.x), or None under 4.x."""
    try:
        from transformer_lens import HookedTransformer, HookedTransformerConfig
    except (ImportError, AttributeError):
        return None
    cfg = HookedTransformerConfig(
        n_layers=3, n_heads=4, d_model=32, d_head=8, n_ctx=32, d_vocab=50, act_fn="gelu", d_mlp=64,
        n_key_value_heads=n_kv_heads, positional_embedding_type="rotary" if n_kv_heads else "standard", seed=0,
    )  # fmt: skip
    return HookedTransformer(cfg).eval()


def layers_of(model):
    weights = CircuitWeights(model)
    return [weights.layer(i) for i in range(weights.n_layers)]


@pytest.mark.parametrize("kind", ["q", "k", "v"])
def test_equals_transformer_lens(kind, request):
    models = [hooked_transformer(), hooked_transformer(n_kv_heads=2)]
    if models[0] is None:  # TransformerLens 4.x: the bridge's own implementation of the same method
        models = [request.getfixturevalue("bridge"), request.getfixturevalue("full_bridge")]
    for model in models:
        ours = composition_scores(layers_of(model), kind)
        reference = model.all_composition_scores(kind.upper()).float()
        assert reference.abs().max() > 0.05
        torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-4)


def test_equals_a_dense_computation(request):
    """Each score from the d_model x d_model matrices themselves, one pair at a time."""
    layers = layers_of(hooked_transformer(n_kv_heads=2) or request.getfixturevalue("bridge"))
    for kind in "qkv":
        ours = composition_scores(layers, kind)
        for left, right in [(0, 1), (0, 2), (1, 2)]:
            for h, g in [(0, 3), (2, 1)]:
                lw, rw = layers[left], layers[right]
                ov = lw.w_v[h].double() @ lw.w_o[h].double()
                qk = rw.w_q[g].double() @ rw.w_k[g].double().T
                other = {"q": qk, "k": qk.T, "v": rw.w_v[g].double() @ rw.w_o[g].double()}[kind]
                expected = torch.linalg.matrix_norm(ov @ other) / (
                    torch.linalg.matrix_norm(ov) * torch.linalg.matrix_norm(other)
                )
                assert ours[left, h, right, g].item() == pytest.approx(expected.item(), rel=1e-5)
        assert (ours[1, :, 0] == 0).all() and (ours[1, :, 1] == 0).all()


def test_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="kind must be one of q, k, v"):
        composition_scores([], "x")
