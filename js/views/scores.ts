/** Head scores: a layers x heads map of the chosen metric, the top heads for it, the reference
 *  notebook's summary, and each head named by its strongest pattern. Clicks select heads. */

import { SELECTED_COLOR, cellAt, drawPending, element, sizeCanvas, viewRoot } from "./canvas";
import { UNDEFINED_CSS, VIRIDIS, cssColor, type Lut } from "../colors/colors";
import { RED_BLUE } from "../colors/diverging";
import { ColorBar } from "./colorbar";
import {
  CHANGE_SUFFIX,
  COLORBAR_UNITS,
  DATASET_PREFIX,
  HEAD_CLASS_COLORS,
  METRIC_GROUPS,
  METRIC_LABELS,
  METRIC_UNITS,
  SIGNED_METRICS,
  type Metric,
} from "../contract.gen";
import type { SummaryRow } from "../state/types";
import { metricGroup, metricLabel } from "./research";
import { formatScore, isUndefinedScore, scoreAt, scoreProgress, scoreRange, scoredCells, type ScoreRows } from "./score-cells";
import { headLabel } from "./labels";

const MAX_WIDTH_PX = 236; // the narrowest side column
const AXIS_PX = 28;
const TOP_K = 8;

const CLASS_COLORS: Record<string, string> = HEAD_CLASS_COLORS;

/** The metrics this explorer offers (the keys of its score table), in the contract's menu order:
 *  precomputed attention has no repeated random token test, so its menu does not list it. Metrics
 *  beyond the contract's (custom detectors, sinks, retrieval, dataset means) follow in the table's order. */
export function offeredMetrics(table: Partial<Record<Metric, unknown>>): Metric[] {
  const known = (Object.keys(METRIC_LABELS) as Metric[]).filter((metric) => metric in table);
  const extra = Object.keys(table).filter((key) => !(key in METRIC_LABELS)) as Metric[];
  return [...known, ...extra];
}

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
    // Grey between the cells: the darkest colours stay apart from a dark theme's background.
    ctx.fillStyle = "rgba(128, 128, 128, 0.6)";
    ctx.fillRect(AXIS_PX - 1, AXIS_PX - 1, cols * this.cell + 1, rows * this.cell + 1);
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
      ctx.strokeStyle = SELECTED_COLOR;
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

/** A summary row as the view writes it: the finding, the head, and the score with its metric's
 *  readable label, unless the finding already names it ("induction head #1" needs no "induction
 *  (repeated random tokens)"; the button's tooltip always gives it). */
export function summaryText(row: SummaryRow): string {
  const label = metricLabel(row.metric, METRIC_LABELS);
  const value = row.value === null ? "undefined" : formatScore(row.value);
  const named = row.finding.startsWith(label.split(" (")[0]);
  return `${row.finding}: ${headLabel(row.layer, row.head)} ${named ? value : `(${label} ${value})`}`;
}

/** The offered metrics as menu options under their group's heading, groups in the contract's order. */
function groupedOptions(offered: Metric[]): HTMLOptGroupElement[] {
  return (Object.keys(METRIC_GROUPS) as (keyof typeof METRIC_GROUPS)[]).flatMap((group) => {
    const keys = offered.filter((key) => metricGroup(key) === group);
    if (!keys.length) return [];
    const node = element("optgroup");
    node.label = METRIC_GROUPS[group];
    node.append(...keys.map((key) => new Option(metricLabel(key, METRIC_LABELS), key)));
    return [node];
  });
}

export class ScoreView {
  readonly root = viewRoot("scores", "aw-scores");
  /** The top heads, the summary and the head types: below the picture, while the map sits beside it. */
  readonly details = viewRoot("score-details", "aw-score-details");
  private readonly metricSelect = element("select", "aw-select");
  private readonly orderButton = element("button", "aw-mode");
  private readonly map: HeadMap;
  private readonly readout = element("div", "aw-readout", "\u00a0");
  private readonly progress = element("span", "aw-progress");
  private readonly ranked = element("ol", "aw-ranked");
  private readonly summary = element("div", "aw-summary");
  private readonly classMap: HeadMap;
  private readonly legend = element("div", "aw-legend");
  private readonly colorBar = new ColorBar();
  private readonly context = element("span", "aw-hint");
  private datasetSize = 0;
  private signedLut: Lut = RED_BLUE;
  private table: ScoreRows = [];
  private classes: string[][] = [];
  private metric: Metric = "induction";
  private offered = "";
  private scoredLayers = 0;
  private ascending = false;
  private redraw: () => void = () => {};
  private spread: Record<string, (number | null)[][]> = {};

