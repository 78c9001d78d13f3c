"""Turning what the user passed as `model` into a model: the bundled demo, a hub name, or as is."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

from attn_widget.errors import ModelError
from attn_widget.models import DEMO_MODEL_NAME, load_demo_model

HUB_PROBE_TIMEOUT_S = 3.0


def resolve_model(model: Any) -> Any:
    """None -> the bundled demo model; a string -> that model loaded by name; else `model` itself."""
    if model is None:
        return load_named_model(DEMO_MODEL_NAME)
    if isinstance(model, str):
        return load_named_model(model)
    return model


def load_named_model(name: str) -> Any:
    if name == DEMO_MODEL_NAME:
        return load_demo_model()
    return _load_from_hub(name)


def _hub_reachable() -> bool:
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname or "huggingface.co", url.port or 443), HUB_PROBE_TIMEOUT_S).close()
        return True
    except OSError:
        return False


@contextmanager
def _hub_offline() -> Iterator[None]:
    """Load from the local cache only, so an unreachable hub costs no retries. huggingface_hub
    reads HF_HUB_OFFLINE once at import, so the switch is its module constant, not the variable."""
    from huggingface_hub import constants

    old = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old


def _load_from_hub(name: str) -> Any:
    import torch
    from transformer_lens import TransformerBridge

    device = "cuda" if torch.cuda.is_available() else "cpu"
    online = _hub_reachable()
    try:
        if online:
            return TransformerBridge.boot_transformers(name, device=device)
        with _hub_offline():
            return TransformerBridge.boot_transformers(name, device=device)
    except Exception as err:
        where = "failed to load" if online else "is not in the local cache and the Hugging Face hub is not reachable"
        raise ModelError(
            f"Model {name!r} {where} ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}). "
            f"Offline, use the bundled demo model: AttentionExplorer() or AttentionExplorer({DEMO_MODEL_NAME!r})."
        ) from None
