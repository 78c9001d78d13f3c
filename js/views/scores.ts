/** Head scores: a layers x heads map of the chosen metric, the top heads for it, the reference
 *  notebook's summary, and each head named by its strongest pattern. Clicks select heads. */

import { cellAt, drawPending, element, sizeCanvas, viewRoot } from "../canvas";
import { VIRIDIS, cssColor } from "../colors";
import type { SummaryRow } from "../types";
import { formatScore, scoreAt, scoreProgress, scoreRange, scoredCells, type ScoreRows } from "./score-cells";

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

/** How far the kernel has got with the scores (the `scored_layers` trait) and the table's shape. */
export interface ScoreProgress {
  scored: number | undefined;
  layers: number;
  heads: number;
}

/** A canvas of layers x heads cells with axis labels; reports the cell under a click. A cell
 *  whose colour is null is pending and drawn hatched. */
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

  draw(rows: number, cols: number, color: (l: number, h: number) => string | null, selected: [number, number], textColor: string): void {
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
        const fill = color(l, h);
        const [x, y] = [AXIS_PX + h * this.cell, AXIS_PX + l * this.cell];
        if (fill === null) {
          drawPending(ctx, x, y, this.cell - 1, this.cell - 1);
        } else {
          ctx.fillStyle = fill;
          ctx.fillRect(x, y, this.cell - 1, this.cell - 1);
        }
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
  private readonly progress = element("span", "aw-progress");
  private readonly ranked = element("ol", "aw-ranked");
  private readonly summary = element("div", "aw-summary");
  private readonly classMap: HeadMap;
  private readonly legend = element("div", "aw-legend");
  private table: ScoreRows = [];
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
    header.append("Head scores: ", this.metricSelect, " ", this.progress);
    this.progress.dataset.role = "score-progress";
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

  /** Redraw for `table` (layers x heads; rows or cells still being scored are null). */
  update(
    table: ScoreRows | null | undefined,
    metric: string,
    layer: number,
    head: number,
    classes: string[][],
    summary: SummaryRow[],
    progress?: ScoreProgress,
  ): void {
    this.redraw = () => this.update(table, metric, layer, head, classes, summary, progress);
    this.metric = metric;
    this.metricSelect.value = metric;
    this.table = table ?? [];
    this.classes = classes;
    const textColor = getComputedStyle(this.root).color || "#333";
    const rows = Math.max(this.table.length, progress?.layers ?? 0);
    const cols = Math.max(this.table.find((r) => r)?.length ?? 0, progress?.heads ?? 0);
    const cells = scoredCells(this.table, rows, cols);
    const [lo, hi] = scoreRange(cells);
    const shade = (l: number, h: number) => {
      const value = scoreAt(this.table, l, h);
      return value === null ? null : cssColor(VIRIDIS, hi > lo ? (value - lo) / (hi - lo) : 0.5);
    };
    this.map.draw(rows, cols, shade, [layer, head], textColor);
    const status = scoreProgress(progress?.scored, rows);
    this.progress.textContent = status ?? "";
    this.progress.hidden = status === null;
    this.root.dataset.scored = String(progress?.scored ?? rows);
    this.drawRanked(cells);
    this.summary.replaceChildren(
      ...summary.map((row) =>
        headButton(`${row.finding}: L${row.layer}H${row.head} (${row.metric} ${formatScore(row.value)})`, row.layer, row.head, this.onSelectHead),
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

  /** The top heads among those scored so far. */
  private drawRanked(cells: [number, number, number][]): void {
    this.orderButton.textContent = this.ascending ? "lowest first \u2195" : "highest first \u2195";
    const order = [...cells].sort((a, b) => (this.ascending ? a[2] - b[2] : b[2] - a[2]));
    this.ranked.replaceChildren(
      ...order.slice(0, TOP_K).map(([l, h, value]) => {
        const item = element("li");
        item.append(headButton(`L${l}H${h}  ${formatScore(value)}`, l, h, this.onSelectHead));
        return item;
      }),
    );
  }

  private describe(hit: [number, number] | null): void {
    this.readout.textContent = hit
      ? `L${hit[0]} H${hit[1]} ${METRIC_LABELS[this.metric] ?? this.metric}: ${formatScore(this.table[hit[0]]?.[hit[1]], 4)}`
      : "\u00a0";
  }

  private describeClass(hit: [number, number] | null): void {
    this.readout.textContent = hit ? `L${hit[0]} H${hit[1]}: ${this.classes[hit[0]]?.[hit[1]] ?? ""}` : "\u00a0";
  }
}
