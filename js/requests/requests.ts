/** One request layer per widget model, shared by all its views (made in anywidget's `initialize`).
 *
 *  Requests return promises; replies fill a cache bounded in bytes and keyed by what they hold
 *  (revision, layer, head, kind, window), so any view draws what another fetched. A request for
 *  something already on its way joins it instead of asking again. Heads likely to be wanted next
 *  are prefetched in batched "heads" replies (uint8: enough to draw). Replies that come unasked
 *  (`id: null`, the kernel pushing the selected head) are kept when their revision is current. */

import type { AnyModel } from "@anywidget/types";
import { bytesOf, decodeWeights, markUndefined } from "./buffers";
import { ByteCache } from "./cache";
import { WHOLE_HEAD_MAX_TOKENS } from "../contract.gen";
import { prefetchBatches } from "./prefetch";
import type { Axis, HeadData, KernelMessage, Line, Window } from "../state/types";

export { WHOLE_HEAD_MAX_TOKENS };
const KINDS = ["pattern", "tile", "row", "heads"];
/** Decoded weights kept per model (float32: 1 MiB per head at 512 tokens). */
export const CACHE_BYTES = 64 * 2 ** 20;
/** Prefetch messages are at most this big, and at most this much prefetch is on its way at once:
 *  a head asked for by a click comes on the same socket behind the prefetch replies already sent,
 *  and waits for them to arrive (tens of ms a MiB through a Jupyter server). One tile of a long
 *  prompt (512 x 512 cells) at a time: prefetch still keeps up with a walk through the heads. */
export const PREFETCH_BATCH_BYTES = 2 ** 18;
export const PREFETCH_IN_FLIGHT_BYTES = 2 ** 18;
/** A request unanswered this long is asked again rather than joined (the kernel may have restarted). */
const STALE_REQUEST_MS = 20_000;

/** What one view wants drawn: a head of the prompt at `revision`, the visible window at `cells` a side. */
export interface HeadSpec {
  revision: number;
  n: number;
  layer: number;
  head: number;
  window: Window;
  cells: number;
}

/** A cached reply. `exact`: float16 weights or a tile (exact at its resolution); false for a
 *  uint8 whole head, which draws exactly but whose hover values come from row requests. */
export interface Cached<T> {
  key: string;
  data: T;
  exact: boolean;
}

/** The rejection of a view's request that a newer one of the same view replaced. */
export class Superseded extends Error {
  constructor() {
    super("superseded by a newer request");
  }
}

type Entry = Cached<HeadData> | Cached<Line>;

/** A "heads" reply (src/attn_widget/widget/protocol.py): one buffer per head, whole or tiles of one window. */
export interface HeadsReply {
  type: "heads";
  id: number | null;
  revision: number;
  n: number;
  dtype: "uint8";
  heads: [number, number][];
  q0?: number;
  q1?: number;
  k0?: number;
  k1?: number;
  tile_rows?: number;
  tile_cols?: number;
}

/** A kernel message as it may arrive here: asked for, batched, or pushed unasked (id null). */
export type Incoming = KernelMessage | HeadsReply | Unasked<Exclude<KernelMessage, { type: "error" }>>;
type Unasked<T> = T extends unknown ? Omit<T, "id"> & { id: null } : never;

export function isWhole(n: number): boolean {
  return n <= WHOLE_HEAD_MAX_TOKENS;
}

export function headKey(spec: HeadSpec): string {
  const { revision, layer, head, window: w, cells } = spec;
  return isWhole(spec.n) ? `${revision}|${layer}|${head}|pattern` : `${revision}|${layer}|${head}|tile|${w.q0}:${w.q1}:${w.k0}:${w.k1}|${cells}`;
}

export function rowKey(revision: number, layer: number, head: number, index: number, axis: Axis): string {
  return `${revision}|${layer}|${head}|row|${index}:${axis}`;
}

/** Bytes one head of `spec` costs on the wire in a "heads" reply (uint8). */
export function wireBytes(spec: HeadSpec): number {
  const { q0, q1, k0, k1 } = spec.window;
  return isWhole(spec.n) ? spec.n * spec.n : Math.min(q1 - q0, spec.cells) * Math.min(k1 - k0, spec.cells);
}

/** Bytes the prefetch may ask for around one selection: three layers' worth, within 1 to 8 MiB. */
export function prefetchBudget(spec: HeadSpec, nHeads: number): number {
  return Math.min(8 * 2 ** 20, Math.max(2 ** 20, 3 * nHeads * wireBytes(spec)));
}

