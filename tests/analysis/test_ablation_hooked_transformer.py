"""Ablation effects of a TransformerLens 2.x/3.x HookedTransformer (`make test-tl3`) equal a plain loop
of hooked forward passes, one head at a time. Skipped under TransformerLens 4 (no HookedTransformer)."""

from __future__ import annotations

import pytest
import torch

from attn_widget.analysis.ablation import Target, ablation_effects
from attn_widget.backends.weights import CircuitWeights
from tiny_models import hooked_transformer


@pytest.mark.parametrize("rotary", [False, True])
def test_equals_one_hooked_pass_per_head(rotary):
    model = hooked_transformer(rotary)
    tokens = torch.randint(0, 50, (1, 12), generator=torch.Generator().manual_seed(0))
    ours = ablation_effects(CircuitWeights(model), tokens, Target(7, 3, -1), "zero", batch_size=5)

    def diff(logits: torch.Tensor) -> float:
        return float(logits[0, -1, 7].double() - logits[0, -1, 3].double())

    with torch.no_grad():
        clean = diff(model(tokens))
        reference = torch.zeros(3, 4, dtype=torch.float64)
        for layer in range(3):
            for head in range(4):

                def ablate(z, hook, head=head):
                    z[:, :, head] = 0.0
                    return z

                hooked = model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", ablate)])
                reference[layer, head] = diff(hooked) - clean
    assert reference.abs().max() > 1e-4
    torch.testing.assert_close(torch.as_tensor(ours), reference, atol=2e-5, rtol=1e-4)
