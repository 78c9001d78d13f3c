/** Canvas and DOM helpers: crisp cells at any device pixel ratio, text never parsed as HTML. */

/** Size a canvas to `width` x `height` CSS pixels with a backing store at the device's ratio. */
export function sizeCanvas(canvas: HTMLCanvasElement, width: number, height: number): CanvasRenderingContext2D {
  const ratio = window.devicePixelRatio || 1;
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d")!;
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return ctx;
}

/** Draw ImageData (one pixel per cell) stretched over a rectangle, without smoothing. */
export function drawCells(ctx: CanvasRenderingContext2D, image: ImageData, x: number, y: number, w: number, h: number): void {
  const scratch = document.createElement("canvas");
  scratch.width = image.width;
  scratch.height = image.height;
  scratch.getContext("2d")!.putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(scratch, x, y, w, h);
}

/** Cell index under an offset along an extent split into `count` cells, or null outside. */
export function cellAt(offset: number, extent: number, count: number): number | null {
  const i = Math.floor((offset / extent) * count);
  return offset >= 0 && i >= 0 && i < count ? i : null;
}

export function element<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text; // tokens are text, never HTML
  return node;
}

/** A view's root: focusable (for the keyboard), named by a stable data-view attribute. */
export function viewRoot(name: string, className: string): HTMLDivElement {
  const root = element("div", `aw-view ${className}`);
  root.dataset.view = name;
  root.tabIndex = 0;
  return root;
}
