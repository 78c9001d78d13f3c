/** Research views: progress of long work, stepping through a dataset's prompts, excluding attention
 *  sinks from the heatmap, and the head similarity matrix (clustered; a click selects a head). */

import type { AnyModel } from "@anywidget/types";
import { SELECTED_COLOR, cellAt, element, sizeCanvas, viewRoot } from "./canvas";
import { VIRIDIS, cssColor } from "../colors/colors";
import { CHANGE_SUFFIX, COLORBAR_UNITS, DATASET_PREFIX, METRIC_GROUP, type METRIC_GROUPS } from "../contract.gen";
import { ColorBar } from "./colorbar";
import { mountComposition } from "./composition";
import type { Store } from "../state/store";
import type { ExplorerState } from "../state/types";
import { headLabel } from "./labels";

/** A score-table key as the metric menu shows it: dataset means and changes say so, and a custom
 *  detector, which has no label, keeps its name. */
export function metricLabel(key: string, labels: Record<string, string>): string {
  if (key.startsWith(DATASET_PREFIX)) return `${metricLabel(key.slice(DATASET_PREFIX.length), labels)} \u2014 dataset mean`;
  // A metric's change against the compare prompt: "induction_change".
  if (key.endsWith(CHANGE_SUFFIX)) return `change of ${metricLabel(key.slice(0, -CHANGE_SUFFIX.length), labels)}`;
  return labels[key] ?? key.replaceAll("_", " ");
}

/** The metric menu's group of a score-table key: dataset means and changes by their names, the
 *  contract's metrics by METRIC_GROUP, and anything else (a custom detector) under "your detectors". */
export function metricGroup(key: string): keyof typeof METRIC_GROUPS {
  if (key.startsWith(DATASET_PREFIX)) return "dataset";
  if (key.endsWith(CHANGE_SUFFIX)) return "changes";
  return (METRIC_GROUP as Record<string, keyof typeof METRIC_GROUPS>)[key] ?? "detectors";
}

export interface Progress {
  label?: string;
  done?: number;
  total?: number;
  /** The run the bar shows (a dataset run, an ablation sweep): what the stop button names. */
  run?: number;
  /** The run holds the kernel's main thread, which reads no message until it is done: only an
   *  interrupt of the kernel (what Jupyter's own stop button does) reaches it. */
  interrupt?: boolean;
}

export const STOP = "stop";

/** A bar for long work in the kernel (dataset runs, ablation sweeps), with a stop button; hidden when idle. */
export class ProgressView {
  readonly root = element("div", "aw-progress");
  private readonly bar = element("progress");
  private readonly text = element("span", "aw-status");
  private readonly stop = element("button", "aw-mode", "stop");
  private progress: Progress = {};
  private stopping = 0;

  /** `stop` is told which run to stop and returns false when it could not reach the kernel. */
  constructor(stop: (progress: Progress) => boolean) {
    this.root.dataset.role = "progress";
    this.stop.dataset.role = "progress-stop";
    this.stop.addEventListener("click", () => {
      this.stopping = this.progress.run ?? 0;
      this.stop.disabled = true;
      if (!stop(this.progress)) this.text.textContent = `${this.text.textContent} — use the kernel's stop button`;
      else this.text.textContent = `${this.text.textContent} — stopping…`;
    });
    this.root.append(this.bar, this.text, this.stop);
    this.root.hidden = true;
  }

  update(progress: Progress | undefined): void {
    this.progress = progress ?? {};
    const total = progress?.total ?? 0;
    this.root.hidden = !progress || total <= 0;
    if (this.root.hidden) return;
    this.bar.max = total;
    this.bar.value = progress!.done ?? 0;
    this.text.textContent = `${progress!.label ?? "working"}: ${progress!.done ?? 0} / ${total}`;
    this.stop.hidden = progress!.run === undefined;
    this.stop.disabled = this.stopping !== 0 && this.stopping === progress!.run;
    if (this.stop.disabled) this.text.textContent += " — stopping…";
  }
}

