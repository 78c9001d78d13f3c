/** A colour bar: the ramp a map is drawn with, its range at both ends (and zero in the middle of a
 *  diverging one), the scale and the units. Every map has one (data-role="colorbar"). */

import { type Lut, lutColor } from "../colors/colors";
import { element, sizeCanvas } from "./canvas";

export interface ColorBarSpec {
  lut: Lut;
  lo: number;
  hi: number;
  /** How values map to colours: "linear", "log (1e-4 to 1)", "per row", "centred on zero"... */
  scale: string;
  units: string;
  /** Signed: diverging, zero in the middle. */
  signed?: boolean;
}

const BAR_WIDTH_PX = 120;
const BAR_HEIGHT_PX = 10;

/** A compact number for the bar's ends: 3 significant digits, no long tails. */
export function formatTick(value: number): string {
  if (!Number.isFinite(value)) return "\u2013";
  if (value === 0) return "0";
  const abs = Math.abs(value);
  if (abs >= 1e4 || abs < 1e-3) return value.toExponential(1).replace("e+", "e");
  return String(Number(value.toPrecision(3)));
}

export class ColorBar {
  readonly root = element("div", "aw-colorbar");
  private readonly lo = element("span", "aw-tick");
  private readonly mid = element("span", "aw-tick");
  private readonly hi = element("span", "aw-tick");
  private readonly canvas = element("canvas", "aw-colorbar-ramp");
  private readonly caption = element("span", "aw-colorbar-caption");
  private spec: ColorBarSpec | null = null;

  constructor() {
    this.root.dataset.role = "colorbar";
    this.root.setAttribute("role", "img");
    const ramp = element("span", "aw-colorbar-bar");
    ramp.append(this.canvas);
    const ticks = element("span", "aw-colorbar-ticks");
    ticks.append(this.lo, this.mid, this.hi);
    const scale = element("span", "aw-colorbar-scale");
    scale.append(ramp, ticks);
    this.root.append(scale, this.caption);
  }

  update(spec: ColorBarSpec): void {
    const same = this.spec && Object.entries(spec).every(([k, v]) => this.spec?.[k as keyof ColorBarSpec] === v);
    if (same) return;
    this.spec = spec;
    const ctx = sizeCanvas(this.canvas, BAR_WIDTH_PX, BAR_HEIGHT_PX);
    for (let x = 0; x < BAR_WIDTH_PX; x++) {
      ctx.fillStyle = `rgb(${lutColor(spec.lut, x / (BAR_WIDTH_PX - 1)).join(", ")})`;
      ctx.fillRect(x, 0, 1, BAR_HEIGHT_PX);
    }
    this.lo.textContent = formatTick(spec.lo);
    this.hi.textContent = formatTick(spec.hi);
    this.mid.textContent = spec.signed ? "0" : "";
    this.caption.textContent = `${spec.units} \u00b7 ${spec.scale}`;
    Object.assign(this.root.dataset, { lo: String(spec.lo), hi: String(spec.hi), scale: spec.scale, units: spec.units, signed: String(Boolean(spec.signed)) });
    this.root.setAttribute("aria-label", `colour bar: ${spec.units}, ${spec.scale}, from ${formatTick(spec.lo)} to ${formatTick(spec.hi)}`);
  }
}
