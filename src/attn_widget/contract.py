"""The kernel-browser contract: every name, constant and list both sides need, defined once, here,
and written to js/contract.gen.ts by `python -m attn_widget.contract`. Imports nothing of the package.

The generated module is committed (tsc, biome and esbuild then run without Python) and
tests/test_contract.py fails when it is out of date: run `make contract` after changing this.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

PROMPT_METRICS: tuple[str, ...] = (
    "previous_token",
    "current_token",
    "duplicate_token",
    "induction",
    "first_token",
    "entropy",
    "max_attention",
    "mean_distance",
)
"""The eight head scores every prompt gets (maths/dense_scores.py, maths/reductions.py)."""

HEAD_CLASSES: tuple[str, ...] = (
    "previous-token",
    "current-token",
    "induction",
    "duplicate-token",
    "first-token sink",
    "diffuse",
    "other",
)
"""Each head is named by its strongest pattern (maths/head_classes.py): a previous-token,
current-token (attends to itself), induction or duplicate-token head when that score reaches
head_classes.PATTERN_THRESHOLD, else a first-token sink, else diffuse or other."""

HEAD_LABEL = "L{layer}H{head}"
"""The one way a head is written, in every view, figure and message (`L1H2`): head_label() here,
headLabel() in js/views/labels.ts."""


def head_label(layer: int, head: int) -> str:
    """`L1H2`: layer 1, head 2 (HEAD_LABEL)."""
    return HEAD_LABEL.format(layer=layer, head=head)


WEIGHTINGS: tuple[str, ...] = ("attention", "value")
"""What the views weigh: attention, or `||A f(x)||` (value-weighted, Kobayashi et al. 2020)."""

WEIGHTING_LABELS: dict[str, str] = {"attention": "attention", "value": "value-weighted \u2016A f(x)\u2016"}

WHOLE_HEAD_MAX_TOKENS = 512
"""Up to this prompt length a head travels whole as float16 (512 KiB); longer ones as uint8 tiles."""

MAX_TILE_CELLS = 1024
"""The largest tile a side the kernel sends: the front end never asks for more."""

DLA = "direct_logit_attribution"
"""Score name: each head's direct logit attribution (answer minus counterfactual)."""
CHANGE = "change_l1"
"""Score name: mean row L1 distance between the two prompts' patterns of a head (0 to 2)."""
CHANGE_SUFFIX = "_change"
"""Score name of a metric's change against the compare prompt: metric + CHANGE_SUFFIX."""
DATASET_PREFIX = "dataset:"
"""Score name of a metric's mean over the last dataset run: DATASET_PREFIX + metric."""
RETRIEVAL = "retrieval"
"""Score name of the retrieval test (Wu et al. 2024)."""
ABLATION = "ablation_effect"
"""Score name: the change in the logit difference (no answer: the loss) when a head's output is ablated."""
SIGNED_METRICS: tuple[str, ...] = (DLA, ABLATION)
"""Metrics whose sign carries meaning: the score views draw them with the diverging scale, 0 in the middle."""
SINK_SHARE = "sink_share"
"""Score name: the share of a head's attention on its sink keys."""
BUILT_IN_DETECTORS: tuple[str, ...] = ("same_token", "successor")
"""Detectors every explorer has from the start."""

REPEATED_TOKENS = "repeated_tokens"
"""Metric key of the repeated random token test: a property of the model, not of the prompt."""

METRIC_LABELS: dict[str, str] = {
    REPEATED_TOKENS: "induction (repeated random tokens)",
    "induction": "induction (this prompt)",
    "previous_token": "previous token",
    "current_token": "current token (self)",
    "duplicate_token": "duplicate token",
    "first_token": "first token",
    "entropy": "entropy",
    "max_attention": "max attention",
    "mean_distance": "mean attention distance",
    DLA: "direct logit attribution (answer minus counterfactual)",
    CHANGE: "change vs compare prompt (mean row L1)",
    SINK_SHARE: "attention on sinks",
    RETRIEVAL: "retrieval (needle in a haystack)",
    ABLATION: "ablation effect (change in logit difference, or loss)",
    "same_token": "same token (detector)",
    "successor": "successor (detector)",
}
"""Every metric the score view can show, in menu order. Which ones an explorer offers is the keys
of its `score_table`: precomputed attention has no model to run the repeated random token test.
With a compare prompt, each metric also comes as "<metric>_change" (CHANGE_SUFFIX); after a dataset
run as "dataset:<metric>" (DATASET_PREFIX); custom detectors keep their names."""

