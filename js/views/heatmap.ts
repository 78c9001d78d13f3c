/** The selected head's pattern: query rows, key columns, token labels thinned to fit. Long
 *  prompts zoom and pan (wheel, drag, + - 0 and Shift+arrows); the kernel sends max-pooled tiles
 *  of the visible window, so no strong weight vanishes at any zoom. */

import { cellAt, drawCells, element, reuseCanvas, sizeCanvas, viewRoot } from "./canvas";
import { COLOR_SCALE_LABELS, UNDEFINED_CSS, applyScale, countUndefined, paintCells, type ColorScale, type Lut } from "../colors/colors";
import { MAX_TILE_CELLS } from "../contract.gen";
import { RED_BLUE, signedShades } from "../colors/diverging";
import { displayToken, labelIndices, headLabel } from "./labels";
import type { HeadData, Pattern, Tile, Window } from "../state/types";
import { Viewport } from "./viewport";
import { ColorBar } from "./colorbar";
import { COLORBAR_UNITS } from "../contract.gen";

export const LABEL_PX = 80;
const LABEL_FONT_PX = 11;
export const MIN_MATRIX_PX = 240;
export const MAX_MATRIX_PX = 720;
const WHEEL_ZOOM = 1.25;
const WINDOW_REQUEST_DELAY_MS = 40;

export interface HeatmapCallbacks {
  hoverQuery(query: number | null): void;
  setScale(scale: ColorScale): void;
  /** The visible window changed: fetch it at rows x cols cells (for tiles). */
  windowChanged(window: Window, rows: number, cols: number): void;
}

/** The weights of `window` from a whole head, row-major. */
function crop(pattern: Pattern, w: Window): Float32Array {
  const rows = w.q1 - w.q0;
  const cols = w.k1 - w.k0;
  const out = new Float32Array(rows * cols);
  for (let q = 0; q < rows; q++) out.set(pattern.values.subarray((w.q0 + q) * pattern.n + w.k0, (w.q0 + q) * pattern.n + w.k1), q * cols);
  return out;
}

