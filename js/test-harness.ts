/** Bundled with esbuild and loaded into a blank page in Chromium by tests/browser/test_js_units.py. */

import type { Tests } from "./testing";
import { tests as buffers } from "./requests/buffers.test";
import { tests as colors } from "./colors/colors.test";
import { tests as diverging } from "./colors/diverging.test";
import { tests as labels } from "./views/labels.test";
import { tests as requests } from "./requests/requests.test";
import { tests as undefinedValues } from "./undefined.test";
import { tests as heatmap } from "./views/heatmap.test";
import { tests as scoreCells } from "./views/score-cells.test";
import { tests as scores } from "./views/scores.test";
import { tests as thumbnails } from "./views/thumbnails.test";
import { tests as tokenWindow } from "./views/token-window.test";
import { tests as tokens } from "./views/tokens.test";
import { tests as viewport } from "./views/viewport.test";
import { tests as research } from "./views/research.test";
import { tests as composition } from "./views/composition.test";
import { tests as layout } from "./views/layout.test";

const SUITES: Record<string, Tests> = {
  buffers,
  layout,
  colors,
  diverging,
  labels,
  requests,
  heatmap,
  viewport,
  tokenWindow,
  tokens,
  scoreCells,
  scores,
  thumbnails,
  undefinedValues,
  research,
  composition,
};

async function runAttnWidgetTests(): Promise<{ name: string; error: string | null }[]> {
  const results = [];
  for (const [suite, tests] of Object.entries(SUITES)) {
    for (const [name, test] of Object.entries(tests)) {
      try {
        await test();
        results.push({ name: `${suite}: ${name}`, error: null });
      } catch (err) {
        results.push({ name: `${suite}: ${name}`, error: String((err as Error).stack ?? err) });
      }
    }
  }
  return results;
}

(window as unknown as { runAttnWidgetTests: typeof runAttnWidgetTests }).runAttnWidgetTests = runAttnWidgetTests;
