"""attn-widget against its baselines, measured side by side in one run (issue 5).

(a) headless Chromium: first full paint and head-switch latency of the explorer (in JupyterLab)
    and of CircuitsVis `attention_heads` (its own page), same model, prompt and layer, with the
    bytes each sends to the browser;
(b) the kernel: prompt-to-ready time and peak memory of the explorer against a bare forward pass
    and a full `run_with_cache`, each in a fresh process, on the GPU when there is one.

Run with `make bench`; prints two tables, then one line per target: `target NAME: VALUE met|missed`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import torch  # noqa: E402
from browser_probe import Paint, measure_circuitsvis, measure_explorer, summary  # noqa: E402
from models import gpt2_small_shaped, prompt_of  # noqa: E402

from attn_widget.testing.lab import chromium, running_lab  # noqa: E402

N_LAYERS = N_HEADS = 12
CIRCUITSVIS_MAX_TOKENS = 1024
"""Above this, CircuitsVis's page is not built: one layer at 4096 tokens is gigabytes of JSON."""
MB = 1e6


def fmt(value: float | None, unit: str = "", digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}{unit}"


# ---- (a) browser -----------------------------------------------------------------------------


def circuitsvis_html(n: int) -> str:
    import circuitsvis as cv

    model = gpt2_small_shaped(n_ctx=n)
    tokens = model.to_tokens(prompt_of(model, n), truncate=False)
    with torch.inference_mode():
        _, cache = model.run_with_cache(tokens, names_filter="blocks.0.attn.hook_pattern")
    patterns = cache["blocks.0.attn.hook_pattern"][0].numpy()
    strs = [str(t) for t in model.to_str_tokens(tokens[0])]
    # local_src: the page with CircuitsVis's own JS inlined, as Jupyter shows it offline
    return cv.attention.attention_heads(attention=patterns, tokens=strs).local_src


def browser_table(sizes: list[int], bound_s: float, circuitsvis: bool = True) -> dict[int, tuple[Paint, Paint | None]]:
    results = {}
    with (
        tempfile.TemporaryDirectory(prefix="attn-bench-") as root,
        running_lab(Path(root), kernel_path=[BENCH_DIR.parent / "tests"]) as lab,
        chromium() as browser,
    ):
        for n in sizes:
            explorer = measure_explorer(browser, lab, n, N_LAYERS, N_HEADS)
            cv = None
            if circuitsvis and n <= CIRCUITSVIS_MAX_TOKENS:
                cv = measure_circuitsvis(browser, circuitsvis_html(n), N_HEADS, bound_s)
            results[n] = (explorer, cv)
            print(f"  measured {n} tokens", file=sys.stderr, flush=True)
    print_browser_table(results, bound_s)
    return results


def ms_pair(values: list[float]) -> str:
    pair = summary(values)
    return f"{fmt(pair and pair[0], '', 1)} / {fmt(pair and pair[1], '', 1)}"


