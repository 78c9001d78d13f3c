/** Which square window of a head the heatmap shows: zoomed around a point, panned, clamped. */

import type { Window } from "../state/types";

/** The narrowest window, in tokens, that zooming in stops at. */
export const MIN_SPAN = 8;

export class Viewport {
  start = { q: 0, k: 0 };
  span = 0;

  constructor(public n = 0) {
    this.reset(n);
  }

  reset(n: number): void {
    this.n = n;
    this.start = { q: 0, k: 0 };
    this.span = n;
  }

  get window(): Window {
    return { q0: this.start.q, q1: this.start.q + this.span, k0: this.start.k, k1: this.start.k + this.span };
  }

  get zoomed(): boolean {
    return this.span < this.n;
  }

  /** Zoom by `factor` (< 1 zooms in) keeping the token at fraction (fx, fy) of the view in place. */
  zoom(factor: number, fx = 0.5, fy = 0.5): void {
    const span = Math.round(Math.min(this.n, Math.max(Math.min(MIN_SPAN, this.n), this.span * factor)));
    const q = this.start.q + fy * this.span - fy * span;
    const k = this.start.k + fx * this.span - fx * span;
    this.span = span;
    this.moveTo(q, k);
  }

  /** Centre query and key on `index` (the diagonal), the span narrowed to at most `maxSpan`. */
  centerOn(index: number, maxSpan: number): void {
    this.span = Math.min(this.span, Math.max(Math.min(MIN_SPAN, this.n), maxSpan));
    this.moveTo(index - this.span / 2, index - this.span / 2);
  }

  /** Pan by a number of tokens along each axis. */
  pan(dq: number, dk: number): void {
    this.moveTo(this.start.q + dq, this.start.k + dk);
  }

  private moveTo(q: number, k: number): void {
    const clamp = (v: number) => Math.round(Math.max(0, Math.min(this.n - this.span, v)));
    this.start = { q: clamp(q), k: clamp(k) };
  }
}