/** Interrupts the explorer's kernel where the host lets a widget reach it (JupyterLab and Notebook 7
 *  keep it on the widget manager); false where it does not. */
export function interruptKernel(model: AnyModel<ExplorerState>): boolean {
  const manager = model.widget_manager as unknown as { kernel?: { interrupt?: () => Promise<void> } };
  const kernel = manager?.kernel;
  if (typeof kernel?.interrupt !== "function") return false;
  kernel.interrupt().catch(() => undefined);
  return true;
}

/** The stop button: the run's stop message, and an interrupt where the run holds the kernel's main
 *  thread (the message alone would be read only once the run is over, and is then ignored). */
export function stopRun(model: AnyModel<ExplorerState>, progress: Progress): boolean {
  if (progress.run === undefined) return false;
  model.send({ type: STOP, run: progress.run });
  return progress.interrupt ? interruptKernel(model) : true;
}

/** Previous / next through the last dataset's prompts; the kernel re-runs each one on demand. */
export class DatasetStepper {
  readonly root = element("div", "aw-dataset");
  private readonly prev = element("button", "aw-mode", "\u25c0");
  private readonly next = element("button", "aw-mode", "\u25b6");
  private readonly text = element("span", "aw-status");
  private index = -1;
  private size = 0;

  constructor(step: (index: number) => void) {
    this.root.dataset.role = "dataset-stepper";
    this.prev.dataset.role = "dataset-prev";
    this.next.dataset.role = "dataset-next";
    this.prev.setAttribute("aria-label", "previous dataset prompt");
    this.next.setAttribute("aria-label", "next dataset prompt");
    this.prev.addEventListener("click", () => step(this.index <= 0 ? this.size - 1 : this.index - 1));
    this.next.addEventListener("click", () => step(this.index < 0 || this.index >= this.size - 1 ? 0 : this.index + 1));
    this.text.dataset.role = "dataset-position";
    this.root.append("Dataset prompt ", this.prev, this.text, this.next);
    this.root.hidden = true;
  }

  update(index: number, size: number): void {
    this.index = index;
    this.size = size;
    this.root.hidden = size <= 0;
    this.text.textContent = index >= 0 ? ` ${index + 1} / ${size} ` : ` \u2013 / ${size} `;
  }
}

/** The toggle that drops each head's sink positions from the heatmap, and the note saying so. */
export class SinkToggle {
  readonly root = element("div", "aw-sinks");
  private readonly box = element("input");
  private readonly note = element("span", "aw-status");

  constructor(toggle: (exclude: boolean) => void) {
    this.root.dataset.role = "sinks";
    this.box.type = "checkbox";
    this.box.dataset.role = "exclude-sinks";
    this.box.addEventListener("change", () => toggle(this.box.checked));
    const label = element("label");
    label.append(this.box, " exclude attention sinks");
    this.note.dataset.role = "sink-note";
    this.root.append(label, this.note);
  }

  update(exclude: boolean, positions: number[] | undefined, layer: number, head: number, tokens: string[]): void {
    this.box.checked = exclude;
    const named = (positions ?? []).map((k) => `${k} (${JSON.stringify(tokens[k] ?? "")})`);
    if (positions === undefined) this.note.textContent = exclude ? " sinks are found on prompts up to 512 tokens" : "";
    else if (!named.length) this.note.textContent = ` ${headLabel(layer, head)} has no sink positions`;
    else if (exclude) this.note.textContent = ` Sinks excluded from ${headLabel(layer, head)}: keys ${named.join(", ")}; rows renormalised`;
    else this.note.textContent = ` ${headLabel(layer, head)} sinks: keys ${named.join(", ")}`;
  }
}

export interface Similarity {
  order?: number[][];
  distance?: number[][];
}

const SIM_MAX_PX = 360;
const SIM_AXIS_PX = 44;