def print_browser_table(results: dict[int, tuple[Paint, Paint | None]], bound_s: float) -> None:
    print(f"\n(a) headless Chromium, GPT-2-small-shaped random model ({N_LAYERS} layers x {N_HEADS} heads); "
          f"CircuitsVis: one layer, bound {bound_s:.0f} s")  # fmt: skip
    print(
        "| tokens | explorer paint ms | CircuitsVis paint ms | paint speed-up "
        "| switch ms median / p95: layer walk | paced walk | random jump | random jump, preview "
        "| CircuitsVis switch ms median / p95 | explorer bytes: first paint / one-layer walk (today's) "
        "| CircuitsVis bytes |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n, (ex, cv) in results.items():
        cv_paint = "-" if cv is None else fmt(cv.first_paint_ms) if cv.first_paint_ms else f"> {bound_s * 1000:,.0f}"
        speedup = cv.first_paint_ms / ex.first_paint_ms if cv and cv.first_paint_ms and ex.first_paint_ms else None
        walk_bytes = f"{fmt(ex.first_paint_bytes)} / {fmt(ex.layer_walk_bytes)} ({fmt(ex.today_bytes)})"
        print(f"| {n} | {fmt(ex.first_paint_ms)} | {cv_paint} | {fmt(speedup, 'x', 1)} "
              f"| {ms_pair(ex.switch_ms)} | {ms_pair(ex.paced_ms)} | {ms_pair(ex.jump_ms)} "
              f"| {ms_pair(ex.jump_visible_ms)} | {ms_pair(cv.switch_ms if cv else [])} "
              f"| {walk_bytes} | {fmt(cv and cv.first_paint_bytes)} |")  # fmt: skip


# ---- (b) kernel ------------------------------------------------------------------------------


def probe(method: str, n: int, repeats: int, model: str = "gpt2-small") -> dict:
    command = [sys.executable, str(BENCH_DIR / "kernel_probe.py"), method, str(n), "--repeats", str(repeats)]
    out = subprocess.run([*command, "--model", model], capture_output=True, text=True, check=True, cwd=BENCH_DIR)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cache_bytes_estimate(n: int, layers: int = 12, heads: int = 12, d_model: int = 768) -> int:
    """What a full run_with_cache must hold at least: attention scores and patterns (float32) and
    about 12 residual-sized activations per layer."""
    return layers * (2 * heads * n * n * 4 + 12 * n * d_model * 4)


def available_bytes() -> int:
    if torch.cuda.is_available():
        return torch.cuda.mem_get_info()[0]
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def kernel_table(sizes: list[int]) -> dict[int, dict]:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    results = {}
    for n in sizes:
        repeats = 3 if n <= 1024 else 1
        row = {"forward": probe("forward", n, repeats), "explorer": probe("explorer", n, repeats)}
        estimate = cache_bytes_estimate(n)
        if estimate < 0.7 * available_bytes():
            row["cache"] = probe("cache", n, 1)
        else:
            row["cache"] = {"seconds": None, "peak_bytes": None, "estimate": estimate}
        results[n] = row
        print(f"  measured kernel at {n} tokens", file=sys.stderr, flush=True)
    print(f"\n(b) kernel on {device} ({torch.get_num_threads()} threads), GPT-2-small-shaped random model")
    print(
        "| tokens | forward s | explorer prompt-to-ready s | ratio | run_with_cache s "
        "| peak MB: forward / explorer / run_with_cache | run_with_cache / explorer |"
    )
    print("|---|---|---|---|---|---|---|")
    for n, row in results.items():
        f, e, c = row["forward"], row["explorer"], row["cache"]
        cache_peak = c["peak_bytes"] if c["peak_bytes"] is not None else c["estimate"]
        estimated = "" if c["peak_bytes"] is not None else " (estimated, not run: over memory)"
        peaks = f"{fmt(f['peak_bytes'] / MB)} / {fmt(e['peak_bytes'] / MB)} / {fmt(cache_peak / MB)}{estimated}"
        print(f"| {n} | {fmt(f['seconds'], '', 2)} | {fmt(e['seconds'], '', 2)} | {e['seconds'] / f['seconds']:.2f}x "
              f"| {fmt(c['seconds'], '', 2)} | {peaks} | {cache_peak / e['peak_bytes']:.1f}x |")  # fmt: skip
    return results


def llama_table(sizes: list[int], model: str = "llama-small") -> dict[int, dict]:
    """Bare sdpa forward vs explorer prompt-to-ready vs eager output_attentions (where it fits)."""
    from models import LLAMA_SHAPES

    shape = LLAMA_SHAPES[model]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    results = {}
    for n in sizes:
        row = {"forward": probe("forward", n, 1, model), "explorer": probe("explorer", n, 1, model)}
        eager_bytes = shape["num_hidden_layers"] * shape["num_attention_heads"] * n * n * 4 * 2
        row["eager"] = probe("eager", n, 1, model) if eager_bytes < 0.5 * available_bytes() else None
        results[n] = row
        print(f"  measured {model} at {n} tokens", file=sys.stderr, flush=True)
    print(f"\n(c) kernel on {device}, {model}-shaped random model ({shape['num_hidden_layers']} layers, "
          f"{shape['num_attention_heads']} query / {shape['num_key_value_heads']} key-value heads, "
          f"d_head {shape['head_dim']})")  # fmt: skip
    print("| tokens | sdpa forward s | explorer prompt-to-ready s | ratio | eager output_attentions s "
          "| peak MB: forward / explorer / eager | explorer / forward peak |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for n, row in results.items():
        f, e, g = row["forward"], row["explorer"], row["eager"]
        eager_s = fmt(g["seconds"], "", 2) if g else "does not fit"
        eager_mb = fmt(g["peak_bytes"] / MB) if g else "-"
        print(f"| {n} | {fmt(f['seconds'], '', 2)} | {fmt(e['seconds'], '', 2)} | {e['seconds'] / f['seconds']:.2f}x "
              f"| {eager_s} | {fmt(f['peak_bytes'] / MB)} / {fmt(e['peak_bytes'] / MB)} / {eager_mb} "
              f"| {e['peak_bytes'] / max(f['peak_bytes'], 1):.2f}x |")  # fmt: skip
    return results


# ---- (d) what the prompt's one pass gives ------------------------------------------------------


def one_pass_probe(method: str, n: int) -> dict | str:
    """One row in a fresh process; a failure becomes its reason, so the other rows survive it."""
    command = [sys.executable, str(BENCH_DIR / "one_pass_probe.py"), method, str(n)]
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=BENCH_DIR)
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))
    except subprocess.CalledProcessError as err:
        return f"failed: {(err.stderr or '').strip().splitlines()[-1:] or err.returncode}"
    except (ValueError, IndexError) as err:
        return f"failed: {err}"


