"""Every architecture in the installed transformers, tiny and random: the explorer shows each one's
own eager attention, or refuses it for a reason that is right, and never changes what it computes.

`make test` runs one model type per kind of attention and per cause of refusal (a few minutes);
`make test-zoo` (ATTN_WIDGET_ZOO=1) runs every causal-LM model type, two at a time, each in its own
process (scripts/architecture_sweep.py, which also prints the counts per class).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import architecture_sweep as sweep

EXPECTED: dict[str, str] = {
    # captured from the model's own kernel
    "llama": "exact",  # grouped-query attention
    "mistral": "exact",  # sliding window
    "gemma2": "exact",  # soft-capping, alternating windows
    "gpt_oss": "exact",  # sinks inside the softmax
    "bloom": "exact",  # ALiBi
    "deepseek_v3": "exact",  # multi-head latent attention
    "hrm_text": "exact",  # looped: a module run several times gives several layers
    "bart": "exact",  # a decoder whose cross-attention does not run on a text prompt
    "qwen3_next": "exact",  # linear-attention layers are not layers
    "gemma4": "exact",  # composite: the text model alone is routed
    # eager attention, weights asked for and found where the model returns them
    "openai-gpt": "exact",
    "xlnet": "exact",  # two streams per layer; unlimited context (max_position_embeddings = -1)
    "granite_swa": "exact",  # a sink applied after the softmax
    "deepseek_v32": "exact",  # top-k key selection by the implementation's name
    "cpmant": "exact",
    # refused, with the reason
    "deepseek_v4": "refused: keys besides the prompt",  # compressed keys appended
}


def _sweep(model_types: list[str], folder: Path) -> dict[str, dict[str, str]]:
    """The sweep in a fresh process: it forks a process per model type, which is safe only from a
    parent that has run no torch operation yet."""
    out = folder / "sweep.json"
    command = [sys.executable, sweep.__file__, "--workers", "2", "--timeout", "600", "--json", str(out)]
    completed = subprocess.run([*command, "--only", ",".join(model_types)], capture_output=True, text=True)
    print(completed.stdout)
    assert out.exists(), completed.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    return _sweep(sorted(EXPECTED), tmp_path_factory.mktemp("zoo"))


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


@pytest.mark.skipif(not os.environ.get("ATTN_WIDGET_ZOO"), reason="the whole sweep runs in `make test-zoo`")
def test_every_causal_lm_architecture_is_exact_or_refused(tmp_path):
    results = _sweep(sweep.all_model_types(), tmp_path)
    print(sweep.summary(results))
    wrong = {name: r for name, r in results.items() if r["class"] in ("silent", "raw")}
    assert not wrong, sweep.summary(wrong)


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

    with pytest.raises(ModelError, match="RwkvForCausalLM returned attention weights for only 0 of the 2"):
        backend_for(sweep.build("rwkv"), tokenizer=sweep.Stub())
