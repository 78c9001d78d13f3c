/** The prompt as tokens: hover or click one to focus it; every token is shaded by the attention
 *  it receives from the focused token (or gives to it) in the selected head. A long prompt shows a
 *  window of STRIP_WINDOW tokens that follows the focus, with a minimap of the whole prompt (shaded
 *  by the same weights, max-pooled) and a position box to jump anywhere. */

import { element, sizeCanvas, viewRoot } from "./canvas";
import { applyScale, lutColor, textOn, type ColorScale, type Lut } from "../colors/colors";
import { RED_BLUE, centredByMax, signedShades } from "../colors/diverging";
import { displayToken } from "./labels";
import { ColorBar } from "./colorbar";
import { COLORBAR_UNITS } from "../contract.gen";
import { STRIP_WINDOW, follow, maxPool, parseTokenIndex, tokenAtFraction, windowAround, type Span } from "./token-window";

export type ShadeBy = "received" | "given" | "attribution";

export interface TokenCallbacks {
  hover(index: number | null): void;
  toggleLock(index: number): void;
  setShadeBy(shadeBy: ShadeBy): void;
  /** Go to a token anywhere in the prompt: focus it and bring it into the other views. */
  jump(index: number): void;
}

const SHADE_LABELS: Record<ShadeBy, string> = {
  received: "shade: attention from the focused token",
  given: "shade: attention to the focused token",
  attribution: "shade: logit attribution through this head",
};
const NEXT_SHADE_BY: Record<ShadeBy, ShadeBy> = { received: "given", given: "attribution", attribution: "received" };

const MINIMAP_HEIGHT_PX = 12;
const ROW_GAP_PX = 2; // .aw-token-strip's gap
const MINIMAP_FALLBACK_WIDTH_PX = 600; // before the strip is laid out

/** What the last update drew with, to redraw when the window moves. */
interface Shading {
  focus: number;
  locked: boolean;
  shadeBy: ShadeBy;
  weights: Float32Array | null;
  scale: ColorScale;
  lut: Lut;
  /** Signed weights (a change between two prompts): diverging colours. */
  signed: boolean;
  signedLut: Lut;
}

export class TokenStripView {
  readonly root = viewRoot("tokens", "aw-tokens");
  private readonly strip = element("div", "aw-token-strip");
  private readonly shadeByButton = element("button", "aw-mode");
  private readonly hint = element("span", "aw-hint");
  private readonly nav = element("div", "aw-token-nav");
  private readonly range = element("span", "aw-hint");
  private readonly jumpBox = element("input", "aw-jump");
  private readonly minimap = element("canvas", "aw-token-minimap");
  private readonly minimapLabel = element("div", "aw-hint", "whole prompt (click or drag to show another part):");
  readonly colorBar = new ColorBar();
  private attributionAt: number | null = null;
  private tokens: string[] = [];
  private shown: Span = { start: 0, end: 0 };
  private spans: HTMLSpanElement[] = []; // the shown tokens, spans[i] is token shown.start + i
  private shadeBy: ShadeBy = "received";
  private last: Shading | null = null;
  private scrub = false;
  private jumped: number | null = null; // the typed position last jumped to (Enter, then change on blur)

  constructor(private readonly callbacks: TokenCallbacks) {
    this.shadeByButton.dataset.role = "shade-mode";
    this.shadeByButton.addEventListener("click", () => this.callbacks.setShadeBy(NEXT_SHADE_BY[this.shadeBy]));
    this.jumpBox.type = "number";
    this.jumpBox.min = "0";
    this.jumpBox.placeholder = "token #";
    this.jumpBox.dataset.role = "token-jump";
    this.jumpBox.setAttribute("aria-label", "go to token");
    this.jumpBox.addEventListener("change", () => this.jumpToTyped());
    this.jumpBox.addEventListener("keydown", (e) => {
      e.stopPropagation(); // digits and Enter are for the box, not the notebook's shortcuts
      if (e.key !== "Enter") return;
      e.preventDefault();
      this.jumpToTyped();
    });
    this.minimap.dataset.role = "token-minimap";
    this.minimap.title = "the whole prompt: click or drag to show another part";
    this.minimap.addEventListener("mousedown", (e) => {
      this.scrub = true;
      this.scrubTo(e);
    });
    this.minimap.addEventListener("mousemove", (e) => {
      if (this.scrub && e.buttons === 1) this.scrubTo(e);
    });
    window.addEventListener("mouseup", this.endScrub);
    this.nav.append(this.range, " go to ", this.jumpBox);
    const header = element("div", "aw-token-header");
    this.minimap.setAttribute("aria-label", "whole prompt: click or drag to show another part");
    header.append(this.shadeByButton, this.hint, this.colorBar.root);
    const overviewRow = element("div", "aw-token-overview");
    overviewRow.append(this.minimapLabel, this.nav);
    this.root.append(header, overviewRow, this.minimap, this.strip);
    this.showNavigation(false);
  }

