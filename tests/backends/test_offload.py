"""A model spread over devices with accelerate's device_map (here: CPU and disk offload) runs
each layer where it lives, and the explorer shows the same attention as the model in one piece."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attn_widget import AttentionExplorer
from references import eager_weights, tiny_model

PROMPT = "When mary and john went to the store mary gave a drink to john"


def test_an_offloaded_model_gives_the_same_attention(tokenizer, tmp_path):
    pytest.importorskip("accelerate")
    from transformers import AutoModelForCausalLM

    model = tiny_model("llama", len(tokenizer))
    model.save_pretrained(tmp_path / "model")
    device_map = {
        "model.embed_tokens": "cpu",
        "model.rotary_emb": "cpu",
        "model.layers.0": "cpu",
        "model.layers.1": "disk",
        "model.layers.2": "disk",
        "model.norm": "cpu",
        "lm_head": "cpu",
    }
    offloaded = AutoModelForCausalLM.from_pretrained(
        tmp_path / "model", device_map=device_map, offload_folder=tmp_path / "offload"
    )
    assert getattr(offloaded, "hf_device_map", {}).get("model.layers.2") == "disk"
    explorer = AttentionExplorer(offloaded, tokenizer=tokenizer, prompt=PROMPT)
    ids = torch.tensor([[tokenizer.bos_token_id, *tokenizer(PROMPT)["input_ids"]]])
    assert len(explorer.tokens) == ids.shape[1]
    reference = eager_weights(model, ids)
    for layer, weights in enumerate(reference):
        for head in range(weights.shape[1]):
            np.testing.assert_allclose(explorer.pattern(layer, head), weights[0, head].numpy(), atol=1e-5)
    assert np.isfinite(explorer.scores["induction"]).all()
