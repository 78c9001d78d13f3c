"""Answer and counterfactual token strings to token ids, with errors that say what would work."""

from __future__ import annotations

from typing import Any

from attn_widget.errors import AnswerError, ModelError


def token_id(backend: Any, text: str) -> int:
    """The id of `text` as one token of the model's tokenizer (as it appears mid-text: " John")."""
    model = getattr(backend, "model", None)
    tokenizer = getattr(backend, "tokenizer", None) or getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise ModelError("Logit attribution needs the model's tokenizer to read the answer token.")
    ids = list(tokenizer.encode(text, add_special_tokens=False))
    if len(ids) != 1:
        pieces = [tokenizer.decode([i]) for i in ids]
        hint = f": {pieces!r}; try {pieces[0]!r}" if pieces else ""
        raise AnswerError(
            f"{text!r} is {len(ids)} tokens for this model's tokenizer{hint}. The answer and counterfactual "
            "must each be a single token (mind the leading space: ' John')."
        )
    return int(ids[0])
