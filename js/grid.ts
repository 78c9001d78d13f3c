/** Thumbnails of every head in the selected layer; click one to select it. */

import { BLUES, paintCells } from "./colors";
import { drawCells, element, sizeCanvas } from "./canvas";

const THUMB_PX = 72;

export class HeadGridView {
  readonly root = element("div", "aw-grid");
  private readonly layerSelect = element("select", "aw-select");
  private readonly cells = element("div", "aw-grid-cells");

  constructor(
    private readonly onSelectLayer: (layer: number) => void,
    private readonly onSelectHead: (head: number) => void,
  ) {
    this.root.dataset.view = "grid";
    this.layerSelect.setAttribute("aria-label", "layer");
    this.layerSelect.addEventListener("change", () => this.onSelectLayer(Number(this.layerSelect.value)));
    const header = element("div", "aw-title");
    header.append("Heads of layer ", this.layerSelect);
    this.root.append(header, this.cells);
  }

  /** thumbnails: uint8 [layers, heads, side, side]. */
  update(thumbnails: Uint8Array, side: number, nLayers: number, nHeads: number, layer: number, head: number): void {
    if (this.layerSelect.options.length !== nLayers) {
      this.layerSelect.replaceChildren(...Array.from({ length: nLayers }, (_, l) => new Option(String(l), String(l))));
    }
    this.layerSelect.value = String(layer);
    this.cells.replaceChildren();
    const size = side * side;
    for (let h = 0; h < nHeads; h++) {
      const cell = element("button", h === head ? "aw-thumb aw-selected" : "aw-thumb");
      cell.dataset.head = String(h);
      cell.title = `Layer ${layer}, head ${h}`;
      const canvas = element("canvas");
      const ctx = sizeCanvas(canvas, THUMB_PX, THUMB_PX);
      const start = (layer * nHeads + h) * size;
      if (side > 0 && thumbnails.length >= start + size) {
        const values = Array.from(thumbnails.subarray(start, start + size), (b) => b / 255);
        drawCells(ctx, paintCells(values, side, side, BLUES), 0, 0, THUMB_PX, THUMB_PX);
      }
      cell.append(canvas, element("span", "aw-thumb-label", `H${h}`));
      cell.addEventListener("click", () => this.onSelectHead(h));
      this.cells.append(cell);
    }
  }
}
