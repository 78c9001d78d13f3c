/** Head thumbnails: the selected layer's heads as a grid, and every layer's as an overview. */

import { SELECTED_COLOR, cellAt, drawCells, drawPending, element, reuseCanvas, sizeCanvas, viewRoot } from "./canvas";
import { applyScale, paintCells, type ColorScale, type Lut } from "../colors/colors";
import { headLabel } from "./labels";

const GRID_THUMB_PX = 64;
const OVERVIEW_MAX_WIDTH_PX = 236; // the narrowest side column
const OVERVIEW_AXIS_PX = 26;

/** uint8 thumbnails [layers, heads, side, side] as the kernel sends them. */
export interface Thumbnails {
  bytes: Uint8Array;
  side: number;
  nLayers: number;
  nHeads: number;
  /** The kernel is still publishing layers: an all-zero thumbnail is one not computed yet. */
  inProgress?: boolean;
}

export interface ThumbStyle {
  scale: ColorScale;
  lut: Lut;
}

/** True when two lists hold the same things (by identity): the thumbnails need no repainting. */
function same(a: unknown[], b: unknown[] | null): boolean {
  return b !== null && a.length === b.length && a.every((x, i) => x === b[i]);
}

/** One head's thumbnail bytes, or null while it is pending (missing, or all zero while the kernel
 *  is still publishing layers: a finished causal head always has its first cell at 1). */
export function thumbBytes(t: Thumbnails, layer: number, head: number): Uint8Array | null {
  const size = t.side * t.side;
  const start = (layer * t.nHeads + head) * size;
  if (!t.side || t.bytes.length < start + size) return null;
  const bytes = t.bytes.subarray(start, start + size);
  return t.inProgress && bytes.every((b) => b === 0) ? null : bytes;
}

function thumbImage(t: Thumbnails, layer: number, head: number, style: ThumbStyle): ImageData | null {
  const bytes = thumbBytes(t, layer, head);
  if (!bytes) return null;
  const values = Float32Array.from(bytes, (b) => b / 255);
  return paintCells(applyScale(values, t.side, style.scale), t.side, t.side, style.lut);
}

export class HeadGridView {
  readonly root = viewRoot("grid", "aw-grid");
  private readonly layerSelect = element("select", "aw-select");
  private readonly cells = element("div", "aw-grid-cells");
  private painted: unknown[] | null = null;
  /** Each layer's module (and pass), from the kernel's layer_names: shown in the tooltips. */
  layerNames: string[] = [];

  constructor(
    private readonly onSelectLayer: (layer: number) => void,
    private readonly onSelectHead: (head: number) => void,
  ) {
    this.layerSelect.setAttribute("aria-label", "layer");
    this.layerSelect.addEventListener("change", () => this.onSelectLayer(Number(this.layerSelect.value)));
    const header = element("div", "aw-title");
    header.append("Heads of layer ", this.layerSelect);
    this.root.append(header, this.cells);
  }

  update(t: Thumbnails, layer: number, head: number, classes: string[][], style: ThumbStyle): void {
    if (this.layerSelect.options.length !== t.nLayers) {
      this.layerSelect.replaceChildren(...Array.from({ length: t.nLayers }, (_, l) => new Option(String(l), String(l))));
    }
    Array.from(this.layerSelect.options).forEach((option, l) => {
      option.title = this.layerNames[l] ?? "";
    });
    this.layerSelect.value = String(layer);
    const content = [t.bytes.buffer, t.bytes.byteOffset, t.side, t.inProgress, layer, classes, style.scale, style.lut, this.layerNames];
    if (!same(content, this.painted)) {
      this.painted = content;
      this.paint(t, layer, classes, style);
    }
    this.cells.querySelectorAll<HTMLElement>(".aw-thumb").forEach((cell, h) => {
      cell.classList.toggle("aw-selected", h === head);
    });
  }

  /** Repaint the thumbnails of `layer`; the buttons stay (a layer change is a key press away). */
  private paint(t: Thumbnails, layer: number, classes: string[][], style: ThumbStyle): void {
    if (this.cells.children.length !== t.nHeads) this.cells.replaceChildren(...Array.from({ length: t.nHeads }, (_, h) => this.button(h)));
    let pending = 0;
    Array.from(this.cells.children).forEach((child, h) => {
      const cell = child as HTMLElement;
      const kind = classes[layer]?.[h];
      const name = this.layerNames[layer];
      cell.title = `${headLabel(layer, h)}${name ? ` \u00b7 ${name}` : ""}${kind ? `: ${kind}` : ""}`;
      cell.setAttribute("aria-label", cell.title);
      cell.querySelector("span")!.textContent = kind ? `${headLabel(layer, h)} \u00b7 ${kind}` : `${headLabel(layer, h)}`;
      const ctx = reuseCanvas(cell.querySelector("canvas")!, GRID_THUMB_PX, GRID_THUMB_PX);
      const image = thumbImage(t, layer, h, style);
      if (image) drawCells(ctx, image, 0, 0, GRID_THUMB_PX, GRID_THUMB_PX);
      else drawPending(ctx, 0, 0, GRID_THUMB_PX, GRID_THUMB_PX);
      if (!image) pending++;
      cell.dataset.pending = String(!image);
    });
    this.root.dataset.pending = String(pending);
  }

