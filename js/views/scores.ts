/** Head scores: a layers x heads map of the chosen metric, the top heads for it, the reference
 *  notebook's summary, and each head named by its strongest pattern. Clicks select heads. */

import { cellAt, element, sizeCanvas, viewRoot } from "../canvas";
import { VIRIDIS, cssColor } from "../colors";
import type { SummaryRow } from "../types";

const MAX_WIDTH_PX = 360;
const AXIS_PX = 28;
const TOP_K = 8;

export const METRIC_LABELS: Record<string, string> = {
  induction_test: "induction (repeated random tokens)",
  induction: "induction (this prompt)",
  previous_token: "previous token",
  duplicate_token: "duplicate token",
  first_token: "first token",
  entropy: "entropy",
  max_attention: "max attention",
  mean_distance: "mean attention distance",
};

export const CLASS_COLORS: Record<string, string> = {
  "previous-token": "#1f77b4",
  induction: "#d62728",
  "duplicate-token": "#9467bd",
  "first-token sink": "#7f7f7f",
  diffuse: "#bcbd22",
  other: "#17becf",
};

/** A canvas of layers x heads cells with axis labels; reports the cell under a click. */
class HeadMap {
  readonly canvas = element("canvas", "aw-head-map");
  private rows = 0;
  private cols = 0;
  private cell = 20;

  constructor(role: string, onSelect: (layer: number, head: number) => void, onHover: (hit: [number, number] | null) => void) {
    this.canvas.dataset.role = role;
    this.canvas.addEventListener("click", (e) => {
      const hit = this.hit(e);
      if (hit) onSelect(...hit);
    });
    this.canvas.addEventListener("mousemove", (e) => onHover(this.hit(e)));
    this.canvas.addEventListener("mouseleave", () => onHover(null));
  }

  draw(rows: number, cols: number, color: (l: number, h: number) => string, selected: [number, number], textColor: string): void {
    this.rows = rows;
    this.cols = cols;
    this.cell = Math.max(10, Math.min(28, Math.floor((MAX_WIDTH_PX - AXIS_PX) / Math.max(cols, 1))));
    const ctx = sizeCanvas(this.canvas, AXIS_PX + cols * this.cell, AXIS_PX + rows * this.cell);
    // Geometry for hit tests, and for scripts that click a cell.
    Object.assign(this.canvas.dataset, { left: AXIS_PX, top: AXIS_PX, cell: this.cell, rows, cols });
    ctx.font = "10px sans-serif";
    ctx.fillStyle = textColor;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    const labelEvery = Math.ceil(18 / this.cell);
    for (let h = 0; h < cols; h += labelEvery) ctx.fillText(`H${h}`, AXIS_PX + (h + 0.5) * this.cell, AXIS_PX / 2);
    for (let l = 0; l < rows; l += labelEvery) ctx.fillText(`L${l}`, AXIS_PX / 2, AXIS_PX + (l + 0.5) * this.cell);
    for (let l = 0; l < rows; l++) {
      for (let h = 0; h < cols; h++) {
        ctx.fillStyle = color(l, h);
        ctx.fillRect(AXIS_PX + h * this.cell, AXIS_PX + l * this.cell, this.cell - 1, this.cell - 1);
      }
    }
    const [layer, head] = selected;
    if (layer < rows && head < cols) {
      ctx.strokeStyle = "#ff3b30";
      ctx.lineWidth = 2;
      ctx.strokeRect(AXIS_PX + head * this.cell, AXIS_PX + layer * this.cell, this.cell - 1, this.cell - 1);
    }
  }

  private hit(event: MouseEvent): [number, number] | null {
    const l = cellAt(event.offsetY - AXIS_PX, this.rows * this.cell, this.rows);
    const h = cellAt(event.offsetX - AXIS_PX, this.cols * this.cell, this.cols);
    return l !== null && h !== null ? [l, h] : null;
  }
}

function headButton(label: string, layer: number, head: number, onSelect: (l: number, h: number) => void): HTMLButtonElement {
  const button = element("button", "aw-head-link", label);
  button.dataset.layer = String(layer);
  button.dataset.head = String(head);
  button.tabIndex = -1;
  button.addEventListener("click", () => onSelect(layer, head));
  return button;
}

export class ScoreView {
  readonly root = viewRoot("scores", "aw-scores");
  private readonly metricSelect = element("select", "aw-select");
  private readonly orderButton = element("button", "aw-mode");
  private readonly map: HeadMap;
  private readonly readout = element("div", "aw-readout", "\u00a0");
  private readonly ranked = element("ol", "aw-ranked");
  private readonly summary = element("div", "aw-summary");
  private readonly classMap: HeadMap;
  private readonly legend = element("div", "aw-legend");
  private table: number[][] = [];
  private classes: string[][] = [];
  private metric = "induction";
  private ascending = false;
  private redraw: () => void = () => {};

