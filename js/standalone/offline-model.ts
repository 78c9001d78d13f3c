/** A stand-in for the kernel in a standalone page (attn_widget.export.standalone): the anywidget model's
 *  get/set/on/off/save_changes/send, answering pattern, tile and row requests from the layers the
 *  page embeds. The front end cannot tell it from a kernel. */

import type { ExplorerState, KernelMessage, Request } from "../state/types";

type Handler = (...args: unknown[]) => void;

/** One embedded layer: [heads, n, n] row-major weights as the kernel would send them. */
export interface EmbeddedLayer {
  dtype: "float16" | "uint8";
  bytes: Uint8Array;
  /** A signed difference against the compare prompt: drawn in diverging colours. */
  signed?: boolean;
}

export function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** Bytes per weight. */
const WIDTH = { float16: 2, uint8: 1 } as const;

function halfToFloat(bits: number): number {
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  const sign = bits & 0x8000 ? -1 : 1;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

export class OfflineModel {
  private readonly handlers = new Map<string, Set<Handler>>();

  constructor(
    private readonly state: ExplorerState,
    private readonly layers: Map<number, EmbeddedLayer>,
  ) {}

  get<K extends keyof ExplorerState>(key: K): ExplorerState[K] {
    return this.state[key];
  }

  set(key: string, value: unknown): void {
    const state = this.state as unknown as Record<string, unknown>;
    if (state[key] === value) return;
    state[key] = value;
    this.emit(`change:${key}`);
  }

  save_changes(): void {
    const layer = this.state.layer;
    const error = this.layers.has(layer) ? "" : `Layer ${layer} is not in this page: save it with layers=[...] to include it.`;
    this.set("error", error);
  }

  on(event: string, handler: Handler): void {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event)!.add(handler);
  }

  off(event?: string | null, handler?: Handler | null): void {
    if (!event) this.handlers.clear();
    else if (!handler) this.handlers.delete(event);
    else this.handlers.get(event)?.delete(handler);
  }

  /** A request from the front end: answered on a later task, as a kernel would. */
  send(content: unknown): void {
    const request = content as Request;
    setTimeout(() => {
      const [reply, buffer] = this.answer(request);
      const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
      this.emit("msg:custom", reply, buffer.byteLength ? [view] : []);
    }, 0);
  }

  private emit(event: string, ...args: unknown[]): void {
    for (const handler of this.handlers.get(event) ?? []) handler(...args);
  }

  private answer(request: Request): [KernelMessage, Uint8Array] {
    const layer = this.layers.get(request.layer);
    const n = this.state.tokens.length;
    if (!layer) {
      const message = `Layer ${request.layer} is not in this page: save it with layers=[...] to include it.`;
      return [{ type: "error", id: request.id, message }, new Uint8Array(0)];
    }
    const base = { ...request, revision: this.state.revision, n, ...(layer.signed ? { signed: true } : {}) };
    const width = WIDTH[layer.dtype];
    const start = request.head * n * n * width;
    const head = layer.bytes.subarray(start, start + n * n * width);
    if (request.type === "pattern") return [{ ...base, type: "pattern", dtype: layer.dtype }, head];
    if (request.type === "row") {
      const out = new Uint8Array(n * width);
      for (let i = 0; i < n; i++) {
        const at = request.axis === "query" ? request.index * n + i : i * n + request.index;
        for (let b = 0; b < width; b++) out[i * width + b] = head[at * width + b];
      }
      return [{ ...base, type: "row", dtype: layer.dtype } as KernelMessage, out];
    }
    const { tile, rows, cols, q0, q1, k0, k1 } = maxPoolTile(head, layer.dtype, n, request);
    return [{ ...base, type: "tile", dtype: "uint8", q0, q1, k0, k1, tile_rows: rows, tile_cols: cols }, tile];
  }
}

/** The window max-pooled to at most rows x cols uint8 cells, as the kernel's tiles are (attn_widget.maths.reductions)
 *  (adaptive max pooling: cell i covers [floor(i * len / cells), ceil((i + 1) * len / cells))). */
export function maxPoolTile(
  head: Uint8Array,
  dtype: "float16" | "uint8",
  n: number,
  r: { q0: number; q1: number; k0: number; k1: number; rows: number; cols: number },
): { tile: Uint8Array; rows: number; cols: number; q0: number; q1: number; k0: number; k1: number } {
  const q0 = Math.min(r.q0, n - 1);
  const q1 = Math.min(r.q1, n);
  const k0 = Math.min(r.k0, n - 1);
  const k1 = Math.min(r.k1, n);
  const [h, w] = [q1 - q0, k1 - k0];
  const rows = Math.min(r.rows, h);
  const cols = Math.min(r.cols, w);
  const value = (q: number, k: number): number => {
    const at = q * n + k;
    return dtype === "uint8" ? head[at] / 255 : halfToFloat(head[2 * at] | (head[2 * at + 1] << 8));
  };
  const tile = new Uint8Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const [qa, qb] = [q0 + Math.floor((i * h) / rows), q0 + Math.ceil(((i + 1) * h) / rows)];
    for (let j = 0; j < cols; j++) {
      const [ka, kb] = [k0 + Math.floor((j * w) / cols), k0 + Math.ceil(((j + 1) * w) / cols)];
      let max = 0;
      for (let q = qa; q < qb; q++) for (let k = ka; k < kb; k++) max = Math.max(max, value(q, k));
      tile[i * cols + j] = Math.round(Math.min(Math.max(max, 0), 1) * 255);
    }
  }
  return { tile, rows, cols, q0: r.q0, q1: r.q1, k0: r.k0, k1: r.k1 };
}
