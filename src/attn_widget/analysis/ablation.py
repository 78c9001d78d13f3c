"""Every head's ablation effect: how much the answer-minus-counterfactual logit difference (or, with
no answer, the loss on the prompt) changes when that head's output is replaced by its mean over the
prompt's positions ("mean") or by zero ("zero").

A head's output is its `z` (the attention-weighted values entering the output projection), so the
ablation edits that input, which any model family has. Many heads go in one forward pass, row b
with head `heads[b]` ablated. The pass starts with the prompt once: everything up to the first
ablated layer's `z` is the same in every row, so it is computed once, and that `z` becomes the
batch (the residual stream it is added to broadcasts along it). Row b sees only its own edit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from attn_widget.backends.weights import CircuitWeights
from attn_widget.errors import AttnWidgetError, ModelError

AblationMethod = Literal["mean", "zero"]
METHODS: tuple[AblationMethod, ...] = ("mean", "zero")
Progress = Callable[[int, int], None]
"""Called as `progress(heads_done, heads_total)` after each batch."""


@dataclass(frozen=True)
class Target:
    """What the effect is measured on: with `answer`, logit(answer) - logit(counterfactual) at `query`
    (the counterfactual None: the answer's logit alone); without, the mean next-token loss."""

    answer: int | None = None
    counterfactual: int | None = None
    query: int = -1

    def metric(self, logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """`[batch]` from logits `[batch, n, vocab]` of `tokens` `[1, n]`, in float64."""
        if self.answer is not None:
            at = logits[:, self.query].double()
            result = at[:, self.answer]
            return result - at[:, self.counterfactual] if self.counterfactual is not None else result
        if tokens.shape[-1] < 2:
            raise AttnWidgetError("The loss needs a prompt of at least two tokens (or set `answer`).")
        following = tokens[0, 1:].to(logits.device)
        positions = torch.arange(following.shape[0], device=logits.device)
        # a row at a time: a batch's float64 log-probabilities would be rows x n x vocab x 8 bytes
        return torch.stack([-row[:-1].double().log_softmax(-1)[positions, following].mean() for row in logits])


class AblationStopped(KeyboardInterrupt):
    """The stop button (or Ctrl-C) during a sweep. `partial` `[layers, heads]` holds the effects of the
    heads measured before it, NaN for the others; `done` of `total` heads were measured. The model's
    hooks are removed by then."""

    def __init__(self, partial: np.ndarray, done: int, total: int) -> None:
        super().__init__(f"ablation sweep stopped after {done} of {total} heads")
        self.partial, self.done, self.total = partial, done, total


def ablation_effects(
    weights: CircuitWeights,
    tokens: torch.Tensor,
    target: Target,
    method: str = "mean",
    batch_size: int = 16,
    progress: Progress | None = None,
) -> np.ndarray:
    """`[layers, heads]` float64: metric with the head ablated minus the clean metric. A
    KeyboardInterrupt (the stop button, or `progress` raising one) becomes `AblationStopped`."""
    if method not in METHODS:
        raise AttnWidgetError(f"method must be 'mean' or 'zero' (what replaces a head's output), not {method!r}.")
    if batch_size < 1:
        raise AttnWidgetError(f"batch_size must be at least 1, not {batch_size}.")
    runner = _Runner(weights)
    heads = [(layer, head) for layer in range(weights.n_layers) for head in range(weights.n_heads)]
    effects = np.full((weights.n_layers, weights.n_heads), np.nan)
    done = 0
    try:
        means: dict[int, torch.Tensor] = {}
        clean = float(target.metric(runner.logits(tokens, {}, means if method == "mean" else None), tokens)[0])
        for start in range(0, len(heads), batch_size):
            chunk = heads[start : start + batch_size]
            edits: dict[int, list[tuple[int, int]]] = {}
            for row, (layer, head) in enumerate(chunk):
                edits.setdefault(layer, []).append((row, head))
            replacement = {layer: means[layer] if method == "mean" else None for layer in edits}
            changed = {k: (len(chunk), v, replacement[k]) for k, v in edits.items()}
            values = target.metric(runner.logits(tokens, changed), tokens)
            for row, (layer, head) in enumerate(chunk):
                effects[layer, head] = float(values[row]) - clean
            done = start + len(chunk)
            if progress is not None:
                progress(done, len(heads))
    except AblationStopped:
        raise
    except KeyboardInterrupt as err:
        runner.remove_hooks()  # in case the interrupt came while they were being removed
        partial = effects.copy()
        for layer, head in heads[done:]:  # a batch cut short mid-way counts for nothing
            partial[layer, head] = np.nan
        raise AblationStopped(partial, done, len(heads)) from err
    return effects


Edit = tuple[int, list[tuple[int, int]], torch.Tensor | None]
"""The batch's rows, the rows with the head each ablates, and the replacement `[heads, d_head]`
(None: zero)."""


class _Runner:
    """The model run on a batch with some heads' z replaced: TransformerLens' `hook_z` or the input
    of a Hugging Face output projection."""

    def __init__(self, weights: CircuitWeights) -> None:
        self.weights = weights
        self.model = weights.model
        if weights.transformer_lens:
            points = self.model.hook_dict
            self.points = [points[f"blocks.{i}.attn.hook_z"] for i in range(weights.n_layers)]
        else:
            self.points = [
                attn.c_proj if hasattr(attn, "c_attn") else getattr(attn, "o_proj", None) for attn in weights.attentions
            ]
            if any(p is None for p in self.points):
                raise ModelError("Found no output projection in this model's attention, so heads cannot be ablated.")
        self.handles: list[Any] = []
        """The hooks on the model now: each pass removes its own, whatever stops it."""

    def remove_hooks(self) -> None:
        while self.handles:
            self.handles.pop().remove()

    def logits(
        self, tokens: torch.Tensor, edits: dict[int, Edit], means: dict[int, torch.Tensor] | None = None
    ) -> torch.Tensor:
        with ExitStack() as stack:
            for layer, point in enumerate(self.points):
                if layer in edits or means is not None:
                    stack.enter_context(self._hook(point, layer, edits.get(layer), means))
            try:
                with torch.inference_mode():
                    device = next(self.model.parameters()).device
                    if self.weights.transformer_lens:
                        out = self.model(tokens.to(device), return_type="logits")
                    else:
                        out = self.model(input_ids=tokens.to(device), use_cache=False).logits
            except AttnWidgetError:
                raise
            except Exception as err:  # the model's own failure: name it, keep the kernel going
                raise ModelError(f"The model failed while running: {type(err).__name__}: {err}") from err
        result: torch.Tensor = out
        return result

    @contextmanager
    def _hook(
        self, point: torch.nn.Module, layer: int, edit: Edit | None, means: dict[int, torch.Tensor] | None
    ) -> Iterator[None]:
        n_heads = self.weights.n_heads

        def change(z: torch.Tensor) -> torch.Tensor:
            """z `[b, n, h * d_head]` or `[b, n, h, d_head]`: record the mean, or ablate the rows' heads
            (at the first ablated layer, b is 1: the shared prefix becomes the batch here)."""
            split = z.reshape(*z.shape[:2], n_heads, -1)
            if means is not None:
                means[layer] = split[0].double().mean(0)
            if edit is None:
                return z
            batch, rows, replacement = edit
            split = split.expand(batch, *split.shape[1:]).clone()
            for row, head in rows:
                split[row, :, head] = 0.0 if replacement is None else replacement[head].to(split.dtype)
            return split.reshape(batch, *z.shape[1:])

        if self.weights.transformer_lens:
            handle = point.register_forward_hook(lambda _m, _a, out: change(out))
        else:

            def pre(_m: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
                return (change(args[0]), *args[1:])

            handle = point.register_forward_pre_hook(pre)
        self.handles.append(handle)
        try:
            yield
        finally:
            handle.remove()
            if handle in self.handles:
                self.handles.remove(handle)
