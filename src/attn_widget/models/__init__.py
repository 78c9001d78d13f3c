"""The small demo model bundled with attn_widget.

``attn-widget-demo`` is a 2-layer Llama-shaped model (rotary positions, grouped-query
attention, RMSNorm, a context of 4,096 tokens) trained offline on CPU cores by
``scripts/train_demo_model.py`` (see ``demo/README.md`` for its shape, training recipe
and head scores). Its heads show the textbook patterns at long range: previous-token
heads, induction heads that keep working across thousands of tokens, and heads that
rest on the first (BOS) token.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from transformer_lens import TransformerBridge

__all__ = ["DEMO_MODEL_DIR", "DEMO_MODEL_NAME", "load_demo_model"]

DEMO_MODEL_NAME = "attn-widget-demo"
DEMO_MODEL_DIR: Path = Path(__file__).resolve().parent / "demo"
ARCHITECTURE = "LlamaForCausalLM"


def load_demo_model(device: str | torch.device | None = None) -> TransformerBridge:
    """Load the bundled demo model as a TransformerLens ``TransformerBridge`` in eval mode.

    Builds a Hugging Face ``LlamaForCausalLM`` from ``demo/config.json``, loads the
    float16 weights of ``demo/model.safetensors`` as float32 (the unembedding is tied
    to the embedding), and wraps it in a bridge with the bundled byte-level BPE
    tokenizer (which prepends ``<|endoftext|>`` as BOS). Works offline: nothing is
    fetched from the Hugging Face Hub.

    Args:
        device: Where to put the model (e.g. ``"cpu"``, ``"cuda"``); ``None``
            keeps it on the CPU.
    """
    import torch
    from safetensors.torch import load_file
    from transformer_lens.model_bridge.sources._bridge_builder import build_bridge_from_module
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    config = LlamaConfig.from_pretrained(str(DEMO_MODEL_DIR))
    config._attn_implementation = "sdpa"
    model = LlamaForCausalLM(config)
    state = load_file(str(DEMO_MODEL_DIR / "model.safetensors"))
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise RuntimeError(f"demo model weights do not match its config: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    module: torch.nn.Module = model  # torch's typed API (transformers wraps eval and to untyped)
    module.eval()
    if device is not None:
        module.to(torch.device(device))
    # The bridge builder re-loads the tokenizer by its name_or_path: it must come from a folder.
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(DEMO_MODEL_DIR))
    bridge = build_bridge_from_module(
        model, ARCHITECTURE, hf_config=model.config, tokenizer=tokenizer, model_name=DEMO_MODEL_NAME
    )
    bridge.eval()
    return bridge
