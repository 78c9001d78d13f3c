/** Entry point: builds the views for one rendering of the explorer and links them through the
 *  synced traits (layer, head, focus token, colour scale) and the selected head's pattern. */

import type { AnyModel, RenderProps } from "@anywidget/types";
import { bytesOf } from "./requests/buffers";
import { element } from "./views/canvas";
import type { ColorScale } from "./contract.gen";
import { ExportBar } from "./views/export";
import { type Cached, type HeadSpec, RequestLayer, Slot, Superseded, headKey } from "./requests/requests";
import { Store } from "./state/store";
import { isDark, patternLut, watchTheme } from "./colors/theme";
import type { ExplorerState, HeadData, KernelMessage, Tile } from "./state/types";
import { HeatmapView } from "./views/heatmap";
import { hideSnapshot } from "./views/snapshot";
import { PromptView } from "./views/prompt";
import { mountResearch } from "./views/research";
import { mountWhy } from "./views/why";
import { ScoreView } from "./views/scores";
import { HeadGridView, OverviewView, type Thumbnails } from "./views/thumbnails";
import { TokenStripView } from "./views/tokens";
import { ViewOptionsView, weightingSelect, type ViewOptions } from "./views/view-options";
import { RED_BLUE, RED_BLUE_DARK } from "./colors/diverging";
import { COLORBAR_UNITS, WEIGHTING_LABELS } from "./contract.gen";
import { AnalysisBar, pictureLayout } from "./views/layout";

/** Arrow keys move the selection: left/right between heads, up/down between layers. */
const ARROWS: Record<string, [number, number]> = {
  ArrowLeft: [0, -1],
  ArrowRight: [0, 1],
  ArrowUp: [-1, 0],
  ArrowDown: [1, 0],
};

const OFFLINE_REASON = "A saved page: there is no kernel to run another prompt";