  constructor(
    private readonly onSelectMetric: (metric: Metric) => void,
    private readonly onSelectHead: (layer: number, head: number) => void,
  ) {
    this.map = new HeadMap("score-map", onSelectHead, (hit) => this.describe(hit));
    this.classMap = new HeadMap("class-map", onSelectHead, (hit) => this.describeClass(hit));
    this.metricSelect.setAttribute("aria-label", "metric");
    this.metricSelect.addEventListener("change", () => this.onSelectMetric(this.metricSelect.value as Metric));
    this.orderButton.dataset.role = "rank-order";
    this.orderButton.addEventListener("click", () => {
      this.ascending = !this.ascending;
      this.redraw();
    });
    const header = element("div", "aw-title");
    const metricLabelNode = element("label", "aw-inline");
    metricLabelNode.append("Head scores ", this.metricSelect);
    this.context.dataset.role = "score-context";
    header.append(metricLabelNode, this.progress, this.context);
    this.progress.dataset.role = "score-progress";
    const rankedHeader = element("div", "aw-subtitle");
    rankedHeader.append("Top heads ", this.orderButton);
    this.ranked.dataset.role = "ranked";
    this.summary.dataset.role = "summary";
    const mapBox = element("div");
    mapBox.append(this.map.canvas, this.colorBar.root, this.readout);
    const rankedBox = element("div");
    rankedBox.append(rankedHeader, this.ranked);
    const summaryBox = element("div");
    summaryBox.append(element("div", "aw-subtitle", "Summary"), this.summary);
    const classBox = element("div");
    // the legend beside the map, one type a line: as tall as the summary beside it, however many types
    const classes = element("div", "aw-classes");
    classes.append(this.classMap.canvas, this.legend);
    classBox.append(element("div", "aw-subtitle", "Head types (strongest score)"), classes);
    this.details.append(rankedBox, summaryBox, classBox);
    this.root.append(header, mapBox);
  }

