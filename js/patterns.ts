/** Asking the kernel for what the views show: a whole head (short prompts), a tile of the visible
 *  window (long prompts), or one token's row or column. Each kind keeps its own latest request id:
 *  replies to older requests are dropped, so rapid changes never end on a stale head. */

import type { AnyModel } from "@anywidget/types";
import { bytesOf, decodeWeights } from "./buffers";
import { WHOLE_HEAD_MAX_TOKENS } from "./contract.gen";
import type { Axis, ExplorerState, HeadData, KernelMessage, Line, Request, Window } from "./types";
const CACHE_SIZE = 32;

type Kind = "head" | "row";

export interface PatternHandlers {
  head(data: HeadData): void;
  row(line: Line): void;
  error(message: string): void;
}

export class PatternClient {
  private nextId: number;
  private readonly latest: Record<Kind, number> = { head: -1, row: -1 };
  private readonly cache = new Map<string, HeadData | Line>();
  private readonly keys = new Map<number, string>();

  constructor(
    private readonly model: AnyModel<ExplorerState>,
    private readonly handlers: PatternHandlers,
  ) {
    // Every view of this model hears every reply: ids from a per-view range keep them apart.
    this.nextId = Math.floor(Math.random() * 2 ** 31) * 1024;
  }

  /** The selected head: whole when short, else the window at rows x cols cells. */
  requestHead(revision: number, n: number, layer: number, head: number, window: Window, rows: number, cols: number): void {
    if (n <= WHOLE_HEAD_MAX_TOKENS) {
      this.ask("head", `${revision}:${layer}:${head}`, { type: "pattern", id: 0, layer, head });
    } else {
      const { q0, q1, k0, k1 } = window;
      const key = `${revision}:${layer}:${head}:${q0}:${q1}:${k0}:${k1}:${rows}:${cols}`;
      this.ask("head", key, { type: "tile", id: 0, layer, head, q0, q1, k0, k1, rows, cols });
    }
  }

  requestRow(revision: number, layer: number, head: number, index: number, axis: Axis): void {
    this.ask("row", `row:${revision}:${layer}:${head}:${index}:${axis}`, { type: "row", id: 0, layer, head, index, axis });
  }

  private ask(kind: Kind, key: string, request: Request): void {
    const id = this.nextId++;
    this.latest[kind] = id;
    const cached = this.cache.get(key);
    if (cached) {
      this.remember(key, cached); // refresh its place in the LRU order
      this.deliver(kind, cached);
      return;
    }
    this.keys.set(id, key);
    this.model.send({ ...request, id });
  }

  /** Handles a `msg:custom` from the kernel; returns false if it was not for this client. */
  receive(message: KernelMessage, buffers: DataView[]): boolean {
    if (message.type === "error") {
      if (message.id !== null) this.keys.delete(message.id); // no reply will follow
      const mine = message.id === null || Object.values(this.latest).includes(message.id);
      if (mine) this.handlers.error(message.message);
      return mine;
    }
    const kind: Kind = message.type === "row" ? "row" : "head";
    const key = this.keys.get(message.id);
    if (key === undefined || !buffers?.length) return false;
    this.keys.delete(message.id);
    const bytes = bytesOf(buffers[0]);
    const base = { revision: message.revision, layer: message.layer, head: message.head };
    let data: HeadData | Line;
    if (message.type === "pattern") {
      data = { kind: "pattern", ...base, n: message.n, values: decodeWeights(bytes, message.dtype, message.n * message.n) };
    } else if (message.type === "tile") {
      const { q0, q1, k0, k1, tile_rows: rows, tile_cols: cols } = message;
      const values = decodeWeights(bytes, message.dtype, rows * cols);
      if (message.undefined && buffers[1]) markUndefined(values, bytesOf(buffers[1]));
      data = { kind: "tile", ...base, n: message.n, q0, q1, k0, k1, rows, cols, values };
    } else {
      data = { ...base, index: message.index, axis: message.axis, values: decodeWeights(bytes, message.dtype, message.n) };
    }
    if (message.signed) {
      data.signed = true;
      if (message.dtype === "uint8") data.values = data.values.map((v) => (v * 255) / 127.5 - 1); // bytes: 0 at 127.5
    }
    this.remember(key, data);
    if (message.id === this.latest[kind]) this.deliver(kind, data);
    return true;
  }

  private deliver(kind: Kind, data: HeadData | Line): void {
    if (kind === "row") this.handlers.row(data as Line);
    else this.handlers.head(data as HeadData);
  }

  private remember(key: string, data: HeadData | Line): void {
    this.cache.delete(key);
    this.cache.set(key, data);
    while (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
  }
}

/** uint8 tiles have no room for NaN: the kernel sends a second buffer, 1 where a cell is undefined. */
export function markUndefined(values: Float32Array, mask: Uint8Array): void {
  for (let i = 0; i < values.length && i < mask.length; i++) if (mask[i]) values[i] = Number.NaN;
}
