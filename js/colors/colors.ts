/** Colour lookup tables and scales: a weight in [0, 1] becomes one of 256 RGBA colours. The ramps'
 *  stops come from the contract, so the kernel's saved figures use the same colours. */

import { COLOR_STOPS, type ColorScale } from "../contract.gen";

export type { ColorScale } from "../contract.gen";
export type Lut = Uint8ClampedArray; // 256 * 4
export type Rgb = [number, number, number];

export function ramp(stops: readonly (readonly [number, number, number])[]): Lut {
  const lut = new Uint8ClampedArray(256 * 4);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (stops.length - 1);
    const lo = Math.min(Math.floor(t), stops.length - 2);
    const f = t - lo;
    for (let c = 0; c < 3; c++) lut[4 * i + c] = stops[lo][c] + (stops[lo + 1][c] - stops[lo][c]) * f;
    lut[4 * i + 3] = 255;
  }
  return lut;
}

/** Light themes: white (no attention) to deep blue (all of it), the reference notebook's "Blues". */
export const BLUES: Lut = ramp(COLOR_STOPS.blues);

/** Dark themes: near-black (no attention) to pale blue, so strong weights stand out on dark. */
export const BLUES_DARK: Lut = ramp(COLOR_STOPS.blues_dark);

/** Viridis, for score views, where both ends carry meaning. */
export const VIRIDIS: Lut = ramp(COLOR_STOPS.viridis);

export function lutIndex(value: number): number {
  if (!(value > 0)) return 0;
  return value >= 1 ? 255 : Math.round(value * 255);
}

export function lutColor(lut: Lut, value: number): Rgb {
  const i = 4 * lutIndex(value);
  return [lut[i], lut[i + 1], lut[i + 2]];
}

export function cssColor(lut: Lut, value: number): string {
  const [r, g, b] = lutColor(lut, value);
  return `rgb(${r}, ${g}, ${b})`;
}

// ---- colour scales: how a weight maps to [0, 1] before the lookup ------------------------------

/** NaN or infinite weights and scores (a float16 model overflowing, bad precomputed input): a colour
 *  no lookup table uses, so undefined never passes for "no attention". */
export const UNDEFINED_RGB: Rgb = [255, 0, 200];
export const UNDEFINED_CSS = `rgb(${UNDEFINED_RGB.join(", ")})`;

/** How many values are NaN (undefined), for the views to say so. */
export function countUndefined(values: ArrayLike<number>): number {
  let count = 0;
  for (let i = 0; i < values.length; i++) if (Number.isNaN(values[i])) count++;
  return count;
}

/** How the scale menu names each colour scale. */
export const COLOR_SCALE_LABELS: Record<ColorScale, string> = {
  linear: "linear",
  log: "log (1e-4 to 1)",
  row: "per row (rescaled to its max)",
};

export const LOG_FLOOR = 1e-4;

/**
 * Weights (rows of `cols` values) mapped to [0, 1] under a scale: linear as is; log spreads
 * [1e-4, 1] over the range so faint attention shows; row divides each row by its max.
 */
export function applyScale(values: Float32Array, cols: number, scale: ColorScale): Float32Array {
  const out = new Float32Array(values.length);
  if (scale === "linear") {
    out.set(values);
  } else if (scale === "log") {
    const span = -Math.log10(LOG_FLOOR);
    for (let i = 0; i < values.length; i++) {
      out[i] = values[i] <= LOG_FLOOR ? 0 : 1 + Math.log10(values[i]) / span;
    }
  } else {
    for (let start = 0; start < values.length; start += cols) {
      let max = 0;
      for (let k = start; k < start + cols; k++) if (values[k] > max) max = values[k]; // NaN never is
      for (let k = start; k < start + cols; k++) out[k] = Number.isNaN(values[k]) ? Number.NaN : max > 0 ? values[k] / max : 0;
    }
  }
  return out;
}

/** Paint a rows x cols grid of [0, 1] values into ImageData, one pixel per cell. */
export function paintCells(values: ArrayLike<number>, rows: number, cols: number, lut: Lut): ImageData {
  const image = new ImageData(cols, rows);
  const px = image.data;
  for (let i = 0; i < rows * cols; i++) {
    const j = 4 * lutIndex(values[i]);
    const [r, g, b] = Number.isNaN(values[i]) ? UNDEFINED_RGB : [lut[j], lut[j + 1], lut[j + 2]];
    px[4 * i] = r;
    px[4 * i + 1] = g;
    px[4 * i + 2] = b;
    px[4 * i + 3] = 255;
  }
  return image;
}

/** Readable text on a background colour (black on light, white on dark). */
export function textOn([r, g, b]: Rgb): string {
  return 0.299 * r + 0.587 * g + 0.114 * b > 140 ? "#111" : "#fff";
}
