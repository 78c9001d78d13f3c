/** A layers x heads map of one score; click a cell to select that head. */

import { VIRIDIS, cssColor } from "./colors";
import { cellAt, element, sizeCanvas } from "./canvas";

const MAX_WIDTH_PX = 360;
const AXIS_PX = 28;

export const METRIC_LABELS: Record<string, string> = {
  induction: "induction (this prompt)",
  induction_test: "induction (repeated random tokens)",
  previous_token: "previous token",
  duplicate_token: "duplicate token",
  first_token: "first token",
  entropy: "entropy",
  max_attention: "max attention",
  mean_distance: "mean attention distance",
};

export class ScoreView {
  readonly root = element("div", "aw-scores");
  private readonly metricSelect = element("select", "aw-select");
  private readonly canvas = element("canvas", "aw-score-map");
  private readonly readout = element("div", "aw-readout", "\u00a0");
  private table: number[][] = [];
  private cell = 20;

  constructor(
    private readonly onSelectMetric: (metric: string) => void,
    private readonly onSelectHead: (layer: number, head: number) => void,
  ) {
    this.root.dataset.view = "scores";
    this.canvas.dataset.role = "score-map";
    this.readout.dataset.role = "readout";
    this.metricSelect.setAttribute("aria-label", "metric");
    this.metricSelect.replaceChildren(...Object.entries(METRIC_LABELS).map(([key, label]) => new Option(label, key)));
    this.metricSelect.addEventListener("change", () => this.onSelectMetric(this.metricSelect.value));
    const header = element("div", "aw-title");
    header.append("Head scores: ", this.metricSelect);
    this.root.append(header, this.canvas, this.readout);
    this.canvas.addEventListener("click", (e) => {
      const hit = this.hit(e);
      if (hit) this.onSelectHead(hit[0], hit[1]);
    });
    this.canvas.addEventListener("mousemove", (e) => this.describe(this.hit(e)));
    this.canvas.addEventListener("mouseleave", () => this.describe(null));
  }

  update(table: number[][] | undefined, metric: string, layer: number, head: number): void {
    this.metricSelect.value = metric;
    this.table = table ?? [];
    const nLayers = this.table.length;
    const nHeads = this.table[0]?.length ?? 0;
    this.cell = Math.max(10, Math.min(28, Math.floor((MAX_WIDTH_PX - AXIS_PX) / Math.max(nHeads, 1))));
    const ctx = sizeCanvas(this.canvas, AXIS_PX + nHeads * this.cell, AXIS_PX + nLayers * this.cell);
    // Geometry for hit tests (and for scripts that click a cell).
    Object.assign(this.canvas.dataset, { left: AXIS_PX, top: AXIS_PX, cell: this.cell, rows: nLayers, cols: nHeads });
    const flat = this.table.flat();
    const lo = Math.min(...flat);
    const hi = Math.max(...flat);
    ctx.font = "10px sans-serif";
    ctx.fillStyle = getComputedStyle(this.root).color || "#333";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    for (let h = 0; h < nHeads; h++) ctx.fillText(`H${h}`, AXIS_PX + (h + 0.5) * this.cell, AXIS_PX / 2);
    for (let l = 0; l < nLayers; l++) ctx.fillText(`L${l}`, AXIS_PX / 2, AXIS_PX + (l + 0.5) * this.cell);
    for (let l = 0; l < nLayers; l++) {
      for (let h = 0; h < nHeads; h++) {
        ctx.fillStyle = cssColor(VIRIDIS, hi > lo ? (this.table[l][h] - lo) / (hi - lo) : 0.5);
        ctx.fillRect(AXIS_PX + h * this.cell, AXIS_PX + l * this.cell, this.cell - 1, this.cell - 1);
      }
    }
    if (layer < nLayers && head < nHeads) {
      ctx.strokeStyle = "#ff3b30";
      ctx.lineWidth = 2;
      ctx.strokeRect(AXIS_PX + head * this.cell, AXIS_PX + layer * this.cell, this.cell - 1, this.cell - 1);
    }
  }

  private hit(event: MouseEvent): [number, number] | null {
    const nLayers = this.table.length;
    const nHeads = this.table[0]?.length ?? 0;
    const l = cellAt(event.offsetY - AXIS_PX, nLayers * this.cell, nLayers);
    const h = cellAt(event.offsetX - AXIS_PX, nHeads * this.cell, nHeads);
    return l !== null && h !== null ? [l, h] : null;
  }

  private describe(hit: [number, number] | null): void {
    this.readout.textContent = hit
      ? `L${hit[0]} H${hit[1]}: ${this.table[hit[0]][hit[1]].toFixed(4)}`
      : "\u00a0";
  }
}
