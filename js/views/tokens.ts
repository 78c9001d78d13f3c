/** The prompt as tokens: hover or click one to focus it; every token is shaded by the attention
 *  it receives from the focused token (or gives to it) in the selected head. */

import { element, viewRoot } from "../canvas";
import { applyScale, lutColor, textOn, type ColorScale, type Lut } from "../colors";
import { displayToken } from "../labels";

export type ShadeBy = "received" | "given";

export interface TokenCallbacks {
  hover(index: number | null): void;
  toggleLock(index: number): void;
  setShadeBy(mode: ShadeBy): void;
}

const SHADE_LABELS: Record<ShadeBy, string> = {
  received: "shade: attention from the focused token",
  given: "shade: attention to the focused token",
};

export class TokenStripView {
  readonly root = viewRoot("tokens", "aw-tokens");
  private readonly strip = element("div", "aw-token-strip");
  private readonly modeButton = element("button", "aw-mode");
  private readonly hint = element("span", "aw-hint");
  private spans: HTMLSpanElement[] = [];
  private mode: ShadeBy = "received";

  constructor(private readonly callbacks: TokenCallbacks) {
    this.modeButton.dataset.role = "shade-mode";
    this.modeButton.addEventListener("click", () =>
      this.callbacks.setShadeBy(this.mode === "received" ? "given" : "received"),
    );
    const header = element("div", "aw-token-header");
    header.append(this.modeButton, this.hint);
    this.root.append(header, this.strip);
  }

  setTokens(tokens: string[]): void {
    this.spans = tokens.map((token, i) => {
      const span = element("span", "aw-token", displayToken(token, 40));
      span.title = `${i}: ${JSON.stringify(token)}`;
      span.dataset.index = String(i);
      span.addEventListener("mouseenter", () => this.callbacks.hover(i));
      span.addEventListener("mouseleave", () => this.callbacks.hover(null));
      span.addEventListener("click", () => this.callbacks.toggleLock(i));
      return span;
    });
    this.strip.replaceChildren(...this.spans);
  }

  /** Redraw the focus, the lock and the shading by `weights` (one per token, or null: no shading). */
  update(focus: number, locked: boolean, mode: ShadeBy, weights: Float32Array | null, scale: ColorScale, lut: Lut): void {
    this.mode = mode;
    this.modeButton.textContent = SHADE_LABELS[mode];
    this.root.dataset.focus = String(focus);
    this.root.dataset.locked = String(locked);
    this.hint.textContent = locked
      ? `locked on token ${focus}: click a token or press Escape to unlock`
      : "hover a token to focus it, click to lock";
    const n = this.spans.length;
    const shades = focus >= 0 && weights && weights.length === n ? applyScale(weights, n, scale) : null;
    this.spans.forEach((span, i) => {
      span.classList.toggle("aw-focused", i === focus);
      span.classList.toggle("aw-locked", locked && i === focus);
      if (shades) {
        const rgb = lutColor(lut, shades[i]);
        span.style.background = `rgb(${rgb.join(", ")})`;
        span.style.color = textOn(rgb);
        span.dataset.weight = weights![i].toFixed(4);
      } else {
        span.style.background = "";
        span.style.color = "";
        delete span.dataset.weight;
      }
    });
  }
}
