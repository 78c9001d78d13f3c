/** Entry point: builds the views for one rendering of the explorer and links them. */

import type { AnyModel, RenderProps } from "@anywidget/types";
import { bytesOf } from "./buffers";
import { element } from "./canvas";
import { HeadGridView } from "./grid";
import { HeatmapView } from "./heatmap";
import { PatternClient } from "./patterns";
import { PromptView, TokenStripView } from "./prompt";
import { ScoreView } from "./scores";
import type { ExplorerState, KernelMessage, Pattern } from "./types";

function select(model: AnyModel<ExplorerState>, layer: number, head: number): void {
  model.set("layer", layer);
  model.set("head", head);
  model.save_changes();
}

function render({ model, el }: RenderProps<ExplorerState>): () => void {
  const root = element("div", "attn-widget");
  const errorBar = element("div", "aw-error");
  errorBar.dataset.role = "error";
  let localError = "";

  const tokenStrip = new TokenStripView((index) => heatmap.highlightQuery(index));
  const heatmap = new HeatmapView((query) => tokenStrip.highlight(query));
  const prompt = new PromptView((text) => {
    localError = "";
    model.set("prompt", text);
    model.save_changes();
  });
  const grid = new HeadGridView(
    (layer) => select(model, layer, model.get("head")),
    (head) => select(model, model.get("layer"), head),
  );
  const scores = new ScoreView(
    (metric) => {
      model.set("metric", metric);
      model.save_changes();
    },
    (layer, head) => select(model, layer, head),
  );
  const patterns = new PatternClient(
    model,
    (pattern: Pattern) => heatmap.setPattern(pattern, model.get("tokens")),
    (message) => {
      localError = message;
      showError();
    },
  );

  const side = element("div", "aw-side");
  side.append(grid.root, scores.root);
  const main = element("div", "aw-main");
  main.append(heatmap.root, side);
  root.append(prompt.root, errorBar, tokenStrip.root, main);
  el.append(root);

  function showError(): void {
    const message = model.get("error") || localError;
    errorBar.textContent = message;
    errorBar.hidden = !message;
    prompt.setBusy(false);
  }
  function requestPattern(): void {
    const layer = model.get("layer");
    const head = model.get("head");
    heatmap.showPending(layer, head);
    patterns.request(model.get("revision"), layer, head);
  }
  function updateSelectionViews(): void {
    const layer = model.get("layer");
    const head = model.get("head");
    grid.update(bytesOf(model.get("thumbnails")), model.get("thumbnail_side"), model.get("n_layers"), model.get("n_heads"), layer, head);
    const metric = model.get("metric");
    scores.update(model.get("score_table")[metric], metric, layer, head);
  }
  function onPromptResult(): void {
    localError = "";
    prompt.setPrompt(model.get("prompt"), model.get("read_only_prompt"));
    prompt.setBusy(false);
    tokenStrip.setTokens(model.get("tokens"));
    showError();
    updateSelectionViews();
    requestPattern();
  }
  function onSelection(): void {
    updateSelectionViews();
    requestPattern();
  }
  function onCustom(message: KernelMessage, buffers: DataView[]): void {
    patterns.receive(message, buffers);
  }
  const onPrompt = () => prompt.setPrompt(model.get("prompt"), model.get("read_only_prompt"));

  model.on("change:revision", onPromptResult);
  model.on("change:layer", onSelection);
  model.on("change:head", onSelection);
  model.on("change:metric", updateSelectionViews);
  model.on("change:score_table", updateSelectionViews);
  model.on("change:error", showError);
  model.on("change:prompt", onPrompt);
  model.on("msg:custom", onCustom);
  onPromptResult();

  return () => {
    model.off("change:revision", onPromptResult);
    model.off("change:layer", onSelection);
    model.off("change:head", onSelection);
    model.off("change:metric", updateSelectionViews);
    model.off("change:score_table", updateSelectionViews);
    model.off("change:error", showError);
    model.off("change:prompt", onPrompt);
    model.off("msg:custom", onCustom);
  };
}

export default { render };
