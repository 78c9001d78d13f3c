/** Entry point of a standalone page (attn_widget.export.standalone): the explorer's front end over the
 *  data the page embeds, with no kernel. Bundled as an IIFE into static/standalone.js. */

import type { AnyModel, RenderProps } from "@anywidget/types";
import type { ExplorerState } from "../state/types";
import widget from "../widget";
import { type EmbeddedLayer, fromBase64, OfflineModel } from "./offline-model";

interface PageData {
  state: ExplorerState;
  buffers: Record<string, string>; // deflated, base64
  layers: Record<string, { dtype: "float16" | "uint8"; deflate: string; signed?: boolean }>;
}

async function inflate(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function start(script: HTMLScriptElement): Promise<void> {
  const data = JSON.parse(script.textContent ?? "{}") as PageData;
  const layers = new Map<number, EmbeddedLayer>();
  for (const [layer, { dtype, deflate, signed }] of Object.entries(data.layers)) {
    layers.set(Number(layer), { dtype, signed: signed === true, bytes: await inflate(fromBase64(deflate)) });
  }
  const state: Record<string, unknown> = { ...data.state };
  for (const [name, b64] of Object.entries(data.buffers)) state[name] = await inflate(fromBase64(b64));
  const model = new OfflineModel(state as unknown as ExplorerState, layers) as unknown as AnyModel<ExplorerState>;
  const el = document.createElement("div");
  script.after(el);
  widget().render({ model, el } as unknown as RenderProps<ExplorerState>); // no initialize: render makes its request layer
}

function startAll(): void {
  for (const script of document.querySelectorAll<HTMLScriptElement>("script[data-attn-widget]")) void start(script);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", startAll);
else startAll();