/** Every two heads' pattern distance (mean Jensen-Shannon, in bits), in clustered order: dark is
 *  alike (distance 0), bright is far apart. Rows and columns are labelled with their heads. */
export class SimilarityView {
  readonly root = viewRoot("similarity", "aw-similarity");
  private readonly button = element("button", "aw-mode");
  readonly canvas = element("canvas", "aw-head-map");
  private readonly readout = element("div", "aw-readout", "\u00a0");
  private readonly body = element("div", "aw-similarity-body");
  readonly colorBar = new ColorBar();
  /** The title line: other views' openers may go there too. */
  readonly header = element("div", "aw-title");
  private data: Similarity = {};
  private cell = 4;
  private shown = false;

  constructor(
    show: (on: boolean) => void,
    private readonly onSelect: (layer: number, head: number) => void,
  ) {
    this.button.dataset.role = "similarity-toggle";
    this.button.addEventListener("click", () => show(!this.shown));
    this.canvas.dataset.role = "similarity-map";
    this.canvas.addEventListener("click", (e) => {
      const hit = this.hit(e);
      if (hit) this.onSelect(hit[0][0], hit[0][1]);
    });
    this.canvas.addEventListener("mousemove", (e) => this.describe(this.hit(e)));
    this.canvas.addEventListener("mouseleave", () => this.describe(null));
    const header = this.header;
    header.append("Head similarity ", this.button);
    this.body.append(this.canvas, this.colorBar.root, this.readout);
    this.root.append(header, this.body);
  }

  /** Drawn when asked for in the widget or when `head_similarity()` ran in Python (its data is here). */
  update(shown: boolean, data: Similarity, layer: number, head: number): void {
    const order = data.order ?? [];
    const size = order.length;
    this.shown = shown || size > 0;
    this.data = data;
    this.button.textContent = this.shown ? "hide" : "show";
    this.body.hidden = !this.shown || size === 0;
    if (this.body.hidden) return;
    this.cell = Math.max(4, Math.min(16, Math.floor(SIM_MAX_PX / size)));
    const extent = size * this.cell;
    const ctx = sizeCanvas(this.canvas, SIM_AXIS_PX + extent, SIM_AXIS_PX + extent);
    Object.assign(this.canvas.dataset, { left: SIM_AXIS_PX, top: SIM_AXIS_PX, cell: this.cell, rows: size, cols: size });
    const flat = (data.distance ?? []).flat();
    const hi = Math.max(...flat, 1e-12);
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < size; j++) {
        ctx.fillStyle = cssColor(VIRIDIS, (data.distance?.[i]?.[j] ?? 0) / hi);
        ctx.fillRect(SIM_AXIS_PX + j * this.cell, SIM_AXIS_PX + i * this.cell, this.cell, this.cell);
      }
    }
    // Head labels in the clustered order, as many as fit without overlapping.
    ctx.font = "10px sans-serif";
    ctx.fillStyle = getComputedStyle(this.root).color || "#333";
    ctx.textBaseline = "middle";
    const every = Math.ceil(11 / this.cell);
    for (let i = 0; i < size; i += every) {
      const label = `${headLabel(order[i][0], order[i][1])}`;
      const at = SIM_AXIS_PX + (i + 0.5) * this.cell;
      ctx.textAlign = "right";
      ctx.fillText(label, SIM_AXIS_PX - 3, at);
      ctx.save();
      ctx.translate(at, SIM_AXIS_PX - 3);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "left";
      ctx.fillText(label, 0, 0);
      ctx.restore();
    }
    const at = order.findIndex(([l, h]) => l === layer && h === head);
    if (at >= 0) {
      ctx.strokeStyle = SELECTED_COLOR;
      ctx.lineWidth = 1.5;
      ctx.strokeRect(SIM_AXIS_PX + 0.5, SIM_AXIS_PX + at * this.cell + 0.5, extent - 1, this.cell - 1);
    }
    this.colorBar.update({ lut: VIRIDIS, lo: 0, hi, scale: "linear; 0 = identical patterns", units: COLORBAR_UNITS.similarity });
  }

  /** The heads of the row and column under the pointer: [row head, column head, distance]. */
  private hit(event: MouseEvent): [number[], number[], number] | null {
    const order = this.data.order ?? [];
    const extent = order.length * this.cell;
    const i = cellAt(event.offsetY - SIM_AXIS_PX, extent, order.length);
    const j = cellAt(event.offsetX - SIM_AXIS_PX, extent, order.length);
    if (i === null || j === null) return null;
    return [order[i], order[j], this.data.distance?.[i]?.[j] ?? NaN];
  }

  private describe(hit: [number[], number[], number] | null): void {
    this.readout.textContent = hit
      ? `${headLabel(hit[0][0], hit[0][1])} vs ${headLabel(hit[1][0], hit[1][1])}: distance ${hit[2].toFixed(4)} bits (click selects ${headLabel(hit[0][0], hit[0][1])})`
      : "\u00a0";
  }
}