export class HeatmapView {
  readonly root = viewRoot("heatmap", "aw-heatmap");
  private readonly title = element("span", "aw-title-text", "Attention pattern");
  /** Each layer's module (and pass), from the kernel's layer_names: shown in the title line. */
  layerNames: string[] = [];
  private readonly zoomLabel = element("span", "aw-hint");
  private readonly undefinedLabel = element("span", "aw-undefined");
  private readonly scaleSelect = element("select", "aw-select");
  private readonly matrix = element("canvas", "aw-matrix");
  private readonly overlay = element("canvas", "aw-overlay");
  private readonly queryLabels = element("canvas", "aw-labels");
  private readonly keyLabels = element("canvas", "aw-labels");
  private readonly stage = element("div", "aw-stage");
  private readonly readout = element("div", "aw-readout", "\u00a0");
  private readonly context = element("div", "aw-context");
  readonly colorBar = new ColorBar();
  private units: string = COLORBAR_UNITS.attention;
  private readonly viewport = new Viewport();
  private data: HeadData | null = null;
  private labelled: string[] | null = null; // the tokens the labels show
  private exact = true; // the values of `data` are exact (not uint8-rounded, not a preview)
  private tokens: string[] = [];
  private scale: ColorScale = "linear";
  private lut: Lut | null = null;
  private signedLut: Lut = RED_BLUE;
  /** The header, where the widget adds its weighting selector. */
  readonly header = element("div", "aw-title");
  private size = 400;
  private hovered: [number, number] | null = null; // token indices
  private focusQuery: number | null = null;
  private drag: { x: number; y: number } | null = null;
  private requestTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly callbacks: HeatmapCallbacks) {
    this.matrix.dataset.role = "matrix";
    this.overlay.dataset.role = "overlay";
    this.readout.dataset.role = "readout";
    this.scaleSelect.setAttribute("aria-label", "colour scale");
    this.scaleSelect.replaceChildren(...Object.entries(COLOR_SCALE_LABELS).map(([k, label]) => new Option(label, k)));
    this.scaleSelect.addEventListener("change", () => this.callbacks.setScale(this.scaleSelect.value as ColorScale));
    this.title.dataset.role = "heatmap-title";
    this.context.dataset.role = "heatmap-context";
    const scaleLabel = element("label", "aw-inline");
    scaleLabel.append("scale ", this.scaleSelect);
    this.header.append(this.title, scaleLabel, this.zoomLabel, this.undefinedLabel);
    this.undefinedLabel.dataset.role = "undefined-weights";
    this.undefinedLabel.style.setProperty("--aw-swatch", UNDEFINED_CSS);
    this.undefinedLabel.hidden = true;
    const matrixBox = element("div", "aw-matrix-box");
    matrixBox.append(this.matrix, this.overlay);
    this.stage.append(element("div"), this.keyLabels, this.queryLabels, matrixBox);
    const foot = element("div", "aw-foot");
    foot.append(this.colorBar.root, this.readout);
    this.root.append(this.header, this.context, this.stage, foot);
    this.overlay.addEventListener("mousemove", (e) => this.onMouseMove(e));
    this.overlay.addEventListener("mouseleave", () => this.hover(null));
    this.overlay.addEventListener("mousedown", (e) => (this.drag = { x: e.offsetX, y: e.offsetY }));
    window.addEventListener("mouseup", this.endDrag);
    this.overlay.addEventListener("wheel", (e) => this.onWheel(e), { passive: false });
    this.overlay.addEventListener("dblclick", () => this.changeWindow(() => this.viewport.reset(this.viewport.n)));
    this.root.addEventListener("keydown", (e) => this.onKey(e));
    this.resize(this.size);
  }

  /** Cells a tile of the visible window should have: one per device pixel at most, and never more
   *  than the kernel's largest tile (on a 2x display the matrix has up to 1120 device pixels). */
  get tileCells(): number {
    return Math.min(this.viewport.span, MAX_TILE_CELLS, Math.round(this.size * (window.devicePixelRatio || 1)));
  }

  /** The query and key under the pointer, or null. */
  get hoveredCell(): [number, number] | null {
    return this.hovered;
  }

  get window(): Window {
    return this.viewport.window;
  }

  /** A new prompt of n tokens: show all of it. */
  reset(n: number, tokens: string[]): void {
    this.viewport.reset(n);
    this.tokens = tokens;
    this.data = null;
    this.hovered = null;
    this.undefinedLabel.hidden = true;
    for (const key of ["drawn", "preview", "exact"]) delete this.root.dataset[key];
    this.draw();
  }

  /** Fit the matrix into `px` CSS pixels a side (within MIN..MAX) and redraw. */
  resize(px: number): void {
    const size = Math.round(Math.max(MIN_MATRIX_PX, Math.min(MAX_MATRIX_PX, px)));
    if (size === this.size && this.matrix.width) return;
    this.size = size;
    this.stage.style.gridTemplateColumns = `${LABEL_PX}px ${this.size}px`;
    // The view is as wide as its labels and matrix: a longer header or readout is cut, never wider.
    this.root.style.width = `${LABEL_PX + this.size + 4}px`;
    this.draw();
    this.scheduleWindowRequest();
  }

  /** Draw a head's weights. data-drawn names the head on the canvas; data-exact says whether its
   *  values are exact (float16, or a tile at its resolution) or uint8 (drawn exactly, values rounded). */
  setData(data: HeadData, tokens: string[], exact = true): void {
    this.data = data;
    this.tokens = tokens;
    this.exact = exact;
    const name = this.layerNames[data.layer];
    this.title.textContent = `${headLabel(data.layer, data.head)}${name ? ` \u00b7 ${name}` : ""}${data.signed ? ": prompt \u2212 compare prompt" : ""}`;
    this.title.title = this.title.textContent; // cut when long: the whole line on hover
    this.root.dataset.signed = String(Boolean(data.signed));
    delete this.root.dataset.preview;
    this.root.dataset.drawn = `${data.revision}:${data.layer}:${data.head}`;
    this.root.dataset.exact = String(exact);
    this.root.dataset.tile = data.kind === "tile" ? `${data.q0}:${data.q1}:${data.k0}:${data.k1}` : "whole";
    this.root.dataset.tileCells = data.kind === "tile" ? `${data.rows}x${data.cols}` : "";
    // NaN or infinite weights (the kernel sends both as NaN) are drawn in their own colour, and counted.
    const undefinedCount = countUndefined(data.values);
    this.root.dataset.undefined = String(undefinedCount);
    this.undefinedLabel.hidden = !undefinedCount;
    this.undefinedLabel.textContent = `${undefinedCount} undefined ${data.kind === "tile" ? "cells" : "weights"} (NaN)`;
    this.draw(tokens !== this.labelled);
  }

  /** Draw a head's thumbnail scaled up while its weights are on their way: data-preview names it,
   *  and data-drawn is removed, so nothing reads a preview (or the previous head) as the current head. */
  showPreview(thumbnail: Tile): void {
    this.data = thumbnail;
    this.exact = false;
    this.title.textContent = `${headLabel(thumbnail.layer, thumbnail.head)} (preview)`;
    delete this.root.dataset.drawn;
    delete this.root.dataset.exact;
    this.root.dataset.preview = `${thumbnail.revision}:${thumbnail.layer}:${thumbnail.head}`;
    this.root.dataset.tile = "preview";
    this.root.dataset.undefined = "0";
    this.undefinedLabel.hidden = true;
    this.draw(false);
  }

  setStyle(scale: ColorScale, lut: Lut, signedLut: Lut = RED_BLUE): void {
    this.signedLut = signedLut;
    this.scale = scale;
    this.scaleSelect.value = scale;
    this.lut = lut;
    this.draw();
  }

  /** What the map shows, said above it (weighting, compare prompt, sinks excluded); and the
   *  colour bar's units for unsigned weights. */
  setContext(text: string, units: string): void {
    this.context.textContent = text;
    this.context.hidden = !text;
    this.units = units;
    this.drawColorBar();
  }

  private drawColorBar(): void {
    const signed = Boolean(this.data?.signed);
    const lut = signed ? this.signedLut : this.lut;
    if (!lut) return;
    const lo = this.scale === "log" ? 1e-4 : 0;
    const scale = { linear: "linear", log: "log", row: "per row: 1 = the row's largest" }[this.scale];
    this.colorBar.update(
      signed
        ? { lut, lo: -1, hi: 1, signed, scale: `${scale}, centred on zero`, units: COLORBAR_UNITS.difference }
        : { lut, lo, hi: 1, scale, units: this.units },
    );
  }

  /** Highlight one query row (the focused token), or none. */
  setFocusQuery(query: number | null): void {
    this.focusQuery = query;
    this.drawOverlay();
  }

  /** Bring token `index` to the middle of the window, zoomed in to at most `maxSpan` tokens
   *  (after a jump to a far token in a long prompt). */
  centerOn(index: number, maxSpan = 256): void {
    this.changeWindow(() => this.viewport.centerOn(index, maxSpan));
  }

  dispose(): void {
    window.removeEventListener("mouseup", this.endDrag);
    if (this.requestTimer !== null) clearTimeout(this.requestTimer);
  }

  // ---- drawing -----------------------------------------------------------------------

  /** Redraw; `labels` false when only the weights changed (a head switch): the token labels stay. */
  private draw(labels = true): void {
    const ctx = reuseCanvas(this.matrix, this.size, this.size);
    const w = this.viewport.window;
    const span = this.viewport.span;
    if (this.data && this.lut && span > 0) {
      // A difference between two prompts is signed: diverging colours, 0 in the middle.
      const signed = Boolean(this.data.signed);
      const shade = (v: Float32Array, cols: number) => (signed ? signedShades(v, cols, this.scale) : applyScale(v, cols, this.scale));
      const lut = signed ? this.signedLut : this.lut;
      if (this.data.kind === "pattern") {
        const cells = shade(crop(this.data, w), span);
        drawCells(ctx, paintCells(cells, span, span, lut), 0, 0, this.size, this.size);
      } else {
        // A tile of another window (while the new one is on its way) is drawn where it lies.
        const t = this.data;
        const px = this.size / span;
        const image = paintCells(shade(t.values, t.cols), t.rows, t.cols, lut);
        drawCells(ctx, image, (t.k0 - w.k0) * px, (t.q0 - w.q0) * px, (t.k1 - t.k0) * px, (t.q1 - t.q0) * px);
      }
    }
    this.zoomLabel.textContent = this.viewport.zoomed
      ? `queries ${w.q0}\u2013${w.q1 - 1}, keys ${w.k0}\u2013${w.k1 - 1} (double-click: all)`
      : this.viewport.n > 64
        ? "wheel to zoom, drag to pan"
        : "";
    this.root.dataset.window = `${w.q0}:${w.q1}:${w.k0}:${w.k1}`;
    this.drawColorBar();
    if (labels) this.drawLabels();
    this.drawOverlay();
    this.updateReadout();
  }

  private drawOverlay(): void {
    const ctx = reuseCanvas(this.overlay, this.size, this.size);
    const { q0, k0 } = this.viewport.window;
    const span = this.viewport.span;
    if (!span) return;
    const cell = this.size / span;
    const query = this.hovered ? this.hovered[0] : this.focusQuery;
    ctx.fillStyle = "rgba(255, 160, 0, 0.28)";
    if (query !== null && query >= q0 && query < q0 + span) ctx.fillRect(0, (query - q0) * cell, this.size, Math.max(cell, 1));
    if (this.hovered) {
      const [q, k] = this.hovered;
      ctx.fillRect((k - k0) * cell, 0, Math.max(cell, 1), this.size);
      ctx.strokeStyle = "rgb(230, 120, 0)";
      ctx.lineWidth = 1.5;
      ctx.strokeRect((k - k0) * cell, (q - q0) * cell, Math.max(cell, 2), Math.max(cell, 2));
    }
  }

  private drawLabels(): void {
    const { q0, k0 } = this.viewport.window;
    const span = this.viewport.span;
    const cell = this.size / Math.max(span, 1);
    const color = getComputedStyle(this.root).color || "#333";
    this.labelled = this.tokens;
    const left = sizeCanvas(this.queryLabels, LABEL_PX, this.size);
    const top = sizeCanvas(this.keyLabels, this.size, LABEL_PX);
    for (const ctx of [left, top]) {
      ctx.font = `${LABEL_FONT_PX}px sans-serif`;
      ctx.fillStyle = color;
      ctx.textBaseline = "middle";
    }
    left.textAlign = "right";
    top.textAlign = "left";
    // Labels stay whole: centred on their cell but kept inside the canvas, cut with an ellipsis to fit.
    const half = LABEL_FONT_PX / 2 + 1;
    const along = (i: number) => Math.min(this.size - half, Math.max(half, (i + 0.5) * cell));
    for (const i of labelIndices(span, this.size, LABEL_FONT_PX + 1)) {
      const label = (index: number) =>
        fitText(left, (span < this.viewport.n || span > 64 ? `${index} ` : "") + displayToken(this.tokens[index] ?? ""), LABEL_PX - 6);
      left.fillText(label(q0 + i), LABEL_PX - 4, along(i));
      top.save();
      top.translate(along(i), LABEL_PX - 4);
      top.rotate(-Math.PI / 2);
      top.fillText(label(k0 + i), 0, 0);
      top.restore();
    }
  }

  private updateReadout(): void {
    if (!this.data || !this.hovered) {
      this.readout.textContent = "Hover the pattern: query (row) \u2192 key (column), weight";
      return;
    }
    const [q, k] = this.hovered;
    const token = (i: number) => JSON.stringify(this.tokens[i] ?? "");
    const data = this.data;
    const about = this.exact ? "" : "\u2248"; // rounded to a byte: the token strip gets exact rows
    if (data.kind === "pattern") {
      this.readout.textContent = `query ${q} ${token(q)} \u2192 key ${k} ${token(k)}: ${about}${formatWeight(data.values[q * data.n + k])}`;
      return;
    }
    const cell = tileCell(data, q, k);
    if (!cell) return;
    const [r, c, qa, qb, ka, kb] = cell;
    const weight = about + formatWeight(data.values[r * data.cols + c]);
    this.readout.textContent =
      qb - qa === 1 && kb - ka === 1
        ? `query ${q} ${token(q)} \u2192 key ${k} ${token(k)}: ${weight}`
        : `queries ${qa}\u2013${qb - 1} \u2192 keys ${ka}\u2013${kb - 1}: max ${weight} (zoom in for each token)`;
  }

  // ---- interaction -------------------------------------------------------------------

  private tokenAt(x: number, y: number): [number, number] | null {
    const { q0, k0 } = this.viewport.window;
    const q = cellAt(y, this.size, this.viewport.span);
    const k = cellAt(x, this.size, this.viewport.span);
    return q !== null && k !== null ? [q0 + q, k0 + k] : null;
  }

  private onMouseMove(event: MouseEvent): void {
    if (this.drag && event.buttons === 1) {
      const perPx = this.viewport.span / this.size;
      const dq = Math.round((this.drag.y - event.offsetY) * perPx);
      const dk = Math.round((this.drag.x - event.offsetX) * perPx);
      if (dq || dk) {
        this.drag = { x: event.offsetX, y: event.offsetY };
        this.changeWindow(() => this.viewport.pan(dq, dk));
      }
      return;
    }
    this.hover(this.tokenAt(event.offsetX, event.offsetY));
  }

  private readonly endDrag = () => {
    this.drag = null;
  };

  private hover(cell: [number, number] | null): void {
    this.hovered = cell;
    this.callbacks.hoverQuery(cell ? cell[0] : null);
    this.drawOverlay();
    this.updateReadout();
  }

  private onWheel(event: WheelEvent): void {
    if (this.viewport.n <= 1) return;
    event.preventDefault();
    const factor = event.deltaY > 0 ? WHEEL_ZOOM : 1 / WHEEL_ZOOM;
    this.changeWindow(() => this.viewport.zoom(factor, event.offsetX / this.size, event.offsetY / this.size));
  }

  private onKey(event: KeyboardEvent): void {
    const step = Math.max(1, Math.round(this.viewport.span / 4));
    const actions: Record<string, () => void> = {
      "+": () => this.viewport.zoom(1 / WHEEL_ZOOM),
      "=": () => this.viewport.zoom(1 / WHEEL_ZOOM),
      "-": () => this.viewport.zoom(WHEEL_ZOOM),
      "0": () => this.viewport.reset(this.viewport.n),
    };
    if (event.shiftKey) {
      Object.assign(actions, {
        ArrowLeft: () => this.viewport.pan(0, -step),
        ArrowRight: () => this.viewport.pan(0, step),
        ArrowUp: () => this.viewport.pan(-step, 0),
        ArrowDown: () => this.viewport.pan(step, 0),
      });
    }
    const action = actions[event.key];
    if (!action) return;
    event.preventDefault();
    event.stopPropagation(); // Shift+arrows pan here; plain arrows still move between heads
    this.changeWindow(action);
  }

  private changeWindow(change: () => void): void {
    change();
    this.draw();
    this.scheduleWindowRequest();
  }

  /** Ask for the visible window shortly after the last change (wheel and drag fire often). */
  private scheduleWindowRequest(): void {
    if (this.requestTimer !== null) clearTimeout(this.requestTimer);
    this.requestTimer = setTimeout(() => {
      this.requestTimer = null;
      if (this.viewport.n) this.callbacks.windowChanged(this.viewport.window, this.tileCells, this.tileCells);
    }, WINDOW_REQUEST_DELAY_MS);
  }
}

