"""Bytes of what a user shares: the explorer's standalone page (one layer embedded, compressed
binary) and its notebook snapshot, against CircuitsVis `attention_heads` for the same layer
(its page with its JS inlined, as it is saved offline), on a GPT-2-small-shaped random model.

    python benchmarks/export_sizes.py [--sizes 64 256 512 1024]

Prints a table and one `target` line: the standalone page at 256 tokens >= 5x smaller.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from models import gpt2_small_shaped, prompt_of  # noqa: E402

from attn_widget import AttentionExplorer  # noqa: E402
from attn_widget.export.snapshot import snapshot_html  # noqa: E402

MB = 1e6


def measure(n: int, out: Path) -> tuple[int, int, int, int]:
    import circuitsvis as cv

    model = gpt2_small_shaped(n_ctx=max(n, 1024))
    w = AttentionExplorer(model, prompt=prompt_of(model, n), layer=0, head=0)
    page = w.save(out / f"page-{n}.html").stat().st_size
    figure = w.save(out / f"all-{n}.svg", view="all").stat().st_size
    snapshot = len(snapshot_html(w.view_data(), w.snapshot_key).encode())
    patterns = w._session.current().layer_pattern(0).float().cpu().numpy()
    circuits = len(cv.attention.attention_heads(attention=patterns, tokens=list(w.tokens)).local_src.encode())
    return page, snapshot, figure, circuits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 512, 1024])
    args = parser.parse_args()
    print("| tokens | standalone page (1 layer, 12 heads) | notebook snapshot | SVG figure (all views) "
          "| CircuitsVis attention_heads | CircuitsVis / page |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|")
    ratios = {}
    with tempfile.TemporaryDirectory(prefix="attn-export-") as root:
        for n in args.sizes:
            page, snapshot, figure, circuits = measure(n, Path(root))
            ratios[n] = circuits / page
            print(f"| {n} | {page / MB:.2f} MB | {snapshot / 1e3:.0f} KB | {figure / 1e3:.0f} KB "
                  f"| {circuits / MB:.2f} MB | {ratios[n]:.1f}x |")  # fmt: skip
    if 256 in ratios:
        met = "met" if ratios[256] >= 5 else "missed"
        print(f"target standalone page at 256 tokens >= 5x smaller than CircuitsVis: {ratios[256]:.1f}x {met}")


if __name__ == "__main__":
    main()
