"""Dataset mode: every head's scores over many prompts, batched, keeping only the scores.

Prompts of different lengths share a batch by right-padding: in a causal model a real token never
sees the padding after it, so prompt i's attention is exactly the `[:n_i, :n_i]` block of the
padded pattern, and its scores (token masks included) are taken on that block only. A model whose
attention is not causal is caught on the first layer and its batch rerun one prompt at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from attn_widget.analysis.forward import needs_a_model, run_dense
from attn_widget.backends.base import Backend
from attn_widget.contract import METRIC_LABELS, PROMPT_METRICS, SINK_SHARE
from attn_widget.errors import PromptError
from attn_widget.maths import dense_scores as scores
from attn_widget.maths import sinks
from attn_widget.maths.detectors import Detector, detector_score
from attn_widget.maths.layer import looks_causal
from attn_widget.maths.summary import top_heads_text

DATASET_METRICS: tuple[str, ...] = (*PROMPT_METRICS, SINK_SHARE)
"""Every prompt's built-in metrics (custom detectors follow them)."""

Progress = Callable[[int, int], None]
"""Called after each batch with (prompts done, prompts in all)."""


@dataclass
class DatasetScores:
    """Scores over prompts. `per_prompt[metric]` is `(prompts, n_layers, n_heads)`: nothing else is kept."""

    metrics: tuple[str, ...]
    per_prompt: dict[str, np.ndarray]
    n_tokens: int
    n_requested: int
    interrupted: bool = False
    mean: dict[str, np.ndarray] = field(init=False)
    std: dict[str, np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        # Population standard deviation over prompts (0 for a single prompt).
        self.mean = {m: v.mean(axis=0) if len(v) else np.full(v.shape[1:], np.nan) for m, v in self.per_prompt.items()}
        self.std = {m: v.std(axis=0) if len(v) else np.full(v.shape[1:], np.nan) for m, v in self.per_prompt.items()}

    @property
    def n_prompts(self) -> int:
        return len(next(iter(self.per_prompt.values()))) if self.per_prompt else 0

    def __repr__(self) -> str:
        shape = "x".join(str(d) for d in next(iter(self.mean.values())).shape) if self.mean else "0"
        tops = "; ".join(f"{METRIC_LABELS.get(m, m)}: {top_heads_text(self.mean[m])}" for m in self.metrics[:4])
        more = f" (+{len(self.metrics) - 4} more)" if len(self.metrics) > 4 else ""
        return f"<DatasetScores {self.n_prompts} prompts x {shape} heads, top means {tops}{more}; .table() for all>"

    def as_dict(self) -> dict[str, dict[str, np.ndarray]]:
        return {m: {"mean": self.mean[m].copy(), "std": self.std[m].copy()} for m in self.metrics}

    def table(self) -> Any:
        """A tidy pandas DataFrame: one row per (metric, layer, head) with mean, std and counts."""
        import pandas as pd

        rows = [
            (m, layer, head, float(self.mean[m][layer, head]), float(self.std[m][layer, head]))
            for m in self.metrics
            for layer in range(self.mean[m].shape[0])
            for head in range(self.mean[m].shape[1])
        ]
        frame = pd.DataFrame(rows, columns=["metric", "layer", "head", "mean", "std"])
        frame["prompts"] = self.n_prompts
        frame["tokens"] = self.n_tokens
        return frame


def prompt_metrics(
    pattern: torch.Tensor, tokens: torch.Tensor, expected: Sequence[torch.Tensor], detectors: Sequence[Detector]
) -> torch.Tensor:
    """`[metric, head]` for one prompt's layer: built-in metrics, sink share, then each detector's score."""
    built_in = scores.layer_scores(pattern, tokens)
    rows = [built_in[m] for m in PROMPT_METRICS] + [sinks.sink_share(pattern[0])]
    rows += [detector_score(pattern[0], e, d.measure) for e, d in zip(expected, detectors, strict=True)]
    return torch.stack(rows).float()


class _Batch:
    """Right-padded ids `[b, n_max]` and each prompt's length."""

    def __init__(self, ids: list[torch.Tensor], pad_id: int, device: torch.device) -> None:
        self.lengths = [int(t.shape[-1]) for t in ids]
        width = max(self.lengths)
        padded = torch.full((len(ids), width), pad_id, dtype=torch.long)
        for i, t in enumerate(ids):
            padded[i, : self.lengths[i]] = t.reshape(-1).cpu()
        self.ids = padded.to(device)


def _run_batch(
    backend: Backend, batch: _Batch, expected: list[list[torch.Tensor]], detectors: Sequence[Detector]
) -> torch.Tensor:
    """`[prompt, layer, metric, head]` for one batch, in one pass when the model is causal."""
    n_metrics = len(DATASET_METRICS) + len(detectors)
    out = torch.zeros(len(batch.lengths), backend.n_layers, n_metrics, backend.n_heads)
    padded = len(set(batch.lengths)) > 1
    state = {"not_causal": False}

    def reduce_layer(layer: int, pattern: torch.Tensor) -> None:
        if state["not_causal"]:
            return
        if padded and not looks_causal(pattern):
            state["not_causal"] = True
            return
        for i, n in enumerate(batch.lengths):
            block = pattern[i : i + 1, :, :n, :n]
            out[i, layer] = prompt_metrics(block, batch.ids[i : i + 1, :n], expected[i], detectors).cpu()

    run_dense(backend, batch.ids, reduce_layer)
    if state["not_causal"]:  # padding would leak into real tokens: one prompt per pass instead
        for i, n in enumerate(batch.lengths):
            single = _Batch([batch.ids[i, :n]], 0, batch.ids.device)
            out[i] = _run_batch(backend, single, [expected[i]], detectors)[0]
    return out


def run_dataset(
    backend: Backend,
    prompts: Sequence[str],
    *,
    batch_size: int = 8,
    detectors: Sequence[Detector] = (),
    progress: Progress | None = None,
) -> DatasetScores:
    """Every metric for every prompt; Ctrl-C stops after the current batch's pass, keeping the finished ones."""
    needs_a_model(backend, "Dataset mode")
    if isinstance(prompts, str) or not prompts:
        raise PromptError("run_dataset needs a non-empty list of prompts (a list of strings, not one string).")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    metrics = DATASET_METRICS + tuple(d.name for d in detectors)
    pad_id = int(backend.bos_token_id or 0)
    done: list[torch.Tensor] = []
    n_tokens = 0
    interrupted = False
    all_ids = [_tokenize(backend, p, i) for i, p in enumerate(prompts)]  # bad prompts fail before any work
    try:
        for start in range(0, len(prompts), batch_size):
            ids = all_ids[start : start + batch_size]
            # on the device once per prompt, not once per layer
            expected = [[d.expected(t.reshape(-1).cpu()).to(backend.device) for d in detectors] for t in ids]
            result = _run_batch(backend, _Batch(ids, pad_id, backend.device), expected, detectors)
            done.append(result)
            n_tokens += sum(int(t.shape[-1]) for t in ids)
            if progress is not None:
                progress(start + len(ids), len(prompts))
    except KeyboardInterrupt:
        interrupted = True
    stacked = torch.cat(done) if done else torch.zeros(0, backend.n_layers, len(metrics), backend.n_heads)
    per_prompt = {m: stacked[:, :, i, :].numpy().astype(np.float64) for i, m in enumerate(metrics)}
    return DatasetScores(metrics, per_prompt, n_tokens, len(prompts), interrupted)


def _tokenize(backend: Backend, prompt: str, index: int) -> torch.Tensor:
    if not isinstance(prompt, str) or not prompt.strip():
        raise PromptError(f"Prompt {index} is empty or not a string: every prompt needs some text.")
    ids, _ = backend.tokenize(prompt)
    n = int(ids.shape[-1])
    if backend.n_ctx is not None and n > backend.n_ctx:
        raise PromptError(f"Prompt {index} is {n} tokens long, more than the model's context of {backend.n_ctx}.")
    return ids.reshape(-1)
