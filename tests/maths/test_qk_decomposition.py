"""The query-key decomposition sums to the model's own score and each component equals a naive
computation through hooks, on GPT-2-, Llama- (rotary, grouped keys) and Gemma-2-shaped random
models and on TransformerLens bridges; on the bundled demo model it finds the induction circuit."""

from __future__ import annotations

import copy

import pytest
import torch
from tests.references import tiny_model

from attn_widget.analysis.residual import decompose, residual_components
from attn_widget.backends import backend_for
from attn_widget.backends.huggingface import HuggingFaceBackend
from attn_widget.backends.weights import CircuitWeights
from attn_widget.errors import ModelError

CELLS = [(1, 0, 9, 3), (2, 3, 11, 11), (2, 1, 7, 0)]


def eager_scores(model, tokens: torch.Tensor, layer: int) -> torch.Tensor:
    """`[heads, q, k]` pre-softmax scores of an eager copy, recorded at its attention function."""
    import transformers.models.gemma2.modeling_gemma2 as g2
    import transformers.models.gpt2.modeling_gpt2 as gp
    import transformers.models.llama.modeling_llama as ll

    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    kept: dict[int, torch.Tensor] = {}
    attentions = [m for n, m in eager.named_modules() if n.endswith((".attn", ".self_attn"))]
    for index, module in enumerate(attentions):
        module.layer_index_for_test = index

    def wrap(original):
        def forward(module, query, key, value, attention_mask, scaling=None, **kwargs):
            groups = query.shape[1] // key.shape[1]
            k = key.repeat_interleave(groups, dim=1)
            s = scaling if scaling is not None else query.shape[-1] ** -0.5
            kept[module.layer_index_for_test] = (query @ k.transpose(-1, -2))[0] * s
            return original(module, query, key, value, attention_mask, scaling=scaling, **kwargs)

        return forward

    patched = []
    for mod in (g2, gp, ll):
        patched.append((mod, mod.eager_attention_forward))
        mod.eager_attention_forward = wrap(mod.eager_attention_forward)
    try:
        with torch.no_grad():
            eager(input_ids=tokens, use_cache=False)
    finally:
        for mod, original in patched:
            mod.eager_attention_forward = original
    return kept[layer].double()


@pytest.mark.parametrize("kind", ["gpt2", "llama", "gemma2"])
def test_sums_to_the_eager_score(kind, tokenizer):
    model = tiny_model(kind, len(tokenizer))
    backend = HuggingFaceBackend(model, tokenizer)
    tokens = torch.randint(1, len(tokenizer), (1, 14), generator=torch.Generator().manual_seed(1))
    for layer, head, query, key in CELLS:
        result = decompose(backend, tokens, layer, head, query, key)
        reference = float(eager_scores(model, tokens, layer)[head, query, key])
        assert abs(reference) > 1e-3
        assert result.contributions.sum().item() == pytest.approx(reference, abs=1e-4)
        assert result.score == pytest.approx(reference, abs=1e-4)
        n_heads = model.config.num_attention_heads
        assert [lab for lab in result.labels if lab.startswith("L0H")] == [f"L0H{h}" for h in range(n_heads)]
        assert result.contributions.shape[0] == len(result.labels)
        # no component dominates by construction: several parts of the score are non-zero
        assert (result.contributions.abs() > 1e-6).sum() > 10


def test_components_equal_a_naive_computation_through_hooks(tokenizer):
    """GPT-2: embeddings from wte/wpe, each head from its z and its rows of c_proj, MLPs from their
    own output; the components add up to the stream entering the layer."""
    model = tiny_model("gpt2", len(tokenizer))
    backend = HuggingFaceBackend(model, tokenizer)
    tokens = torch.randint(1, len(tokenizer), (1, 12), generator=torch.Generator().manual_seed(2))
    positions = [10, 4]
    parts = residual_components(backend, tokens, 2, positions)
    seen: dict[str, torch.Tensor] = {}
    handles = []
    for i, block in enumerate(model.transformer.h):
        handles.append(block.attn.c_proj.register_forward_pre_hook(lambda m, a, i=i: seen.__setitem__(f"z{i}", a[0])))
        handles.append(block.mlp.register_forward_hook(lambda m, a, o, i=i: seen.__setitem__(f"mlp{i}", o)))
    with torch.no_grad():
        out = model(input_ids=tokens, output_hidden_states=True)
    for h in handles:
        h.remove()
    p = torch.tensor(positions)
    by_label = dict(zip(parts.labels, parts.components, strict=True))
    wte, wpe = model.transformer.wte.weight, model.transformer.wpe.weight
    torch.testing.assert_close(by_label["embed"], wte[tokens[0, p]].double(), atol=1e-5, rtol=0)
    torch.testing.assert_close(by_label["pos_embed"], wpe[p].double(), atol=1e-5, rtol=0)
    for i in range(2):
        z = seen[f"z{i}"][0, p].reshape(2, 4, 8).double()
        w_o = model.transformer.h[i].attn.c_proj.weight.double().reshape(4, 8, 32)
        for h in range(4):
            torch.testing.assert_close(by_label[f"L{i}H{h}"], z[:, h] @ w_o[h], atol=1e-5, rtol=0)
        torch.testing.assert_close(by_label[f"L{i} attn bias"][0], model.transformer.h[i].attn.c_proj.bias.double())
        torch.testing.assert_close(by_label[f"MLP{i}"], seen[f"mlp{i}"][0, p].double(), atol=1e-5, rtol=0)
    torch.testing.assert_close(parts.components.sum(0), out.hidden_states[2][0, p].double(), atol=1e-5, rtol=0)


