"""Every architecture in the installed transformers, tiny and random: the explorer shows each one's
own eager attention, or refuses it for a reason that is right, and never changes what it computes.

`make test` runs one model type per kind of attention and per cause of refusal (a few minutes);
`make test-zoo` (ATTN_WIDGET_ZOO=1) runs every causal-LM model type, two at a time, each in its own
process (scripts/architecture_sweep.py, which also prints the counts per class).
"""

from __future__ import annotations

import os
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
    # refused, with the reason
    "deepseek_v4": "refused: keys besides the prompt",  # compressed keys appended
    "cpmant": "refused: keys besides the prompt",  # prompt-prefix positions
}


def _check(model_type: str) -> dict[str, str]:
    results = sweep.run([model_type], workers=1, timeout=600, progress=False)
    return results[model_type]


@pytest.mark.parametrize("model_type", sorted(EXPECTED))
def test_each_kind_of_attention_is_exact_or_refused_for_its_reason(model_type):
    result = _check(model_type)
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
def test_every_causal_lm_architecture_is_exact_or_refused():
    results = sweep.run(sweep.all_model_types(), workers=2, timeout=600)
    print(sweep.summary(results))
    wrong = {name: r for name, r in results.items() if r["class"] in ("silent", "raw")}
    assert not wrong, sweep.summary(wrong)
