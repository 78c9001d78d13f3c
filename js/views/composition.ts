/** The head composition view (Elhage et al. 2021): how much each head reads, through its query, key
 *  or value, what an earlier head writes. Writers are the rows, readers of later layers the columns;
 *  pairs whose reader is not in a later layer have no score and are grey. The kernel computes the
 *  scores from the weights (maths/composition.py); this view only draws them. A click selects the
 *  reading head, a click on a row's label the writing head. */

import type { AnyModel } from "@anywidget/types";
import { VIRIDIS, lutColor } from "../colors/colors";
import { COMPOSITION_LABELS } from "../contract.gen";
import { bytesOf } from "../requests/buffers";
import type { Store } from "../state/store";
import type { CompositionKind, ExplorerState } from "../state/types";
import { SELECTED_COLOR, cellAt, drawCells, element, sizeCanvas, viewRoot } from "./canvas";
import { ColorBar } from "./colorbar";
import { headLabel } from "./labels";

export type Composition = ExplorerState["composition"];

const KINDS = Object.keys(COMPOSITION_LABELS) as CompositionKind[];
const MAX_PX = 360;
const AXIS_PX = 44;
/** Pairs with no score (the reader is not in a later layer): a grey no colour ramp of ours contains. */
const MASKED_RGB = [225, 225, 225];

/** The scores as a [writer][reader] grid over heads in layer order, from the trait's float32 bytes. */
export function compositionGrid(data: Composition): { side: number; values: Float32Array } {
  const side = (data.n_layers ?? 0) * (data.n_heads ?? 0);
  const bytes = bytesOf(data.scores);
  if (!side || bytes.byteLength !== side * side * 4) return { side: 0, values: new Float32Array(0) };
  return { side, values: new Float32Array(bytes.slice().buffer) }; // a copy: the view's offset need not be aligned
}

interface Hit {
  writer: [number, number];
  reader: [number, number] | null;
  value: number;
}

export class CompositionView {
  readonly root = viewRoot("composition", "aw-composition");
  /** Opens the view with K-composition; it sits in another view's title line, so a closed view
   *  takes no room of its own. */
  readonly opener = element("button", "aw-mode", "composition");
  readonly canvas = element("canvas", "aw-head-map");
  readonly colorBar = new ColorBar();
  private readonly kinds = new Map<CompositionKind, HTMLButtonElement>();
  private readonly close = element("button", "aw-mode", "hide");
  private readonly readout = element("div", "aw-readout", "\u00a0");
  private readonly note = element("div", "aw-status");
  private readonly body = element("div", "aw-composition-body");
  private data: Composition = {};
  private grid: { side: number; values: Float32Array } = { side: 0, values: new Float32Array(0) };
  private cell = 4;

  constructor(
    choose: (kind: "" | CompositionKind) => void,
    private readonly onSelect: (layer: number, head: number) => void,
  ) {
    const header = element("div", "aw-title");
    header.append("Head composition ");
    for (const kind of KINDS) {
      const button = element("button", "aw-mode", kind.toUpperCase());
      Object.assign(button.dataset, { role: "composition-kind", kind });
      button.setAttribute("aria-label", COMPOSITION_LABELS[kind].replace(" score", ""));
      button.addEventListener("click", () => choose(kind));
      this.kinds.set(kind, button);
      header.append(button);
    }
    this.opener.dataset.role = "composition-open";
    this.opener.setAttribute("aria-label", "show the head composition scores (Q, K, V)");
    this.opener.addEventListener("click", () => choose("k"));
    this.close.dataset.role = "composition-close";
    this.close.addEventListener("click", () => choose(""));
    header.append(this.close);
    this.canvas.dataset.role = "composition-map";
    this.canvas.addEventListener("click", (e) => {
      const hit = this.hit(e);
      if (hit) {
        const [layer, head] = hit.reader ?? hit.writer;
        this.onSelect(layer, head);
      }
    });
    this.canvas.addEventListener("mousemove", (e) => this.describe(this.hit(e)));
    this.canvas.addEventListener("mouseleave", () => this.describe(null));
    this.body.append(this.canvas, this.colorBar.root, this.readout);
    this.root.append(header, this.note, this.body);
  }

