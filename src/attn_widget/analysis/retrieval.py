"""Retrieval heads (Wu et al. 2024, "Retrieval Head Mechanistically Explains Long-Context Factuality").

A head scores 1/|needle| at each generation step whose most-attended key lies in the needle and
holds the very token being generated; its retrieval score is the mean over samples.

Synthetic needle-in-a-haystack, from the model's own vocabulary like `analysis.induction_test`:

    [BOS] haystack[:s]  cue needle  haystack[s:]  cue needle[:-1]
                        ^ inserted                ^ the answer, teacher-forced

The needle's tokens are distinct and appear nowhere else before the answer, so "the key holds
the generated token" points at exactly one needle position. The cue (one more distinct token)
stands in for the paper's question: it tells the model which copy to start. Steps are
teacher-forced: at answer step i the input is the cue or the needle's token i-1 and the token
being generated is taken to be needle[i], the correct copy. The paper decodes greedily and counts
the steps the model actually produced; the backend protocol hands over attention, not logits,
and teacher forcing measures the heads' copying whether or not a small model copies right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from attn_widget.analysis.forward import needs_a_model, run_dense
from attn_widget.analysis.repeated_tokens import ordinary_id_range
from attn_widget.backends.base import Backend


@dataclass(frozen=True)
class RetrievalBatch:
    tokens: torch.Tensor
    """`[samples, length]` ids on the CPU."""
    needle_start: list[int]
    """Position of each sample's needle[0] (after its cue) in the inserted copy."""
    answer_start: int
    """Position of the answer's cue: the query that generates needle[i] sits at answer_start + i."""
    needle_len: int


def make_batch(backend: Backend, haystack_len: int, needle_len: int, samples: int, seed: int) -> RetrievalBatch:
    needs_a_model(backend, "The retrieval test")  # before the context it would be checked against
    if needle_len < 1 or haystack_len < 0 or samples < 1:
        raise ValueError("retrieval_test needs needle_len >= 1, haystack_len >= 0 and samples >= 1")
    offset = 0 if backend.bos_token_id is None else 1
    length = offset + haystack_len + 2 * needle_len + 2 - 1
    if backend.n_ctx is not None and length > backend.n_ctx:
        raise ValueError(
            f"haystack_len {haystack_len} and needle_len {needle_len} make {length} tokens, more than the "
            f"model's context of {backend.n_ctx}"
        )
    low, high = ordinary_id_range(backend.vocab_size)
    if high - low < needle_len + 2:
        raise ValueError(f"the vocabulary of {backend.vocab_size} tokens is too small for a {needle_len}-token needle")
    generator = torch.Generator().manual_seed(seed)
    rows, starts = [], []
    for _ in range(samples):
        pool = torch.randperm(high - low, generator=generator) + low
        cue_and_needle, rest = pool[: needle_len + 1], pool[needle_len + 1 :]
        hay = rest[torch.randint(len(rest), (haystack_len,), generator=generator)]
        s = int(torch.randint(haystack_len + 1, (1,), generator=generator))
        row = torch.cat([hay[:s], cue_and_needle, hay[s:], cue_and_needle[:-1]])
        if offset:
            row = torch.cat([torch.tensor([int(backend.bos_token_id or 0)]), row])
        rows.append(row)
        starts.append(offset + s + 1)
    return RetrievalBatch(torch.stack(rows), starts, offset + haystack_len + needle_len + 1, needle_len)


BATCH_TOKENS = 4096
"""Tokens per forward pass: samples beyond `BATCH_TOKENS // length` run in further passes."""


def retrieval_scores(backend: Backend, batch: RetrievalBatch) -> np.ndarray:
    """`[n_layers, n_heads]` retrieval scores, the mean over samples, in passes of at most
    BATCH_TOKENS tokens (memory of one pass whatever the number of samples)."""
    needs_a_model(backend, "The retrieval test")
    samples, length = batch.tokens.shape
    step = max(1, BATCH_TOKENS // length)
    total = np.zeros((backend.n_layers, backend.n_heads), np.float64)
    for start in range(0, samples, step):
        part = RetrievalBatch(
            batch.tokens[start : start + step],
            batch.needle_start[start : start + step],
            batch.answer_start,
            batch.needle_len,
        )
        total += _pass_scores(backend, part) * (part.tokens.shape[0] / samples)
    return total.astype(np.float32)


def _pass_scores(backend: Backend, batch: RetrievalBatch) -> np.ndarray:
    """`[n_layers, n_heads]` mean retrieval scores of one pass's samples."""
    tokens = batch.tokens.to(backend.device)
    k = batch.needle_len
    steps = torch.arange(k, device=backend.device)
    queries = batch.answer_start + steps  # [k]
    starts = torch.tensor(batch.needle_start, device=backend.device)[:, None]  # [samples, 1]
    generated = torch.stack([tokens[i, s : s + k] for i, s in enumerate(batch.needle_start)])  # [samples, k]
    result = torch.zeros(backend.n_layers, backend.n_heads)

    def score(layer: int, pattern: torch.Tensor) -> None:
        top = pattern[:, :, queries, :].argmax(dim=-1)  # [samples, head, k]
        in_needle = (top >= starts[:, None]) & (top < starts[:, None] + k)
        same_token = torch.gather(tokens[:, None, :].expand(-1, top.shape[1], -1), 2, top) == generated[:, None, :]
        result[layer] = ((in_needle & same_token).float().sum(dim=-1) / k).mean(dim=0).cpu()

    run_dense(backend, tokens, score)
    return result.numpy()


def retrieval_test(
    backend: Backend, haystack_len: int = 40, needle_len: int = 8, samples: int = 8, seed: int = 0
) -> np.ndarray:
    return retrieval_scores(backend, make_batch(backend, haystack_len, needle_len, samples, seed))
