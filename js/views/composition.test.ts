import { assert, assertEqual, type Tests } from "../testing";
import { CompositionView, compositionGrid } from "./composition";

/** 3 layers x 2 heads: score (writer w, reader r) = w + r / 10 where r is in a later layer, NaN elsewhere. */
function sample(kind: "q" | "k" | "v") {
  const side = 6;
  const values = new Float32Array(side * side).fill(NaN);
  for (let w = 0; w < side; w++) for (let r = 0; r < side; r++) if (Math.floor(r / 2) > Math.floor(w / 2)) values[w * side + r] = 1 + w + r / 10;
  return { kind, n_layers: 3, n_heads: 2, scores: new DataView(values.buffer) };
}

function at(canvas: HTMLCanvasElement, type: string, row: number, col: number, onLabels = false): void {
  const box = canvas.getBoundingClientRect();
  const { left, top, cell } = canvas.dataset;
  const x = box.left + (onLabels ? 2 : Number(left) + (col + 0.5) * Number(cell));
  const y = box.top + Number(top) + (row + 0.5) * Number(cell);
  canvas.dispatchEvent(new MouseEvent(type, { clientX: x, clientY: y, bubbles: true }));
}

export const tests: Tests = {
  "the composition grid decodes the kernel's float32 bytes at any offset"() {
    const data = sample("k");
    const shifted = new Uint8Array(data.scores.byteLength + 1);
    shifted.set(new Uint8Array(data.scores.buffer), 1);
    const grid = compositionGrid({ ...data, scores: new DataView(shifted.buffer, 1) });
    assertEqual(grid.side, 6);
    assertEqual(Math.round(grid.values[1 * 6 + 4] * 10), 24); // writer L0H1, reader L2H0
    assert(Number.isNaN(grid.values[2 * 6 + 3]), "same layer: masked");
    assertEqual(compositionGrid({ ...data, n_heads: 3 }).side, 0); // a size that does not match: nothing drawn
  },
  "the composition view names the pair on hover, selects the reader on click, the writer on its label"() {
    const picked: number[][] = [];
    const kinds: string[] = [];
    const view = new CompositionView(
      (k) => kinds.push(k),
      (layer, head) => picked.push([layer, head]),
    );
    document.body.append(view.root);
    view.update("k", sample("k"), 1, 0);
    const canvas = view.canvas;
    assertEqual([canvas.dataset.rows, canvas.dataset.cols, canvas.dataset.kind], ["4", "4", "k"]); // layers 0-1 write, 1-2 read
    const bar = view.root.querySelector<HTMLElement>("[data-role=colorbar]")!;
    assertEqual(bar.dataset.units, "K-composition score");
    assertEqual(Number(bar.dataset.hi).toFixed(3), (1 + 3 + 5 / 10).toFixed(3));
    at(canvas, "mousemove", 1, 2); // writer L0H1, reader L2H0
    const readout = view.root.querySelector(".aw-readout")!.textContent!;
    assert(readout.includes("L0H1 \u2192 L2H0: K-composition score 2.4000"), readout);
    at(canvas, "mousemove", 2, 0); // writer L1H0, reader L1H0: masked
    assert(view.root.querySelector(".aw-readout")!.textContent!.includes("not in a later layer"), "masked pair");
    at(canvas, "click", 1, 2);
    at(canvas, "click", 3, 0, true);
    assertEqual(picked, [
      [2, 0],
      [1, 1],
    ]);
    view.root.querySelector<HTMLButtonElement>("[data-kind=v]")!.click();
    view.root.querySelector<HTMLButtonElement>("[data-role=composition-close]")!.click();
    assertEqual(kinds, ["v", ""]);
    view.update("", {}, 1, 0);
    assert(view.root.hidden && !view.opener.hidden, "closed: only its opener shows");
    view.opener.click();
    assertEqual(kinds, ["v", "", "k"]);
    view.root.remove();
  },
};
