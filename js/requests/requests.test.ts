import type { AnyModel } from "@anywidget/types";
import { ByteCache } from "./cache";
import { prefetchBatches } from "./prefetch";
import {
  type HeadSpec,
  type Incoming,
  PREFETCH_BATCH_BYTES,
  PREFETCH_IN_FLIGHT_BYTES,
  RequestLayer,
  Slot,
  Superseded,
  WHOLE_HEAD_MAX_TOKENS,
  headKey,
  prefetchBudget,
} from "./requests";
import { assert, assertEqual, type Tests } from "../testing";
import type { ExplorerState } from "../state/types";

type Sent = Record<string, unknown> & { id: number; type: string };

/** A model that records what is sent and lets a test deliver the kernel's messages. */
function fakeModel(revision = 1) {
  const sent: Sent[] = [];
  const listeners = new Map<string, ((...args: unknown[]) => void)[]>();
  const state: Record<string, unknown> = { revision };
  const model = {
    send: (message: Sent) => sent.push(message),
    get: (key: string) => state[key],
    on: (name: string, cb: (...args: unknown[]) => void) => listeners.set(name, [...(listeners.get(name) ?? []), cb]),
    off: (name: string, cb: (...args: unknown[]) => void) =>
      listeners.set(
        name,
        (listeners.get(name) ?? []).filter((f) => f !== cb),
      ),
  } as unknown as AnyModel<ExplorerState>;
  const deliver = (message: Incoming, buffers: DataView[]) => {
    for (const cb of listeners.get("msg:custom") ?? []) cb(message, buffers);
  };
  const setRevision = (r: number) => {
    state.revision = r;
    for (const cb of listeners.get("change:revision") ?? []) cb();
  };
  return { model, sent, deliver, setRevision };
}

const n = 2; // a 2-token prompt: whole heads of 4 weights
const spec = (layer: number, head: number, revision = 1): HeadSpec => ({ revision, n, layer, head, window: { q0: 0, q1: n, k0: 0, k1: n }, cells: n });
const bytes = (values: number[]) => [new DataView(Uint8Array.from(values).buffer)];

/** The kernel's float16 whole-head answer: every weight 1.0 (0x3c00) or, for a given `value` byte, uint8. */
function patternReply(request: Sent, revision = 1): [Incoming, DataView[]] {
  const ones = new Uint16Array(n * n).fill(0x3c00);
  const message = { type: "pattern", id: request.id, layer: request.layer, head: request.head, revision, n, dtype: "float16" } as Incoming;
  return [message, [new DataView(ones.buffer)]];
}

function headsReply(request: Sent, revision = 1): [Incoming, DataView[]] {
  const heads = request.heads as [number, number][];
  const message: Incoming = { type: "heads", id: request.id, revision, n, dtype: "uint8", heads };
  return [message, heads.map(([l, h]) => bytes([l, h, 0, 255])[0])];
}

const flush = () => new Promise((r) => setTimeout(r, 0));

