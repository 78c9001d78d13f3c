"""A looped model (HRM-Text) runs each attention module several times: layer i is call i, so its
weights (W_O, and W_Q/W_K/W_V for circuits) must be those of the module that made call i. Checked
against a naive reference built from eager attention and the values each call computed."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch

from attn_widget.analysis.value_pass import run_value_pass
from attn_widget.backends import backend_for
from attn_widget.backends.weights import circuit_weights, output_weights
from attn_widget.maths.value_weighting import value_norms, value_weighted
from references import naive_weighted_norms

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import architecture_sweep as sweep


def _looped_model():
    from transformers import AutoModelForCausalLM

    config = sweep.tiny_config("hrm_text")
    config.num_layers_per_stack = 1  # two attention modules (low and high level), each called several times
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("q_proj.weight", "k_proj.weight")):
                p.mul_(sweep.SHARPEN)
    return model


def _eager_calls(model, ids):
    """Per call of an attention module, in order: its module's path, its eager weights `[h, n, n]` and
    its values `[h, n, d_head]` (the v_proj output of that very call)."""
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    paths, values, handles = [], [], []
    for path, module in eager.named_modules():
        if path.endswith("self_attn"):
            handles.append(module.register_forward_pre_hook(lambda _m, _a, path=path: paths.append(path)))
            handles.append(module.v_proj.register_forward_hook(lambda _m, _a, out: values.append(out[0])))
    with torch.no_grad():
        out = eager(input_ids=ids, output_attentions=True, use_cache=False)
    for handle in handles:
        handle.remove()
    h = model.config.num_attention_heads
    per_head = [v.reshape(v.shape[0], h, -1).transpose(0, 1) for v in values]
    return paths, [a[0] for a in out.attentions], per_head


def test_a_looped_model_reads_each_layers_weights_from_the_module_that_ran_it():
    model = _looped_model()
    ids = torch.arange(3, 15)[None]
    backend = backend_for(model, tokenizer=sweep.Stub())
    paths, patterns, values = _eager_calls(model, ids)
    assert backend.n_layers == len(patterns) == len(paths) > len(set(paths)) == 2, "a loop over two modules"
    assert [name.split(" (pass")[0] for name in backend.layer_names] == paths

    weights = output_weights(backend)
    readout = run_value_pass(backend, weights, ids, ids.shape[-1] - 1)
    circuits = circuit_weights(backend)
    assert weights.n_layers == circuits.n_layers == backend.n_layers
    h = model.config.num_attention_heads
    for layer, path in enumerate(paths):
        o_proj = model.get_submodule(path).o_proj.weight  # [d_model, h * d_head]
        w_o = torch.stack([block.T for block in o_proj.detach().float().chunk(h, dim=1)])  # [h, d_head, d_model]
        torch.testing.assert_close(weights.w_o(layer), w_o)
        torch.testing.assert_close(circuits.layer(layer).w_o, w_o)
        moved = torch.einsum("hnd,hde->hne", values[layer].float(), w_o)  # what each head moves from each source
        expected = naive_weighted_norms(patterns[layer].float(), moved)
        got = value_weighted(patterns[layer].float(), value_norms(readout.values[layer], weights.w_o(layer)))
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(weights.w_o(0), weights.w_o(paths.index(paths[-1]))), "two modules, two W_O"


def test_the_widget_is_told_each_layers_module_and_pass(tokenizer):
    from attn_widget import AttentionExplorer

    model = _looped_model()
    paths, _, _ = _eager_calls(model, torch.arange(3, 15)[None])
    explorer = AttentionExplorer(model, tokenizer=tokenizer, prompt="the cat sat on the mat")
    names = explorer.layer_names
    assert len(names) == explorer.n_layers == len(paths)
    passes: dict[str, int] = {}
    for name, path in zip(names, paths, strict=True):
        passes[path] = passes.get(path, 0) + 1
        assert name == f"{path} (pass {passes[path]})", names
    assert "layer_names" in explorer.get_state()  # synced: the front end labels layers with them
