"""Fixtures: tiny random models (see tiny_models.py)."""

from __future__ import annotations

import pytest
import torch

from tiny_models import make_tokenizer, native_model, random_prompt

__all__ = ["random_prompt"]

PROMPT = "When mary and john went to the store mary gave a drink to john"


def recording(widget):
    """The explorer with its custom messages kept in `widget.sent` instead of going to a front end."""
    widget.sent = []
    widget.send = lambda content, buffers=None: widget.sent.append((content, buffers))
    return widget


@pytest.fixture
def explorer(bridge):
    """The native bridge's explorer on PROMPT at layer 1, head 2, recording what it sends."""
    from attn_widget import AttentionExplorer

    return recording(AttentionExplorer(bridge, prompt=PROMPT, layer=1, head=2))


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    return make_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="session")
def bridge(tokenizer):
    """TransformerLens 4 native bridge: 3 layers x 4 heads, attention only."""
    return native_model(tokenizer)


@pytest.fixture(scope="session")
def gpt2_bridge(tokenizer):
    """A Hugging Face GPT-2 (random weights, from a config) wrapped as a TransformerBridge."""
    from transformer_lens.model_bridge.sources._bridge_builder import build_bridge_from_module
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_head=4, n_embd=32, n_positions=64, vocab_size=len(tokenizer))
    hf = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for block in hf.transformer.h:
            block.attn.c_attn.weight.mul_(20.0)  # sharpen its near-uniform random attention
    return build_bridge_from_module(hf, "GPT2LMHeadModel", hf_config=hf.config, tokenizer=tokenizer)


@pytest.fixture(scope="session")
def full_bridge(tokenizer):
    """A native bridge with MLPs and a final LayerNorm whose gain and bias are random (not all ones),
    for value weighting and logit attribution."""
    model = native_model(tokenizer, n_layers=2, attn_only=False)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.ln_final.parameters():
            p.copy_(torch.randn_like(p))
    return model


@pytest.fixture(params=["bridge", "gpt2_bridge"])
def any_model(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="session")
def ipython_shell():
    """A real IPython shell with attn_widget's extension loaded (started once per session)."""
    from IPython import get_ipython
    from IPython.testing.globalipapp import start_ipython

    shell = start_ipython() or get_ipython()  # start_ipython returns None once it has run
    shell.run_line_magic("load_ext", "attn_widget")
    return shell
