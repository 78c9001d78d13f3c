/** The screen's layout: the picture's geometry (heatmap beside the head grid and overview when
 *  they fit, else stacked) and the one collapsible analysis bar. */

import type { AnyModel } from "@anywidget/types";
import type { ExplorerState } from "../state/types";
import { element } from "./canvas";
import { LABEL_PX, MAX_MATRIX_PX, MIN_MATRIX_PX } from "./heatmap";

/** The side column (head grid, overview, score map) beside the heatmap: at most this wide, and at
 *  least the smaller, so that the heatmap keeps half the width or more. */
export const SIDE_PX = 340;
const MIN_SIDE_PX = 240;
const GAP_PX = 16;
/** Below this, a heatmap beside the side column is too small: stack them instead. */
const MIN_BESIDE_PX = 380;
const SLACK_PX = 8; // the view's padding and focus ring

export interface PictureLayout {
  stacked: boolean;
  /** The matrix's side in CSS pixels. */
  matrix: number;
  /** The side column's width (beside), or null (stacked: it takes the whole width). */
  side: number | null;
}

/** Where the picture's parts go in `width` pixels: the heatmap takes what the side column leaves,
 *  or, when that is too little, the whole width with the side column below. */
export function pictureLayout(width: number): PictureLayout {
  const fixed = GAP_PX + LABEL_PX + SLACK_PX;
  // The heatmap gets a little more than half (the widget's own padding): half the output at least.
  const side = Math.round(Math.max(MIN_SIDE_PX, Math.min(SIDE_PX, width / 2 - fixed - 2 * SLACK_PX)));
  const beside = width - side - fixed;
  const fit = (px: number) => Math.round(Math.max(MIN_MATRIX_PX, Math.min(MAX_MATRIX_PX, px)));
  if (beside >= MIN_BESIDE_PX) return { stacked: false, matrix: fit(beside), side };
  return { stacked: true, matrix: fit(width - LABEL_PX - SLACK_PX), side: null };
}

/** Open or closed, per explorer (widget model): every view of it, and a re-render, keep it. */
const opened = new WeakMap<object, boolean>();

const KERNEL_REASON = "needs a running kernel: this page is a saved, offline view";

export class AnalysisBar {
  readonly root = element("details", "aw-analysis");
  readonly body = element("div", "aw-analysis-body");
  private readonly summary = element("summary", "aw-analysis-summary");

  constructor(
    private readonly model: AnyModel<ExplorerState>,
    private readonly offline: boolean,
  ) {
    this.root.dataset.role = "analysis";
    this.summary.append(
      element("span", "aw-analysis-title", "Analysis"),
      element("span", "aw-hint", "compare prompt \u00b7 logit attribution \u00b7 weighting \u00b7 sinks \u00b7 dataset \u00b7 save"),
    );
    this.root.append(this.summary, this.body);
    this.root.open = opened.get(model) ?? false;
    this.root.addEventListener("toggle", () => opened.set(this.model, this.root.open));
  }

  add(...nodes: Node[]): void {
    this.body.append(...nodes);
  }

  /** On a standalone page, what needs a kernel is disabled and says why; saving the picture stays. */
  finish(): void {
    if (!this.offline) return;
    for (const control of this.body.querySelectorAll<HTMLInputElement | HTMLSelectElement | HTMLButtonElement>("input, select, button")) {
      if (control.closest("[data-role=export]")) continue;
      control.disabled = true;
      control.title = KERNEL_REASON;
    }
    const note = element("div", "aw-hint", `Compare, attribution, weighting, sinks and dataset ${KERNEL_REASON}.`);
    note.dataset.role = "offline-note";
    this.body.prepend(note);
  }
}
