/** The "why" panel: with "why" on, a click on a heatmap cell asks the kernel to split that score
 *  into what the residual stream's components (embeddings, earlier heads, MLPs, biases) give on the
 *  query side and on the key side, and lists the largest parts and pairs. A head there is a button:
 *  clicking it selects that head. Self-contained: its own messages ("why"), ignored by the rest. */

import type { AnyModel } from "@anywidget/types";
import type { Store } from "../state/store";
import type { ExplorerState } from "../state/types";
import { element } from "./canvas";
import { headLabel } from "./labels";

export const WHY = "why";

export interface WhyPart {
  label: string;
  kind: string;
  value: number;
}

export interface WhyPair {
  query: string;
  key: string;
  query_kind: string;
  key_kind: string;
  value: number;
}

export interface WhyReply {
  type: typeof WHY;
  id: string;
  error?: string;
  layer?: number;
  head?: number;
  query?: number;
  key?: number;
  score?: number;
  query_side?: WhyPart[];
  key_side?: WhyPart[];
  pairs?: WhyPair[];
}

/** "L0H1" -> [0, 1]; anything else (an MLP, an embedding) -> null. */
export function headOf(label: string): [number, number] | null {
  const match = /^L(\d+)H(\d+)$/.exec(label);
  return match ? [Number(match[1]), Number(match[2])] : null;
}

export interface WhyHost {
  store: Store;
  model: AnyModel<ExplorerState>;
  /** The heatmap's root: its clicks name a cell. */
  heatmap: HTMLElement;
  /** The query and key of the cell under the pointer, or null. */
  cell: () => [number, number] | null;
  /** Where the "why" switch goes (the heatmap's title line), so it takes no row of its own. */
  header?: HTMLElement;
}

export class WhyPanel {
  readonly root = element("div", "aw-why");
  private readonly toggle = element("input");
  readonly toggleLabel = element("label", "aw-why-toggle");
  private readonly body = element("div", "aw-why-body");
  private asked = "";
  private count = 0;

  constructor(
    private readonly ask: (id: string) => void,
    private readonly select: (layer: number, head: number) => void,
    private readonly headClass: (layer: number, head: number) => string,
  ) {
    this.root.dataset.role = "why";
    this.toggle.type = "checkbox";
    this.toggle.dataset.role = "why-toggle";
    const label = this.toggleLabel;
    label.append(this.toggle, " why");
    label.title = "why: click a cell to split its score into the components that wrote the query and the key";
    this.toggle.addEventListener("change", () => {
      this.body.hidden = !this.toggle.checked;
    });
    this.body.hidden = true;
    this.body.dataset.role = "why-body";
    this.root.append(label, this.body);
  }

  get on(): boolean {
    return this.toggle.checked;
  }

  request(): string {
    this.count += 1;
    this.asked = `why-${this.count}`;
    this.body.replaceChildren(element("div", "aw-status", "splitting the score\u2026"));
    this.ask(this.asked);
    return this.asked;
  }

  receive(reply: WhyReply): boolean {
    if (reply.type !== WHY || reply.id !== this.asked) return false;
    if (reply.error) {
      this.body.replaceChildren(element("div", "aw-status", reply.error));
      return true;
    }
    const title = element(
      "div",
      "aw-why-title",
      `${headLabel(Number(reply.layer), Number(reply.head))}, query ${reply.query} \u2192 key ${reply.key}: score ${(reply.score ?? Number.NaN).toFixed(3)}`,
    );
    const columns = element("div", "aw-why-columns");
    columns.style.cssText = "display: flex; gap: 16px; flex-wrap: wrap; font-size: 12px";
    columns.append(
      this.list("query side", reply.query_side ?? [], "why-query"),
      this.list("key side", reply.key_side ?? [], "why-key"),
      this.pairs(reply.pairs ?? []),
    );
    this.body.replaceChildren(title, columns);
    return true;
  }

  private name(label: string, kind: string): HTMLElement {
    const head = headOf(label);
    if (!head) return element("span", "aw-why-part", `${label} (${kind})`);
    const button = element("button", "aw-why-head", `${label} (${this.headClass(head[0], head[1]) || kind})`);
    button.style.cssText = "font: inherit; padding: 0 4px; cursor: pointer";
    button.type = "button";
    button.dataset.head = label;
    button.addEventListener("click", () => this.select(head[0], head[1]));
    return button;
  }

  private list(caption: string, parts: WhyPart[], role: string): HTMLElement {
    const box = element("div", "aw-why-list");
    box.dataset.role = role;
    box.append(element("div", "aw-why-caption", caption));
    for (const part of parts) {
      const row = element("div", "aw-why-row");
      row.append(this.name(part.label, part.kind), " ", element("span", "aw-why-value", part.value.toFixed(3)));
      box.append(row);
    }
    return box;
  }

  private pairs(pairs: WhyPair[]): HTMLElement {
    const box = element("div", "aw-why-list");
    box.dataset.role = "why-pairs";
    box.append(element("div", "aw-why-caption", "top pairs (query \u00b7 key)"));
    for (const pair of pairs) {
      const row = element("div", "aw-why-row");
      row.append(this.name(pair.query, pair.query_kind), " \u00b7 ", this.name(pair.key, pair.key_kind));
      row.append(" ", element("span", "aw-why-value", pair.value.toFixed(3)));
      box.append(row);
    }
    return box;
  }
}

/** Puts the panel after the heatmap and wires it to clicks, the kernel and the selection; returns its unmount. */
export function mountWhy(host: WhyHost): () => void {
  const { store, model } = host;
  let cell: [number, number] | null = null;
  const panel = new WhyPanel(
    (id) => {
      if (!cell) return;
      const [query, key] = cell;
      model.send({ type: WHY, id, layer: store.get("layer"), head: store.get("head"), query, key });
    },
    (layer, head) => store.select(layer, head),
    (layer, head) => store.get("head_classes")?.[layer]?.[head] ?? "",
  );
  host.heatmap.append(panel.root);
  if (host.header) host.header.append(" \u00b7 ", panel.toggleLabel);
  let down: [number, number] | null = null;
  const onDown = (e: MouseEvent) => {
    down = [e.clientX, e.clientY];
  };
  const onClick = (e: MouseEvent) => {
    const moved = down ? Math.abs(e.clientX - down[0]) + Math.abs(e.clientY - down[1]) : 0;
    if (!panel.on || moved > 3) return; // a drag pans the heatmap: no question asked
    cell = host.cell();
    if (cell) panel.request();
  };
  const onMessage = (message: WhyReply) => {
    if (message && message.type === WHY) panel.receive(message);
  };
  host.heatmap.addEventListener("mousedown", onDown);
  host.heatmap.addEventListener("click", onClick);
  model.on("msg:custom", onMessage);
  return () => {
    host.heatmap.removeEventListener("mousedown", onDown);
    host.heatmap.removeEventListener("click", onClick);
    model.off("msg:custom", onMessage);
    panel.root.remove();
    panel.toggleLabel.remove();
  };
}
