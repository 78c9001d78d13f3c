/** Signed values (a change between two prompts, a logit attribution) in diverging colours: blue
 *  below zero, white (or the theme's dark) at zero, red above. */

import { COLOR_STOPS } from "../contract.gen";
import { ramp, type ColorScale, type Lut } from "./colors";

export const RED_BLUE: Lut = ramp(COLOR_STOPS.red_blue);

export const RED_BLUE_DARK: Lut = ramp(COLOR_STOPS.red_blue_dark);

/** Values in [-1, 1] (rows of `cols`) to [0, 1] lookup positions, 0.5 at zero. "row" rescales each
 *  row by its largest magnitude; "log" spreads magnitudes 1e-4..1 like the attention log scale. */
export function signedShades(values: Float32Array, cols: number, scale: ColorScale): Float32Array {
  const out = new Float32Array(values.length);
  for (let start = 0; start < values.length; start += cols) {
    let max = 1;
    if (scale === "row") {
      max = 0;
      for (let k = start; k < start + cols; k++) max = Math.max(max, Math.abs(values[k]));
    }
    for (let k = start; k < start + cols; k++) {
      const v = values[k];
      let t = max > 0 ? Math.max(-1, Math.min(1, v / max)) : 0;
      if (scale === "log") t = Math.abs(v) <= 1e-4 ? 0 : Math.sign(v) * (1 + Math.log10(Math.min(1, Math.abs(v))) / 4);
      out[k] = 0.5 + 0.5 * t;
    }
  }
  return out;
}

/** Any signed values to [0, 1] positions, scaled by the largest magnitude (0.5 at zero). */
export function centredByMax(values: ArrayLike<number>): Float32Array {
  let max = 0;
  for (let i = 0; i < values.length; i++) max = Math.max(max, Math.abs(values[i]));
  return Float32Array.from(values, (v) => (max > 0 ? 0.5 + (0.5 * v) / max : 0.5));
}