RESERVED_METRICS: frozenset[str] = frozenset(METRIC_LABELS)
"""Names a custom detector may not take (nor any name starting with DATASET_PREFIX or ending in
CHANGE_SUFFIX), so it never replaces a built-in metric in the score views."""

COLOR_STOPS: dict[str, list[tuple[int, int, int]]] = {
    # light themes: white (no attention) to deep blue, the reference notebook's "Blues"
    "blues": [(247, 251, 255), (198, 219, 239), (107, 174, 214), (33, 113, 181), (8, 48, 107)],
    # dark themes: near-black to pale blue, so strong weights stand out on dark
    "blues_dark": [(17, 20, 28), (18, 56, 102), (33, 113, 181), (107, 174, 214), (222, 235, 247)],
    # score views, where both ends carry meaning
    "viridis": [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)],
    # signed values (a difference, an attribution): blue below zero, white at zero, red above
    "red_blue": [(33, 102, 172), (146, 197, 222), (247, 247, 247), (244, 165, 130), (178, 24, 43)],
    "red_blue_dark": [(67, 147, 195), (33, 72, 110), (24, 24, 28), (120, 40, 40), (214, 96, 77)],
}
"""Colour ramps (256 entries interpolated between the stops), drawn alike by canvas and figures."""

HEAD_CLASS_COLORS: dict[str, str] = {
    "previous-token": "#1f77b4",
    "current-token": "#2ca02c",
    "induction": "#d62728",
    "duplicate-token": "#9467bd",
    "first-token sink": "#7f7f7f",
    "diffuse": "#bcbd22",
    "other": "#17becf",
}

COLOR_SCALES: tuple[str, ...] = ("linear", "log", "row")
SHADE_BY: tuple[str, ...] = ("received", "given", "attribution")

assert set(METRIC_LABELS) == {
    REPEATED_TOKENS, *PROMPT_METRICS, DLA, CHANGE, SINK_SHARE, RETRIEVAL, *BUILT_IN_DETECTORS, ABLATION
}  # fmt: skip
assert tuple(HEAD_CLASS_COLORS) == HEAD_CLASSES, "every head class needs a colour"

METRIC_GROUPS: dict[str, str] = {
    "scores": "head scores",
    "tests": "tests",
    "attribution": "attribution",
    "changes": "changes vs compare prompt",
    "dataset": "dataset means",
    "detectors": "your detectors",
}
"""The metric menu's groups, in order, with their headings."""

METRIC_GROUP: dict[str, str] = {
    **dict.fromkeys(PROMPT_METRICS, "scores"),
    SINK_SHARE: "scores",
    REPEATED_TOKENS: "tests",
    RETRIEVAL: "tests",
    DLA: "attribution",
    ABLATION: "attribution",
    CHANGE: "changes",
    **dict.fromkeys(BUILT_IN_DETECTORS, "detectors"),
}
"""The group of each metric of METRIC_LABELS; "<metric>_change" is in "changes", "dataset:<metric>" in
"dataset", and a custom detector in "detectors"."""

METRIC_UNITS: dict[str, str] = {
    "entropy": "nats",
    "mean_distance": "tokens",
    DLA: "logits",
    ABLATION: "logits (or loss)",
    CHANGE: "mean row L1 (0 to 2)",
}
"""What a metric's colour bar says its values are in; a metric not listed is a share of attention."""

COLORBAR_UNITS: dict[str, str] = {
    "attention": "attention weight",
    "value": "\u2016A f(x)\u2016 (value-weighted)",
    "difference": "weight, prompt \u2212 compare prompt",
    "attribution": "logits",
    "similarity": "Jensen-Shannon distance (bits)",
    "score": "share of attention",
}
"""What each map's colour bar says its values are in."""

COMPOSITION_LABELS: dict[str, str] = {
    "q": "Q-composition score",
    "k": "K-composition score",
    "v": "V-composition score",
}
"""The head composition view's kinds (the composition_kind trait) and what its colour bar shows."""