interface Pending {
  /** What a view asked for while this was on its way in a prefetch: asked for alone if that fails. */
  request?: Record<string, unknown>;
  promise: Promise<Entry>;
  resolve(entry: Entry): void;
  reject(err: Error): void;
  sentAt: number;
}

type Model = Pick<AnyModel, "send" | "get" | "on" | "off">;

export class RequestLayer {
  readonly cache = new ByteCache<Entry>(CACHE_BYTES);
  private nextId: number;
  private readonly pending = new Map<string, Pending>();
  private readonly keysOf = new Map<number, string[]>();
  private readonly arrivals = new Set<(entry: Entry) => void>();
  private readonly errors = new Set<(message: string) => void>();
  /** Where prefetch looks (the latest selection) and what it has asked for around it. */
  private focus: { spec: HeadSpec; nLayers: number; nHeads: number; left: number } | null = null;
  private readonly prefetching = new Map<number, number>(); // request id -> bytes on their way
  private readonly onMessage = (message: Incoming, buffers: DataView[]) => this.receive(message, buffers);
  private readonly onRevision = () => this.forgetBefore(this.revision());

  constructor(private readonly model: Model) {
    // Two layers on one model (a host without `initialize`) must not mistake each other's ids.
    this.nextId = Math.floor(Math.random() * 2 ** 31) * 1024;
    model.on("msg:custom", this.onMessage);
    model.on("change:revision", this.onRevision);
  }

  dispose(): void {
    this.model.off("msg:custom", this.onMessage);
    this.model.off("change:revision", this.onRevision);
    for (const p of this.pending.values()) p.reject(new Superseded());
    this.pending.clear();
  }

  /** Called with every head or row that arrives (asked for, prefetched or pushed). */
  onArrival(listener: (entry: Entry) => void): () => void {
    this.arrivals.add(listener);
    return () => this.arrivals.delete(listener);
  }

  /** Called with errors meant for every view (`id: null`). */
  onError(listener: (message: string) => void): () => void {
    this.errors.add(listener);
    return () => this.errors.delete(listener);
  }

  /** What is already here for `spec`: its own entry, else (inexact) another window of the same head. */
  peekHead(spec: HeadSpec): Cached<HeadData> | undefined {
    const own = this.cache.get(headKey(spec)) as Cached<HeadData> | undefined;
    if (own) return own;
    const prefix = `${spec.revision}|${spec.layer}|${spec.head}|`;
    let other: Cached<HeadData> | undefined;
    for (const [key, entry] of this.cache) {
      if (key.startsWith(prefix) && "kind" in entry.data) other = entry as Cached<HeadData>; // the latest used wins
    }
    return other && { ...other, exact: false };
  }

  peekRow(revision: number, layer: number, head: number, index: number, axis: Axis): Cached<Line> | undefined {
    return this.cache.get(rowKey(revision, layer, head, index, axis)) as Cached<Line> | undefined;
  }

  head(spec: HeadSpec): Promise<Cached<HeadData>> {
    const { layer, head } = spec;
    const request = isWhole(spec.n) ? { type: "pattern", layer, head } : { type: "tile", layer, head, ...spec.window, rows: spec.cells, cols: spec.cells };
    return this.ask(headKey(spec), request) as Promise<Cached<HeadData>>;
  }

  row(revision: number, layer: number, head: number, index: number, axis: Axis): Promise<Cached<Line>> {
    return this.ask(rowKey(revision, layer, head, index, axis), { type: "row", layer, head, index, axis }) as Promise<Cached<Line>>;
  }

  /** Prefetch around a new selection: what is likely next and not here yet, nearest first, in
   *  batched "heads" requests, at most `prefetchBudget` bytes around this selection and
   *  PREFETCH_IN_FLIGHT_BYTES at a time (each arrival sends the next). Returns the bytes asked now. */
  prefetchAround(spec: HeadSpec, nLayers: number, nHeads: number): number {
    this.focus = { spec, nLayers, nHeads, left: prefetchBudget(spec, nHeads) };
    return this.pump();
  }

