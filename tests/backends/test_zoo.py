"""Every architecture in the installed transformers, tiny and random: the explorer shows each one's
own eager attention, or refuses it for a reason that is right, and never changes what it computes.

The whole sweep (every causal-LM model type, two at a time, each in its own forked process:
scripts/architecture_sweep.py) runs once per session, in about two minutes on two cores; `make test`
runs it with the rest and prints the counts per class, `make test-zoo` runs this file alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import transformers
from packaging.version import Version

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import architecture_sweep as sweep

# transformers 5.25 lets Falcon switch to eager attention; before, the explorer refuses it for that
FALCON_SWITCHES_TO_EAGER = Version(transformers.__version__) >= Version("5.25")

EXPECTED: dict[str, str] = {
    # captured from the model's own kernel
    "llama": "exact",  # grouped-query attention
    "mistral": "exact",  # sliding window
    "gemma2": "exact",  # soft-capping, alternating windows
    "gpt_oss": "exact",  # sinks inside the softmax
    "bloom": "exact",  # ALiBi
    "deepseek_v3": "exact",  # multi-head latent attention
    "hrm_text": "exact",  # looped: a module run several times gives several layers
    "diffllama": "exact",  # differential attention: one softmax handed over twice is one layer
    "bart": "exact",  # a decoder whose cross-attention does not run on a text prompt
    "qwen3_next": "exact",  # linear-attention layers are not layers
    "jamba": "exact",  # state-space layers beside attention ones
    "gemma4": "exact",  # composite: the text model alone is routed
    "musicgen": "exact",  # one embedding table per codebook
    # eager attention, weights asked for and found where the model returns them
    "openai-gpt": "exact",
    "xlnet": "exact",  # two streams per layer; unlimited context (max_position_embeddings = -1)
    "granite_swa": "exact",  # a sink applied after the softmax
    "deepseek_v32": "exact",  # top-k key selection by the implementation's name
    "cpmant": "exact",
    # refused, with the reason
    "deepseek_v4": "refused: keys besides the prompt",  # compressed keys appended
    "falcon": "exact" if FALCON_SWITCHES_TO_EAGER else "refused: cannot switch to eager attention",
    "blt": "refused: returned attention weights for only",  # attention between bytes and patches
    "mamba": "refused: has no softmax attention layers",
    "rwkv": "refused: has no softmax attention layers",
}

UNTESTABLE: dict[str, str] = {
    # model types this sweep cannot build tiny; any other untestable type fails the sweep, so that
    # a change in how configs are shrunk never hides a model from the comparison
    "gemma3n": "its vision tower needs timm, which the test environment does not install",
    # assistants draft from a target model's key/value states: their causal LM does not run on a
    # prompt alone, so there is no eager reference (built sharing none, their base model is a plain
    # Gemma 4 text model, which the sweep covers as gemma4_text)
    "gemma4_assistant": "needs a target model's key/value states (shared_kv_states)",
    "gemma4_unified_assistant": "needs a target model's key/value states (shared_kv_states)",
}


def _sweep(model_types: list[str], folder: Path) -> dict[str, dict[str, str]]:
    """The sweep in a fresh process: it forks a process per model type, which is safe only from a
    parent that has run no torch operation yet."""
    out = folder / "sweep.json"
    command = [sys.executable, sweep.__file__, "--workers", "2", "--timeout", "300", "--json", str(out)]
    completed = subprocess.run([*command, "--only", ",".join(model_types)], capture_output=True, text=True)
    assert out.exists(), completed.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    return _sweep(sweep.all_model_types(), tmp_path_factory.mktemp("zoo"))


def test_every_causal_lm_architecture_is_exact_or_refused(results, capsys):
    with capsys.disabled():  # the counts, printed even when pytest captures output
        print("\n" + sweep.summary(results))
    assert len(results) == len(sweep.all_model_types())
    wrong = {name: r for name, r in results.items() if r["class"] in ("silent", "raw")}
    assert not wrong, sweep.summary(wrong)
    unexpected = {n: r for n, r in results.items() if r["class"] == "untestable" and n not in UNTESTABLE}
    assert not unexpected, sweep.summary(unexpected)


@pytest.mark.parametrize("model_type", sorted(EXPECTED))
def test_each_kind_of_attention_is_exact_or_refused_for_its_reason(model_type, results):
    result = results[model_type]
    expected = EXPECTED[model_type]
    kind, _, reason = expected.partition(": ")
    assert result["class"] == kind, f"{model_type}: {result}"
    assert reason in result["reason"], f"{model_type}: {result}"


def test_unlimited_context_is_unlimited():
    from attn_widget.backends import backend_for

    model = sweep.build("xlnet")
    assert model.config.max_position_embeddings == -1, "xlnet's config says unlimited this way"
    backend = backend_for(model, tokenizer=sweep.Stub())
    assert backend.n_ctx is None
    assert (backend.n_layers, backend.n_heads) == (2, 4)


def test_a_looped_model_has_a_layer_per_pass_named_by_pass():
    import torch

    from attn_widget.backends import backend_for

    model = sweep.build("hrm_text")
    ids = torch.arange(3, 15)[None]
    expected = sweep.eager_reference(model, ids)
    backend = backend_for(model, tokenizer=sweep.Stub())
    assert backend.captures_queries
    assert backend.n_layers == len(expected) > len({name.split(" (pass")[0] for name in backend.layer_names})
    assert backend.layer_names[-1].endswith("(pass 2)"), backend.layer_names[-2:]


def test_cross_attention_that_does_not_run_is_no_layer():
    from attn_widget.backends import backend_for

    backend = backend_for(sweep.build("bart"), tokenizer=sweep.Stub())
    assert backend.n_layers == 2, "two decoder layers, each with self- and cross-attention modules"


def test_a_model_without_softmax_attention_says_so():
    from attn_widget.backends import backend_for
    from attn_widget.errors import ModelError

    with pytest.raises(ModelError, match="RwkvForCausalLM has no softmax attention layers"):
        backend_for(sweep.build("rwkv"), tokenizer=sweep.Stub())


def test_a_model_that_fails_on_token_ids_alone_is_refused_naming_its_error():
    from attn_widget.backends import backend_for
    from attn_widget.errors import ModelError

    model = sweep.build("llama")

    def needs_more(*_):
        raise ValueError("inputs_embeds and shared_kv_states cannot be None.")

    model.model.layers[1].register_forward_pre_hook(needs_more)
    with pytest.raises(ModelError, match=r"did not run on a text prompt's token ids alone \(ValueError: inputs_embeds"):
        backend_for(model, tokenizer=sweep.Stub())