def one_pass_table(detector_sizes: list[int], value_sizes: list[int], pattern_sizes: list[int]) -> dict:
    rows: dict[str, dict[int, dict | str]] = {"detectors": {}, "value": {}, "pattern": {}}
    for method, sizes in (("detectors", detector_sizes), ("value", value_sizes), ("pattern", pattern_sizes)):
        for n in sizes:
            rows[method][n] = one_pass_probe(method, n)
            print(f"  measured {method} at {n} tokens", file=sys.stderr, flush=True)
    print("\n(d) from the prompt's one pass: detectors and sinks (llama-small), value weighting (GPT-2-small-shaped), "
          "pattern() memory (llama-small)")  # fmt: skip
    print("| measurement | tokens | baseline | with it | ratio |")
    print("|---|---|---|---|---|")

    def table(kind: str, failed: str, row: Callable[[int, dict], str]) -> None:
        """One row per size; a size that failed says why and the others still print."""
        for n, r in rows[kind].items():
            print(f"| {failed} | {n} | {r} | - | - |" if isinstance(r, str) else row(n, r))

    table(
        "detectors",
        "prompt-to-ready, one custom detector",
        lambda n, r: (
            f"| prompt-to-ready s, without / with one custom detector | {n} | {r['without_s']:.2f} "
            f"| {r['with_s']:.2f} | {r['with_s'] / r['without_s']:.2f}x |"
        ),
    )
    table(
        "value",
        "value weighting, first selection",
        lambda n, r: (
            f"| prompt-to-ready s / first value selection s ({r['forward_calls']} forward calls) | {n} "
            f"| {r['ready_s']:.2f} | {r['first_selection_s']:.2f} | {r['first_selection_s'] / r['ready_s']:.2f}x |"
        ),
    )
    table(
        "pattern",
        "pattern() peak",
        lambda n, r: (
            f"| pattern() MB: result / peak added | {n} | {r['result_bytes'] / MB:,.0f} "
            f"| {r['peak_bytes'] / MB:,.0f} | {r['peak_bytes'] / r['result_bytes']:.2f}x |"
        ),
    )
    return rows