  constructor(
    private readonly onSelectMetric: (metric: string) => void,
    private readonly onSelectHead: (layer: number, head: number) => void,
  ) {
    this.map = new HeadMap("score-map", onSelectHead, (hit) => this.describe(hit));
    this.classMap = new HeadMap("class-map", onSelectHead, (hit) => this.describeClass(hit));
    this.metricSelect.setAttribute("aria-label", "metric");
    this.metricSelect.replaceChildren(...Object.entries(METRIC_LABELS).map(([key, label]) => new Option(label, key)));
    this.metricSelect.addEventListener("change", () => this.onSelectMetric(this.metricSelect.value));
    this.orderButton.dataset.role = "rank-order";
    this.orderButton.addEventListener("click", () => {
      this.ascending = !this.ascending;
      this.redraw();
    });
    const header = element("div", "aw-title");
    header.append("Head scores: ", this.metricSelect);
    const rankedHeader = element("div", "aw-subtitle");
    rankedHeader.append("Top heads ", this.orderButton);
    this.ranked.dataset.role = "ranked";
    this.summary.dataset.role = "summary";
    const mapBox = element("div");
    mapBox.append(this.map.canvas, this.readout);
    const rankedBox = element("div");
    rankedBox.append(rankedHeader, this.ranked);
    const summaryBox = element("div");
    summaryBox.append(element("div", "aw-subtitle", "Summary"), this.summary);
    const classBox = element("div");
    classBox.append(element("div", "aw-subtitle", "Head types (strongest pattern)"), this.classMap.canvas, this.legend);
    const row = element("div", "aw-row");
    row.append(mapBox, rankedBox, summaryBox, classBox);
    this.root.append(header, row);
  }

  update(
    table: number[][] | undefined,
    metric: string,
    layer: number,
    head: number,
    classes: string[][],
    summary: SummaryRow[],
  ): void {
    this.redraw = () => this.update(table, metric, layer, head, classes, summary);
    this.metric = metric;
    this.metricSelect.value = metric;
    this.table = table ?? [];
    this.classes = classes;
    const textColor = getComputedStyle(this.root).color || "#333";
    const flat = this.table.flat();
    const lo = Math.min(...flat);
    const hi = Math.max(...flat);
    const rows = this.table.length;
    const cols = this.table[0]?.length ?? 0;
    const shade = (l: number, h: number) => cssColor(VIRIDIS, hi > lo ? (this.table[l][h] - lo) / (hi - lo) : 0.5);
    this.map.draw(rows, cols, shade, [layer, head], textColor);
    this.drawRanked(flat, cols);
    this.summary.replaceChildren(
      ...summary.map((row) =>
        headButton(`${row.finding}: L${row.layer}H${row.head} (${row.metric} ${row.value.toFixed(3)})`, row.layer, row.head, this.onSelectHead),
      ),
    );
    const classColor = (l: number, h: number) => CLASS_COLORS[classes[l]?.[h]] ?? "#ccc";
    this.classMap.draw(classes.length, classes[0]?.length ?? 0, classColor, [layer, head], textColor);
    const counts = new Map<string, number>();
    for (const name of classes.flat()) counts.set(name, (counts.get(name) ?? 0) + 1);
    this.legend.replaceChildren(
      ...Object.entries(CLASS_COLORS).map(([name, color]) => {
        const item = element("span", "aw-legend-item", `${name} (${counts.get(name) ?? 0})`);
        item.style.setProperty("--aw-swatch", color);
        return item;
      }),
    );
  }

  private drawRanked(flat: number[], cols: number): void {
    this.orderButton.textContent = this.ascending ? "lowest first \u2195" : "highest first \u2195";
    const order = flat.map((_, i) => i).sort((a, b) => (this.ascending ? flat[a] - flat[b] : flat[b] - flat[a]));
    this.ranked.replaceChildren(
      ...order.slice(0, TOP_K).map((i) => {
        const [l, h] = [Math.floor(i / cols), i % cols];
        const item = element("li");
        item.append(headButton(`L${l}H${h}  ${flat[i].toFixed(3)}`, l, h, this.onSelectHead));
        return item;
      }),
    );
  }

  private describe(hit: [number, number] | null): void {
    this.readout.textContent = hit
      ? `L${hit[0]} H${hit[1]} ${METRIC_LABELS[this.metric] ?? this.metric}: ${this.table[hit[0]][hit[1]].toFixed(4)}`
      : "\u00a0";
  }

  private describeClass(hit: [number, number] | null): void {
    this.readout.textContent = hit ? `L${hit[0]} H${hit[1]}: ${this.classes[hit[0]]?.[hit[1]] ?? ""}` : "\u00a0";
  }
}
