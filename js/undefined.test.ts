import { BLUES, UNDEFINED_RGB, applyScale, countUndefined, paintCells } from "./colors/colors";
import { MAX_TILE_CELLS, METRIC_LABELS } from "./contract.gen";
import { markUndefined } from "./requests/buffers";
import { assert, assertEqual, type Tests } from "./testing";
import { HeatmapView } from "./views/heatmap";
import { isUndefinedScore } from "./views/score-cells";
import { ScoreView, offeredMetrics } from "./views/scores";

const callbacks = { hoverQuery: () => {}, setScale: () => {}, windowChanged: () => {} };

export const tests: Tests = {
  "NaN weights are painted in their own colour under every scale"() {
    const values = Float32Array.from([0, Number.NaN, 1, 0.5]);
    for (const scale of ["linear", "log", "row"] as const) {
      const px = paintCells(applyScale(values, 2, scale), 2, 2, BLUES).data;
      assertEqual([px[4], px[5], px[6]], UNDEFINED_RGB, `${scale}:`);
      assert([px[0], px[1], px[2]].join() !== UNDEFINED_RGB.join(), `${scale}: a defined weight`);
      assertEqual([px[8], px[9], px[10]], [8, 48, 107], `${scale}: the row's max`);
    }
  },
  "undefined weights are counted"() {
    assertEqual(countUndefined(Float32Array.from([Number.NaN, 0, Number.NaN, 1])), 2);
  },
  "a tile's undefined mask turns its cells into NaN"() {
    const values = Float32Array.from([0.5, 0, 1]);
    markUndefined(values, Uint8Array.from([0, 1, 0]));
    assertEqual(Array.from(values, Number.isNaN), [false, true, false]);
  },
  "a null score of a scored layer is undefined, of a layer still being scored pending"() {
    const table = [[0.5, null], null];
    assertEqual([isUndefinedScore(table, 0, 0, 1), isUndefinedScore(table, 0, 1, 1)], [false, true]);
    assertEqual([isUndefinedScore(table, 1, 0, 1), isUndefinedScore(table, 0, 1, 0)], [false, false]);
  },
  "the score view draws undefined scores in their own colour, reads them as undefined and counts them"() {
    const view = new ScoreView(
      () => {},
      () => {},
    );
    document.body.append(view.root);
    const summary = [{ finding: "most focused", layer: 0, head: 1, metric: "entropy", value: null }];
    view.update(
      {
        entropy: [
          [0.5, null],
          [0.25, 0.75],
        ],
      },
      "entropy",
      0,
      0,
      [],
      summary,
      { scored: 2, layers: 2, heads: 2 },
    );
    const map = view.root.querySelector<HTMLCanvasElement>("canvas[data-role=score-map]")!;
    assertEqual(map.dataset.undefined, "1");
    const { left, top, cell } = map.dataset;
    const ratio = map.width / Number.parseFloat(map.style.width);
    const [x, y] = [(Number(left) + Number(cell) + 2) * ratio, (Number(top) + 2) * ratio];
    assertEqual(Array.from(map.getContext("2d")!.getImageData(Math.floor(x), Math.floor(y), 1, 1).data.slice(0, 3)), UNDEFINED_RGB);
    const ranked = view.details.querySelector("[data-role=ranked]")!.textContent!;
    assert(ranked.includes("1 head undefined") && !ranked.includes("L0H1"), ranked);
    assert(view.details.querySelector("[data-role=summary]")!.textContent!.includes("entropy undefined"));
    view.root.remove();
  },
  "the metric menu offers what the score table has, in the contract's order"() {
    assertEqual(offeredMetrics({ entropy: [], induction: [] }), ["induction", "entropy"]);
    assertEqual(offeredMetrics({ repeated_tokens: [], entropy: [] }), ["repeated_tokens", "entropy"]);
    assertEqual(Object.keys(METRIC_LABELS)[0], "repeated_tokens");
  },
  "tiles never ask for more cells than the kernel's largest"() {
    const view = new HeatmapView(callbacks);
    view.reset(5000, []);
    view.resize(560);
    const ratio = window.devicePixelRatio || 1;
    assertEqual(view.tileCells, Math.min(MAX_TILE_CELLS, Math.round(560 * ratio)));
    view.dispose();
  },
};