def report_one_pass_targets(rows: dict) -> None:
    for n, r in rows.get("detectors", {}).items():
        name = f"detectors and sinks at {n} tokens: prompt-to-ready with one custom detector <= 1.3x without"
        if isinstance(r, str):
            target(name, r, False)
        else:
            target(name, f"{r['with_s'] / r['without_s']:.2f}x", r["with_s"] <= 1.3 * r["without_s"])
    for n, r in rows.get("value", {}).items():
        if isinstance(r, str):
            target(f"value weighting at {n} tokens: no second forward pass", r, False)
            continue
        calls = r["forward_calls"]
        target(f"value weighting at {n} tokens: no second forward pass", f"{calls} forward calls", calls == 0)
        ratio = r["first_selection_s"] / r["ready_s"]
        name = f"value weighting at {n} tokens: first selection <= the prompt's prompt-to-ready"
        target(name, f"{ratio:.2f}x ({r['first_selection_s']:.2f} s / {r['ready_s']:.2f} s)", ratio <= 1)
    for n, r in rows.get("pattern", {}).items():
        name = f"pattern() peak at {n} tokens <= 2x its result"
        if isinstance(r, str):
            target(name, r, False)
        else:
            ratio = r["peak_bytes"] / r["result_bytes"]
            target(name, f"{ratio:.2f}x", ratio <= 2)


# ---- targets ---------------------------------------------------------------------------------


def target(name: str, value: str, met: bool) -> None:
    print(f"target {name}: {value} {'met' if met else 'missed'}")


def report_llama_targets(llama: dict[int, dict], speed_bound: float) -> None:
    if not llama:
        return
    worst_n, worst = max(((n, r["explorer"]["seconds"] / r["forward"]["seconds"]) for n, r in llama.items()),
                         key=lambda t: t[1])  # fmt: skip
    target(f"Llama prompt-to-ready <= {speed_bound:g}x a bare sdpa forward", f"{worst:.2f}x (worst, at {worst_n})",
           worst <= speed_bound)  # fmt: skip
    fixed = 256 * 2**20
    over = [(n, r["explorer"]["peak_bytes"] / (1.5 * r["forward"]["peak_bytes"] + fixed)) for n, r in llama.items()]
    worst_n, worst = max(over, key=lambda t: t[1])
    target("Llama peak <= 1.5x bare forward + 256 MiB", f"{worst:.2f} of the bound (worst, at {worst_n})", worst <= 1)


def report_jump(n: int, paint: Paint, bound_ms: float) -> None:
    """A click on another head (overview), 200 ms apart, with prefetch on: the asked head goes first."""
    pair = summary(paint.jump_ms)
    value = "no jumps measured" if pair is None else f"{pair[1]:.1f} ms"
    target(f"random jump p95 at {n} tokens <= {bound_ms:g} ms", value, pair is not None and pair[1] <= bound_ms)


