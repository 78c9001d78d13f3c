"""Batched ablation effects equal a plain loop of hooked forward passes, one head at a time."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tests.references import tiny_model

from attn_widget.analysis.ablation import AblationStopped, Target, ablation_effects
from attn_widget.backends.weights import CircuitWeights
from attn_widget.errors import AttnWidgetError

TOKENS = torch.randint(1, 300, (1, 11), generator=torch.Generator().manual_seed(7))


def loss(logits: torch.Tensor) -> float:
    return float(F.cross_entropy(logits[0, :-1].double(), TOKENS[0, 1:]))


def logit_diff(logits: torch.Tensor) -> float:
    return float(logits[0, -1, 5].double() - logits[0, -1, 9].double())


def loop_bridge(model, method: str, metric) -> torch.Tensor:
    """TransformerLens: `hook_z` of one head replaced, one forward pass per head."""
    zs = {}
    with torch.no_grad():
        clean = metric(
            model.run_with_hooks(
                TOKENS,
                fwd_hooks=[
                    (
                        f"blocks.{i}.attn.hook_z",
                        lambda z, hook, i=i: zs.setdefault(f"blocks.{i}.attn.hook_z", z.clone()),
                    )
                    for i in range(model.cfg.n_layers)
                ],
            )
        )
    out = torch.zeros(model.cfg.n_layers, model.cfg.n_heads, dtype=torch.float64)
    for layer in range(model.cfg.n_layers):
        for head in range(model.cfg.n_heads):
            name = f"blocks.{layer}.attn.hook_z"
            value = zs[name][0, :, head].mean(0) if method == "mean" else 0.0

            def ablate(z, hook, head=head, value=value):
                z = z.clone()
                z[:, :, head] = value
                return z

            with torch.no_grad():
                out[layer, head] = metric(model.run_with_hooks(TOKENS, fwd_hooks=[(name, ablate)])) - clean
    return out


def loop_hf(model, method: str, metric) -> torch.Tensor:
    """Hugging Face GPT-2: the input of one layer's c_proj edited for one head, one pass per head."""
    layers = model.transformer.h
    n_heads = model.config.n_head
    zs = {}
    handles = [
        b.attn.c_proj.register_forward_pre_hook(lambda m, a, i=i: zs.setdefault(i, a[0].clone()))
        for i, b in enumerate(layers)
    ]
    with torch.no_grad():
        clean = metric(model(TOKENS).logits)
    for h in handles:
        h.remove()
    out = torch.zeros(len(layers), n_heads, dtype=torch.float64)
    for layer, block in enumerate(layers):
        for head in range(n_heads):
            z = zs[layer].reshape(1, TOKENS.shape[1], n_heads, -1)
            value = z[0, :, head].mean(0) if method == "mean" else 0.0

            def ablate(m, args, head=head, value=value):
                x = args[0].reshape(1, TOKENS.shape[1], n_heads, -1).clone()
                x[:, :, head] = value
                return (x.reshape(args[0].shape),)

            handle = block.attn.c_proj.register_forward_pre_hook(ablate)
            with torch.no_grad():
                out[layer, head] = metric(model(TOKENS).logits) - clean
            handle.remove()
    return out


@pytest.mark.parametrize("method", ["mean", "zero"])
def test_bridge_loss_and_logit_difference(method, full_bridge):
    _check_bridge(method, full_bridge)


def test_bridge_over_hugging_face_gpt2(gpt2_bridge):
    _check_bridge("mean", gpt2_bridge)