  /** Open while `kind` is set; drawn from the kernel's data once it is here (its own kind). */
  update(kind: "" | CompositionKind, data: Composition, layer: number, head: number): void {
    this.data = data;
    this.grid = compositionGrid(data);
    const shown = data.kind ?? kind;
    for (const [k, button] of this.kinds) button.setAttribute("aria-pressed", String(Boolean(kind) && k === shown));
    this.root.hidden = !kind;
    this.opener.hidden = Boolean(kind);
    const layers = data.n_layers ?? 0;
    const nHeads = data.n_heads ?? 0;
    const open = Boolean(kind) && this.grid.side > 0;
    this.note.textContent = kind && open && layers < 2 ? "one layer: no head reads what another wrote" : "";
    this.body.hidden = !open || layers < 2;
    if (this.body.hidden) return;
    // Writers of every layer but the last; readers of every layer but the first.
    const size = (layers - 1) * nHeads;
    this.cell = Math.max(1, Math.min(16, Math.floor(MAX_PX / size)));
    const extent = size * this.cell;
    const ctx = sizeCanvas(this.canvas, AXIS_PX + extent, AXIS_PX + extent);
    Object.assign(this.canvas.dataset, { left: AXIS_PX, top: AXIS_PX, cell: this.cell, rows: size, cols: size, kind: shown });
    let hi = 0;
    for (const v of this.grid.values) if (v > hi) hi = v;
    hi = hi > 0 ? hi : 1;
    const image = new ImageData(size, size);
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < size; j++) {
        const v = this.value(i, j + nHeads);
        const rgb = Number.isFinite(v) ? lutColor(VIRIDIS, v / hi) : MASKED_RGB;
        image.data.set([...rgb, 255], (i * size + j) * 4);
      }
    }
    drawCells(ctx, image, AXIS_PX, AXIS_PX, extent, extent);
    this.drawLabels(ctx, size, nHeads);
    ctx.strokeStyle = SELECTED_COLOR;
    ctx.lineWidth = 1.5;
    const at = layer * nHeads + head;
    if (layer >= 1) ctx.strokeRect(AXIS_PX + (at - nHeads) * this.cell + 0.5, AXIS_PX + 0.5, this.cell - 1, extent - 1);
    if (layer < layers - 1) ctx.strokeRect(AXIS_PX + 0.5, AXIS_PX + at * this.cell + 0.5, extent - 1, this.cell - 1);
    const units = COMPOSITION_LABELS[shown as CompositionKind] ?? "composition score";
    this.colorBar.update({ lut: VIRIDIS, lo: 0, hi, scale: "linear; grey: reader not in a later layer", units });
  }

  /** The score of writer row i and reader head index r (over all heads), NaN where masked. */
  private value(i: number, r: number): number {
    return this.grid.values[i * this.grid.side + r] ?? NaN;
  }

  private drawLabels(ctx: CanvasRenderingContext2D, size: number, nHeads: number): void {
    ctx.font = "10px sans-serif";
    ctx.fillStyle = getComputedStyle(this.root).color || "#333";
    ctx.textBaseline = "middle";
    const every = Math.ceil(11 / this.cell);
    const name = (index: number) => headLabel(Math.floor(index / nHeads), index % nHeads);
    for (let i = 0; i < size; i += every) {
      const at = AXIS_PX + (i + 0.5) * this.cell;
      ctx.textAlign = "right";
      ctx.fillText(name(i), AXIS_PX - 3, at); // writer rows
      ctx.save();
      ctx.translate(at, AXIS_PX - 3);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "left";
      ctx.fillText(name(i + nHeads), 0, 0); // reader columns, one layer later
      ctx.restore();
    }
  }

  /** The writer of the row under the pointer and the reader of its column (null on the row labels). */
  private hit(event: MouseEvent): Hit | null {
    const nHeads = this.data.n_heads ?? 0;
    const size = ((this.data.n_layers ?? 0) - 1) * nHeads;
    if (size <= 0) return null;
    const extent = size * this.cell;
    const i = cellAt(event.offsetY - AXIS_PX, extent, size);
    if (i === null) return null;
    const writer: [number, number] = [Math.floor(i / nHeads), i % nHeads];
    if (event.offsetX < AXIS_PX) return { writer, reader: null, value: NaN };
    const j = cellAt(event.offsetX - AXIS_PX, extent, size);
    if (j === null) return null;
    const r = j + nHeads;
    return { writer, reader: [Math.floor(r / nHeads), r % nHeads], value: this.value(i, r) };
  }

  private describe(hit: Hit | null): void {
    if (!hit) {
      this.readout.textContent = "\u00a0";
      return;
    }
    const w = headLabel(hit.writer[0], hit.writer[1]);
    if (!hit.reader) {
      this.readout.textContent = `${w} writes (click selects ${w})`;
      return;
    }
    const r = headLabel(hit.reader[0], hit.reader[1]);
    const label = COMPOSITION_LABELS[this.data.kind as CompositionKind] ?? "composition score";
    this.readout.textContent = Number.isFinite(hit.value)
      ? `${w} \u2192 ${r}: ${label} ${hit.value.toFixed(4)} (click selects ${r})`
      : `${w} \u2192 ${r}: no score, ${r} is not in a later layer`;
  }
}

export interface CompositionHost {
  store: Store;
  model: AnyModel<ExplorerState>;
  /** The view goes right after this element. */
  after: HTMLElement;
  /** Where the closed view's opener goes (a title line). */
  toolbar: HTMLElement;
}

/** Adds the composition view and keeps it in step with its traits; returns the function that detaches it. */
export function mountComposition(host: CompositionHost): () => void {
  const { store, model } = host;
  const view = new CompositionView(
    (kind) => store.save({ composition_kind: kind }),
    (layer, head) => store.select(layer, head),
  );
  host.after.after(view.root);
  host.toolbar.append(view.opener);
  const draw = () => view.update(store.get("composition_kind") ?? "", store.get("composition") ?? {}, store.get("layer"), store.get("head"));
  const events = ["composition_kind", "composition", "layer", "head"].map((name) => `change:${name}`);
  for (const event of events) model.on(event, draw);
  draw();
  return () => {
    for (const event of events) model.off(event, draw);
    view.root.remove();
    view.opener.remove();
  };
}
