"""The objects researchers hold around a Hugging Face model: each shows the attention of the model
it wraps, equal to that model's own eager weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attn_widget import AttentionExplorer
from attn_widget.backends import backend_for
from references import hf_model, reference_attention

PROMPT = "When mary and john went to the store mary gave a drink to john"


def _ids(tokenizer) -> torch.Tensor:
    return torch.tensor([[tokenizer.bos_token_id, *tokenizer(PROMPT)["input_ids"]]])


def _patterns(held, tokenizer=None) -> np.ndarray:
    backend = backend_for(held, tokenizer=tokenizer)
    got: dict[int, torch.Tensor] = {}
    backend.run(_ids(backend.tokenizer), lambda layer, pattern: got.__setitem__(layer, pattern[0]))
    assert backend.captures_queries, "a wrapped llama runs its own kernel, captured"
    return torch.stack([got[i] for i in sorted(got)]).float().numpy()


@pytest.fixture
def llama(tokenizer):
    return hf_model("llama", tokenizer).eval()


def test_a_compiled_model_shows_the_attention_of_the_model_it_compiles(llama, tokenizer):
    compiled = torch.compile(llama)
    np.testing.assert_allclose(_patterns(compiled, tokenizer), reference_attention(llama, _ids(tokenizer)), atol=1e-5)


def test_an_nnsight_language_model_brings_its_model_and_tokenizer(llama, tokenizer):
    from nnsight import LanguageModel

    wrapped = LanguageModel(llama, tokenizer=tokenizer)
    np.testing.assert_allclose(_patterns(wrapped), reference_attention(llama, _ids(tokenizer)), atol=1e-5)
    explorer = AttentionExplorer(wrapped, PROMPT)  # no tokenizer= needed: the wrapper has one
    np.testing.assert_allclose(explorer.pattern(1, 2), reference_attention(llama, _ids(tokenizer))[1, 2], atol=2e-3)


def test_a_peft_model_shows_attention_with_its_adapters(llama, tokenizer):
    from peft import LoraConfig, get_peft_model

    plain = reference_attention(llama, _ids(tokenizer))
    # random B matrices, so the adapters change the attention (peft starts them at zero)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj"], init_lora_weights=False)
    adapted = get_peft_model(llama, config).eval()
    expected = reference_attention(adapted.get_base_model(), _ids(tokenizer))
    assert np.abs(expected - plain).max() > 1e-2, "the adapters must change the attention for this test to mean much"
    np.testing.assert_allclose(_patterns(adapted, tokenizer), expected, atol=1e-5)


def test_a_bridge_over_a_grouped_query_model_shows_its_attention(tokenizer):
    from transformer_lens.model_bridge.sources._bridge_builder import build_bridge_from_module

    reference_model = hf_model("llama", tokenizer).eval()
    expected = reference_attention(reference_model, _ids(tokenizer))
    twin = hf_model("llama", tokenizer, state=reference_model.state_dict()).eval()  # the builder changes its model
    bridge = build_bridge_from_module(twin, "LlamaForCausalLM", hf_config=twin.config, tokenizer=tokenizer)
    explorer = AttentionExplorer(bridge, PROMPT)
    for layer in range(2):
        np.testing.assert_allclose(explorer.pattern(layer, 3), expected[layer, 3], atol=2e-3)