def _check_bridge(method: str, full_bridge) -> None:
    weights = CircuitWeights(full_bridge)
    seen = []
    ours = ablation_effects(weights, TOKENS, Target(), method, batch_size=3, progress=lambda d, t: seen.append((d, t)))
    reference = loop_bridge(full_bridge, method, lambda out: loss(out))
    assert reference.abs().max() > 1e-3
    torch.testing.assert_close(torch.as_tensor(ours), reference, atol=2e-5, rtol=1e-4)
    heads = weights.n_layers * weights.n_heads
    assert seen[-1] == (heads, heads) and len(seen) == -(-heads // 3)
    ours = ablation_effects(weights, TOKENS, Target(5, 9, -1), method, batch_size=5)
    torch.testing.assert_close(
        torch.as_tensor(ours), loop_bridge(full_bridge, method, logit_diff), atol=2e-5, rtol=1e-4
    )


@pytest.mark.parametrize("method", ["mean", "zero"])
def test_hugging_face_gpt2(method, tokenizer):
    model = tiny_model("gpt2", len(tokenizer))
    ours = ablation_effects(CircuitWeights(model), TOKENS, Target(5, 9, -1), method, batch_size=4)
    reference = loop_hf(model, method, logit_diff)
    assert reference.abs().max() > 1e-3
    torch.testing.assert_close(torch.as_tensor(ours), reference, atol=2e-5, rtol=1e-4)


def test_llama_runs_all_heads_in_one_batch(tokenizer):
    """Grouped keys do not change what a head writes: the batched sweep equals batch size 1."""
    model = tiny_model("llama", len(tokenizer))
    weights = CircuitWeights(model)
    one = ablation_effects(weights, TOKENS, Target(), "mean", batch_size=1)
    every = ablation_effects(weights, TOKENS, Target(), "mean", batch_size=64)
    assert abs(one).max() > 1e-4
    torch.testing.assert_close(torch.as_tensor(every), torch.as_tensor(one), atol=2e-6, rtol=1e-5)


def test_bad_arguments(bridge):
    weights = CircuitWeights(bridge)
    with pytest.raises(AttnWidgetError, match="method must be 'mean' or 'zero'"):
        ablation_effects(weights, TOKENS, Target(), "resample")
    with pytest.raises(AttnWidgetError, match="batch_size"):
        ablation_effects(weights, TOKENS, Target(), "zero", batch_size=0)


def _hooks_on(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_an_interrupt_mid_pass_stops_cleanly(kind, tokenizer):
    """Ctrl-C (the kernel's stop button) inside the fourth pass: the hooks are gone, the model gives
    the logits of a fresh forward pass, and only the heads of finished passes have a value."""
    model = tiny_model(kind, len(tokenizer))
    weights = CircuitWeights(model)
    with torch.no_grad():
        fresh = model(TOKENS).logits
    full = ablation_effects(weights, TOKENS, Target(), "mean", batch_size=2)
    passes = []

    def interrupt_in_fourth(_module, _args, _out):
        passes.append(1)
        if len(passes) == 4:  # the clean pass, two batches, then mid-way through the third batch
            raise KeyboardInterrupt

    layer_1 = model.transformer.h[1] if kind == "gpt2" else model.model.layers[1]
    handle = layer_1.register_forward_hook(interrupt_in_fourth)
    try:
        with pytest.raises(AblationStopped) as stopped:
            ablation_effects(weights, TOKENS, Target(), "mean", batch_size=2)
    finally:
        handle.remove()
    assert (stopped.value.done, stopped.value.total) == (4, full.size)
    partial = stopped.value.partial.reshape(-1)
    assert np.isnan(partial[4:]).all()
    np.testing.assert_array_equal(partial[:4], full.reshape(-1)[:4])
    assert _hooks_on(model) == 0
    with torch.no_grad():
        torch.testing.assert_close(model(TOKENS).logits, fresh, atol=0, rtol=0)


def test_progress_that_raises_stops_after_its_batch(full_bridge):
    """The stop message's path: the progress tick raises after a batch, which is kept."""
    weights = CircuitWeights(full_bridge)

    def stop_after_second(done: int, _total: int) -> None:
        if done == 6:
            raise KeyboardInterrupt

    with pytest.raises(AblationStopped) as stopped:
        ablation_effects(weights, TOKENS, Target(), "zero", batch_size=3, progress=stop_after_second)
    assert stopped.value.done == 6 and np.isfinite(stopped.value.partial.reshape(-1)[:6]).all()
    assert np.isnan(stopped.value.partial.reshape(-1)[6:]).all()
    assert not any(p._forward_hooks for p in full_bridge.hook_dict.values())
