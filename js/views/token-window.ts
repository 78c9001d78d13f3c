/** Which tokens the strip shows: all of a short prompt, a window of a long one (a 32k-token prompt
 *  must not become 32k DOM nodes), and the maths of the minimap that jumps anywhere in it. */

/** Up to this many tokens the strip shows every token; past it, a window of this many. */
export const STRIP_WINDOW = 300;

/** Tokens [start, end) of the prompt. */
export interface Span {
  start: number;
  end: number;
}

/** `size` tokens (all n if fewer) centred on `center`, clamped inside the prompt. */
export function windowAround(n: number, center: number, size = STRIP_WINDOW): Span {
  if (n <= size) return { start: 0, end: Math.max(n, 0) };
  const start = Math.max(0, Math.min(n - size, Math.round(center - size / 2)));
  return { start, end: start + size };
}

/** The window to show when `index` gets the focus: the current one while it holds the token (so the
 *  strip never moves under the pointer), else one centred on it. A negative index keeps the window. */
export function follow(current: Span, n: number, index: number, size = STRIP_WINDOW): Span {
  if (index < 0 || index >= n) return current;
  if (index >= current.start && index < current.end && current.end <= n) return current;
  return windowAround(n, index, size);
}

/** n values pooled into `bins` maxima (each bin covers its share of the tokens): nothing strong
 *  vanishes from the minimap, however long the prompt. */
export function maxPool(values: ArrayLike<number>, bins: number): Float32Array {
  const n = values.length;
  const out = new Float32Array(Math.max(bins, 0));
  for (let b = 0; b < bins && n > 0; b++) {
    const lo = Math.floor((b * n) / bins);
    const hi = Math.max(lo + 1, Math.ceil(((b + 1) * n) / bins));
    let max = 0;
    for (let i = lo; i < hi && i < n; i++) if (values[i] > max) max = values[i];
    out[b] = max;
  }
  return out;
}

/** The token under fraction `x` (0 = left end, 1 = right end) of a bar over n tokens. */
export function tokenAtFraction(x: number, n: number): number {
  return Math.max(0, Math.min(n - 1, Math.floor(x * n)));
}

/** A typed token position, or null if it is not a whole number in [0, n). */
export function parseTokenIndex(text: string, n: number): number | null {
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed)) return null;
  const index = Number(trimmed);
  return index < n ? index : null;
}