assert set(METRIC_GROUP) == set(METRIC_LABELS) and set(METRIC_GROUP.values()) <= set(METRIC_GROUPS)

GENERATED_PATH = Path("js") / "contract.gen.ts"


def _union(values: tuple[str, ...] | list[str]) -> str:
    return " | ".join(json.dumps(v) for v in values)


def _constants() -> list[tuple[str, str, Any]]:
    """(TypeScript name, doc comment, value) of each constant."""
    return [
        (
            "WHOLE_HEAD_MAX_TOKENS",
            "Up to this many tokens a head travels whole; above, as tiles.",
            WHOLE_HEAD_MAX_TOKENS,
        ),
        ("MAX_TILE_CELLS", "The kernel's largest tile a side: the front end never asks for more.", MAX_TILE_CELLS),
        ("HEAD_LABEL", "How a head is written everywhere: {layer} and {head} filled in (headLabel).", HEAD_LABEL),
        ("REPEATED_TOKENS", "Metric key of the repeated random token test.", REPEATED_TOKENS),
        ("METRIC_LABELS", "Every metric the score view can show, in menu order, with its label.", METRIC_LABELS),
        (
            "HEAD_CLASS_COLORS",
            "Head classes (maths/head_classes.py) and the colour each is drawn in.",
            HEAD_CLASS_COLORS,
        ),
        ("COLOR_SCALES", "The heatmap's colour scales (the color_scale trait).", list(COLOR_SCALES)),
        ("SHADE_BY", "What the token strip shades by (the shade_by trait).", list(SHADE_BY)),
        ("WEIGHTINGS", "What the views weigh (the weighting trait).", list(WEIGHTINGS)),
        ("WEIGHTING_LABELS", "How the weighting menu names each weighting.", WEIGHTING_LABELS),
        ("CHANGE_SUFFIX", "A metric's change against the compare prompt is named metric + this.", CHANGE_SUFFIX),
        ("DATASET_PREFIX", "A metric's mean over a dataset run is named this + metric.", DATASET_PREFIX),
        ("DLA", "Metric key of direct logit attribution.", DLA),
        ("CHANGE", "Metric key of the mean row L1 change against the compare prompt.", CHANGE),
        ("ABLATION", "Metric key of the ablation effect.", ABLATION),
        ("SIGNED_METRICS", "Metrics drawn with the diverging scale in the score views.", list(SIGNED_METRICS)),
        ("COLOR_STOPS", "Colour ramps: 256 entries interpolated between these stops.", COLOR_STOPS),
        ("METRIC_GROUPS", "The metric menu's groups, in order, with their headings.", METRIC_GROUPS),
        ("METRIC_GROUP", "The menu group of each metric of METRIC_LABELS.", METRIC_GROUP),
        ("METRIC_UNITS", "A metric's colour-bar units; unlisted metrics are a share of attention.", METRIC_UNITS),
        ("COLORBAR_UNITS", "What each map's colour bar says its values are in.", COLORBAR_UNITS),
        ("COMPOSITION_LABELS", "Head composition kinds and what their colour bar shows.", COMPOSITION_LABELS),
    ]


def typescript() -> str:
    """The contents of js/contract.gen.ts."""
    lines = [
        "// Generated by `python -m attn_widget.contract` from src/attn_widget/contract.py: do not edit.",
        "",
    ]
    for name, doc, value in _constants():
        lines += [f"/** {doc} */", f"export const {name} = {json.dumps(value, indent=2)} as const;", ""]
    lines += [
        f"export type Metric = {_union(list(METRIC_LABELS))};",
        f"export type HeadClass = {_union(HEAD_CLASSES)};",
        f"export type ColorScale = {_union(COLOR_SCALES)};",
        f"export type ShadeBy = {_union(SHADE_BY)};",
        f"export type Weighting = {_union(WEIGHTINGS)};",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """`python -m attn_widget.contract` prints the module; `--check PATH` fails if PATH differs."""
    if argv[:1] == ["--check"]:
        path = Path(argv[1]) if len(argv) > 1 else GENERATED_PATH
        if not path.exists() or path.read_text() != typescript():
            print(f"{path} is out of date: run `make contract`", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(typescript())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
