import { UNDEFINED_RGB } from "../colors/colors";
import { assert, assertEqual, type Tests } from "../testing";
import { ScoreView, summaryText } from "./scores";

function pixel(canvas: HTMLCanvasElement, x: number, y: number): number[] {
  const ratio = canvas.width / parseFloat(canvas.style.width);
  return Array.from(
    canvas
      .getContext("2d")!
      .getImageData(Math.floor(x * ratio), Math.floor(y * ratio), 1, 1)
      .data.slice(0, 3),
  );
}

/** The colour near the top-left corner of a score-map cell (off the hatching's lines). */
function cellColour(canvas: HTMLCanvasElement, layer: number, head: number): number[] {
  const { left, top, cell } = canvas.dataset;
  return pixel(canvas, Number(left) + Number(head) * Number(cell) + 1, Number(top) + layer * Number(cell) + 1);
}

export const tests: Tests = {
  "the summary names metrics by their labels, once"() {
    const row = { finding: "induction head #1", layer: 1, head: 2, metric: "repeated_tokens", value: 0.8621 };
    assertEqual(summaryText(row), "induction head #1: L1H2 0.862");
    assertEqual(
      summaryText({ ...row, finding: "longest-range", metric: "mean_distance", value: 18.2 }),
      "longest-range: L1H2 (mean attention distance 18.200)",
    );
  },
  "scores that are still pending draw hatched, never throw, and progress shows"() {
    const view = new ScoreView(
      () => {},
      () => {},
    );
    document.body.append(view.root);
    const table = [[0.5, null, 0.25, 0.75], null, null];
    const summary = [{ finding: "sink", layer: 0, head: 0, metric: "first_token", value: null as unknown as number }];
    view.update({ entropy: table }, "entropy", 0, 0, [], summary, { scored: 1, layers: 3, heads: 4 });
    const map = view.root.querySelector<HTMLCanvasElement>("canvas[data-role=score-map]")!;
    assertEqual([map.dataset.rows, map.dataset.cols], ["3", "4"]);
    const progress = view.root.querySelector<HTMLElement>("[data-role=score-progress]")!;
    assertEqual(progress.textContent, "scores: 1 / 3 layers");
    assert(!progress.hidden);
    // the kernel publishes whole layers: a null in a scored layer is an undefined (NaN) score
    assertEqual(cellColour(map, 0, 1), UNDEFINED_RGB);
    assertEqual(cellColour(map, 2, 3), [200, 200, 200]); // a pending layer
    const scored = cellColour(map, 0, 3);
    assert(!(scored[0] === scored[1] && scored[1] === scored[2]), `scored cell is coloured: ${scored}`);
    const ranked = Array.from(view.details.querySelectorAll("[data-role=ranked] button"), (b) => b.textContent);
    assertEqual(ranked, ["L0H3  0.750", "L0H0  0.500", "L0H2  0.250"]);
    assert(view.details.querySelector("[data-role=summary]")!.textContent!.includes("sink: L0H0 (first token undefined)"));

    view.update(
      {
        entropy: [
          [0.5, 0.1, 0.25, 0.75],
          [0, 0, 0, 0],
          [1, 1, 1, 1],
        ],
      },
      "entropy",
      0,
      0,
      [],
      [],
      { scored: 3, layers: 3, heads: 4 },
    );
    assert(progress.hidden, "progress hides once every layer is in");
    assert(!cellColour(map, 2, 3).every((c) => c === 200));
    view.root.remove();
  },
};
