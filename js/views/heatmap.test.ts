import { BLUES, lutColor } from "../colors";
import { assert, assertEqual, type Tests } from "../testing";
import { HeatmapView } from "./heatmap";

function pixel(canvas: HTMLCanvasElement, x: number, y: number): number[] {
  const ratio = canvas.width / parseFloat(canvas.style.width);
  return Array.from(canvas.getContext("2d")!.getImageData(Math.floor(x * ratio), Math.floor(y * ratio), 1, 1).data.slice(0, 3));
}

function mounted(): HeatmapView {
  const view = new HeatmapView({ hoverQuery: () => {}, setScale: () => {} });
  document.body.append(view.root);
  view.resize(300);
  return view;
}

const PATTERN = { revision: 1, layer: 0, head: 0, n: 3, values: Float32Array.from([1, 0, 0, 0.5, 0.5, 0, 0.1, 0.2, 0.7]) };

export const tests: Tests = {
  "the renderer paints each cell in its colour"() {
    const view = mounted();
    view.setStyle("linear", BLUES);
    view.setPattern(PATTERN, ["a", "b", "c"]);
    const canvas = view.root.querySelector<HTMLCanvasElement>("canvas[data-role=matrix]")!;
    for (let q = 0; q < 3; q++) {
      for (let k = 0; k < 3; k++) {
        const got = pixel(canvas, (k + 0.5) * 100, (q + 0.5) * 100);
        const want = lutColor(BLUES, PATTERN.values[q * 3 + k]);
        assert(got.every((c, i) => Math.abs(c - want[i]) <= 1), `cell ${q},${k}: ${got} vs ${want}`);
      }
    }
    assertEqual(view.root.dataset.drawn, "1:0:0");
    view.root.remove();
  },
  "the per-row scale repaints rows to their own max"() {
    const view = mounted();
    view.setPattern(PATTERN, ["a", "b", "c"]);
    view.setStyle("row", BLUES);
    const canvas = view.root.querySelector<HTMLCanvasElement>("canvas[data-role=matrix]")!;
    assertEqual(pixel(canvas, 150, 250), lutColor(BLUES, 0.2 / 0.7)); // row 2, key 1
    assertEqual(pixel(canvas, 50, 150), lutColor(BLUES, 1)); // row 1's max
    view.root.remove();
  },
  "the focused query row is highlighted on the overlay"() {
    const view = mounted();
    view.setStyle("linear", BLUES);
    view.setPattern(PATTERN, ["a", "b", "c"]);
    view.setFocusQuery(1);
    const overlay = view.root.querySelector<HTMLCanvasElement>("canvas[data-role=overlay]")!;
    const alpha = (x: number, y: number) => overlay.getContext("2d")!.getImageData(x, y, 1, 1).data[3];
    assert(alpha(150, 150) > 0, "row 1 not highlighted");
    assertEqual(alpha(150, 50), 0);
    assertEqual(alpha(150, 250), 0);
    view.root.remove();
  },
};