def test_each_pair_is_its_own_score(tokenizer):
    """One pair's entry is the score of the query made of that component alone with the key made of
    the other alone (norm scale frozen, biases left out), computed directly on the Llama model."""
    model = tiny_model("llama", len(tokenizer))
    backend = HuggingFaceBackend(model, tokenizer)
    tokens = torch.randint(1, len(tokenizer), (1, 12), generator=torch.Generator().manual_seed(3))
    layer, head, q, k = 1, 3, 9, 5
    result = decompose(backend, tokens, layer, head, q, k)
    parts = residual_components(backend, tokens, layer, [q, k])
    attn = model.model.layers[layer].self_attn
    norm = model.model.layers[layer].input_layernorm
    torch.set_grad_enabled(False)
    cos, sin = model.model.rotary_emb(torch.zeros(1, 12, 32), torch.arange(12)[None])

    def rope(x, pos):
        half = x.shape[-1] // 2
        turned = torch.cat([-x[half:], x[:half]])
        return x * cos[0, pos].double() + turned * sin[0, pos].double()

    def one(component, pos_index, proj, pos, heads_per):
        resid = parts.residual[pos_index]
        sigma = (resid.pow(2).mean() + norm.variance_epsilon).sqrt()
        x = component / sigma * norm.weight.double()
        w = proj.weight.double().reshape(-1, 8, 32)[head // heads_per]
        return rope(w @ x, pos)

    assert parts.labels == ["embed", "L0H0", "L0H1", "L0H2", "L0H3", "MLP0"]
    for a in (1, 4, 5):  # a head of layer 0, another, MLP0
        for b in (0, 2, 5):
            qa = one(parts.components[a, 0], 0, attn.q_proj, q, 1)
            kb = one(parts.components[b, 1], 1, attn.k_proj, k, 2)
            assert result.contributions[a, b].item() == pytest.approx(float(qa @ kb) * attn.scaling, abs=1e-8)
    torch.set_grad_enabled(True)


def test_transformer_lens_bridges(bridge, gpt2_bridge, full_bridge):
    """Native bridges (attention only, and with MLPs) and a bridge over Hugging Face GPT-2: the sum is
    q . k / sqrt(d_head) from the bridge's own `hook_q` and `hook_k`."""
    tokens = torch.randint(1, 300, (1, 13), generator=torch.Generator().manual_seed(4))
    for model in (bridge, full_bridge, gpt2_bridge):
        backend = backend_for(model)
        layer = model.cfg.n_layers - 1
        kept: dict[str, torch.Tensor] = {}
        hooks = [
            (f"blocks.{layer}.attn.hook_{x}", lambda t, hook, x=x, kept=kept: kept.setdefault(x, t.detach()))
            for x in "qk"
        ]
        with torch.no_grad():
            model.run_with_hooks(tokens, fwd_hooks=hooks)
        for head, q, k in [(0, 12, 2), (3, 8, 8)]:
            result = decompose(backend, tokens, layer, head, q, k)
            reference = float(kept["q"][0, q, head] @ kept["k"][0, k, head]) / model.cfg.d_head**0.5
            assert abs(reference) > 1e-3
            assert result.contributions.sum().item() == pytest.approx(reference, abs=1e-4)


def test_refuses_a_model_it_cannot_read(tokenizer):
    model = tiny_model("qwen3", len(tokenizer))
    with pytest.raises(ModelError, match="q_norm"):
        CircuitWeights(model)
    with pytest.raises(ModelError, match="neither"):
        CircuitWeights(object())


def test_induction_head_reads_the_previous_token_head():
    """The demo model on a repeated random sequence: at a second-copy position the top induction
    head's strongest key-side component is a head of layer 0 that attends to the previous token,
    and composition ranks that pair first among the induction head's K-compositions."""
    from attn_widget.analysis.repeated_tokens import repeated_tokens_scores
    from attn_widget.backends import backend_for
    from attn_widget.maths.composition import composition_scores
    from attn_widget.models import load_demo_model

    model = load_demo_model()
    backend = backend_for(model)
    induction = torch.as_tensor(repeated_tokens_scores(backend, seq_len=20, batch=4, seed=0))
    layer, head = divmod(int(induction[1:].argmax()) + backend.n_heads, backend.n_heads)
    half = 20
    g = torch.Generator().manual_seed(5)
    body = torch.randint(100, backend.vocab_size, (half,), generator=g)
    bos = backend.bos_token_id if backend.bos_token_id is not None else 0
    tokens = torch.cat([torch.tensor([bos]), body, body])[None]
    query = 1 + half + 7  # second copy: attends to the token after the first copy of its token
    key = query - half + 1
    result = decompose(backend, tokens, layer, head, query, key)
    heads = [i for i, kind in enumerate(result.kinds) if kind == "head"]
    top = max(heads, key=lambda i: result.key_side[i].item())
    prev_head = int(result.labels[top].split("H")[1])
    # that head of layer 0 is the previous-token head: it attends most to the position before
    pattern = {}
    with torch.no_grad():
        model.run_with_hooks(
            tokens, fwd_hooks=[("blocks.0.attn.hook_pattern", lambda t, hook: pattern.setdefault("p", t))]
        )
    prev_scores = torch.stack([pattern["p"][0, h].diagonal(-1).mean() for h in range(backend.n_heads)])
    assert prev_head == int(prev_scores.argmax())
    weights = CircuitWeights(model)
    k_scores = composition_scores([weights.layer(i) for i in range(weights.n_layers)], "k")[0, :, layer, head]
    assert int(torch.as_tensor(k_scores).argmax()) == prev_head