  private button(h: number): HTMLButtonElement {
    const cell = element("button", "aw-thumb");
    cell.dataset.head = String(h);
    cell.tabIndex = -1; // the grid itself takes the keyboard focus; arrows move the selection
    cell.append(element("canvas"), element("span", "aw-thumb-label"));
    cell.addEventListener("click", () => this.onSelectHead(h));
    return cell;
  }
}

export class OverviewView {
  readonly root = viewRoot("overview", "aw-overview");
  private readonly canvas = element("canvas", "aw-overview-map");
  private thumbs: Thumbnails | null = null;
  private cell = 32;
  private readonly painted = element("canvas"); // every thumbnail, drawn once per prompt and style
  private paintedFor: unknown[] | null = null;

  constructor(private readonly onSelect: (layer: number, head: number) => void) {
    this.canvas.dataset.role = "overview-map";
    this.root.append(element("div", "aw-title", "All heads"), this.canvas);
    this.canvas.addEventListener("click", (e) => {
      if (!this.thumbs) return;
      const l = cellAt(e.offsetY - OVERVIEW_AXIS_PX, this.thumbs.nLayers * this.cell, this.thumbs.nLayers);
      const h = cellAt(e.offsetX - OVERVIEW_AXIS_PX, this.thumbs.nHeads * this.cell, this.thumbs.nHeads);
      if (l !== null && h !== null) this.onSelect(l, h);
    });
  }

  update(t: Thumbnails, layer: number, head: number, style: ThumbStyle): void {
    this.thumbs = t;
    this.cell = Math.max(12, Math.min(48, Math.floor((OVERVIEW_MAX_WIDTH_PX - OVERVIEW_AXIS_PX) / Math.max(t.nHeads, 1))));
    const width = OVERVIEW_AXIS_PX + t.nHeads * this.cell;
    const height = OVERVIEW_AXIS_PX + t.nLayers * this.cell;
    // The theme changes the lut too: no need to read the text colour (a style recalculation) on every switch.
    const content = [t.bytes.buffer, t.bytes.byteOffset, t.side, t.inProgress, style.scale, style.lut];
    if (!same(content, this.paintedFor)) {
      this.paintedFor = content;
      this.paint(sizeCanvas(this.painted, width, height), t, style);
    }
    const ctx = reuseCanvas(this.canvas, width, height);
    Object.assign(this.canvas.dataset, { left: OVERVIEW_AXIS_PX, top: OVERVIEW_AXIS_PX, cell: this.cell, rows: t.nLayers, cols: t.nHeads });
    ctx.drawImage(this.painted, 0, 0, width, height);
    ctx.strokeStyle = SELECTED_COLOR;
    ctx.lineWidth = 2;
    ctx.strokeRect(OVERVIEW_AXIS_PX + head * this.cell, OVERVIEW_AXIS_PX + layer * this.cell, this.cell, this.cell);
  }

  private paint(ctx: CanvasRenderingContext2D, t: Thumbnails, style: ThumbStyle): void {
    ctx.font = "10px sans-serif";
    ctx.fillStyle = getComputedStyle(this.root).color || "#333";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    for (let h = 0; h < t.nHeads; h++) ctx.fillText(`H${h}`, OVERVIEW_AXIS_PX + (h + 0.5) * this.cell, OVERVIEW_AXIS_PX / 2);
    for (let l = 0; l < t.nLayers; l++) ctx.fillText(`L${l}`, OVERVIEW_AXIS_PX / 2, OVERVIEW_AXIS_PX + (l + 0.5) * this.cell);
    let pending = 0;
    for (let l = 0; l < t.nLayers; l++) {
      for (let h = 0; h < t.nHeads; h++) {
        const image = thumbImage(t, l, h, style);
        const x = OVERVIEW_AXIS_PX + h * this.cell;
        const y = OVERVIEW_AXIS_PX + l * this.cell;
        if (image) drawCells(ctx, image, x + 1, y + 1, this.cell - 2, this.cell - 2);
        else drawPending(ctx, x + 1, y + 1, this.cell - 2, this.cell - 2);
        if (!image) pending++;
      }
    }
    this.root.dataset.pending = String(pending);
  }
}