  setTokens(tokens: string[]): void {
    this.tokens = tokens;
    this.jumpBox.max = String(Math.max(tokens.length - 1, 0));
    this.jumpBox.value = "";
    this.jumped = null;
    this.showNavigation(tokens.length > STRIP_WINDOW);
    this.show(windowAround(tokens.length, 0));
  }

  /** Show the part of the prompt around `index` without changing the focus (minimap, tests). */
  showAround(index: number): void {
    this.show(windowAround(this.tokens.length, index));
    if (this.last) this.redraw(this.last);
  }

  /** Redraw the focus, the lock and the shading by `weights` (one per token, or null: no shading). */
  update(
    focus: number,
    locked: boolean,
    shadeBy: ShadeBy,
    weights: Float32Array | null,
    scale: ColorScale,
    lut: Lut,
    signed = false,
    signedLut: Lut = RED_BLUE,
  ): void {
    const moved = focus !== this.last?.focus;
    const next = follow(this.shown, this.tokens.length, focus);
    const rebuilt = next.start !== this.shown.start || next.end !== this.shown.end;
    if (rebuilt) this.show(next);
    this.redraw({ focus, locked, shadeBy, weights, scale, lut, signed, signedLut });
    if (moved && focus >= 0) this.reveal(focus, rebuilt || this.jumped === focus);
  }

  dispose(): void {
    window.removeEventListener("mouseup", this.endScrub);
  }

  private jumpToTyped(): void {
    const index = parseTokenIndex(this.jumpBox.value, this.tokens.length);
    this.jumpBox.classList.toggle("aw-invalid", index === null);
    if (index !== null && index !== this.jumped) this.callbacks.jump(index);
    this.jumped = index;
  }

  /** The token that logit attribution is computed at (the last one, or the locked one). */
  setAttributionAt(index: number | null): void {
    this.attributionAt = index;
    if (this.last) this.redraw(this.last);
  }

  private showNavigation(on: boolean): void {
    this.nav.hidden = !on;
    this.minimap.hidden = !on;
    this.minimapLabel.hidden = !on;
  }

  /** Build the token nodes of `span` (at most STRIP_WINDOW of them). */
  private show(span: Span): void {
    this.shown = span;
    this.root.dataset.window = `${span.start}:${span.end}`;
    this.range.textContent = `tokens ${span.start}\u2013${span.end - 1} of ${this.tokens.length} \u00b7`;
    this.spans = [];
    for (let i = span.start; i < span.end; i++) {
      const token = this.tokens[i];
      const node = element("span", "aw-token", displayToken(token, 40));
      node.title = `${i}: ${JSON.stringify(token)}`;
      node.dataset.index = String(i);
      node.addEventListener("mouseenter", () => this.callbacks.hover(i));
      node.addEventListener("mouseleave", () => this.callbacks.hover(null));
      node.addEventListener("click", () => this.callbacks.toggleLock(i));
      this.spans.push(node);
    }
    this.strip.replaceChildren(...this.spans);
  }

  private redraw(s: Shading): void {
    this.last = s;
    const { focus, locked, shadeBy, weights } = s;
    this.shadeBy = shadeBy;
    this.shadeByButton.textContent = SHADE_LABELS[shadeBy];
    this.root.dataset.focus = String(focus);
    this.root.dataset.locked = String(locked);
    const at = this.attributionAt;
    this.hint.textContent =
      shadeBy === "attribution"
        ? at === null
          ? "give an answer (Analysis) to see attribution"
          : `attribution at token ${at} ${JSON.stringify(this.tokens[at] ?? "")}${locked ? "" : " (the last; click a token to lock another)"}`
        : locked
          ? `locked on token ${focus}: click a token or press Escape to unlock`
          : "hover a token to focus it, click to lock";
    const n = this.tokens.length;
    // Attribution is of the attributed query (the last or locked token), whatever is hovered.
    const shown = weights && weights.length === n && (focus >= 0 || shadeBy === "attribution");
    const shades = !shown
      ? null
      : shadeBy === "attribution"
        ? centredByMax(weights)
        : s.signed
          ? signedShades(weights, n, s.scale)
          : applyScale(weights, n, s.scale);
    const palette = paletteOf(s);
    this.drawColorBar(s, weights, Boolean(shades));
    const what =
      shadeBy === "attribution" ? "attribution (logits)" : shadeBy === "received" ? "attention from the focused token" : "attention to the focused token";
    this.spans.forEach((span, j) => {
      const i = this.shown.start + j;
      span.classList.toggle("aw-focused", i === focus);
      span.classList.toggle("aw-locked", locked && i === focus);
      if (shades) {
        const rgb = lutColor(palette, shades[i]);
        span.style.background = `rgb(${rgb.join(", ")})`;
        span.style.color = textOn(rgb);
        span.dataset.weight = weights![i].toFixed(4);
        span.title = `${i}: ${JSON.stringify(this.tokens[i])} \u00b7 ${what}: ${weights![i].toFixed(4)}`;
      } else {
        span.style.background = "";
        span.style.color = "";
        delete span.dataset.weight;
        span.title = `${i}: ${JSON.stringify(this.tokens[i])}`;
      }
    });
    if (!this.minimap.hidden) this.drawMinimap(shades, s);
  }

