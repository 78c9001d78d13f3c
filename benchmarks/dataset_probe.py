"""Dataset mode and the per-prompt extras, measured against their baselines in the same process.

1. run_dataset with batches vs one prompt per pass (batch_size=1): time ratio, same scores.
2. A prompt's extra pass (custom detectors + sinks) vs the prompt's own analysis: time ratio.

    python benchmarks/dataset_probe.py [--device cpu|cuda] [--prompts 32]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import numpy as np
import torch
from models import gpt2_small_shaped, prompt_of

from attn_widget.analysis.dataset import run_dataset
from attn_widget.analysis.derived import detectors_and_sinks
from attn_widget.analysis.prompt import PromptAnalysis
from attn_widget.backends import backend_for
from attn_widget.maths.detectors import BUILT_IN, Detector


def timed(fn, repeats: int = 1) -> float:
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--prompts", type=int, default=32)
    args = parser.parse_args()
    model = gpt2_small_shaped(device=args.device)
    backend = backend_for(model)
    rng = random.Random(0)
    prompts = [prompt_of(model, rng.randint(16, 96), seed=i) for i in range(args.prompts)]
    tokens = sum(len(model.to_tokens(p)[0]) for p in prompts)
    print(f"GPT-2-small-shaped random model on {args.device}; {len(prompts)} prompts, {tokens} tokens")

    results = {}
    baseline = None
    for batch_size in (1, 8, 32):
        seconds = timed(lambda b=batch_size: results.__setitem__(b, run_dataset(backend, prompts, batch_size=b)))
        baseline = baseline or seconds
        print(f"run_dataset batch_size={batch_size:>2}: {seconds:6.2f} s  ({baseline / seconds:4.2f}x batch_size=1)")
    worst = max(np.abs(results[32].mean[m] - results[1].mean[m]).max() for m in results[1].metrics)
    print(f"largest difference of a dataset mean, batch 32 vs 1: {worst:.2e}")

    detectors = [Detector(name, fn) for name, fn in BUILT_IN.items()]
    for n in (64, 256, 1024):
        prompt = prompt_of(model, n)
        own = timed(lambda p=prompt: PromptAnalysis(backend, p), repeats=3)

        def with_extras(p: str = prompt) -> None:
            detectors_and_sinks(PromptAnalysis(backend, p, detectors=detectors), detectors)

        with_them = timed(with_extras, repeats=3)
        print(f"{n:>5} tokens: prompt analysis {own:6.3f} s, with 2 detectors + sinks in its sweep {with_them:6.3f} s "
              f"({with_them / own:4.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
