"""One kernel-side measurement in a fresh process, printed as JSON: time and peak memory of
a bare forward pass, of the explorer's prompt-to-ready, of a full run_with_cache (the GPT-2
bridge) or of an eager pass with output_attentions (the Llama shapes)."""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

import torch
from models import LLAMA_SHAPES, gpt2_small_shaped, hf_prompt_of, llama_shaped, prompt_of


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


class PeakMemory:
    """Peak bytes above the starting point: GPU allocations, or the process's resident set."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")

    def start(self) -> None:
        gc.collect()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak resident set
            self.base = _status("VmRSS")

    def peak(self) -> int:
        if self.cuda:
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() - self.base
        return _status("VmHWM") - self.base


def gpt2_runs(args: argparse.Namespace):
    model = gpt2_small_shaped(n_ctx=args.n, device=args.device)
    text = prompt_of(model, args.n)
    tokens = model.to_tokens(text, truncate=False).to(args.device)
    warm = prompt_of(model, 16)

    if args.method == "explorer":
        from attn_widget import AttentionExplorer

        explorer = AttentionExplorer(model, prompt=warm)
        other = prompt_of(model, args.n, seed=1)  # same length, so repeats alternate and each one runs

        def run() -> None:
            explorer.prompt = text if explorer.prompt != text else other
    elif args.method == "forward":
        model(model.to_tokens(warm), return_type=None)

        def run() -> None:
            with torch.inference_mode():
                model(tokens, return_type=None)
    else:
        model.run_with_cache(model.to_tokens(warm))

        def run() -> None:
            with torch.inference_mode():
                _, cache = model.run_with_cache(tokens)
            del cache

    return run


def llama_runs(args: argparse.Namespace):
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    model, tokenizer = llama_shaped(args.model, args.n, device=args.device, dtype=dtype)
    text, warm = hf_prompt_of(tokenizer, args.n), hf_prompt_of(tokenizer, 16)

    def ids(prompt: str) -> torch.Tensor:
        return torch.tensor([[0, *tokenizer.encode(prompt, add_special_tokens=False)]], device=args.device)

    if args.method == "explorer":
        from attn_widget import AttentionExplorer

        explorer = AttentionExplorer(model, tokenizer=tokenizer, prompt=warm)
        other = hf_prompt_of(tokenizer, args.n, seed=1)

        def run() -> None:
            explorer.prompt = text if explorer.prompt != text else other

        return run
    if args.method == "eager":
        model.set_attn_implementation("eager")
    tokens = ids(text)
    keep_weights = args.method == "eager"

    def forward(input_ids: torch.Tensor) -> None:
        with torch.inference_mode():
            out = model.model(input_ids=input_ids, use_cache=False, output_attentions=keep_weights)
        del out

    forward(ids(warm))
    return lambda: forward(tokens)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("method", choices=["forward", "explorer", "cache", "eager"])
    parser.add_argument("n", type=int)
    parser.add_argument("--model", default="gpt2-small", choices=["gpt2-small", *LLAMA_SHAPES])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    run = gpt2_runs(args) if args.model == "gpt2-small" else llama_runs(args)

    memory = PeakMemory(args.device)
    times = []
    peak = 0
    for _ in range(args.repeats):
        memory.start()
        start = time.perf_counter()
        run()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        peak = max(peak, memory.peak())
    print(json.dumps({"seconds": sorted(times)[len(times) // 2], "peak_bytes": peak, "device": args.device}))


if __name__ == "__main__":
    main()
