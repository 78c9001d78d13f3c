import { ColorBar, formatTick } from "./colorbar";
import { AnalysisBar, pictureLayout, SIDE_PX } from "./layout";
import { metricGroup } from "./research";
import { BLUES } from "../colors/colors";
import { LABEL_PX } from "./heatmap";
import { assert, assertEqual, type Tests } from "../testing";
import type { AnyModel } from "@anywidget/types";
import type { ExplorerState } from "../state/types";

export const tests: Tests = {
  "the heatmap keeps half the width or more beside the side column, else the two stack"() {
    for (const width of [800, 848, 956, 1200, 1600]) {
      const layout = pictureLayout(width);
      assert(!layout.stacked, `${width}: stacked`);
      assert(layout.matrix >= width / 2 || layout.matrix === 720, `${width}: matrix ${layout.matrix}`);
      assert(layout.matrix + LABEL_PX + (layout.side ?? 0) <= width, `${width}: wider than the cell`);
      assert((layout.side ?? 0) <= SIDE_PX);
    }
    for (const width of [300, 460, 600]) {
      const layout = pictureLayout(width);
      assert(layout.stacked, `${width}: not stacked`);
      assertEqual(layout.side, null);
    }
  },
  "the layout depends on the width alone"() {
    assertEqual(pictureLayout(900), pictureLayout(900));
  },
  "colour bar ticks are short"() {
    assertEqual(formatTick(0), "0");
    assertEqual(formatTick(0.86234), "0.862");
    assertEqual(formatTick(-1.5), "-1.5");
    assertEqual(formatTick(1e-4), "1.0e-4");
    assertEqual(formatTick(Number.NaN), "\u2013");
  },
  "a colour bar says its range, scale and units, and zero when signed"() {
    const bar = new ColorBar();
    bar.update({ lut: BLUES, lo: -0.5, hi: 0.5, signed: true, scale: "centred on zero", units: "logits" });
    assertEqual(bar.root.dataset.role, "colorbar");
    assertEqual([bar.root.dataset.lo, bar.root.dataset.hi, bar.root.dataset.units], ["-0.5", "0.5", "logits"]);
    assert(bar.root.textContent?.includes("0") && bar.root.textContent.includes("centred on zero"));
  },
  "metrics fall into the menu's groups"() {
    assertEqual(metricGroup("induction"), "scores");
    assertEqual(metricGroup("repeated_tokens"), "tests");
    assertEqual(metricGroup("direct_logit_attribution"), "attribution");
    assertEqual(metricGroup("induction_change"), "changes");
    assertEqual(metricGroup("dataset:induction"), "dataset");
    assertEqual(metricGroup("my_detector"), "detectors");
  },
  "the analysis bar starts closed and each explorer remembers it"() {
    const model = {} as AnyModel<ExplorerState>;
    const first = new AnalysisBar(model, false);
    assertEqual(first.root.open, false);
    first.root.open = true;
    first.root.dispatchEvent(new Event("toggle"));
    assertEqual(new AnalysisBar(model, false).root.open, true);
    assertEqual(new AnalysisBar({} as AnyModel<ExplorerState>, false).root.open, false);
  },
  "offline, the bar disables what needs a kernel and says why; saving stays"() {
    const bar = new AnalysisBar({} as AnyModel<ExplorerState>, true);
    const input = document.createElement("input");
    const save = document.createElement("div");
    save.dataset.role = "export";
    const button = document.createElement("button");
    save.append(button);
    bar.add(input, save);
    bar.finish();
    assert(input.disabled && input.title.includes("kernel"));
    assert(!button.disabled);
    assert(bar.body.querySelector("[data-role=offline-note]") !== null);
  },
};