/** What `mountResearch` needs from the widget: its store, and the views it adds to. */
export interface ResearchHost {
  store: Store;
  model: AnyModel<ExplorerState>;
  /** Where the progress bar goes (beside the prompt). */
  prompt: HTMLElement;
  /** The analysis bar, where the dataset stepper and the sink toggle go. */
  analysis: HTMLElement;
  scores: HTMLElement;
  scoreView: { setSpread(spread: Record<string, (number | null)[][]>): void; setDatasetSize(size: number): void };
  /** Told when the sinks excluded or the dataset prompt change (the heatmap says what it shows). */
  changed(): void;
  /** A step through the dataset re-runs the model: the prompt box says so if it takes a while. */
  busy(): void;
}

/** Adds the research views next to the widget's own and keeps them in step with their traits.
 *  Returns the function that detaches them. */
export function mountResearch(host: ResearchHost): () => void {
  const { store, model } = host;
  const save = (values: Partial<ExplorerState>) => store.save(values);
  const progress = new ProgressView((shown) => stopRun(model, shown));
  const stepper = new DatasetStepper((index) => {
    host.busy();
    save({ dataset_index: index });
  });
  const sinks = new SinkToggle((exclude) => save({ exclude_sinks: exclude }));
  const similarity = new SimilarityView(
    (on) => save({ show_similarity: on }),
    (layer, head) => store.select(layer, head),
  );
  host.prompt.append(progress.root);
  host.analysis.append(stepper.root, sinks.root);
  host.scores.after(similarity.root);
  const unmountComposition = mountComposition({ store, model, after: similarity.root, toolbar: similarity.header });

  const draw = () => {
    const [layer, head] = [store.get("layer"), store.get("head")];
    progress.update(store.get("progress") ?? {});
    stepper.update(store.get("dataset_index") ?? -1, store.get("dataset_size") ?? 0);
    const positions = (store.get("sink_positions") ?? [])[layer]?.[head];
    sinks.update(store.get("exclude_sinks") ?? false, positions, layer, head, store.get("tokens"));
    similarity.update(store.get("show_similarity") ?? false, store.get("similarity") ?? {}, layer, head);
    host.scoreView.setSpread(store.get("score_spread") ?? {});
    host.scoreView.setDatasetSize(store.get("dataset_size") ?? 0);
    host.changed();
  };
  const events = [
    "progress",
    "dataset_index",
    "dataset_size",
    "sink_positions",
    "exclude_sinks",
    "show_similarity",
    "similarity",
    "score_spread",
    "layer",
    "head",
    "tokens",
  ].map((name) => `change:${name}`);
  for (const event of events) model.on(event, draw);
  draw();
  return () => {
    for (const event of events) model.off(event, draw);
    unmountComposition();
  };
}
