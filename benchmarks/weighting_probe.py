"""Head switch time with a weighting or a compare prompt selected, against plain attention, measured
side by side in one process (issue 12: within 1.2x of plain attention).

(a) the kernel: the time to answer the front end's head request (whole head up to 512 tokens, a
    tile of the whole prompt above), per mode, on a GPT-2-small-shaped random model; and the one-off
    cost of selecting each mode (the extra passes it runs once per prompt);
(b) with --browser: the explorer's head switch latency in JupyterLab (headless Chromium), arrow
    keys through the heads, with `weighting="value"` against plain attention.

python benchmarks/weighting_probe.py [--sizes 256 1024] [--browser]
Prints a table, then `target NAME: VALUE met|missed` lines.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from models import gpt2_small_shaped, prompt_of  # noqa: E402

SWITCHES = 24
MODES = ("attention", "value", "compare", "compare+value")


def head_request(i: int, n: int, n_layers: int, n_heads: int) -> dict:
    layer, head = divmod(i % (n_layers * n_heads), n_heads)
    if n <= 512:
        return {"type": "pattern", "id": i, "layer": layer, "head": head}
    window = {"q0": 0, "q1": n, "k0": 0, "k1": n, "rows": 560, "cols": 560}  # the whole prompt, zoomed out
    return {"type": "tile", "id": i, "layer": layer, "head": head, **window}


def select_mode(w, mode: str, compare_prompt: str) -> float:
    """Seconds to select `mode` (its one-off passes included)."""
    start = time.perf_counter()
    w.compare_prompt = compare_prompt if mode.startswith("compare") else ""
    w.weighting = "value" if mode.endswith("value") else "attention"
    return time.perf_counter() - start


def kernel_switch_ms(w, n: int, compare_prompt: str) -> dict[str, list[float]]:
    """Per mode, the time to answer each head request; the modes take turns on each head (in a
    rotating order), so a busy machine slows them alike."""
    w.send = lambda content, buffers=None: None
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    for i in range(SWITCHES):
        request = head_request(i * 5, n, w.n_layers, w.n_heads)  # stride 5: not always the same layer
        for k in range(len(MODES)):  # each mode goes first in turn: none always meets a cold cache
            mode = MODES[(i + k) % len(MODES)]
            select_mode(w, mode, compare_prompt)
            start = time.perf_counter()
            w._on_front_end_message(w, request, [])
            times[mode].append((time.perf_counter() - start) * 1000)
    return times


def kernel_table(sizes: list[int]) -> dict[int, dict[str, float]]:
    from attn_widget import AttentionExplorer

    print("| tokens | mode | select (first) s | select (again) s | head switch ms median | vs attention |")
    print("|---|---|---|---|---|---|")
    ratios: dict[int, dict[str, float]] = {}
    for n in sizes:
        model = gpt2_small_shaped(n_ctx=n)
        w = AttentionExplorer(model, prompt=prompt_of(model, n, seed=0))
        compare_prompt = prompt_of(model, n, seed=1)
        first = {mode: select_mode(w, mode, compare_prompt) for mode in MODES}
        again = {mode: select_mode(w, mode, compare_prompt) for mode in MODES}
        medians = {mode: statistics.median(ms) for mode, ms in kernel_switch_ms(w, n, compare_prompt).items()}
        ratios[n] = {mode: medians[mode] / medians["attention"] for mode in MODES}
        for mode in MODES:
            print(
                f"| {n} | {mode} | {first[mode]:.2f} | {again[mode]:.3f} | {medians[mode]:.2f} "
                f"| {ratios[n][mode]:.2f}x |"
            )
    return ratios


def browser_switch(sizes: list[int]) -> dict[int, dict[str, float]]:
    import tempfile

    from browser_probe import SWITCH_HEADS

    from attn_widget.testing.lab import chromium, open_and_run, running_lab

    results: dict[int, dict[str, float]] = {}
    print("\n| tokens | weighting | browser head switch ms median | vs attention |")
    print("|---|---|---|---|")
    with (
        tempfile.TemporaryDirectory(prefix="attn-weigh-") as root,
        running_lab(Path(root)) as lab,
        chromium() as browser,
    ):
        for n in sizes:
            setup = (
                f"import sys\nsys.path.insert(0, {str(BENCH_DIR)!r})\n"
                "from models import gpt2_small_shaped, prompt_of\n"
                "from attn_widget import AttentionExplorer\n"
                f"model = gpt2_small_shaped(n_ctx={n})\n"
                f"w = AttentionExplorer(model, prompt=prompt_of(model, {n}))"
            )
            notebook = lab.write_notebook(f"weigh-{n}.ipynb", [setup, "w"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            try:
                open_and_run(page, lab, notebook)
                page.wait_for_function(
                    "document.querySelector('[data-view=heatmap]')?.dataset.drawn", timeout=600_000, polling=200
                )
                medians = {}
                for _ in range(2):  # alternate; the second round is reported
                    for weighting in ("attention", "value"):
                        page.locator("[data-view=heatmap] select[data-role=weighting]").select_option(weighting)
                        grid = "document.querySelector('[data-view=grid] select[data-role=weighting]')"
                        page.wait_for_function(f"{grid}.value === '{weighting}'")
                        page.wait_for_timeout(1500)  # the one-off passes and the redraw
                        medians[weighting] = statistics.median(page.evaluate(SWITCH_HEADS, [SWITCHES, 12]))
            finally:
                page.close()
            results[n] = {k: v / medians["attention"] for k, v in medians.items()}
            for weighting, ms in medians.items():
                print(f"| {n} | {weighting} | {ms:.1f} | {results[n][weighting]:.2f}x |")
    return results


def target(name: str, value: str, met: bool) -> None:
    print(f"target {name}: {value} {'met' if met else 'missed'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--browser", action="store_true", help="also time head switches in JupyterLab")
    args = parser.parse_args()
    ratios = kernel_table(args.sizes)
    for n, by_mode in ratios.items():
        for mode in ("value", "compare", "compare+value"):
            ratio = by_mode[mode]
            target(f"kernel head switch, {mode}, {n} tokens, within 1.2x of attention", f"{ratio:.2f}x", ratio <= 1.2)
    if args.browser:
        for n, by_mode in browser_switch(args.sizes).items():
            ratio = by_mode["value"]
            name = f"browser head switch, value weighting, {n} tokens, within 1.2x of attention"
            target(name, f"{ratio:.2f}x", ratio <= 1.2)


if __name__ == "__main__":
    main()
