"""The query-key decomposition of a TransformerLens 2.x/3.x HookedTransformer (`make test-tl3`):
standard positions with LayerNorm and MLPs, and rotary with grouped keys and RMSNorm. Each sums to
the model's own `hook_attn_scores`. Skipped under TransformerLens 4 (no HookedTransformer)."""

from __future__ import annotations

import pytest
import torch

from attn_widget.analysis.residual import decompose
from attn_widget.backends import backend_for
from tiny_models import hooked_transformer


def sharpened_hooked_transformer(rotary: bool):
    model = hooked_transformer(rotary)
    with torch.no_grad():  # sharper than random, and norms that are not all ones
        for name, p in model.named_parameters():
            p.mul_(3.0 if "W_Q" in name or "W_K" in name else 1.0)
            if name.endswith(("ln1.w", "ln1.b")):
                p.add_(torch.randn_like(p) * 0.3)
    return model


@pytest.mark.parametrize("rotary", [False, True])
def test_sums_to_hook_attn_scores(rotary):
    model = sharpened_hooked_transformer(rotary)
    backend = backend_for(model)
    tokens = torch.randint(0, 50, (1, 14), generator=torch.Generator().manual_seed(0))
    _, cache = model.run_with_cache(tokens)
    for layer, head, q, k in [(1, 0, 9, 3), (2, 3, 13, 13), (2, 1, 7, 0)]:
        result = decompose(backend, tokens, layer, head, q, k)
        reference = float(cache[f"blocks.{layer}.attn.hook_attn_scores"][0, head, q, k])
        assert abs(reference) > 1e-3
        assert result.contributions.sum().item() == pytest.approx(reference, abs=1e-4)
        assert ("pos_embed" in result.labels) is not rotary
