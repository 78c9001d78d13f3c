import { BLUES, lutColor } from "../colors/colors";
import { assert, assertEqual, type Tests } from "../testing";
import type { Pattern, Tile, Window } from "../state/types";
import { HeatmapView, tileCell } from "./heatmap";

function pixel(canvas: HTMLCanvasElement, x: number, y: number): number[] {
  const ratio = canvas.width / parseFloat(canvas.style.width);
  return Array.from(
    canvas
      .getContext("2d")!
      .getImageData(Math.floor(x * ratio), Math.floor(y * ratio), 1, 1)
      .data.slice(0, 3),
  );
}

function mounted(windows: Window[] = []): HeatmapView {
  const view = new HeatmapView({ hoverQuery: () => {}, setScale: () => {}, windowChanged: (w) => windows.push(w) });
  document.body.append(view.root);
  view.resize(300);
  return view;
}

const PATTERN: Pattern = { kind: "pattern", revision: 1, layer: 0, head: 0, n: 3, values: Float32Array.from([1, 0, 0, 0.5, 0.5, 0, 0.1, 0.2, 0.7]) };
const matrixOf = (view: HeatmapView) => view.root.querySelector<HTMLCanvasElement>("canvas[data-role=matrix]")!;

export const tests: Tests = {
  "the title line names a looped model's layer by module and pass"() {
    const view = mounted();
    view.layerNames = ["model.L_module.layers.0 (pass 1)", "model.H_module.layers.0 (pass 1)", "model.L_module.layers.0 (pass 2)"];
    view.setData({ ...PATTERN, layer: 2, head: 1 }, ["a", "b", "c"]);
    const title = view.root.querySelector<HTMLElement>(".aw-title-text")!;
    assertEqual(title.textContent, "L2H1 \u00b7 model.L_module.layers.0 (pass 2)");
    assertEqual(title.title, title.textContent, "the whole line on hover");
    view.layerNames = [];
    view.setData(PATTERN, ["a", "b", "c"]);
    assertEqual(title.textContent, "L0H0", "no names: the index alone");
    view.root.remove();
  },
  "the renderer paints each cell in its colour"() {
    const view = mounted();
    view.setStyle("linear", BLUES);
    view.reset(3, ["a", "b", "c"]);
    view.setData(PATTERN, ["a", "b", "c"]);
    for (let q = 0; q < 3; q++) {
      for (let k = 0; k < 3; k++) {
        const got = pixel(matrixOf(view), (k + 0.5) * 100, (q + 0.5) * 100);
        const want = lutColor(BLUES, PATTERN.values[q * 3 + k]);
        assert(
          got.every((c, i) => Math.abs(c - want[i]) <= 1),
          `cell ${q},${k}: ${got} vs ${want}`,
        );
      }
    }
    assertEqual(view.root.dataset.drawn, "1:0:0");
    view.root.remove();
  },
  "the per-row scale repaints rows to their own max"() {
    const view = mounted();
    view.reset(3, ["a", "b", "c"]);
    view.setData(PATTERN, ["a", "b", "c"]);
    view.setStyle("row", BLUES);
    assertEqual(pixel(matrixOf(view), 150, 250), lutColor(BLUES, 0.2 / 0.7)); // row 2, key 1
    assertEqual(pixel(matrixOf(view), 50, 150), lutColor(BLUES, 1)); // row 1's max
    view.root.remove();
  },
  "the focused query row is highlighted on the overlay"() {
    const view = mounted();
    view.setStyle("linear", BLUES);
    view.reset(3, ["a", "b", "c"]);
    view.setData(PATTERN, ["a", "b", "c"]);
    view.setFocusQuery(1);
    const overlay = view.root.querySelector<HTMLCanvasElement>("canvas[data-role=overlay]")!;
    const ratio = window.devicePixelRatio || 1; // CSS pixels to the canvas's device pixels
    const alpha = (x: number, y: number) => overlay.getContext("2d")!.getImageData(x * ratio, y * ratio, 1, 1).data[3];
    assert(alpha(150, 150) > 0, "row 1 not highlighted");
    assertEqual(alpha(150, 50), 0);
    assertEqual(alpha(150, 250), 0);
    view.root.remove();
  },
  async "zooming asks for the visible window and draws a tile where it lies"() {
    const windows: Window[] = [];
    const view = mounted(windows);
    view.setStyle("linear", BLUES);
    view.reset(
      1000,
      Array.from({ length: 1000 }, (_, i) => `t${i}`),
    );
    view.root.dispatchEvent(new KeyboardEvent("keydown", { key: "+" }));
    await new Promise((r) => setTimeout(r, 80));
    const w = windows[windows.length - 1];
    assertEqual(w.q1 - w.q0, 800);
    assertEqual([w.q0, w.k0], [100, 100]); // zoomed around the centre
    const tile: Tile = { kind: "tile", revision: 1, layer: 0, head: 0, n: 1000, ...w, rows: 2, cols: 2, values: Float32Array.from([1, 0, 0, 1]) };
    view.setData(tile, []);
    assertEqual(pixel(matrixOf(view), 75, 75), lutColor(BLUES, 1));
    assertEqual(pixel(matrixOf(view), 225, 75), lutColor(BLUES, 0));
    view.root.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowRight", shiftKey: true }));
    assertEqual(view.window.k0, 200); // a quarter of the span to the right, stopped by the edge
    view.root.remove();
  },
  "a tile cell covers the tokens adaptive pooling gave it"() {
    const tile = { kind: "tile", revision: 1, layer: 0, head: 0, n: 10, q0: 0, q1: 10, k0: 0, k1: 10, rows: 4, cols: 4, values: new Float32Array(16) } as Tile;
    assertEqual(tileCell(tile, 0, 9), [0, 3, 0, 3, 7, 10]);
    assertEqual(tileCell(tile, 5, 2), [2, 0, 5, 8, 0, 3]);
    assertEqual(tileCell(tile, 10, 0), null);
  },
  "a preview is marked as one, and never as the drawn head"() {
    const view = mounted();
    view.setStyle("linear", BLUES);
    view.reset(3, ["a", "b", "c"]);
    view.setData(PATTERN, ["a", "b", "c"]);
    const thumb: Tile = { kind: "tile", revision: 1, layer: 2, head: 1, n: 3, q0: 0, q1: 3, k0: 0, k1: 3, rows: 1, cols: 1, values: Float32Array.from([1]) };
    view.showPreview(thumb);
    const d = view.root.dataset;
    assertEqual([d.drawn, d.preview, d.exact], [undefined, "1:2:1", undefined]);
    assert(view.root.textContent!.includes("(preview)"), "the title says preview");
    assertEqual(pixel(matrixOf(view), 250, 50), lutColor(BLUES, 1)); // the thumbnail, scaled up
    view.setData({ ...PATTERN, layer: 2, head: 1 }, ["a", "b", "c"], false);
    assertEqual([d.drawn, d.preview, d.exact], ["1:2:1", undefined, "false"]);
    view.root.remove();
  },
};
