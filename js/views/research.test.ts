import { assert, assertEqual, type Tests } from "../testing";
import type { AnyModel } from "@anywidget/types";
import type { ExplorerState } from "../state/types";
import { DatasetStepper, ProgressView, SimilarityView, SinkToggle, metricLabel, stopRun } from "./research";
import { METRIC_LABELS } from "../contract.gen";
import { offeredMetrics } from "./scores";

/** Click the centre of cell (row, col) of a canvas laid out with data-left/top/cell. */
function clickCell(canvas: HTMLCanvasElement, row: number, col: number): void {
  const box = canvas.getBoundingClientRect();
  const { left, top, cell } = canvas.dataset;
  const x = box.left + Number(left) + (col + 0.5) * Number(cell);
  const y = box.top + Number(top) + (row + 0.5) * Number(cell);
  canvas.dispatchEvent(new MouseEvent("click", { clientX: x, clientY: y, bubbles: true }));
}

export const tests: Tests = {
  "the progress bar's stop button names its run, once"() {
    const asked: (number | undefined)[] = [];
    const view = new ProgressView((p) => {
      asked.push(p.run);
      return true;
    });
    const stop = view.root.querySelector<HTMLButtonElement>("[data-role=progress-stop]")!;
    view.update({ label: "scores", done: 1, total: 3 });
    assert(!view.root.hidden && stop.hidden, "no run: no stop button");
    view.update({ label: "ablation", done: 4, total: 12, run: 7, interrupt: true });
    assert(!stop.hidden && !stop.disabled, "a run can be stopped");
    stop.click();
    assertEqual(asked, [7]);
    view.update({ label: "ablation", done: 6, total: 12, run: 7, interrupt: true });
    assert(stop.disabled && view.root.textContent!.includes("stopping"), view.root.textContent!);
    view.update({ label: "dataset", done: 0, total: 5, run: 8, interrupt: true });
    assert(!stop.disabled, "the next run has its own button");
  },
  "stopping sends the run's message, and interrupts the kernel only for a main-thread run"() {
    const sent: unknown[] = [];
    let interrupts = 0;
    const kernel = { interrupt: async () => void interrupts++ };
    const fake = { send: (m: unknown) => sent.push(m), widget_manager: { kernel } } as unknown as AnyModel<ExplorerState>;
    assert(stopRun(fake, { run: 3, interrupt: false }), "a run off the main thread reads the message");
    assert(stopRun(fake, { run: 4, interrupt: true }), "the kernel was reached");
    assertEqual(sent, [
      { type: "stop", run: 3 },
      { type: "stop", run: 4 },
    ]);
    assertEqual(interrupts, 1);
    const elsewhere = { send: (m: unknown) => sent.push(m), widget_manager: {} } as unknown as AnyModel<ExplorerState>;
    assert(!stopRun(elsewhere, { run: 5, interrupt: true }), "a host without the kernel says so");
  },
  "dataset means and custom detectors get readable labels"() {
    assertEqual(metricLabel("dataset:induction", METRIC_LABELS), "induction (this prompt) \u2014 dataset mean");
    assertEqual(metricLabel("sink_share", METRIC_LABELS), "attention on sinks");
    assertEqual(metricLabel("my_detector", METRIC_LABELS), "my detector");
  },
  "the score menu offers every metric the kernel sent, the contract's first"() {
    const table = { my_detector: [[0]], induction: [[0]], "dataset:induction": [[0]], repeated_tokens: [[0]] };
    assertEqual(offeredMetrics(table), ["repeated_tokens", "induction", "my_detector", "dataset:induction"]);
  },
  "the dataset stepper wraps around and hides without a dataset"() {
    const steps: number[] = [];
    const stepper = new DatasetStepper((i) => steps.push(i));
    stepper.update(-1, 0);
    assert(stepper.root.hidden, "hidden with no dataset");
    stepper.update(2, 3);
    assert(!stepper.root.hidden && stepper.root.textContent!.includes("3 / 3"), stepper.root.textContent!);
    stepper.root.querySelector<HTMLButtonElement>("[data-role=dataset-next]")!.click();
    stepper.root.querySelector<HTMLButtonElement>("[data-role=dataset-prev]")!.click();
    assertEqual(steps, [0, 1]);
  },
  "the sink note names the excluded keys as text"() {
    const toggles: boolean[] = [];
    const view = new SinkToggle((on) => toggles.push(on));
    document.body.append(view.root); // a detached checkbox fires no change event
    view.update(true, [0, 2], 1, 3, ["<b>", "x", "y"]);
    const note = view.root.querySelector("[data-role=sink-note]")!;
    assert(note.textContent!.includes('Sinks excluded from L1H3: keys 0 ("<b>"), 2 ("y"); rows renormalised'), note.textContent!);
    assertEqual(note.querySelector("b"), null);
    view.root.querySelector<HTMLInputElement>("[data-role=exclude-sinks]")!.click();
    assertEqual(toggles, [false]);
    view.root.remove();
  },
  "a click on the similarity matrix selects the row's head"() {
    const picked: number[][] = [];
    const view = new SimilarityView(
      () => {},
      (l, h) => picked.push([l, h]),
    );
    document.body.append(view.root);
    const order = [
      [1, 0],
      [0, 1],
      [0, 0],
      [1, 1],
    ];
    const distance = [
      [0, 0.1, 0.5, 0.6],
      [0.1, 0, 0.5, 0.6],
      [0.5, 0.5, 0, 0.2],
      [0.6, 0.6, 0.2, 0],
    ];
    view.update(true, { order, distance }, 0, 0);
    clickCell(view.canvas, 2, 3);
    clickCell(view.canvas, 0, 1);
    assertEqual(picked, [
      [0, 0],
      [1, 0],
    ]);
    view.update(false, { order, distance }, 0, 0);
    assert(!view.canvas.closest("[hidden]"), "shown whenever the kernel has computed it (a Python call)");
    view.update(false, {}, 0, 0);
    assert(view.canvas.closest("[hidden]") !== null, "hidden when not shown");
    view.root.remove();
  },
};