function formatWeight(value: number): string {
  return Number.isNaN(value) ? "undefined (NaN)" : value.toFixed(3);
}

/** The tile cell holding token pair (q, k) and the token ranges it covers, as adaptive pooling bins. */
export function tileCell(t: Tile, q: number, k: number): [number, number, number, number, number, number] | null {
  const rowsLen = Math.min(t.q1, t.n) - t.q0;
  const colsLen = Math.min(t.k1, t.n) - t.k0;
  if (q < t.q0 || q >= t.q0 + rowsLen || k < t.k0 || k >= t.k0 + colsLen) return null;
  const r = Math.floor(((q - t.q0) * t.rows) / rowsLen);
  const c = Math.floor(((k - t.k0) * t.cols) / colsLen);
  const bin = (i: number, len: number, cells: number): [number, number] => [Math.floor((i * len) / cells), Math.ceil(((i + 1) * len) / cells)];
  const [qa, qb] = bin(r, rowsLen, t.rows);
  const [ka, kb] = bin(c, colsLen, t.cols);
  return [r, c, t.q0 + qa, t.q0 + qb, t.k0 + ka, t.k0 + kb];
}

/** `text` cut with an ellipsis so that it is at most `px` wide in the context's font. */
export function fitText(ctx: CanvasRenderingContext2D, text: string, px: number): string {
  if (ctx.measureText(text).width <= px) return text;
  let cut = text;
  while (cut.length > 1 && ctx.measureText(`${cut}\u2026`).width > px) cut = cut.slice(0, -1);
  return `${cut}\u2026`;
}
