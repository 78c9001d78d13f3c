/** Reading the score table while it fills in: the kernel publishes layers as they finish, and a
 *  layer (or a cell) not scored yet arrives as null. Nothing here may throw on a null. */

/** One metric's scores: layers x heads; a pending layer or cell is null. */
export type ScoreRows = readonly (readonly (number | null)[] | null)[];

/** A cell's score, or null while it is pending (or not a finite number). */
export function scoreAt(table: ScoreRows | null | undefined, layer: number, head: number): number | null {
  const value = table?.[layer]?.[head];
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** A score as text: `digits` decimals, "pending" while it is not in, the value itself if not finite. */
export function formatScore(value: unknown, digits = 3): string {
  if (typeof value === "number") return Number.isFinite(value) ? value.toFixed(digits) : String(value);
  return "pending";
}

/** The scored cells as [layer, head, value], in row-major order. */
export function scoredCells(table: ScoreRows | null | undefined, layers: number, heads: number): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (let l = 0; l < layers; l++) {
    for (let h = 0; h < heads; h++) {
      const value = scoreAt(table, l, h);
      if (value !== null) out.push([l, h, value]);
    }
  }
  return out;
}

/** Lowest and highest scored value (0, 0 when none is in yet). */
export function scoreRange(cells: [number, number, number][]): [number, number] {
  if (!cells.length) return [0, 0];
  let lo = Infinity;
  let hi = -Infinity;
  for (const [, , v] of cells) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return [lo, hi];
}

/** "scores: 3 / 32 layers" while layers are still being scored, null once all are in. A kernel that
 *  does not report progress (scored undefined) has published everything. */
export function scoreProgress(scored: number | undefined | null, layers: number): string | null {
  if (typeof scored !== "number" || scored >= layers) return null;
  return `scores: ${Math.max(scored, 0)} / ${layers} layers`;
}

/** A scored layer's cell with no number: its score is undefined (NaN weights; the kernel sends null,
 *  as JSON has no NaN). A layer at or past `scoredLayers` is pending instead. */
export function isUndefinedScore(table: ScoreRows | null | undefined, layer: number, head: number, scoredLayers: number): boolean {
  const row = table?.[layer];
  return layer < scoredLayers && Array.isArray(row) && head < row.length && scoreAt(table, layer, head) === null;
}
