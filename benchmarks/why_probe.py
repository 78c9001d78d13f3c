"""What "why" costs, side by side with a baseline in the same process, on the bench model
(GPT-2-small-shaped random weights, a TransformerBridge over Hugging Face GPT-2):

- one query-key decomposition (last layer, last query) at 4,096 tokens, against one bare forward
  pass of the model over the same tokens (the decomposition is one pass that stops after the layer,
  plus hooks that keep two positions);
- the ablation sweep of all 144 heads (batched, 16 heads per pass, the prompt run once up to the
  first ablated layer), against a plain loop of one hooked forward pass per head, at 64 tokens;
  each twice, in the order loop, batched, batched, loop.

Each row survives another's failure. python benchmarks/why_probe.py [--decomposition-tokens 4096]
[--ablation-tokens 64] (0 tokens: skip that row)
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

import torch

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from models import gpt2_small_shaped, prompt_of  # noqa: E402


def seconds(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def decomposition_row(n: int) -> None:
    from attn_widget.analysis.residual import decompose
    from attn_widget.backends import backend_for

    model = gpt2_small_shaped(n_ctx=n)
    backend = backend_for(model)
    tokens, _ = backend.tokenize(prompt_of(model, n))
    running = backend.unwrapped.model if backend.unwrapped is not None else model

    def forward() -> None:
        with torch.inference_mode():
            running(input_ids=tokens) if backend.unwrapped is not None else model(tokens)

    bare = seconds(forward)
    result = None

    def split() -> None:
        nonlocal result
        result = decompose(backend, tokens, backend.n_layers - 1, 0, n - 1, n // 2)

    ours = seconds(split)
    assert result is not None
    gap = abs(result.contributions.sum().item() - result.score)
    print(
        f"decomposition  {n:>6} tokens  {ours:8.2f} s   bare forward {bare:8.2f} s   ratio {ours / bare:5.2f}x"
        f"   ({result.contributions.numel()} pairs, |sum - score| {gap:.1e})"
    )


def ablation_row(n: int, batch_size: int = 16) -> None:
    from attn_widget.analysis.ablation import Target, ablation_effects
    from attn_widget.backends import backend_for
    from attn_widget.backends.weights import circuit_weights

    model = gpt2_small_shaped(n_ctx=max(n, 1024))
    backend = backend_for(model)
    tokens, _ = backend.tokenize(prompt_of(model, n))
    weights = circuit_weights(backend)
    batched = lambda: ablation_effects(weights, tokens, Target(), "mean", batch_size=batch_size)  # noqa: E731
    # the plain loop: one pass per head (batch size 1), the same hooks
    loop = lambda: ablation_effects(weights, tokens, Target(), "mean", batch_size=1)  # noqa: E731
    # loop, batched, batched, loop: a machine whose load drifts during the run weighs on both alike
    times = [seconds(loop), seconds(batched), seconds(batched), seconds(loop)]
    ours, baseline = times[1] + times[2], times[0] + times[3]
    heads = weights.n_layers * weights.n_heads
    fastest = min(times[1:3]) / min(times[0], times[3])
    print(
        f"ablation sweep {n:>6} tokens  {ours / 2:8.2f} s   one head per pass {baseline / 2:8.2f} s"
        f"   ratio {ours / baseline:5.2f}x (fastest of each {fastest:4.2f}x)   ({heads} heads, {batch_size} per pass;"
        f" runs in order {', '.join(f'{t:.1f}' for t in times)} s)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decomposition-tokens", type=int, default=4096)
    parser.add_argument("--ablation-tokens", type=int, default=64)
    args = parser.parse_args(argv)
    print("why: query-key decomposition and ablation, against a baseline run side by side (0 tokens: skip)")
    for row, n in ((decomposition_row, args.decomposition_tokens), (ablation_row, args.ablation_tokens)):
        if n <= 0:
            continue
        try:
            row(n)
        except Exception:  # one row's failure leaves the others standing
            print(f"{row.__name__} failed:")
            traceback.print_exc(limit=3)


if __name__ == "__main__":
    main()
