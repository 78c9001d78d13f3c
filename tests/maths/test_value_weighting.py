"""Value-weighted attention and per-source logit attribution against naive references: plain loops
over heads and sources that form every `[d_model]` vector, on tiny random TransformerLens and
Hugging Face models (grouped-query attention included), and TransformerLens's own direct logit
attribution (`stack_head_results` + `apply_ln_to_stack`)."""

from __future__ import annotations

import pytest
import torch

from attn_widget.analysis.value_pass import run_value_pass
from attn_widget.backends import backend_for
from attn_widget.backends.weights import OutputWeights, output_weights
from attn_widget.errors import ModelError
from attn_widget.maths.attribution import logit_direction, source_attribution
from attn_widget.maths.value_weighting import row_shares, value_norms, value_weighted
from references import hf_model, naive_attribution, naive_moved, naive_weighted_norms, reference_attention

PROMPT = "When mary and john went to the store mary gave a drink to john"
ANSWER, COUNTERFACTUAL = 7, 11  # token ids; any two distinct ones will do


# ---- naive references: one [d_model] vector per (head, source), formed in full ------------------


# ---- TransformerLens --------------------------------------------------------------------------


def _tl_layer_input_and_pattern(model, tokens, layer):
    _, cache = model.run_with_cache(tokens)
    x = cache[f"blocks.{layer}.ln1.hook_out"][0]
    return x, cache[f"blocks.{layer}.attn.hook_pattern"][0], cache


@pytest.mark.parametrize("name", ["bridge", "gpt2_bridge"])
def test_value_weighted_matches_naive_on_transformer_lens(name, request):
    model = request.getfixturevalue(name)
    tokens = model.to_tokens(PROMPT)
    backend = backend_for(model)
    weights = output_weights(backend)
    readout = run_value_pass(backend, weights, tokens, tokens.shape[-1] - 1)
    for layer in range(model.cfg.n_layers):
        x, pattern, _ = _tl_layer_input_and_pattern(model, tokens, layer)
        attn = model.blocks[layer].attn
        moved = naive_moved(x, attn.W_V, attn.b_V, attn.W_O)
        expected = naive_weighted_norms(pattern, moved)
        got = value_weighted(pattern, value_norms(readout.values[layer], weights.w_o(layer)))
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
        # the views' rows: shares of what moves into each position, summing to one
        shares = row_shares(got)
        torch.testing.assert_close(shares, expected / expected.sum(-1, keepdim=True), rtol=1e-4, atol=1e-6)
        assert not torch.allclose(shares, pattern.float(), atol=1e-2), "value weighting should change the pattern"


def test_logit_attribution_sums_to_transformer_lens_dla(full_bridge):
    model = full_bridge
    tokens = model.to_tokens(PROMPT)
    backend = backend_for(model)
    weights = output_weights(backend)
    readout = run_value_pass(backend, weights, tokens, tokens.shape[-1] - 1)
    norm = weights.final_norm()
    assert norm.kind == "layernorm" and norm.weight is not None
    direction = logit_direction(weights.w_u(), ANSWER, COUNTERFACTUAL, norm)

    _, cache = model.run_with_cache(tokens)
    stack = cache.stack_head_results(layer=-1, pos_slice=-1, apply_ln=True)  # [layers*heads, 1, d_model]
    # TransformerLens leaves the final norm's gain to W_U (folded); this model keeps it in ln_final.
    gain = model.ln_final._original_component.weight
    tl_dla = (stack[:, 0] @ (gain * (model.W_U[:, ANSWER] - model.W_U[:, COUNTERFACTUAL]))).reshape(
        model.cfg.n_layers, model.cfg.n_heads
    )
    i = tokens.shape[-1] - 1
    sigma = cache["ln_final.hook_scale"][0, i, 0]
    torch.testing.assert_close(readout.scale[i], sigma)
    for layer in range(model.cfg.n_layers):
        x, pattern, _ = _tl_layer_input_and_pattern(model, tokens, layer)
        got = source_attribution(pattern[:, i], readout.values[layer], weights.w_o(layer), direction, readout.scale[i])
        torch.testing.assert_close(got.sum(-1), tl_dla[layer], rtol=1e-4, atol=1e-5)
        attn = model.blocks[layer].attn
        moved = naive_moved(x, attn.W_V, attn.b_V, attn.W_O)
        plain = gain * (model.W_U[:, ANSWER] - model.W_U[:, COUNTERFACTUAL])
        expected = naive_attribution(pattern[:, i], moved, plain, sigma, center=True)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
        assert got.abs().max() > 1e-3, "a test on all-zero attributions could not fail"


# ---- Hugging Face (GPT-2 Conv1D, Llama with grouped-query attention) ----------------------------