export const tests: Tests = {
  "a reply resolves the request and fills the cache; a second ask sends nothing"() {
    const { model, sent, deliver } = fakeModel();
    const layer = new RequestLayer(model);
    const got: number[] = [];
    void layer.head(spec(0, 1)).then((e) => got.push(e.data.head));
    assertEqual(
      sent.map((m) => [m.type, m.layer, m.head]),
      [["pattern", 0, 1]],
    );
    deliver(...patternReply(sent[0]));
    return flush().then(async () => {
      assertEqual(got, [1]);
      const again = await layer.head(spec(0, 1));
      assertEqual([sent.length, again.exact, Array.from(again.data.values)], [1, true, [1, 1, 1, 1]]);
      layer.dispose();
    });
  },
  async "asking for what is on its way joins it instead of asking again"() {
    const { model, sent, deliver } = fakeModel();
    const layer = new RequestLayer(model);
    const a = layer.head(spec(2, 3));
    const b = layer.head(spec(2, 3));
    assertEqual(sent.length, 1);
    deliver(...patternReply(sent[0]));
    assertEqual([(await a).data.head, (await b).data.head], [3, 3]);
  },
  async "a view's superseded request rejects; its reply still serves the next view"() {
    const { model, sent, deliver } = fakeModel();
    const layer = new RequestLayer(model);
    const slot = new Slot();
    const results: string[] = [];
    for (const head of [0, 1, 2])
      slot.track(layer.head(spec(0, head))).then(
        (e) => results.push(`drew ${e.data.head}`),
        (err) => results.push(err instanceof Superseded ? `superseded` : String(err)),
      );
    deliver(...patternReply(sent[2]));
    deliver(...patternReply(sent[0])); // late reply to an old request: never drawn by this view
    deliver(...patternReply(sent[1]));
    await flush();
    assertEqual(results.sort(), ["drew 2", "superseded", "superseded"]);
    assert(layer.peekHead(spec(0, 0)) !== undefined, "the superseded reply is cached");
    assertEqual(sent.length, 3);
  },
  async "prefetch asks for the layer, then its neighbours, in batched requests; a batch fills the cache as uint8"() {
    const { model, sent, deliver } = fakeModel();
    const layer = new RequestLayer(model);
    layer.prefetchAround(spec(1, 1), 3, 3);
    assertEqual(
      sent.map((m) => m.heads),
      [
        [
          [1, 0],
          [1, 2],
        ],
        [
          [2, 1],
          [0, 1],
          [2, 0],
          [0, 0],
          [2, 2],
          [0, 2],
        ],
      ],
    );
    assert(
      sent.every((m) => m.type === "heads" && !("tile" in m)),
      "whole heads for a short prompt",
    );
    deliver(...headsReply(sent[0]));
    const cached = layer.peekHead(spec(1, 2))!;
    assertEqual([cached.exact, Array.from(cached.data.values, (v) => Math.round(v * 255))], [false, [1, 2, 0, 255]]);
    // what is here or on its way is not asked for again
    const head = layer.head(spec(2, 1));
    assertEqual(sent.length, 2);
    deliver(...headsReply(sent[1]));
    assertEqual((await head).data.layer, 2);
    layer.prefetchAround(spec(1, 0), 3, 3); // only the one head not here yet: the first selected one
    assertEqual(
      sent.slice(2).map((m) => m.heads),
      [[[1, 1]]],
    );
  },
  "long prompts prefetch tiles of the visible window at the view's cells"() {
    const { model, sent } = fakeModel();
    const layer = new RequestLayer(model);
    const long: HeadSpec = { revision: 1, n: 4096, layer: 0, head: 0, window: { q0: 100, q1: 612, k0: 50, k1: 562 }, cells: 400 };
    layer.prefetchAround(long, 2, 2);
    assertEqual(sent[0].tile, { q0: 100, q1: 612, k0: 50, k1: 562, rows: 400, cols: 400 });
    void layer.head(long);
    assertEqual(sent.at(-1), { type: "tile", layer: 0, head: 0, q0: 100, q1: 612, k0: 50, k1: 562, rows: 400, cols: 400, id: sent.at(-1)!.id });
  },
  "prefetch stays within its byte budget, nearest heads first"() {
    const { model, sent } = fakeModel();
    const layer = new RequestLayer(model);
    const big: HeadSpec = { revision: 1, n: WHOLE_HEAD_MAX_TOKENS, layer: 5, head: 6, window: { q0: 0, q1: 512, k0: 0, k1: 512 }, cells: 512 };
    const asked = layer.prefetchAround(big, 48, 64);
    const budget = prefetchBudget(big, 64);
    const heads = sent.flatMap((m) => m.heads as [number, number][]);
    assert(asked <= budget && asked === heads.length * 512 * 512, `${asked} bytes asked, budget ${budget}`);
    assertEqual(heads, [[5, 5]]); // what fits on its way now: the nearest
  },
  "prefetch keeps little on its way, in small batches; each arrival sends the next"() {
    const { model, sent, deliver } = fakeModel();
    const layer = new RequestLayer(model);
    const big: HeadSpec = { revision: 1, n: WHOLE_HEAD_MAX_TOKENS, layer: 0, head: 0, window: { q0: 0, q1: 512, k0: 0, k1: 512 }, cells: 512 };
    const perHead = 512 * 512;
    layer.prefetchAround(big, 1, 16);
    const inFlight = () => sent.reduce((a, m) => a + (m.heads as unknown[]).length * perHead, 0);
    assert(
      sent.every((m) => (m.heads as unknown[]).length * perHead <= PREFETCH_BATCH_BYTES),
      "batches are small",
    );
    assertEqual(inFlight(), PREFETCH_IN_FLIGHT_BYTES);
    const before = sent.length;
    const [message, buffers] = headsReply(sent[0]);
    deliver(
      { ...(message as object), n: 512 } as Incoming,
      buffers.map(() => new DataView(new ArrayBuffer(perHead))),
    );
    assert(sent.length > before, "an arrival makes room for the next batch");
    const heads = sent.flatMap((m) => m.heads as [number, number][]).map(([, h]) => h);
    assertEqual(
      heads,
      Array.from({ length: heads.length }, (_, i) => [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15][i]),
    );
  },
  "heads pushed unasked are kept when their revision is current, and announced"() {
    const { model, deliver } = fakeModel(3);
    const layer = new RequestLayer(model);
    const arrived: string[] = [];
    layer.onArrival((e) => arrived.push(e.key));
    const push = (revision: number, head: number) =>
      deliver(
        ...(patternReply({ id: 0, type: "pattern", layer: 0, head }, revision).map((x, i) => (i === 0 ? { ...(x as object), id: null } : x)) as [
          Incoming,
          DataView[],
        ]),
      );
    push(2, 0); // an older prompt's head: dropped
    push(3, 1);
    assertEqual(arrived, [headKey(spec(0, 1, 3))]);
    assert(layer.peekHead(spec(0, 0, 3)) === undefined && layer.peekHead(spec(0, 1, 3))?.exact === true, "only the current head is cached");
  },
  async "a new prompt forgets the old one's heads and rejects its pending requests"() {
    const { model, sent, deliver, setRevision } = fakeModel(1);
    const layer = new RequestLayer(model);
    deliver(...patternReply({ id: -5, type: "pattern", layer: 0, head: 0 }, 1));
    const pending = layer.head(spec(0, 1));
    setRevision(2);
    assert(layer.peekHead(spec(0, 0, 1)) === undefined, "old heads go");
    let error: unknown = null;
    await pending.catch((err) => (error = err));
    assert(error instanceof Superseded, "the old request is superseded");
    void layer.head(spec(0, 1, 2));
    assertEqual(sent.length, 2); // asked again for the new prompt
  },
  async "an error reply rejects every request it answers; errors for everyone go to listeners"() {
    const { model, sent, deliver } = fakeModel();
    const layer = new RequestLayer(model);
    const broadcast: string[] = [];
    layer.onError((m) => broadcast.push(m));
    const a = layer.head(spec(7, 0)).catch((err: Error) => err.message);
    deliver({ type: "error", id: sent[0].id, message: "layer 7 is out of range" }, []);
    deliver({ type: "error", id: null, message: "for everyone" }, []);
    assertEqual([await a, broadcast], ["layer 7 is out of range", ["for everyone"]]);
    void layer.head(spec(7, 0));
    assertEqual(sent.length, 2); // a failed request can be asked again
  },
  async "a failed prefetch asks alone for the head a view waits on, and rests until the next selection"() {
    const { model, sent, deliver } = fakeModel();
    const layer = new RequestLayer(model);
    layer.prefetchAround(spec(0, 0), 1, 3);
    const waited = layer.head(spec(0, 2)); // on its way in the batch: joined
    assertEqual(sent.length, 1);
    deliver({ type: "error", id: sent[0].id, message: "cannot batch here" }, []);
    assertEqual(
      sent.slice(1).map((m) => [m.type, m.layer, m.head]),
      [["pattern", 0, 2]],
    );
    deliver(...patternReply(sent[1]));
    assertEqual((await waited).data.head, 2);
    assertEqual(sent.length, 2); // no new prefetch after the failure
  },
  async "a head left out of a batch (undefined weights) is asked for alone"() {
    const { model, sent, deliver } = fakeModel();
    const layer = new RequestLayer(model);
    layer.prefetchAround(spec(0, 0), 1, 3);
    const waited = layer.head(spec(0, 1));
    const [message] = headsReply(sent[0]);
    deliver(message, [new DataView(new ArrayBuffer(0)), bytes([1, 2, 3, 4])[0]]); // head 1 empty, head 2 fine
    assert(layer.peekHead(spec(0, 2)) !== undefined && layer.peekHead(spec(0, 1)) === undefined, "only head 2 kept");
    assertEqual(
      sent.slice(1).map((m) => [m.type, m.head]),
      [["pattern", 1]],
    );
    deliver(...patternReply(sent[1]));
    assertEqual((await waited).exact, true);
  },
  "the cache is bounded in bytes, least recently used out first"() {
    const cache = new ByteCache<string>(100);
    cache.set("a", "A", 40);
    cache.set("b", "B", 40);
    cache.get("a");
    cache.set("c", "C", 40);
    assertEqual([cache.has("a"), cache.has("b"), cache.has("c"), cache.bytes], [true, false, true, 80]);
    cache.set("huge", "H", 101);
    assertEqual([cache.has("huge"), cache.size], [false, 2]);
  },
  "prefetch batches: the layer by distance, then the neighbouring layers, same head first"() {
    assertEqual(prefetchBatches(0, 2, 2, 4), [
      [
        [0, 1],
        [0, 3],
        [0, 0],
      ],
      [
        [1, 2],
        [1, 1],
        [1, 3],
        [1, 0],
      ],
      [],
    ]);
    assertEqual(prefetchBatches(2, 0, 5, 2), [
      [[2, 1]],
      [
        [3, 0],
        [1, 0],
        [3, 1],
        [1, 1],
      ],
      [
        [4, 0],
        [0, 0],
        [4, 1],
        [0, 1],
      ],
    ]);
  },
};
