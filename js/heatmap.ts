/** The selected head's pattern: query rows, key columns, token labels thinned to fit. */

import { BLUES, paintCells } from "./colors";
import { cellAt, displayToken, drawCells, element, sizeCanvas } from "./canvas";
import type { Pattern } from "./types";

const MATRIX_PX = 400;
const LABEL_PX = 96;
const LABEL_FONT_PX = 11;

export class HeatmapView {
  readonly root = element("div", "aw-heatmap");
  private readonly title = element("div", "aw-title", "Attention pattern");
  private readonly matrix = element("canvas", "aw-matrix");
  private readonly overlay = element("canvas", "aw-overlay");
  private readonly queryLabels = element("canvas", "aw-labels");
  private readonly keyLabels = element("canvas", "aw-labels");
  private readonly readout = element("div", "aw-readout", "\u00a0");
  private pattern: Pattern | null = null;
  private tokens: string[] = [];
  private hovered: [number, number] | null = null;
  private highlightedQuery: number | null = null;

  constructor(private readonly onHoverQuery: (query: number | null) => void) {
    this.root.dataset.view = "heatmap";
    this.matrix.dataset.role = "matrix";
    this.readout.dataset.role = "readout";
    const stage = element("div", "aw-stage");
    stage.style.gridTemplateColumns = `${LABEL_PX}px ${MATRIX_PX}px`;
    const matrixBox = element("div", "aw-matrix-box");
    matrixBox.append(this.matrix, this.overlay);
    stage.append(element("div"), this.keyLabels, this.queryLabels, matrixBox);
    this.root.append(this.title, stage, this.readout);
    sizeCanvas(this.matrix, MATRIX_PX, MATRIX_PX);
    sizeCanvas(this.overlay, MATRIX_PX, MATRIX_PX);
    this.overlay.addEventListener("mousemove", (e) => this.hover(e));
    this.overlay.addEventListener("mouseleave", () => this.hover(null));
  }

  showPending(layer: number, head: number): void {
    this.title.textContent = `Layer ${layer}, head ${head} \u2026`;
  }

  setPattern(pattern: Pattern, tokens: string[]): void {
    this.pattern = pattern;
    this.tokens = tokens;
    this.title.textContent = `Layer ${pattern.layer}, head ${pattern.head}`;
    this.root.dataset.drawn = `${pattern.revision}:${pattern.layer}:${pattern.head}`;
    const ctx = sizeCanvas(this.matrix, MATRIX_PX, MATRIX_PX);
    drawCells(ctx, paintCells(pattern.values, pattern.n, pattern.n, BLUES), 0, 0, MATRIX_PX, MATRIX_PX);
    this.drawLabels();
    this.drawOverlay();
    this.updateReadout();
  }

  /** Highlight one query row (from the token strip), or none. */
  highlightQuery(query: number | null): void {
    this.highlightedQuery = query;
    this.drawOverlay();
  }

  private hover(event: MouseEvent | null): void {
    const n = this.pattern?.n ?? 0;
    const q = event ? cellAt(event.offsetY, MATRIX_PX, n) : null;
    const k = event ? cellAt(event.offsetX, MATRIX_PX, n) : null;
    this.hovered = q !== null && k !== null ? [q, k] : null;
    this.onHoverQuery(this.hovered ? this.hovered[0] : null);
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
    this.readout.textContent = `query ${q} ${JSON.stringify(this.tokens[q] ?? "")} \u2192 key ${k} ${JSON.stringify(this.tokens[k] ?? "")}: ${weight.toFixed(3)}`;
  }

  private drawOverlay(): void {
    const ctx = sizeCanvas(this.overlay, MATRIX_PX, MATRIX_PX);
    const n = this.pattern?.n ?? 0;
    if (!n) return;
    const cell = MATRIX_PX / n;
    const query = this.hovered ? this.hovered[0] : this.highlightedQuery;
    ctx.fillStyle = "rgba(255, 160, 0, 0.25)";
    if (query !== null) ctx.fillRect(0, query * cell, MATRIX_PX, cell);
    if (this.hovered) {
      ctx.fillRect(this.hovered[1] * cell, 0, cell, MATRIX_PX);
      ctx.strokeStyle = "rgb(230, 120, 0)";
      ctx.lineWidth = 1.5;
      ctx.strokeRect(this.hovered[1] * cell, this.hovered[0] * cell, cell, cell);
    }
  }

  private drawLabels(): void {
    const n = this.tokens.length;
    const step = Math.max(1, Math.ceil((n * LABEL_FONT_PX) / MATRIX_PX));
    const cell = MATRIX_PX / Math.max(n, 1);
    const color = getComputedStyle(this.root).color || "#333";
    const left = sizeCanvas(this.queryLabels, LABEL_PX, MATRIX_PX);
    const top = sizeCanvas(this.keyLabels, MATRIX_PX, LABEL_PX);
    for (const ctx of [left, top]) {
      ctx.font = `${LABEL_FONT_PX}px sans-serif`;
      ctx.fillStyle = color;
      ctx.textBaseline = "middle";
      ctx.textAlign = "right";
    }
    for (let i = 0; i < n; i += step) {
      const label = displayToken(this.tokens[i]);
      left.fillText(label, LABEL_PX - 4, (i + 0.5) * cell);
      top.save();
      top.translate((i + 0.5) * cell, LABEL_PX - 4);
      top.rotate(-Math.PI / 2);
      top.textAlign = "left";
      top.fillText(label, 0, 0);
      top.restore();
    }
  }
}