def _hf_layer_inputs(model, tokens):
    """Each attention module's input (the normed residual), and the final norm's input."""
    from attn_widget.backends.huggingface import attention_modules
    from attn_widget.backends.weights import final_norm_module

    inputs: dict[int, torch.Tensor] = {}
    final: list[torch.Tensor] = []
    handles = []
    for layer, (module, _) in enumerate(attention_modules(model)):

        def keep(_m, args, kwargs, layer=layer):
            inputs[layer] = (args[0] if args else kwargs["hidden_states"])[0]

        handles.append(module.register_forward_pre_hook(keep, with_kwargs=True))
    handles.append(final_norm_module(model).register_forward_pre_hook(lambda _m, args: final.append(args[0][0])))
    with torch.no_grad():
        model.eval()(input_ids=tokens)
    for handle in handles:
        handle.remove()
    return inputs, final[0]


def _hf_head_matrices(model, kind, layer):
    """W_V, b_V, W_O per query head `[h, d_model, d_head]`, `[h, d_head]`, `[h, d_head, d_model]`, by hand."""
    cfg = model.config
    h = cfg.num_attention_heads
    d = cfg.hidden_size // h
    if kind == "gpt2":
        attn = model.transformer.h[layer].attn
        w, b = attn.c_attn.weight, attn.c_attn.bias  # Conv1D: x @ w + b, [q | k | v]
        w_v = torch.stack([w[:, 2 * cfg.hidden_size + k * d : 2 * cfg.hidden_size + (k + 1) * d] for k in range(h)])
        b_v = torch.stack([b[2 * cfg.hidden_size + k * d : 2 * cfg.hidden_size + (k + 1) * d] for k in range(h)])
        w_o = torch.stack([attn.c_proj.weight[k * d : (k + 1) * d] for k in range(h)])
        return w_v, b_v, w_o
    attn = model.model.layers[layer].self_attn
    group = h // cfg.num_key_value_heads
    w_v = torch.stack([attn.v_proj.weight[(k // group) * d : (k // group + 1) * d].T for k in range(h)])
    w_o = torch.stack([attn.o_proj.weight[:, k * d : (k + 1) * d].T for k in range(h)])
    return w_v, torch.zeros(h, d), w_o


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_value_weighting_and_attribution_match_naive_on_hugging_face(kind, tokenizer):
    model = hf_model(kind, tokenizer)
    tokens = torch.tensor([tokenizer(PROMPT)["input_ids"]])
    backend = backend_for(model, tokenizer=tokenizer)
    weights = output_weights(backend)
    readout = run_value_pass(backend, weights, tokens, tokens.shape[-1] - 1)
    patterns = torch.from_numpy(reference_attention(model, tokens))
    inputs, final = _hf_layer_inputs(model, tokens)
    norm = weights.final_norm()
    assert norm.kind == ("layernorm" if kind == "gpt2" else "rmsnorm")
    i = tokens.shape[-1] - 1
    x = final[i].float()
    sigma = (x.var(unbiased=False) + norm.eps).sqrt() if kind == "gpt2" else (x.pow(2).mean() + norm.eps).sqrt()
    torch.testing.assert_close(readout.scale[i], sigma)
    w_u = model.get_output_embeddings().weight.T
    gain = norm.weight if norm.weight is not None else torch.ones(w_u.shape[0])
    plain = gain * (w_u[:, ANSWER] - w_u[:, COUNTERFACTUAL])
    direction = logit_direction(weights.w_u(), ANSWER, COUNTERFACTUAL, norm)
    for layer in range(model.config.num_hidden_layers):
        w_v, b_v, w_o = _hf_head_matrices(model, kind, layer)
        with torch.no_grad():
            moved = naive_moved(inputs[layer], w_v, b_v, w_o)
        pattern = patterns[layer]
        got = value_weighted(pattern, value_norms(readout.values[layer], weights.w_o(layer)))
        torch.testing.assert_close(got, naive_weighted_norms(pattern, moved), rtol=1e-4, atol=1e-5)
        row = pattern[:, i]
        got_attr = source_attribution(row, readout.values[layer], weights.w_o(layer), direction, readout.scale[i])
        expected = naive_attribution(row, moved, plain.detach(), sigma, center=kind == "gpt2")
        torch.testing.assert_close(got_attr, expected, rtol=1e-4, atol=1e-5)
    if kind == "llama":
        assert readout.values[0].shape[0] == model.config.num_key_value_heads < model.config.num_attention_heads


def test_precomputed_attention_has_no_weights():
    backend = backend_for(torch.rand(2, 4, 5, 5).softmax(-1), tokens=list("abcde"))
    with pytest.raises(ModelError, match="precomputed attention has none"):
        output_weights(backend)


def test_model_without_unembedding_says_so(tokenizer):
    from transformers import GPT2Model

    base = GPT2Model(hf_model("gpt2", tokenizer).config)
    with pytest.raises(ModelError, match="no language-model head"):
        OutputWeights(base).w_u()
