import type { AnyModel } from "@anywidget/types";
import { WHOLE_HEAD_MAX_TOKENS } from "./contract.gen";
import { PatternClient } from "./patterns";
import { assertEqual, type Tests } from "./testing";
import type { ExplorerState, HeadData, KernelMessage, Line, Request } from "./types";

function fakeModel(): { model: AnyModel<ExplorerState>; sent: Request[] } {
  const sent: Request[] = [];
  const model = { send: (message: Request) => sent.push(message) } as unknown as AnyModel<ExplorerState>;
  return { model, sent };
}

/** The kernel's answer to a request, for a 1-token prompt (one weight of 1.0). */
function reply(request: Request, revision = 1): [KernelMessage, DataView[]] {
  const base = { id: request.id, layer: request.layer, head: request.head, revision, n: 1, dtype: "uint8" as const };
  const message: KernelMessage =
    request.type === "tile"
      ? { ...base, type: "tile", q0: request.q0, q1: request.q1, k0: request.k0, k1: request.k1, tile_rows: 1, tile_cols: 1 }
      : request.type === "row"
        ? { ...base, type: "row", index: request.index, axis: request.axis }
        : { ...base, type: "pattern" };
  return [message, [new DataView(new Uint8Array([255]).buffer)]];
}

function client(model: AnyModel<ExplorerState>) {
  const heads: HeadData[] = [];
  const rows: Line[] = [];
  const errors: string[] = [];
  const c = new PatternClient(model, { head: (d) => heads.push(d), row: (l) => rows.push(l), error: (m) => errors.push(m) });
  return { c, heads, rows, errors };
}

const ALL = { q0: 0, q1: 10, k0: 0, k1: 10 };

export const tests: Tests = {
  "only the reply to the latest request is shown"() {
    const { model, sent } = fakeModel();
    const { c, heads } = client(model);
    for (const head of [0, 1, 2]) c.requestHead(1, 10, 0, head, ALL, 10, 10);
    assertEqual(sent.length, 3);
    c.receive(...reply(sent[2]));
    c.receive(...reply(sent[0])); // late reply to an old request: dropped
    c.receive(...reply(sent[1]));
    assertEqual(
      heads.map((p) => p.head),
      [2],
    );
  },
  "a head seen before comes from the cache without a message"() {
    const { model, sent } = fakeModel();
    const { c, heads } = client(model);
    c.requestHead(1, 10, 3, 1, ALL, 10, 10);
    c.receive(...reply(sent[0]));
    c.requestHead(1, 10, 3, 2, ALL, 10, 10);
    c.requestHead(1, 10, 3, 1, ALL, 10, 10);
    assertEqual(sent.length, 2);
    assertEqual(
      heads.map((p) => p.head),
      [1, 1],
    );
    c.receive(...reply(sent[1])); // the reply for head 2 is stale now: the user moved back to head 1
    assertEqual(
      heads.map((p) => p.head),
      [1, 1],
    );
  },
  "short prompts ask for whole heads, long ones for tiles of the window"() {
    const { model, sent } = fakeModel();
    const { c } = client(model);
    c.requestHead(1, WHOLE_HEAD_MAX_TOKENS, 0, 0, ALL, 500, 500);
    c.requestHead(1, 4096, 0, 0, { q0: 100, q1: 612, k0: 50, k1: 562 }, 400, 400);
    assertEqual(
      sent.map((r) => r.type),
      ["pattern", "tile"],
    );
    assertEqual(sent[1], { type: "tile", id: sent[1].id, layer: 0, head: 0, q0: 100, q1: 612, k0: 50, k1: 562, rows: 400, cols: 400 });
  },
  "rows and heads keep separate latest requests"() {
    const { model, sent } = fakeModel();
    const { c, heads, rows } = client(model);
    c.requestHead(1, 4096, 0, 0, ALL, 10, 10);
    c.requestRow(1, 0, 0, 7, "key");
    c.receive(...reply(sent[0]));
    c.receive(...reply(sent[1]));
    assertEqual(heads.length, 1);
    assertEqual(
      rows.map((r) => [r.index, r.axis]),
      [[7, "key"]],
    );
  },
  "errors for other views' requests are ignored"() {
    const { model, sent } = fakeModel();
    const { c, errors } = client(model);
    c.requestHead(1, 10, 0, 0, ALL, 10, 10);
    c.receive({ type: "error", id: sent[0].id + 12345, message: "not mine" }, []);
    c.receive({ type: "error", id: sent[0].id, message: "mine" }, []);
    c.receive({ type: "error", id: null, message: "for everyone" }, []);
    assertEqual(errors, ["mine", "for everyone"]);
  },
};