def report_targets(browser: dict[int, tuple[Paint, Paint | None]], kernel: dict[int, dict]) -> None:
    print()
    if 256 in browser and browser[256][1] is not None:
        ex, cv = browser[256]
        if cv.first_paint_ms is None:
            target("first paint at 256 tokens >= 100x faster than CircuitsVis", "CircuitsVis did not finish", True)
        else:
            speedup = cv.first_paint_ms / ex.first_paint_ms
            target("first paint at 256 tokens >= 100x faster than CircuitsVis", f"{speedup:.0f}x", speedup >= 100)
    if 1024 in browser:
        ex, _ = browser[1024]
        p95 = summary(ex.switch_ms)[1]
        target("head switch p95 at 1024 tokens < 50 ms", f"{p95:.1f} ms", p95 < 50)
        target("layer walk (back-to-back presses) p95 at 1024 tokens <= 16 ms", f"{p95:.1f} ms", p95 <= 16)
        paced = summary(ex.paced_ms)[1]
        target("paced walk (presses 200 ms apart) p95 at 1024 tokens <= 16 ms", f"{paced:.1f} ms", paced <= 16)
        per_message = max(ex.switch_bytes)
        report_jump(1024, ex, 50)
        target("largest message at 1024 tokens <= 1.1 MB", f"{per_message / MB:.3f} MB", per_message <= 1.1 * MB)
    if 4096 in browser:
        report_jump(4096, browser[4096][0], 150)
    if browser:
        ratios = {n: ex.layer_walk_bytes / ex.today_bytes for n, (ex, _) in browser.items()}
        worst = max(ratios, key=ratios.__getitem__)
        value = f"{ratios[worst]:.2f}x (worst, at {worst} tokens)"
        target("bytes per prompt (first paint + a walk through one layer) <= 4x today's", value, ratios[worst] <= 4)
    if kernel:
        worst_n, worst = max(
            ((n, r["explorer"]["seconds"] / r["forward"]["seconds"]) for n, r in kernel.items()), key=lambda t: t[1]
        )
        value = f"{worst:.2f}x (worst, at {worst_n} tokens)"
        target("prompt-to-ready <= 1.3x a bare forward pass", value, worst <= 1.3)
    if 4096 in kernel:
        c, e = kernel[4096]["cache"], kernel[4096]["explorer"]
        cache_peak = c["peak_bytes"] if c["peak_bytes"] is not None else c["estimate"]
        ratio = e["peak_bytes"] / cache_peak
        note = "" if c["peak_bytes"] is not None else " of run_with_cache's estimated minimum"
        target("peak memory at 4096 tokens <= 1/10 of run_with_cache", f"{ratio:.3f}{note}", ratio <= 0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64,256,1024,4096", help="prompt lengths for the browser part")
    parser.add_argument("--kernel-sizes", default="1024,4096", help="prompt lengths for the kernel part")
    parser.add_argument("--circuitsvis-bound", type=float, default=150.0, help="seconds before giving up on a paint")
    parser.add_argument("--llama-sizes", default="4096,8192,16384,32768", help="prompt lengths, Llama-shaped rows")
    parser.add_argument("--llama-model", default="llama-small", help="llama-small (CPU) or llama3-8b (GPU)")
    parser.add_argument("--detector-sizes", default="8192", help="prompt lengths, detectors and sinks rows")
    parser.add_argument("--value-sizes", default="4096", help="prompt lengths, value weighting rows")
    parser.add_argument("--pattern-sizes", default="12288", help="prompt lengths, pattern() memory rows")
    parser.add_argument(
        "--switch-only", action="store_true", help="only the explorer's head switches: no CircuitsVis, no kernel part"
    )
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sizes = [int(s) for s in args.sizes.split(",") if s]
    kernel_sizes = [int(s) for s in args.kernel_sizes.split(",") if s]
    browser = browser_table(sizes, args.circuitsvis_bound, not args.switch_only) if sizes else {}
    kernel = kernel_table(kernel_sizes) if kernel_sizes and not args.switch_only else {}
    llama_sizes = [int(s) for s in args.llama_sizes.split(",") if s and not args.switch_only]
    llama = llama_table(llama_sizes, args.llama_model) if llama_sizes else {}
    one_pass: dict = {}
    if not args.switch_only:
        sizes_of = [[int(s) for s in text.split(",") if s] for text in
                    (args.detector_sizes, args.value_sizes, args.pattern_sizes)]  # fmt: skip
        one_pass = one_pass_table(*sizes_of)
    report_targets(browser, kernel)
    report_llama_targets(llama, 3.0 if torch.cuda.is_available() else 5.0)
    report_one_pass_targets(one_pass)
    if not torch.cuda.is_available():
        print("GPU rows (make bench-gpu): not run, no GPU on this machine")
    if not args.switch_only:  # query-key decomposition at 4,096 tokens and the ablation sweep (why_probe.py)
        import why_probe

        why_probe.main([])


if __name__ == "__main__":
    main()