  private pump(): number {
    const focus = this.focus;
    if (!focus || focus.spec.revision !== this.revision()) return 0;
    const { spec } = focus;
    const cost = wireBytes(spec);
    let inFlight = [...this.prefetching.values()].reduce((a, b) => a + b, 0);
    let asked = 0;
    const tile = isWhole(spec.n) ? {} : { tile: { ...spec.window, rows: spec.cells, cols: spec.cells } };
    const flush = (heads: [number, number][]) => {
      if (!heads.length) return;
      const keys = heads.map(([layer, head]) => headKey({ ...spec, layer, head }));
      const id = this.send({ type: "heads", heads, ...tile }, keys);
      for (const key of keys) this.expect(key);
      this.prefetching.set(id, heads.length * cost);
    };
    for (const batch of prefetchBatches(spec.layer, spec.head, focus.nLayers, focus.nHeads)) {
      let heads: [number, number][] = [];
      for (const [layer, head] of batch) {
        const key = headKey({ ...spec, layer, head });
        if (this.cache.has(key) || this.inFlight(key)) continue;
        const room = inFlight === 0 || inFlight + cost <= PREFETCH_IN_FLIGHT_BYTES;
        if (!room || cost > focus.left) break;
        if (heads.length && (heads.length + 1) * cost > PREFETCH_BATCH_BYTES) {
          flush(heads);
          heads = [];
        }
        heads.push([layer, head]);
        inFlight += cost;
        asked += cost;
        focus.left -= cost;
      }
      flush(heads);
    }
    return asked;
  }

  /** Handles a `msg:custom` from the kernel. */
  receive(message: Incoming, buffers: DataView[]): void {
    if (message.type === "error") {
      if (message.id === null) {
        for (const listener of this.errors) listener(message.message);
        return;
      }
      const keys = this.keysOf.get(message.id) ?? [];
      this.keysOf.delete(message.id);
      if (this.prefetching.delete(message.id)) {
        // A failed prefetch (e.g. a host that cannot batch): what a view waits for is asked for
        // alone, and prefetch rests until the next selection.
        this.focus = null;
        for (const key of keys) this.retryAlone(key);
        return;
      }
      for (const key of keys) this.settle(key, null, new Error(message.message));
      return;
    }
    if (!KINDS.includes(message.type) || !buffers?.length) return; // not for the request layer (an export)
    const entries = message.type === "heads" ? decodeHeads(message, buffers) : [decodeOne(message, buffers)];
    const asked = message.id === null ? [] : (this.keysOf.get(message.id) ?? []);
    if (message.id !== null) this.keysOf.delete(message.id);
    const current = message.revision >= this.revision();
    entries.forEach((decoded, i) => {
      // Cached under the key it was asked for (a tile's size depends on the window); a reply made
      // for another revision than asked still answers the request: the views check the revision.
      const { revision, layer, head } = decoded.data;
      const mine = asked.find((key) => key.startsWith(`${revision}|${layer}|${head}|`));
      const entry = mine ? { ...decoded, key: mine } : decoded;
      entries[i] = entry;
      if (current) this.cache.set(entry.key, entry, entry.data.values.byteLength);
      this.settle(entry.key, entry);
      if (message.type !== "heads" && asked[0] !== undefined) this.settle(asked[0], entry);
    });
    for (const key of asked) if (this.pending.has(key)) this.retryAlone(key); // left out of a batch
    if (current) for (const entry of entries) for (const listener of this.arrivals) listener(entry);
    if (message.id !== null && this.prefetching.delete(message.id)) this.pump();
  }

  // ---- internals ------------------------------------------------------------------------

  private revision(): number {
    return (this.model.get("revision") as number) ?? 0;
  }

  private inFlight(key: string): boolean {
    const p = this.pending.get(key);
    return p !== undefined && performance.now() - p.sentAt < STALE_REQUEST_MS;
  }

  private ask(key: string, request: Record<string, unknown>): Promise<Entry> {
    const cached = this.cache.get(key);
    if (cached) return Promise.resolve(cached);
    const joined = this.inFlight(key) ? this.pending.get(key)! : undefined;
    if (joined) {
      joined.request = request;
      return joined.promise;
    }
    this.pending.get(key)?.reject(new Superseded()); // asked long ago: ask again
    this.send(request, [key]);
    return this.expect(key);
  }

  private send(request: Record<string, unknown>, keys: string[]): number {
    const id = this.nextId++;
    this.keysOf.set(id, keys);
    this.model.send({ ...request, id });
    return id;
  }

  private expect(key: string): Promise<Entry> {
    let resolve!: (entry: Entry) => void;
    let reject!: (err: Error) => void;
    const promise = new Promise<Entry>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => {}); // a prefetch nobody waits for may fail quietly
    this.pending.set(key, { promise, resolve, reject, sentAt: performance.now() });
    return promise;
  }

  private retryAlone(key: string): void {
    const p = this.pending.get(key);
    if (!p?.request) {
      this.settle(key, null, new Superseded());
      return;
    }
    this.send(p.request, [key]);
    p.sentAt = performance.now();
  }

  private settle(key: string, entry: Entry | null, err?: Error): void {
    const p = this.pending.get(key);
    if (!p) return;
    this.pending.delete(key);
    if (entry) p.resolve(entry);
    else p.reject(err ?? new Superseded());
  }

  /** A new prompt: what belongs to older ones goes. */
  private forgetBefore(revision: number): void {
    const older = (key: string) => Number(key.slice(0, key.indexOf("|"))) < revision;
    this.cache.deleteWhere(older);
    this.prefetching.clear(); // those replies are for the old prompt: do not wait for them
    for (const key of [...this.pending.keys()]) if (older(key)) this.settle(key, null, new Superseded());
  }
}