function render({ model, el }: RenderProps<ExplorerState>, requests: RequestLayer): () => void {
  // Marks for anyone timing the explorer (the benchmarks do): render start, first head drawn.
  performance.mark("attn-widget:render");
  let painted = false;
  const store = new Store(model);
  const offline = Boolean(model.get("standalone"));
  const root = element("div", "attn-widget");
  const errorBar = element("div", "aw-error");
  errorBar.dataset.role = "error";
  let localError = "";
  let shown: Cached<HeadData> | null = null; // what the heatmap shows (null: nothing, or a thumbnail preview)
  let laidOut = false; // the heatmap has its size (see the ResizeObserver below)
  const headSlot = new Slot(); // this view's latest head request: older ones are superseded
  const rowSlot = new Slot();

  const prompt = new PromptView((text) => {
    localError = "";
    store.save({ prompt: text });
  });
  const tokens = new TokenStripView({
    hover: (i) => store.hoverToken(i),
    toggleLock: (i) => store.toggleLock(i),
    setShadeBy: (shadeBy) => store.save({ shade_by: shadeBy }),
    jump: (i) => {
      store.save({ focus_locked: true, focus_token: i });
      heatmap.centerOn(i);
    },
  });
  const heatmap = new HeatmapView({
    hoverQuery: (q) => store.hoverToken(q),
    setScale: (scale: ColorScale) => store.save({ color_scale: scale }),
    windowChanged: () => requestHead(false),
  });
  const viewOptions = new ViewOptionsView((values: Partial<ViewOptions>) => {
    localError = "";
    store.save(values);
  });
  const weighting = weightingSelect((value) => store.save({ weighting: value }));
  const grid = new HeadGridView(
    (layer) => store.select(layer, store.get("head")),
    (head) => store.select(store.get("layer"), head),
  );
  heatmap.layerNames = grid.layerNames = store.get("layer_names") ?? []; // set once, with the model
  const overview = new OverviewView((layer, head) => store.select(layer, head));
  const scores = new ScoreView(
    (metric) => store.save({ metric }),
    (layer, head) => store.select(layer, head),
  );
  /** Draw a head's weights if it is still the selected head of the current prompt. */
  function show(entry: Cached<HeadData>): void {
    const { data } = entry;
    if (shown?.data === data || !isSelected(data.revision, data.layer, data.head)) return;
    if (shown && !entry.exact && shown.exact && isSelected(shown.data.revision, shown.data.layer, shown.data.head)) return;
    shown = entry;
    heatmap.setData(data, store.get("tokens"), entry.exact);
    if (store.get("focus_token") >= 0) drawFocus(); // with no focus, the token strip does not depend on the head
    if (!painted) performance.mark("attn-widget:first-paint");
    painted = true;
  }
  function showRequestError(err: unknown): void {
    if (err instanceof Superseded) return;
    localError = err instanceof Error ? err.message : String(err);
    showError();
  }
  function isSelected(revision: number, layer: number, head: number): boolean {
    return revision === store.get("revision") && layer === store.get("layer") && head === store.get("head");
  }

  const exportBar = new ExportBar(
    model,
    () => heatmap.root.querySelector("canvas[data-role=matrix]"),
    () => isDark(root),
  );
  const side = element("div", "aw-side");
  side.append(grid.root, overview.root, scores.root);
  const main = element("div", "aw-main");
  main.dataset.role = "picture";
  main.append(heatmap.root, side);
  // Compare prompt, attribution, weighting, sinks, dataset and saving: one bar, collapsed at first,
  // open or closed as this explorer's other views left it.
  const analysis = new AnalysisBar(model, Boolean(model.get("standalone")));
  const weightingLabel = element("label", "aw-inline");
  weightingLabel.append("weigh by ", weighting);
  analysis.add(weightingLabel, viewOptions.root);
  // Shown over the views when the kernel behind them is gone (restarted, shut down): without it the
  // views would look alive but answer nothing.
  const kernelGone = element("div", "aw-kernel-gone", "Kernel gone: this explorer no longer has a kernel behind it. Re-run its cell to explore again.");
  kernelGone.dataset.role = "kernel-gone";
  kernelGone.hidden = true;
  const below = element("div", "aw-below");
  below.append(scores.details);
  root.append(prompt.root, analysis.root, errorBar, tokens.root, main, below, kernelGone);
  el.append(root);
  const unmountWhy = mountWhy({ store, model, heatmap: heatmap.root, cell: () => heatmap.hoveredCell, header: heatmap.header });
  const unmountResearch = mountResearch({
    store,
    model,
    prompt: prompt.root,
    analysis: analysis.body,
    scores: scores.root,
    scoreView: scores,
    changed: () => describeShown(),
    busy: () => prompt.setBusy(true),
  });
  analysis.add(exportBar.root);
  analysis.finish();

  const style = () => ({ scale: store.get("color_scale"), lut: patternLut(root) });
  const signedLut = () => (isDark(root) ? RED_BLUE_DARK : RED_BLUE);
  const thumbnails = (): Thumbnails => ({
    bytes: bytesOf(store.get("thumbnails")),
    side: store.get("thumbnail_side"),
    nLayers: store.get("n_layers"),
    nHeads: store.get("n_heads"),
    inProgress: scoresInProgress(),
  });
  // A kernel without `scored_layers` (older) publishes every layer at once.
  const scoredLayers = () => store.get("scored_layers") as number | undefined;
  const scoresInProgress = () => (scoredLayers() ?? Infinity) < store.get("n_layers");

  /** Say above the heatmap what it and the attribution show: weighting, compare prompt, sinks
   *  excluded, the dataset prompt, and the token attribution is computed at. */
  function describeShown(): void {
    const parts: string[] = [];
    const weighting = store.get("weighting");
    parts.push(WEIGHTING_LABELS[weighting] ?? weighting);
    const compare = store.get("compare_prompt");
    if (compare) parts.push(`minus compare prompt \u201c${compare.length > 40 ? `${compare.slice(0, 39)}\u2026` : compare}\u201d`);
    if (store.get("exclude_sinks")) parts.push("sinks excluded, rows renormalised");
    const [index, size] = [store.get("dataset_index") ?? -1, store.get("dataset_size") ?? 0];
    if (index >= 0 && size > 0) parts.push(`dataset prompt ${index + 1} / ${size}`);
    const tokensNow = store.get("tokens");
    const at = store.get("attribution_query");
    if (store.get("answer") && at >= 0 && at < tokensNow.length) {
      parts.push(
        `DLA and attribution at token ${at} ${JSON.stringify(tokensNow[at])}${store.get("focus_locked") ? " (locked)" : " (lock a token to move it)"}`,
      );
    }
    const units = weighting === "value" ? COLORBAR_UNITS.value : COLORBAR_UNITS.attention;
    heatmap.setContext(parts.join(" \u00b7 "), units);
    tokens.setAttributionAt(at >= 0 && at < tokensNow.length ? at : null);
  }
  function showError(): void {
    const message = store.get("error") || localError;
    errorBar.textContent = message;
    errorBar.hidden = !message;
    prompt.setBusy(false);
  }
  function selectedSpec(): HeadSpec {
    const [revision, layer, head] = [store.get("revision"), store.get("layer"), store.get("head")];
    return { revision, n: store.get("tokens").length, layer, head, window: heatmap.window, cells: heatmap.tileCells };
  }
  /** The selected head's thumbnail as a tile over the whole prompt (max-pooled, like a tile). */
  function thumbnailTile(spec: HeadSpec): Tile | null {
    const t = thumbnails();
    const size = t.side * t.side;
    const start = (spec.layer * t.nHeads + spec.head) * size;
    if (!t.side || !spec.n || t.bytes.length < start + size) return null;
    const values = Float32Array.from(t.bytes.subarray(start, start + size), (b) => b / 255);
    const { revision, layer, head, n } = spec;
    return { kind: "tile", revision, layer, head, n, q0: 0, q1: n, k0: 0, k1: n, rows: t.side, cols: t.side, values };
  }
  /** Draw the selected head at once from what is here (cache, else its thumbnail as a preview),
   *  ask for what is missing, and (after a new selection) prefetch what may come next. */
  function requestHead(prefetch: boolean): void {
    const spec = selectedSpec();
    if (!spec.n) return;
    const have = requests.peekHead(spec);
    const showing = shown !== null && isSelected(shown.data.revision, shown.data.layer, shown.data.head);
    if (have) show(have);
    else if (!showing) {
      shown = null;
      const preview = thumbnailTile(spec);
      if (preview) heatmap.showPreview(preview);
    }
    // Around the selection as it is by then (the window may have changed size meanwhile).
    const around = () => prefetch && laidOut && requests.prefetchAround(selectedSpec(), store.get("n_layers"), store.get("n_heads"));
    if (have?.key === headKey(spec)) {
      headSlot.cancel();
      around();
      return;
    }
    const asked = requests.head(spec);
    headSlot.track(asked).then(show, showRequestError);
    // Prefetch once the head is here (even if this view asked again meanwhile): the kernel answers
    // in order, so the head must not queue behind its own prefetch.
    asked.then(
      () => isSelected(spec.revision, spec.layer, spec.head) && around(),
      () => {},
    );
  }
  /** The focused token's weights to shade by: from the exact whole head if shown, else asked for. */
  function focusWeights(focus: number): Float32Array | null {
    const axis = store.get("shade_by") === "received" ? "query" : "key";
    const [layer, head, revision] = [store.get("layer"), store.get("head"), store.get("revision")];
    const data = shown?.data;
    if (shown?.exact && data?.kind === "pattern" && isSelected(data.revision, data.layer, data.head)) {
      const { n, values } = data;
      return axis === "query" ? values.slice(focus * n, focus * n + n) : Float32Array.from({ length: n }, (_, q) => values[q * n + focus]);
    }
    const line = requests.peekRow(revision, layer, head, focus, axis);
    if (line) return line.data.values;
    rowSlot.track(requests.row(revision, layer, head, focus, axis)).then(drawFocus, showRequestError);
    return null;
  }
  function drawFocus(): void {
    const focus = store.get("focus_token");
    const { scale, lut } = style();
    const shadeBy = store.get("shade_by");
    const attribution = store.get("attribution") ?? [];
    // Attribution comes as a trait (of the last or locked token); attention as the focus's row or column.
    const weights = shadeBy === "attribution" ? (attribution.length ? Float32Array.from(attribution) : null) : focus >= 0 ? focusWeights(focus) : null;
    tokens.update(focus, store.get("focus_locked"), shadeBy, weights, scale, lut, Boolean(shown?.data.signed), signedLut());
    heatmap.setFocusQuery(focus >= 0 ? focus : null);
  }
  function drawHeads(): void {
    const layer = store.get("layer");
    const head = store.get("head");
    const s = style();
    grid.update(thumbnails(), layer, head, store.get("head_classes"), s);
    overview.update(thumbnails(), layer, head, s);
    drawScores();
  }
  function drawScores(): void {
    const [layer, head, metric] = [store.get("layer"), store.get("head"), store.get("metric")];
    const progress = { scored: scoredLayers(), layers: store.get("n_layers"), heads: store.get("n_heads") };
    scores.update(store.get("score_table"), metric, layer, head, store.get("head_classes"), store.get("summary_rows"), progress);
  }
  // The score view rebuilds its lists on each update: after a key press, once per frame, after the heatmap.
  let scoresFrame: number | null = null;
  function drawScoresSoon(): void {
    scoresFrame ??= requestAnimationFrame(() => {
      scoresFrame = null;
      drawScores();
    });
  }
  function drawStyle(): void {
    const { scale, lut } = style();
    heatmap.setStyle(scale, lut, signedLut());
    scores.setSignedLut(signedLut());
    drawHeads();
    drawFocus();
  }
  function syncViewOptions(): void {
    const state = {
      weighting: store.get("weighting"),
      compare_prompt: store.get("compare_prompt"),
      answer: store.get("answer"),
      counterfactual: store.get("counterfactual"),
    };
    viewOptions.update(state);
    weighting.value = state.weighting;
    describeShown();
  }
  function onPromptResult(): void {
    localError = "";
    shown = null;
    prompt.setPrompt(store.get("prompt"), store.get("read_only_prompt") || offline, offline ? OFFLINE_REASON : undefined);
    prompt.setBusy(false);
    tokens.setTokens(store.get("tokens"));
    heatmap.reset(store.get("tokens").length, store.get("tokens"));
    describeShown();
    showError();
    drawHeads();
    drawFocus();
    requestHead(true);
  }
  // A click on a score cell sets layer and head one after the other: redraw and ask once, for both.
  let selectionQueued = false;
  function onSelection(): void {
    if (selectionQueued) return;
    selectionQueued = true;
    queueMicrotask(() => {
      selectionQueued = false;
      const [layer, head, s] = [store.get("layer"), store.get("head"), style()];
      grid.update(thumbnails(), layer, head, store.get("head_classes"), s);
      overview.update(thumbnails(), layer, head, s);
      requestHead(true);
      drawScoresSoon();
    });
  }
  function onKey(event: KeyboardEvent): void {
    const target = event.target as HTMLElement;
    if (target.closest("textarea, input, select")) return;
    if (event.key === "Escape") {
      store.unlock();
      return;
    }
    const move = ARROWS[event.key];
    if (!move) return;
    event.preventDefault();
    store.select(store.get("layer") + move[0], store.get("head") + move[1]);
  }
  const onCustom = (message: KernelMessage, buffers: DataView[]) => {
    exportBar.receive(message as Parameters<ExportBar["receive"]>[0], buffers); // heads go to the request layer
  };
  /** ipywidgets sets the model's comm_live to false when its kernel restarts or dies, and says so
   *  with "comm_live_update"; anywidget calls back with the view as `this`, whose model has the flag.
   *  "destroy" comes when the model is closed for good. */
  const showKernelGone = (gone: boolean) => {
    kernelGone.hidden = !gone;
    root.classList.toggle("aw-gone", gone);
    prompt.setBusy(false);
  };
  const onCommLive = function (this: { model?: { comm_live?: boolean } } | undefined) {
    showKernelGone(this?.model?.comm_live !== true);
  };
  const onDestroy = () => showKernelGone(true);
  // Heads that arrive for another reason (prefetched, pushed by the kernel) are drawn if selected.
  // A pushed tile (of the whole prompt, at the kernel's size) stands in until the exact one comes.
  const stopArrivals = requests.onArrival((entry) => {
    if (!("kind" in entry.data) || !isSelected(entry.data.revision, entry.data.layer, entry.data.head)) return;
    if (entry.key === headKey(selectedSpec())) show(entry as Cached<HeadData>);
    else if (!shown || !isSelected(shown.data.revision, shown.data.layer, shown.data.head)) show({ ...(entry as Cached<HeadData>), exact: false });
  });
  const stopErrors = requests.onError((message) => showRequestError(new Error(message)));
  const onPrompt = () => prompt.setPrompt(store.get("prompt"), store.get("read_only_prompt") || offline, offline ? OFFLINE_REASON : undefined);

  // The heatmap takes what the side panel leaves of the cell's width (or the whole width, with the
  // panel below it when they do not fit side by side); it depends on the width alone, so a longer
  // header never moves anything. Tiles are asked for at its size: prefetch waits for the first
  // layout, or it would fetch at the wrong size.
  const resizer = new ResizeObserver(() => {
    const layout = pictureLayout(main.clientWidth);
    main.classList.toggle("aw-stacked", layout.stacked);
    side.style.width = layout.side === null ? "" : `${layout.side}px`;
    heatmap.resize(layout.matrix);
    if (laidOut || !root.clientWidth) return;
    laidOut = true;
    requestHead(true);
  });
  resizer.observe(main);
  const unwatchTheme = watchTheme(drawStyle);
  const showSnapshot = hideSnapshot(store.get("snapshot_key") ?? "");
  root.addEventListener("keydown", onKey);

  const handlers: [string, () => void][] = [
    ["change:revision", onPromptResult],
    ["change:layer", onSelection],
    ["change:head", onSelection],
    ["change:metric", drawHeads],
    ["change:score_table", drawHeads],
    ["change:scored_layers", drawHeads],
    ["change:thumbnails", drawHeads],
    ["change:head_classes", drawHeads],
    ["change:summary_rows", drawHeads],
    ["change:color_scale", drawStyle],
    ["change:focus_token", drawFocus],
    ["change:focus_locked", drawFocus],
    ["change:attribution_query", describeShown],
    ["change:focus_locked", describeShown],
    ["change:shade_by", drawFocus],
    ["change:error", showError],
    ["change:attribution", drawFocus],
    ["change:weighting", syncViewOptions],
    ["change:compare_prompt", syncViewOptions],
    ["change:answer", syncViewOptions],
    ["change:counterfactual", syncViewOptions],
    ["change:prompt", onPrompt],
  ];
  for (const [event, handler] of handlers) model.on(event, handler);
  model.on("msg:custom", onCustom);
  // Not in AnyModel's event types: Backbone events of the widget model, passed through by anywidget.
  const lifecycle = model as unknown as { on(event: string, cb: () => void): void; off(event: string, cb: () => void): void };
  lifecycle.on("comm_live_update", onCommLive);
  lifecycle.on("destroy", onDestroy);
  drawStyle();
  syncViewOptions();
  onPromptResult();

  return () => {
    for (const [event, handler] of handlers) model.off(event, handler);
    model.off("msg:custom", onCustom);
    lifecycle.off("comm_live_update", onCommLive);
    lifecycle.off("destroy", onDestroy);
    unmountResearch();
    unmountWhy();
    stopArrivals();
    stopErrors();
    headSlot.cancel();
    rowSlot.cancel();
    resizer.disconnect();
    if (scoresFrame !== null) cancelAnimationFrame(scoresFrame);
    heatmap.dispose();
    tokens.dispose();
    unwatchTheme();
    showSnapshot();
    store.dispose();
  };
}

/** anywidget calls this once per model: its request layer is made in `initialize` (which must
 *  not wait on data) and shared by every view of that model. */
export default () => {
  let requests: RequestLayer | null = null;
  return {
    initialize({ model }: { model: AnyModel<ExplorerState> }) {
      requests = new RequestLayer(model);
      return () => {
        requests?.dispose();
        requests = null;
      };
    },
    render(props: RenderProps<ExplorerState>) {
      if (requests) return render(props, requests);
      const own = new RequestLayer(props.model); // a host that skipped initialize
      const cleanup = render(props, own);
      return () => {
        cleanup();
        own.dispose();
      };
    },
  };
};