  /** The shading's colour bar: attention from 0 to 1 on the heatmap's scale, attribution and
   *  differences diverging around zero; hidden when nothing is shaded. */
  private drawColorBar(s: Shading, weights: Float32Array | null, shaded: boolean): void {
    // Kept in the layout while nothing is shaded: showing it must not move the tokens under the pointer.
    this.colorBar.root.style.visibility = shaded && weights ? "" : "hidden";
    if (!shaded || !weights) return;
    if (s.shadeBy === "attribution") {
      let max = 0;
      for (const v of weights) max = Math.max(max, Math.abs(v));
      this.colorBar.update({ lut: s.signedLut, lo: -max, hi: max, signed: true, scale: "centred on zero", units: COLORBAR_UNITS.attribution });
    } else if (s.signed) {
      this.colorBar.update({ lut: s.signedLut, lo: -1, hi: 1, signed: true, scale: `${s.scale}, centred on zero`, units: COLORBAR_UNITS.difference });
    } else {
      this.colorBar.update({
        lut: s.lut,
        lo: s.scale === "log" ? 1e-4 : 0,
        hi: 1,
        scale: s.scale === "row" ? "per row" : s.scale,
        units: COLORBAR_UNITS.attention,
      });
    }
  }

  /** The whole prompt as a bar: the shading max-pooled per pixel, the shown window, the focus. */
  private drawMinimap(shades: Float32Array | null, s: Shading): void {
    const n = this.tokens.length;
    const width = this.strip.clientWidth || MINIMAP_FALLBACK_WIDTH_PX;
    const ctx = sizeCanvas(this.minimap, width, MINIMAP_HEIGHT_PX);
    ctx.fillStyle = "rgba(128, 128, 128, 0.18)";
    ctx.fillRect(0, 0, width, MINIMAP_HEIGHT_PX);
    if (shades) {
      maxPool(shades, width).forEach((v, x) => {
        ctx.fillStyle = `rgb(${lutColor(paletteOf(s), v).join(", ")})`;
        ctx.fillRect(x, 0, 1, MINIMAP_HEIGHT_PX);
      });
    }
    const x = (i: number) => (i / Math.max(n, 1)) * width;
    ctx.strokeStyle = "rgba(25, 118, 210, 0.9)";
    ctx.lineWidth = 2;
    ctx.strokeRect(x(this.shown.start) + 1, 1, Math.max(x(this.shown.end) - x(this.shown.start) - 2, 2), MINIMAP_HEIGHT_PX - 2);
    if (s.focus >= 0) {
      ctx.fillStyle = "rgb(230, 120, 0)";
      ctx.fillRect(Math.min(x(s.focus), width - 2), 0, 2, MINIMAP_HEIGHT_PX);
    }
  }

  private scrubTo(event: MouseEvent): void {
    const width = this.minimap.clientWidth || 1;
    this.showAround(tokenAtFraction(event.offsetX / width, this.tokens.length));
  }

  private readonly endScrub = () => {
    this.scrub = false;
  };

  /** Scroll the strip to centre the focused token: always after a jump or a new window, else only
   *  when it is wholly out of sight (so a token under the pointer never moves). */
  private reveal(index: number, centre: boolean): void {
    const node = this.spans[index - this.shown.start];
    if (!node) return;
    const top = node.offsetTop;
    const bottom = top + node.offsetHeight;
    if (centre || bottom <= this.strip.scrollTop || top >= this.strip.scrollTop + this.strip.clientHeight) {
      // Rows have one pitch (CSS: 18 px tokens 2 px apart): scroll to a row's top, the token's row
      // in the middle, so no row is ever cut in half.
      const pitch = node.offsetHeight + ROW_GAP_PX;
      const rows = Math.max(1, Math.round((this.strip.clientHeight + ROW_GAP_PX) / pitch));
      this.strip.scrollTop = Math.max(0, top - Math.floor(rows / 2) * pitch);
    }
  }
}

/** Diverging colours for signed shading (attribution, a change between prompts), else the pattern's. */
function paletteOf(s: Shading): Lut {
  return s.shadeBy === "attribution" || s.signed ? s.signedLut : s.lut;
}
