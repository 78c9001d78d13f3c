"""Every kind of model a researcher has, behind one protocol: the same explorer checks on each.

Also run by `make test-tl3` in an environment with TransformerLens 3.x; what the installed
TransformerLens lacks (TransformerBridge under 3.x, HookedTransformer under 4.x) is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from attn_widget import AttentionExplorer
from attn_widget.backends import backend_for
from attn_widget.contract import PROMPT_METRICS as METRICS
from attn_widget.errors import ModelError, PromptError, SelectionError
from references import hf_config, hf_model, precomputed_from_hf, reference_attention

PROMPT = "When mary and john went to the store mary gave a drink to john"
BOS = "<|endoftext|>"


# ---- tiny models of every kind (random weights, built from configs) ------------------


@pytest.fixture(scope="module")
def hf_gpt2(tokenizer):
    return hf_model("gpt2", tokenizer)


@pytest.fixture(scope="module")
def hf_llama(tokenizer):
    return hf_model("llama", tokenizer)


@pytest.fixture(scope="module")
def hf_neox(tokenizer):
    return hf_model("neox", tokenizer)


@pytest.fixture(scope="module")
def hooked_transformer(tokenizer):
    try:
        from transformer_lens import HookedTransformer, HookedTransformerConfig
    except ImportError as err:
        pytest.skip(f"this TransformerLens has no HookedTransformer ({err})")
    cfg = HookedTransformerConfig(
        n_layers=2, d_model=32, d_head=8, n_heads=4, n_ctx=64, d_vocab=len(tokenizer), attn_only=True, act_fn="gelu",
        seed=0,
    )  # fmt: skip
    return HookedTransformer(cfg, tokenizer=tokenizer).eval()


# ---- one explorer per kind ------------------------------------------------------------


@dataclass
class Case:
    n_layers: int
    n_heads: int
    runs_model: bool = True


CASES = {
    "tl4_bridge": Case(3, 4),
    "tl_bridge_of_hf_gpt2": Case(2, 4),
    "hooked_transformer": Case(2, 4),
    "hf_gpt2": Case(2, 4),
    "hf_llama_gqa": Case(2, 4),
    "hf_gpt_neox": Case(2, 4),
    "precomputed_array": Case(2, 4, runs_model=False),
    "precomputed_tensor": Case(2, 4, runs_model=False),
    "activation_cache": Case(2, 4, runs_model=False),
}
TL_FIXTURES = {
    "tl4_bridge": "bridge",
    "tl_bridge_of_hf_gpt2": "gpt2_bridge",
    "hooked_transformer": "hooked_transformer",
}
HF_FIXTURES = {"hf_gpt2": "hf_gpt2", "hf_llama_gqa": "hf_llama", "hf_gpt_neox": "hf_neox"}


def make_explorer(kind: str, request: pytest.FixtureRequest) -> AttentionExplorer:
    fixture = request.getfixturevalue
    if kind in TL_FIXTURES:
        return AttentionExplorer(fixture(TL_FIXTURES[kind]), prompt=PROMPT)
    if kind in HF_FIXTURES:
        return AttentionExplorer(fixture(HF_FIXTURES[kind]), PROMPT, tokenizer=fixture("tokenizer"))
    if kind == "activation_cache":
        return cache_explorer(fixture("gpt2_bridge"))
    return precomputed_from_hf(fixture("hf_gpt2"), fixture("tokenizer"), numpy=kind == "precomputed_array")


def cache_explorer(model) -> AttentionExplorer:
    _, cache = model.run_with_cache(PROMPT, names_filter=lambda name: name.endswith("hook_pattern"))
    return AttentionExplorer(cache, tokens=[str(t) for t in model.to_str_tokens(PROMPT)])


@pytest.fixture(scope="module", params=list(CASES))
def case(request) -> tuple[Case, AttentionExplorer]:
    """One explorer per kind, shared by the checks below (each leaves the prompt as it found it)."""
    try:
        explorer = make_explorer(request.param, request)
    except ImportError as err:  # the installed TransformerLens lacks this kind (TransformerBridge under 3.x)
        pytest.skip(f"not in this TransformerLens: {err}")
    explorer.sent = []
    explorer.send = lambda content, buffers=None: explorer.sent.append((content, buffers))
    return CASES[request.param], explorer


def test_tokens_start_with_bos_and_spell_the_prompt(case):
    _, explorer = case
    assert explorer.tokens[0] == BOS
    assert "".join(explorer.tokens[1:]) == PROMPT


def test_scores_have_one_finite_value_per_head(case):
    spec, explorer = case
    assert (explorer.n_layers, explorer.n_heads) == (spec.n_layers, spec.n_heads)
    assert set(explorer.scores) == set(METRICS) | {"sink_share", "same_token", "successor"}  # + detectors, sinks
    for values in explorer.scores.values():
        assert values.shape == (spec.n_layers, spec.n_heads) and np.isfinite(values).all()
    assert ("repeated_tokens" in explorer.score_table) == spec.runs_model
    assert explorer.metric in explorer.score_table
    side = explorer.thumbnail_side
    assert len(explorer.thumbnails) == spec.n_layers * spec.n_heads * side * side


def test_every_pattern_is_causal_with_rows_summing_to_one(case):
    spec, explorer = case
    n = len(explorer.tokens)
    for layer in range(spec.n_layers):
        for head in range(spec.n_heads):
            pattern = explorer.pattern(layer, head)
            assert pattern.shape == (n, n) and pattern.dtype == np.float32
            np.testing.assert_allclose(pattern.sum(-1), 1.0, atol=5e-3)
            assert np.allclose(np.triu(pattern, 1), 0)


def test_layer_and_head_selection(case):
    spec, explorer = case
    explorer.layer, explorer.head = spec.n_layers - 1, spec.n_heads - 1
    assert (explorer.layer, explorer.head) == (spec.n_layers - 1, spec.n_heads - 1)
    with pytest.raises(SelectionError, match=f"layer {spec.n_layers} is out of range"):
        explorer.layer = spec.n_layers
    with pytest.raises(SelectionError, match=f"head {spec.n_heads} is out of range"):
        explorer.head = spec.n_heads


def test_front_end_pattern_request_gets_the_head(case):
    _, explorer = case
    explorer._on_front_end_message(explorer, {"type": "pattern", "id": 1, "layer": 0, "head": 0}, [])
    reply, buffers = explorer.sent[-1]
    n = len(explorer.tokens)
    assert reply["type"] == "pattern" and reply["id"] == 1 and reply["n"] == n and reply["dtype"] == "float16"
    decoded = np.frombuffer(buffers[0], dtype="<f2").reshape(n, n)
    np.testing.assert_allclose(decoded, explorer.pattern(0, 0), atol=1e-3)


def test_the_prompt_box_is_read_only_exactly_for_precomputed_attention(case):
    spec, explorer = case
    assert explorer.read_only_prompt == (not spec.runs_model)
    if spec.runs_model:
        explorer.prompt = "the cat sat"
        assert "".join(explorer.tokens[1:]) == "the cat sat"
        explorer.prompt = PROMPT
        return
    tokens = explorer.tokens
    with pytest.raises(PromptError, match="precomputed attention"):
        explorer.prompt = "the cat sat"
    explorer.set_state({"prompt": "the cat sat"})  # from the front end: shown in the widget
    assert "precomputed attention" in explorer.error and explorer.tokens == tokens
    with pytest.raises(ModelError, match="needs a model"):
        explorer.run_repeated_tokens_test()
    assert explorer.summary().rows  # falls back to the prompt's induction scores


# ---- the same weights give the same scores, whatever wraps them -----------------------


def _assert_same_scores(a: AttentionExplorer, b: AttentionExplorer) -> None:
    assert a.tokens == b.tokens
    for metric in METRICS:
        np.testing.assert_allclose(a.scores[metric], b.scores[metric], atol=1e-4, err_msg=metric)


def test_hf_gpt2_and_the_bridge_built_from_it_agree(tokenizer, hf_gpt2):
    from transformer_lens.model_bridge.sources._bridge_builder import build_bridge_from_module

    twin = hf_model("gpt2", tokenizer, state=hf_gpt2.state_dict()).eval()  # the builder changes its model
    bridge = build_bridge_from_module(twin, "GPT2LMHeadModel", hf_config=twin.config, tokenizer=tokenizer)
    direct = AttentionExplorer(hf_gpt2, PROMPT, tokenizer=tokenizer)
    wrapped = AttentionExplorer(bridge, PROMPT)
    _assert_same_scores(direct, wrapped)
    np.testing.assert_allclose(direct.run_repeated_tokens_test(), wrapped.run_repeated_tokens_test(), atol=1e-4)
    np.testing.assert_allclose(direct.pattern(1, 3), wrapped.pattern(1, 3), atol=2e-3)


def test_precomputed_patterns_score_as_the_model_they_came_from(hf_gpt2, tokenizer):
    precomputed = precomputed_from_hf(hf_gpt2, tokenizer, numpy=True)
    _assert_same_scores(precomputed, AttentionExplorer(hf_gpt2, PROMPT, tokenizer=tokenizer))


def test_an_activation_cache_scores_as_its_model(gpt2_bridge):
    _assert_same_scores(cache_explorer(gpt2_bridge), AttentionExplorer(gpt2_bridge, prompt=PROMPT))


def test_a_cache_without_batch_dimension_works_too(gpt2_bridge):
    _, cache = gpt2_bridge.run_with_cache(PROMPT, names_filter=lambda name: name.endswith("hook_pattern"))
    unbatched = {name: pattern[0] for name, pattern in cache.items()}
    explorer = AttentionExplorer(unbatched, tokens=[str(t) for t in gpt2_bridge.to_str_tokens(PROMPT)])
    _assert_same_scores(explorer, cache_explorer(gpt2_bridge))


# ---- Hugging Face specifics -----------------------------------------------------------


def test_grouped_query_attention_shows_every_query_head(hf_llama, tokenizer):
    explorer = AttentionExplorer(hf_llama, PROMPT, tokenizer=tokenizer)
    ids, _ = backend_for(hf_llama, tokenizer=tokenizer).tokenize(PROMPT)
    reference = reference_attention(hf_llama, ids)
    assert reference.shape[1] == explorer.n_heads == 4  # query heads, not the 2 key/value heads
    for head in range(4):
        np.testing.assert_allclose(explorer.pattern(1, head), reference[1, head], atol=2e-3)
    assert not np.allclose(explorer.pattern(1, 0), explorer.pattern(1, 1), atol=1e-3)  # same kv head, own queries


def test_hf_models_go_back_to_their_attention_and_training_mode(tokenizer):
    model = hf_model("gpt2", tokenizer)
    assert model.config._attn_implementation == "sdpa" and model.training
    explorer = AttentionExplorer(model, PROMPT, tokenizer=tokenizer)
    explorer.pattern(1, 0)
    assert model.config._attn_implementation == "sdpa" and model.training


def test_hf_layers_are_handed_over_as_they_run(hf_gpt2, tokenizer):
    backend = backend_for(hf_gpt2, tokenizer=tokenizer)
    ids, _ = backend.tokenize(PROMPT)
    second_layer_ran: list[bool] = []
    seen: list[tuple[int, bool]] = []
    handle = hf_gpt2.transformer.h[1].register_forward_pre_hook(lambda *_: second_layer_ran.append(True))
    try:
        backend.run(ids, lambda layer, pattern: seen.append((layer, bool(second_layer_ran))))
        assert seen == [(0, False), (1, True)]  # layer 0 arrives before layer 1 even starts
        seen.clear(), second_layer_ran.clear()
        backend.run(ids, lambda layer, pattern: seen.append((layer, bool(second_layer_ran))), last_layer=0)
        assert seen == [(0, False)] and not second_layer_ran  # and the pass stops after the layer asked for
    finally:
        handle.remove()


def test_hf_model_needs_its_tokenizer(hf_gpt2):
    with pytest.raises(ModelError, match="needs its tokenizer"):
        AttentionExplorer(hf_gpt2, PROMPT)


def test_attention_that_cannot_switch_to_eager_says_how(tokenizer):
    from transformers import GPT2LMHeadModel

    class FusedOnly(GPT2LMHeadModel):
        _supports_attention_backend = False  # outside the attention interface: only eager shows weights

        @classmethod
        def _can_set_attn_implementation(cls) -> bool:
            return False

    model = FusedOnly(hf_config("gpt2", tokenizer))
    assert model.config._attn_implementation == "sdpa"
    with pytest.raises(ModelError, match='attn_implementation="eager"'):
        AttentionExplorer(model, PROMPT, tokenizer=tokenizer)


def test_attention_outside_the_interface_falls_back_to_eager_and_says_so(tokenizer):
    model = hf_model("gpt2", tokenizer)
    model._supports_attention_backend = False
    with pytest.warns(UserWarning, match="on eager attention for each prompt"):
        backend = backend_for(model, tokenizer=tokenizer)
    ids, _ = backend.tokenize(PROMPT)
    got: list[torch.Tensor] = []
    backend.run(ids, lambda layer, pattern: got.append(pattern[0]))
    np.testing.assert_allclose(torch.stack(got).numpy(), reference_attention(model, ids), atol=1e-5)
    assert model.config._attn_implementation == "sdpa"


def test_attention_that_returns_no_weights_says_how(tokenizer):
    model = hf_model("gpt2", tokenizer)
    model._supports_attention_backend = False  # the eager fallback, whose weights are read from the module
    attention = model.transformer.h[0].attn
    forward = attention.forward
    attention.forward = lambda *args, **kwargs: (forward(*args, **kwargs)[0], None)  # a fused kernel
    with pytest.raises(ModelError, match=r"returned attention weights for only 1 of the 2 attention layers"):
        AttentionExplorer(model, PROMPT, tokenizer=tokenizer)
    assert model.config._attn_implementation == "sdpa"


# ---- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize("thing", [42, b"not a model", {"weights": 1}])
def test_unsupported_objects_are_named(thing):
    with pytest.raises(ModelError, match="does not know how to read attention"):
        AttentionExplorer(thing)


@pytest.mark.parametrize(
    ("patterns", "n_tokens", "message"),
    [
        (np.full((2, 4, 5), 0.2, np.float32), 5, r"\[layers, heads, query, key\]"),
        (np.full((2, 4, 5, 6), 0.2, np.float32), 5, "square"),
        (np.full((2, 4, 5, 5), 0.2, np.float32), 4, "5 positions but 4 tokens"),
        (np.ones((2, 4, 5, 5), np.int64), 5, "floating point"),
        ({"blocks.0.attn.hook_pattern": torch.rand(3, 4, 5, 5)}, 5, "batch of 3"),
        ({"blocks.1.attn.hook_pattern": torch.rand(4, 5, 5)}, 5, "every layer from 0"),
    ],
)
def test_precomputed_attention_of_the_wrong_shape_is_refused(patterns, n_tokens, message):
    with pytest.raises(ModelError, match=message):
        AttentionExplorer(patterns, tokens=["a"] * n_tokens)


def test_precomputed_attention_needs_its_tokens_and_only_them():
    patterns = np.full((1, 2, 3, 3), 1 / 3, np.float32)
    with pytest.raises(ModelError, match="needs the tokens"):
        AttentionExplorer(patterns)
    with pytest.raises(ModelError, match="tokenizer= is only for Hugging Face models"):
        AttentionExplorer(patterns, tokens=["a", "b", "c"], tokenizer=object())
    with pytest.raises(ModelError, match="list of the token strings"):
        AttentionExplorer(patterns, tokens="abc")


def test_tokens_go_with_precomputed_attention_only(hf_gpt2, tokenizer):
    with pytest.raises(ModelError, match="tokens= is only for precomputed attention"):
        AttentionExplorer(hf_gpt2, PROMPT, tokenizer=tokenizer, tokens=["a"])


@pytest.mark.parametrize("kind", list(TL_FIXTURES))
def test_transformer_lens_heads_equal_the_models_own_patterns(kind, request):
    """Recomputed from the q/k hooks (or an unwrapped bridge): within 1e-5 of hook_pattern."""
    try:
        model = request.getfixturevalue(TL_FIXTURES[kind])
    except ImportError as err:
        pytest.skip(f"not in this TransformerLens: {err}")
    explorer = AttentionExplorer(model, prompt=PROMPT)
    _, cache = model.run_with_cache(PROMPT, names_filter=lambda name: name.endswith("hook_pattern"))
    for layer in range(model.cfg.n_layers):
        expected = cache[f"blocks.{layer}.attn.hook_pattern"][0].numpy()
        for head in range(model.cfg.n_heads):
            np.testing.assert_allclose(explorer.pattern(layer, head), expected[head], atol=1e-5)


def test_a_bridge_names_its_layers_by_pass_only_when_the_model_loops(gpt2_bridge, monkeypatch):
    """A bridge over a Hugging Face model runs an unwrapped copy; the copy's names reach the explorer
    where a module runs more than once, and block indices do otherwise."""
    from attn_widget.backends import transformer_lens

    assert backend_for(gpt2_bridge).layer_names == []
    n = gpt2_bridge.cfg.n_layers
    real = transformer_lens.unwrapped_hf_backend

    def looped(model, reference):
        unwrapped = real(model, reference)
        assert unwrapped is not None  # GPT-2 unwraps
        unwrapped.layer_names = [f"transformer.h.0.attn (pass {i + 1})" for i in range(n)]
        return unwrapped

    monkeypatch.setattr(transformer_lens, "unwrapped_hf_backend", looped)
    backend = backend_for(gpt2_bridge)
    assert backend.layer_names == [f"transformer.h.0.attn (pass {i + 1})" for i in range(n)]
    assert backend.layer_modules is None  # the bridge's weights are its blocks', in order
