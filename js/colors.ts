/** Colour lookup tables: a weight in [0, 1] becomes one of 256 RGBA colours. */

export type Lut = Uint8ClampedArray; // 256 * 4

function ramp(stops: [number, number, number][]): Lut {
  const lut = new Uint8ClampedArray(256 * 4);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (stops.length - 1);
    const lo = Math.min(Math.floor(t), stops.length - 2);
    const f = t - lo;
    for (let c = 0; c < 3; c++) lut[4 * i + c] = stops[lo][c] + (stops[lo + 1][c] - stops[lo][c]) * f;
    lut[4 * i + 3] = 255;
  }
  return lut;
}

/** White (no attention) to deep blue (all of it): the reference notebook's "Blues". */
export const BLUES: Lut = ramp([
  [247, 251, 255],
  [198, 219, 239],
  [107, 174, 214],
  [33, 113, 181],
  [8, 48, 107],
]);

/** Viridis, for score views, where both ends carry meaning. */
export const VIRIDIS: Lut = ramp([
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
]);

export function lutIndex(value: number): number {
  if (!(value > 0)) return 0;
  return value >= 1 ? 255 : Math.round(value * 255);
}

export function cssColor(lut: Lut, value: number): string {
  const i = 4 * lutIndex(value);
  return `rgb(${lut[i]}, ${lut[i + 1]}, ${lut[i + 2]})`;
}

/** Paint an n x m grid of values into ImageData, one pixel per cell. */
export function paintCells(values: ArrayLike<number>, rows: number, cols: number, lut: Lut, scale = (v: number) => v): ImageData {
  const image = new ImageData(cols, rows);
  const px = image.data;
  for (let i = 0; i < rows * cols; i++) {
    const j = 4 * lutIndex(scale(values[i]));
    px[4 * i] = lut[j];
    px[4 * i + 1] = lut[j + 1];
    px[4 * i + 2] = lut[j + 2];
    px[4 * i + 3] = 255;
  }
  return image;
}
