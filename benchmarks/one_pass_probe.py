"""What the prompt's one pass gives at length, one measurement per fresh process, printed as JSON:

- `detectors N`: prompt-to-ready without and with one custom detector (the built-ins are always
  there), Llama-shaped model;
- `value N`: prompt-to-ready, then the first selection of value weighting: its time and how many
  times the model ran for it (a pre-hook on the token embedding), GPT-2-small-shaped;
- `pattern N`: the peak memory `explorer.pattern(layer, head)` adds to the process, against its
  result's size, Llama-shaped.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from kernel_probe import PeakMemory
from models import gpt2_small_shaped, hf_prompt_of, llama_shaped, prompt_of

from attn_widget import AttentionExplorer


def _llama_explorer(n: int, device: str) -> tuple[AttentionExplorer, list[str]]:
    model, tokenizer = llama_shaped("llama-small", n, device=device)
    explorer = AttentionExplorer(model, tokenizer=tokenizer, prompt=hf_prompt_of(tokenizer, 16))
    return explorer, [hf_prompt_of(tokenizer, n, seed=s) for s in range(1, 4)]


def _timed(action) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    action()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def detectors(n: int, device: str) -> dict:
    """The faster of two prompts each way: a shared machine's noise is larger than the difference."""
    explorer, prompts = _llama_explorer(n, device)
    without = min(_timed(lambda p=p: setattr(explorer, "prompt", p)) for p in prompts[:2])
    # A custom detector as a user writes one: a dense [n, n] expected pattern (previous token).
    explorer.add_detector("previous", lambda t: np.eye(len(t), k=-1, dtype=np.float32))
    with_one = min(_timed(lambda p=p: setattr(explorer, "prompt", p)) for p in (prompts[2], prompts[0]))
    assert "previous" in explorer.score_table and "sink_share" in explorer.score_table
    return {"without_s": without, "with_s": with_one}


def value(n: int, device: str) -> dict:
    model = gpt2_small_shaped(n_ctx=n, device=device)
    explorer = AttentionExplorer(model, prompt=prompt_of(model, 16))
    ready = _timed(lambda: setattr(explorer, "prompt", prompt_of(model, n)))
    calls: list[int] = []
    handle = model.embed.register_forward_pre_hook(lambda *_args: calls.append(1))
    try:
        first = _timed(lambda: setattr(explorer, "weighting", "value"))
    finally:
        handle.remove()
    return {"ready_s": ready, "first_selection_s": first, "forward_calls": len(calls), "error": explorer.error}


def pattern(n: int, device: str) -> dict:
    explorer, prompts = _llama_explorer(n, device)
    explorer.prompt = prompts[0]
    memory = PeakMemory(device)
    memory.start()
    result = explorer.pattern(1, 3)
    peak = memory.peak()
    return {"peak_bytes": peak, "result_bytes": result.nbytes}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("method", choices=["detectors", "value", "pattern"])
    parser.add_argument("n", type=int)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    measure = {"detectors": detectors, "value": value, "pattern": pattern}[args.method]
    print(json.dumps({**measure(args.n, args.device), "device": args.device}))


if __name__ == "__main__":
    main()
