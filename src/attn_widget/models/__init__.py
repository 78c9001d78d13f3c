"""The small demo model bundled with attn_widget.

``attn-widget-demo`` is a 2-layer, attention-only TransformerLens-native model
trained offline on a CPU by ``scripts/train_demo_model.py`` (see
``demo/README.md`` for its shape, training recipe and head scores). Its heads
show the textbook patterns: previous-token heads, induction heads and heads
that rest on the first (BOS) token.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from transformer_lens import TransformerBridge

__all__ = ["DEMO_MODEL_DIR", "DEMO_MODEL_NAME", "load_demo_model"]

DEMO_MODEL_NAME = "attn-widget-demo"
DEMO_MODEL_DIR: Path = Path(__file__).resolve().parent / "demo"


def load_demo_model(device: str | torch.device | None = None) -> TransformerBridge:
    """Load the bundled demo model as a ``TransformerBridge`` in eval mode.

    Rebuilds the model from ``demo/config.json`` with
    ``TransformerBridge.boot_native``, loads the float16 weights from
    ``demo/model.safetensors`` as float32 and attaches the bundled byte-level BPE
    tokenizer (which prepends ``<|endoftext|>`` as BOS). Works offline: nothing
    is fetched from the Hugging Face Hub.

    Args:
        device: Where to put the model (e.g. ``"cpu"``, ``"cuda"``); ``None``
            keeps it on the CPU.
    """
    from safetensors.torch import load_file
    from transformer_lens import TransformerBridge, TransformerBridgeConfig
    from transformers import PreTrainedTokenizerFast

    config = json.loads((DEMO_MODEL_DIR / "config.json").read_text(encoding="utf-8"))
    # add_bos_token is not kept in tokenizer_config.json by transformers; passing it
    # also stops boot_native from re-loading the tokenizer through AutoTokenizer.
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(DEMO_MODEL_DIR), add_bos_token=True)
    model = TransformerBridge.boot_native(
        TransformerBridgeConfig(**config),
        tokenizer=tokenizer,
        device=device,
        model_name=DEMO_MODEL_NAME,
    )
    state = load_file(str(DEMO_MODEL_DIR / "model.safetensors"))
    model.load_state_dict({name: tensor.float() for name, tensor in state.items()}, strict=True)
    model.eval()
    return model