/** One view's latest request of one kind: when a newer one is made, the older one's promise
 *  rejects with `Superseded` (its reply still fills the cache for whoever wants it later). */
export class Slot {
  private latest = 0;

  track<T>(promise: Promise<T>): Promise<T> {
    const ticket = ++this.latest;
    return promise.then(
      (value) => (ticket === this.latest ? value : Promise.reject(new Superseded())),
      (err) => Promise.reject(ticket === this.latest ? err : new Superseded()),
    );
  }

  /** Supersede whatever is on its way (e.g. the view now draws from the cache). */
  cancel(): void {
    this.latest++;
  }
}

function decodeOne(message: Exclude<Incoming, { type: "error" } | HeadsReply>, buffers: DataView[]): Entry {
  const entry = decodeValues(message, buffers);
  if (message.signed) {
    // A difference of two prompts in [-1, 1] (compare_prompt): bytes put 0 at 127.5.
    entry.data.signed = true;
    if (message.dtype === "uint8") entry.data.values = entry.data.values.map((v) => (v * 255) / 127.5 - 1);
  }
  return entry;
}

function decodeValues(message: Exclude<Incoming, { type: "error" } | HeadsReply>, buffers: DataView[]): Entry {
  const bytes = bytesOf(buffers[0]);
  const base = { revision: message.revision, layer: message.layer, head: message.head };
  const n = message.n;
  if (message.type === "pattern") {
    const values = decodeWeights(bytes, message.dtype, n * n);
    const spec = { ...base, n, window: { q0: 0, q1: n, k0: 0, k1: n }, cells: n };
    return { key: headKey(spec), data: { kind: "pattern", ...base, n, values }, exact: message.dtype === "float16" };
  }
  if (message.type === "tile") {
    const { q0, q1, k0, k1, tile_rows: rows, tile_cols: cols } = message;
    const values = decodeWeights(bytes, message.dtype, rows * cols);
    if (message.undefined && buffers[1]) markUndefined(values, bytesOf(buffers[1]));
    const data: HeadData = { kind: "tile", ...base, n, q0, q1, k0, k1, rows, cols, values };
    return { key: tileKey(data), data, exact: true };
  }
  const { index, axis } = message;
  const data: Line = { ...base, index, axis, values: decodeWeights(bytes, message.dtype, n) };
  return { key: rowKey(base.revision, base.layer, base.head, index, axis), data, exact: message.dtype === "float16" };
}

/** The key a tile is cached under: the window and cell count it was asked with. A tile asked at
 *  `cells` a side comes back with min(span, cells) rows, so the larger side names the request. */
function tileKey(t: Extract<HeadData, { kind: "tile" }>, cells?: number): string {
  const size = cells ?? Math.max(t.rows, t.cols);
  return `${t.revision}|${t.layer}|${t.head}|tile|${t.q0}:${t.q1}:${t.k0}:${t.k1}|${size}`;
}

function decodeHeads(message: HeadsReply, buffers: DataView[]): Entry[] {
  const n = message.n;
  // A head with undefined weights comes as an empty buffer: uint8 cannot say so; it is asked for alone.
  return message.heads.slice(0, buffers.length).flatMap(([layer, head], i): Entry[] => {
    const bytes = bytesOf(buffers[i]);
    if (!bytes.length) return [];
    const base = { revision: message.revision, layer, head, n };
    if (message.tile_rows === undefined) {
      const data: HeadData = { kind: "pattern", ...base, values: decodeWeights(bytes, "uint8", n * n) };
      return [{ key: `${message.revision}|${layer}|${head}|pattern`, data, exact: false }];
    }
    const [rows, cols] = [message.tile_rows!, message.tile_cols!];
    const window = { q0: message.q0!, q1: message.q1!, k0: message.k0!, k1: message.k1! };
    const data: HeadData = { kind: "tile", ...base, ...window, rows, cols, values: decodeWeights(bytes, "uint8", rows * cols) };
    return [{ key: tileKey(data), data, exact: true }];
  });
}
