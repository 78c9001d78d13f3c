"""What the model computes is what is shown: precomputed attention is the explorer's own copy
(detached from autograd), and a researcher's hook on TransformerLens `hook_pattern` is followed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attn_widget import AttentionExplorer

PROMPT = "When mary and john went to the store mary gave a drink to john"


def _causal(layers: int, heads: int, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(layers, heads, n, n, generator=g).masked_fill(torch.ones(n, n).triu(1).bool(), -torch.inf)
    return logits.softmax(-1)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_precomputed_attention_is_copied_so_later_changes_do_not_reach_the_views(kind):
    patterns = _causal(2, 2, 5)
    data = patterns.numpy().copy() if kind == "numpy" else patterns.clone()
    w = AttentionExplorer(data, tokens=list("abcde"))
    shown, scores = w.pattern(1, 1), w.scores["entropy"].copy()
    data[...] = 0.2  # the caller reuses their array
    np.testing.assert_array_equal(w.pattern(1, 1), shown)
    np.testing.assert_array_equal(w.scores["entropy"], scores)
    np.testing.assert_allclose(shown, patterns[1, 1].numpy())


def test_precomputed_attention_that_requires_grad_is_detached():
    logits = torch.randn(2, 2, 4, 4, requires_grad=True)
    patterns = (logits + torch.full((4, 4), -torch.inf).triu(1)).softmax(-1)  # outside no_grad
    assert patterns.requires_grad
    w = AttentionExplorer(patterns, tokens=list("abcd"))
    np.testing.assert_allclose(w.pattern(0, 1), patterns[0, 1].detach().numpy(), atol=1e-6)
    assert w._session.backend._layers[0].grad_fn is None


def _uniform_causal(pattern: torch.Tensor, hook) -> torch.Tensor:
    n = pattern.shape[-1]
    uniform = torch.ones(n, n).tril()
    return (uniform / uniform.sum(-1, keepdim=True)).to(pattern)[None, None].expand_as(pattern).clone()


@pytest.mark.parametrize("model_name", ["bridge", "gpt2_bridge"])
def test_a_hook_on_hook_pattern_is_followed(request, model_name):
    model = request.getfixturevalue(model_name)
    plain = AttentionExplorer(model, prompt=PROMPT)
    plain_1 = plain.pattern(1, 0)
    name = "blocks.1.attn.hook_pattern"
    model.add_hook(name, _uniform_causal)  # an ablation the researcher keeps on
    try:
        w = AttentionExplorer(model, prompt=PROMPT)
        tokens = model.to_tokens(PROMPT)
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_pattern"))
        n = len(w.tokens)
        expected = torch.ones(n, n).tril() / torch.arange(1, n + 1)[:, None]
        for head in range(w.n_heads):
            np.testing.assert_allclose(w.pattern(1, head), expected.numpy(), atol=1e-6)
            np.testing.assert_allclose(w.pattern(1, head), cache[name][0, head].numpy(), atol=1e-6)
        np.testing.assert_allclose(w.pattern(0, 0), plain.pattern(0, 0), atol=1e-5)  # other layers as before
        assert not np.allclose(plain_1, expected.numpy(), atol=1e-2)
        entropy = np.log(np.arange(1, n + 1)).mean()  # every head of layer 1 is uniform now
        np.testing.assert_allclose(w.scores["entropy"][1], entropy, rtol=1e-4)
    finally:
        model.reset_hooks(including_permanent=True)
    after = AttentionExplorer(model, prompt=PROMPT)
    np.testing.assert_allclose(after.pattern(1, 0), plain_1, atol=1e-5)
