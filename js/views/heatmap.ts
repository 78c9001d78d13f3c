/** The selected head's pattern: query rows, key columns, token labels thinned to fit. */

import { drawCells, element, sizeCanvas, cellAt, viewRoot } from "../canvas";
import { COLOR_SCALES, applyScale, paintCells, type ColorScale, type Lut } from "../colors";
import { displayToken, labelIndices } from "../labels";
import type { Pattern } from "../types";

const LABEL_PX = 96;
const LABEL_FONT_PX = 11;
export const MIN_MATRIX_PX = 240;
export const MAX_MATRIX_PX = 560;

export interface HeatmapCallbacks {
  hoverQuery(query: number | null): void;
  setScale(scale: ColorScale): void;
}

export class HeatmapView {
  readonly root = viewRoot("heatmap", "aw-heatmap");
  private readonly title = element("span", "aw-title-text", "Attention pattern");
  private readonly scaleSelect = element("select", "aw-select");
  private readonly matrix = element("canvas", "aw-matrix");
  private readonly overlay = element("canvas", "aw-overlay");
  private readonly queryLabels = element("canvas", "aw-labels");
  private readonly keyLabels = element("canvas", "aw-labels");
  private readonly stage = element("div", "aw-stage");
  private readonly readout = element("div", "aw-readout", "\u00a0");
  private pattern: Pattern | null = null;
  private tokens: string[] = [];
  private scale: ColorScale = "linear";
  private lut: Lut | null = null;
  private size = 400;
  private hovered: [number, number] | null = null;
  private focusQuery: number | null = null;

  constructor(private readonly callbacks: HeatmapCallbacks) {
    this.matrix.dataset.role = "matrix";
    this.overlay.dataset.role = "overlay";
    this.readout.dataset.role = "readout";
    this.scaleSelect.setAttribute("aria-label", "colour scale");
    this.scaleSelect.replaceChildren(...Object.entries(COLOR_SCALES).map(([k, label]) => new Option(label, k)));
    this.scaleSelect.addEventListener("change", () => this.callbacks.setScale(this.scaleSelect.value as ColorScale));
    const header = element("div", "aw-title");
    header.append(this.title, " \u00b7 scale ", this.scaleSelect);
    const matrixBox = element("div", "aw-matrix-box");
    matrixBox.append(this.matrix, this.overlay);
    this.stage.append(element("div"), this.keyLabels, this.queryLabels, matrixBox);
    this.root.append(header, this.stage, this.readout);
    this.overlay.addEventListener("mousemove", (e) => this.hover(e));
    this.overlay.addEventListener("mouseleave", () => this.hover(null));
    this.resize(this.size);
  }

  /** Fit the matrix into `px` CSS pixels a side (within MIN..MAX) and redraw. */
  resize(px: number): void {
    this.size = Math.round(Math.max(MIN_MATRIX_PX, Math.min(MAX_MATRIX_PX, px)));
    this.stage.style.gridTemplateColumns = `${LABEL_PX}px ${this.size}px`;
    this.draw();
  }

  showPending(layer: number, head: number): void {
    this.title.textContent = `Layer ${layer}, head ${head} \u2026`;
  }

  setPattern(pattern: Pattern, tokens: string[]): void {
    this.pattern = pattern;
    this.tokens = tokens;
    this.title.textContent = `Layer ${pattern.layer}, head ${pattern.head}`;
    this.root.dataset.drawn = `${pattern.revision}:${pattern.layer}:${pattern.head}`;
    this.draw();
  }

  setStyle(scale: ColorScale, lut: Lut): void {
    this.scale = scale;
    this.scaleSelect.value = scale;
    this.lut = lut;
    this.draw();
  }

  /** Highlight one query row (the focused token), or none. */
  setFocusQuery(query: number | null): void {
    this.focusQuery = query;
    this.drawOverlay();
  }

  private draw(): void {
    const ctx = sizeCanvas(this.matrix, this.size, this.size);
    if (this.pattern && this.lut) {
      const { n, values } = this.pattern;
      drawCells(ctx, paintCells(applyScale(values, n, this.scale), n, n, this.lut), 0, 0, this.size, this.size);
    }
    this.drawLabels();
    this.drawOverlay();
    this.updateReadout();
  }

  private hover(event: MouseEvent | null): void {
    const n = this.pattern?.n ?? 0;
    const q = event ? cellAt(event.offsetY, this.size, n) : null;
    const k = event ? cellAt(event.offsetX, this.size, n) : null;
    this.hovered = q !== null && k !== null ? [q, k] : null;
    this.callbacks.hoverQuery(this.hovered ? this.hovered[0] : null);
    this.drawOverlay();
    this.updateReadout();
  }

  private updateReadout(): void {
    if (!this.pattern || !this.hovered) {
      this.readout.textContent = "Hover the pattern: query (row) \u2192 key (column), weight";
      return;
    }
    const [q, k] = this.hovered;
    const weight = this.pattern.values[q * this.pattern.n + k];
    const token = (i: number) => JSON.stringify(this.tokens[i] ?? "");
    this.readout.textContent = `query ${q} ${token(q)} \u2192 key ${k} ${token(k)}: ${weight.toFixed(3)}`;
  }

  private drawOverlay(): void {
    const ctx = sizeCanvas(this.overlay, this.size, this.size);
    const n = this.pattern?.n ?? 0;
    if (!n) return;
    const cell = this.size / n;
    const query = this.hovered ? this.hovered[0] : this.focusQuery;
    ctx.fillStyle = "rgba(255, 160, 0, 0.28)";
    if (query !== null && query < n) ctx.fillRect(0, query * cell, this.size, cell);
    if (this.hovered) {
      ctx.fillRect(this.hovered[1] * cell, 0, cell, this.size);
      ctx.strokeStyle = "rgb(230, 120, 0)";
      ctx.lineWidth = 1.5;
      ctx.strokeRect(this.hovered[1] * cell, this.hovered[0] * cell, cell, cell);
    }
  }

  private drawLabels(): void {
    const n = this.tokens.length;
    const cell = this.size / Math.max(n, 1);
    const color = getComputedStyle(this.root).color || "#333";
    const left = sizeCanvas(this.queryLabels, LABEL_PX, this.size);
    const top = sizeCanvas(this.keyLabels, this.size, LABEL_PX);
    for (const ctx of [left, top]) {
      ctx.font = `${LABEL_FONT_PX}px sans-serif`;
      ctx.fillStyle = color;
      ctx.textBaseline = "middle";
    }
    left.textAlign = "right";
    top.textAlign = "left";
    for (const i of labelIndices(n, this.size, LABEL_FONT_PX + 1)) {
      const label = displayToken(this.tokens[i]);
      left.fillText(label, LABEL_PX - 4, (i + 0.5) * cell);
      top.save();
      top.translate((i + 0.5) * cell, LABEL_PX - 4);
      top.rotate(-Math.PI / 2);
      top.fillText(label, 0, 0);
      top.restore();
    }
  }
}
