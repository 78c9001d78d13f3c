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

/** A canvas's context at `width` x `height` CSS pixels, cleared; resized (which reallocates it) only when its size changed. */
export function reuseCanvas(canvas: HTMLCanvasElement, width: number, height: number): CanvasRenderingContext2D {
  const ratio = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio) || canvas.style.width !== `${width}px`) {
    return sizeCanvas(canvas, width, height);
  }
  const ctx = canvas.getContext("2d")!;
  ctx.clearRect(0, 0, width, height);
  return ctx;
}

/** Draw ImageData (one pixel per cell) stretched over a rectangle, without smoothing. */
let scratch: HTMLCanvasElement | null = null; // reused: drawImage copies it at once

export function drawCells(ctx: CanvasRenderingContext2D, image: ImageData, x: number, y: number, w: number, h: number): void {
  scratch ??= document.createElement("canvas");
  if (scratch.width !== image.width || scratch.height !== image.height) {
    scratch.width = image.width;
    scratch.height = image.height;
  }
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

/** A cell whose data is not in yet (a layer still being scored): grey with diagonal hatching. */
export function drawPending(ctx: CanvasRenderingContext2D, x: number, y: number, w: number, h: number): void {
  ctx.save();
  ctx.fillStyle = PENDING_FILL;
  ctx.fillRect(x, y, w, h);
  ctx.beginPath();
  ctx.rect(x, y, w, h);
  ctx.clip();
  ctx.strokeStyle = PENDING_HATCH;
  ctx.lineWidth = 1;
  const step = 6;
  ctx.beginPath();
  for (let d = step; d < w + h; d += step) {
    ctx.moveTo(x + d, y);
    ctx.lineTo(x + d - h, y + h);
  }
  ctx.stroke();
  ctx.restore();
}

/** Pending cells' colours: a grey no colour ramp of ours contains. */
export const PENDING_FILL = "rgb(200, 200, 200)";
const PENDING_HATCH = "rgb(150, 150, 150)";

/** The one colour a selected head is marked with, in every view (the keyboard focus ring is a
 *  dashed outline in the host's accent colour, so the two never look alike). */
export const SELECTED_COLOR = "#e0301e";
