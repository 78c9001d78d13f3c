"""Colour lookup tables and scales, exactly as the front end's js/colors/colors.ts computes them, so saved
figures and snapshots show the colours the canvas shows (tests/export/test_figures.py checks it against
the JS). The stops themselves are in the contract, shared with the front end."""

from __future__ import annotations

from typing import Literal

import numpy as np

from attn_widget.contract import COLOR_STOPS

ColorScale = Literal["linear", "log", "row"]
Theme = Literal["light", "dark"]


LOG_FLOOR = 1e-4


def ramp(stops: list[tuple[int, int, int]]) -> np.ndarray:
    """`(256, 3)` uint8: js/colors/colors.ts `ramp` (float64 maths, Uint8ClampedArray's round-half-even)."""
    s = np.asarray(stops, dtype=np.float64)
    t = np.arange(256, dtype=np.float64) / 255 * (len(s) - 1)
    lo = np.minimum(np.floor(t), len(s) - 2).astype(int)
    f = (t - lo)[:, None]
    out: np.ndarray = np.clip(np.rint(s[lo] + (s[lo + 1] - s[lo]) * f), 0, 255).astype(np.uint8)
    return out


LUTS: dict[str, np.ndarray] = {name: ramp(stops) for name, stops in COLOR_STOPS.items()}


def pattern_lut(theme: Theme) -> np.ndarray:
    return LUTS["blues_dark" if theme == "dark" else "blues"]


def apply_scale(values: np.ndarray, scale: ColorScale) -> np.ndarray:
    """`(rows, cols)` weights to [0, 1] as float32, as js/colors/colors.ts `applyScale` does."""
    v = np.asarray(values, dtype=np.float32)
    if scale == "linear":
        copied: np.ndarray = v.copy()
        return copied
    x = v.astype(np.float64)
    if scale == "log":
        span = -np.log10(LOG_FLOOR)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(x <= LOG_FLOOR, 0.0, 1 + np.log10(np.where(x > 0, x, 1.0)) / span)
        return out.astype(np.float32)
    if scale == "row":
        peak = np.max(np.maximum(v, 0), axis=-1, keepdims=True).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(peak > 0, x / np.where(peak > 0, peak, 1.0), 0.0)
        return out.astype(np.float32)
    raise ValueError(f"unknown colour scale {scale!r}: choose linear, log or row")


def lut_index(values: np.ndarray) -> np.ndarray:
    """[0, 1] to 0..255 as js/colors/colors.ts `lutIndex`: NaN and <= 0 to 0, >= 1 to 255, else round half up."""
    x = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        out = np.floor(np.where(x > 0, np.minimum(x, 1.0), 0.0) * 255 + 0.5)
    return out.astype(np.uint8)


def colorize(values: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """`(rows, cols)` values in [0, 1] to `(rows, cols, 3)` uint8 RGB."""
    colours: np.ndarray = lut[lut_index(values)]
    return colours


def signed_lut(theme: Theme) -> np.ndarray:
    """Blue below zero, the background at zero, red above (js/colors/diverging.ts)."""
    return LUTS["red_blue_dark" if theme == "dark" else "red_blue"]


def signed_shades(values: np.ndarray, scale: ColorScale) -> np.ndarray:
    """`(rows, cols)` values in [-1, 1] to [0, 1] positions, 0.5 at zero, as js/colors/diverging.ts
    `signedShades` does: "row" rescales each row by its largest magnitude, "log" spreads 1e-4..1."""
    v = np.asarray(values, dtype=np.float32).astype(np.float64)
    if scale == "log":
        magnitude = np.minimum(1.0, np.abs(v))
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(np.abs(v) <= LOG_FLOOR, 0.0, np.sign(v) * (1 + np.log10(np.maximum(magnitude, LOG_FLOOR)) / 4))
    else:
        peak = np.max(np.abs(v), axis=-1, keepdims=True) if scale == "row" else np.ones_like(v[..., :1])
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(peak > 0, np.clip(v / np.where(peak > 0, peak, 1.0), -1, 1), 0.0)
    return (0.5 + 0.5 * t).astype(np.float32)
