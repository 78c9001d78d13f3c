/** Token labels along an axis: thinned so they never overlap, whatever the prompt's length; and the
 *  one way a head is written. */

import { HEAD_LABEL } from "../contract.gen";

/** `L1H2`: the one way a head is written, in every view and message (the contract's HEAD_LABEL,
 *  as Python's `head_label`). */
export function headLabel(layer: number, head: number): string {
  return HEAD_LABEL.replace("{layer}", String(layer)).replace("{head}", String(head));
}

/** Indices of the tokens to label when n tokens share `extentPx` pixels and a label needs `labelPx`. */
export function labelIndices(n: number, extentPx: number, labelPx: number): number[] {
  if (n <= 0) return [];
  const step = Math.max(1, Math.ceil((n * labelPx) / extentPx));
  const out: number[] = [];
  for (let i = 0; i < n; i += step) out.push(i);
  return out;
}

/** How a token reads in a label: whitespace made visible, long tokens cut. */
export function displayToken(token: string, max = 14): string {
  const shown = token.replace(/\n/g, "\u23ce").replace(/\t/g, "\u21e5");
  return shown.length > max ? `${shown.slice(0, max - 1)}\u2026` : shown;
}
