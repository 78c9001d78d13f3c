import type { AnyModel } from "@anywidget/types";
import { PatternClient } from "./patterns";
import { assertEqual, type Tests } from "./testing";
import type { ExplorerState, Pattern, PatternReply, PatternRequest } from "./types";

function fakeModel(): { model: AnyModel<ExplorerState>; sent: PatternRequest[] } {
  const sent: PatternRequest[] = [];
  const model = { send: (message: PatternRequest) => sent.push(message) } as unknown as AnyModel<ExplorerState>;
  return { model, sent };
}

function reply(request: PatternRequest, revision = 1): [PatternReply, DataView[]] {
  const message: PatternReply = { ...request, type: "pattern", revision, n: 1, dtype: "uint8" };
  return [message, [new DataView(new Uint8Array([255]).buffer)]];
}

export const tests: Tests = {
  "only the reply to the latest request is shown"() {
    const { model, sent } = fakeModel();
    const shown: Pattern[] = [];
    const client = new PatternClient(model, (p) => shown.push(p), () => {});
    client.request(1, 0, 0);
    client.request(1, 0, 1);
    client.request(1, 0, 2);
    assertEqual(sent.length, 3);
    client.receive(...reply(sent[2]));
    client.receive(...reply(sent[0])); // late reply to an old request: dropped
    client.receive(...reply(sent[1]));
    assertEqual(shown.map((p) => p.head), [2]);
  },
  "a head seen before comes from the cache without a message"() {
    const { model, sent } = fakeModel();
    const shown: Pattern[] = [];
    const client = new PatternClient(model, (p) => shown.push(p), () => {});
    client.request(1, 3, 1);
    client.receive(...reply(sent[0]));
    client.request(1, 3, 2);
    client.request(1, 3, 1);
    assertEqual(sent.length, 2);
    assertEqual(shown.map((p) => p.head), [1, 1]);
    client.receive(...reply(sent[1])); // the reply for head 2 is stale now: the user moved back to head 1
    assertEqual(shown.map((p) => p.head), [1, 1]);
  },
  "errors for other views' requests are ignored"() {
    const { model, sent } = fakeModel();
    const errors: string[] = [];
    const client = new PatternClient(model, () => {}, (m) => errors.push(m));
    client.request(1, 0, 0);
    client.receive({ type: "error", id: sent[0].id + 12345, message: "not mine" }, []);
    client.receive({ type: "error", id: sent[0].id, message: "mine" }, []);
    client.receive({ type: "error", id: null, message: "for everyone" }, []);
    assertEqual(errors, ["mine", "for everyone"]);
  },
};