  /** Redraw for `tables[metric]` (layers x heads; rows still being scored are null, and so are
   *  cells of scored layers whose score is undefined: NaN weights). */
  update(
    tables: Partial<Record<Metric, ScoreRows>>,
    metric: Metric,
    layer: number,
    head: number,
    classes: string[][],
    summary: SummaryRow[],
    progress?: ScoreProgress,
  ): void {
    this.redraw = () => this.update(tables, metric, layer, head, classes, summary, progress);
    const offered = offeredMetrics(tables);
    if (offered.join() !== this.offered) {
      this.offered = offered.join();
      this.metricSelect.replaceChildren(...groupedOptions(offered));
    }
    const table = tables[metric];
    this.metric = metric;
    this.metricSelect.value = metric;
    this.table = table ?? [];
    this.classes = classes;
    const textColor = getComputedStyle(this.root).color || "#333";
    const rows = Math.max(this.table.length, progress?.layers ?? 0);
    const cols = Math.max(this.table.find((r) => r)?.length ?? 0, progress?.heads ?? 0);
    const cells = scoredCells(this.table, rows, cols);
    const [lo, hi] = scoreRange(cells);
    this.scoredLayers = progress?.scored ?? rows;
    // Signed scores (attribution, ablation, changes, a correlation detector) are diverging, centred on zero.
    const signed = lo < 0 || (SIGNED_METRICS as readonly string[]).includes(metric);
    const bound = Math.max(Math.abs(lo), Math.abs(hi));
    const position = (value: number) => (signed ? (bound > 0 ? 0.5 + (0.5 * value) / bound : 0.5) : hi > lo ? (value - lo) / (hi - lo) : 0.5);
    const shade = (l: number, h: number) => {
      const value = scoreAt(this.table, l, h);
      if (value === null) return isUndefinedScore(this.table, l, h, this.scoredLayers) ? UNDEFINED_CSS : null;
      return cssColor(signed ? this.signedLut : VIRIDIS, position(value));
    };
    const base = metric.replace(DATASET_PREFIX, "").replace(new RegExp(`${CHANGE_SUFFIX}$`), "");
    const units = (METRIC_UNITS as Record<string, string>)[base] ?? COLORBAR_UNITS.score;
    this.colorBar.update(
      signed
        ? {
            lut: this.signedLut,
            lo: -bound,
            hi: bound,
            signed,
            scale: "linear, centred on zero",
            units: metric.endsWith(CHANGE_SUFFIX) ? `change in ${units}` : units,
          }
        : { lut: VIRIDIS, lo: cells.length ? lo : 0, hi: cells.length ? hi : 1, scale: "linear, min to max", units },
    );
    this.context.textContent = metric.startsWith(DATASET_PREFIX) ? `mean over ${this.datasetSize} dataset prompts` : "";
    this.map.draw(rows, cols, shade, [layer, head], textColor);
    const status = scoreProgress(progress?.scored, rows);
    this.progress.textContent = status ?? "";
    this.progress.hidden = status === null;
    this.root.dataset.scored = String(progress?.scored ?? rows);
    let undefinedCount = 0;
    for (let l = 0; l < rows; l++) for (let h = 0; h < cols; h++) undefinedCount += Number(isUndefinedScore(this.table, l, h, this.scoredLayers));
    this.map.canvas.dataset.undefined = String(undefinedCount);
    this.drawRanked(cells, undefinedCount);
    this.summary.replaceChildren(
      ...summary.map((row) => {
        const button = headButton(summaryText(row), row.layer, row.head, this.onSelectHead);
        button.title = metricLabel(row.metric, METRIC_LABELS);
        return button;
      }),
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

  /** The top heads among those scored so far; heads whose score is undefined are counted, not ranked. */
  private drawRanked(cells: [number, number, number][], undefinedCount: number): void {
    this.orderButton.textContent = this.ascending ? "lowest first \u2195" : "highest first \u2195";
    const order = [...cells].sort((a, b) => (this.ascending ? a[2] - b[2] : b[2] - a[2]));
    const items = order.slice(0, TOP_K).map(([l, h, value]) => {
      const item = element("li");
      item.append(headButton(`${headLabel(l, h)}  ${formatScore(value)}`, l, h, this.onSelectHead));
      return item;
    });
    if (undefinedCount) {
      const note = element("li", "aw-undefined", `${undefinedCount} head${undefinedCount > 1 ? "s" : ""} undefined (NaN weights)`);
      note.style.setProperty("--aw-swatch", UNDEFINED_CSS);
      note.dataset.role = "undefined-scores";
      items.push(note);
    }
    this.ranked.replaceChildren(...items);
  }

  /** How many prompts the last dataset run had (its means say so), and the theme's diverging colours. */
  setDatasetSize(size: number): void {
    this.datasetSize = size;
  }

  setSignedLut(lut: Lut): void {
    this.signedLut = lut;
  }

  /** Standard deviations over a dataset's prompts (`dataset:<metric>` -> layers x heads), shown on hover. */
  setSpread(spread: Record<string, (number | null)[][]>): void {
    this.spread = spread;
  }

  private describe(hit: [number, number] | null): void {
    const std = hit ? this.spread[this.metric]?.[hit[0]]?.[hit[1]] : undefined;
    const spread = typeof std === "number" ? ` \u00b1 ${formatScore(std, 4)} (std over prompts)` : "";
    this.readout.textContent = hit
      ? `${headLabel(hit[0], hit[1])} ${metricLabel(this.metric, METRIC_LABELS)}: ${
          isUndefinedScore(this.table, hit[0], hit[1], this.scoredLayers) ? "undefined" : formatScore(this.table[hit[0]]?.[hit[1]], 4)
        }${spread}`
      : "\u00a0";
  }

  private describeClass(hit: [number, number] | null): void {
    this.readout.textContent = hit ? `${headLabel(hit[0], hit[1])}: ${this.classes[hit[0]]?.[hit[1]] ?? ""}` : "\u00a0";
  }
}
