import { BLUES, LOG_FLOOR, VIRIDIS, applyScale, lutColor, lutIndex, paintCells, ramp, textOn } from "./colors";
import { assertClose, assertEqual, type Tests } from "../testing";

export const tests: Tests = {
  "lookup tables run from the first stop to the last"() {
    assertEqual(lutColor(BLUES, 0), [247, 251, 255]);
    assertEqual(lutColor(BLUES, 1), [8, 48, 107]);
    assertEqual(lutColor(VIRIDIS, 1), [253, 231, 37]);
    const twoStops = ramp([
      [0, 0, 0],
      [255, 255, 255],
    ]);
    assertEqual(lutColor(twoStops, 0.5), [128, 128, 128]);
  },
  "lookup index clamps and rounds"() {
    assertEqual([-1, 0, NaN, 0.5, 1, 2].map(lutIndex), [0, 0, 0, 128, 255, 255]);
  },
  "linear scale keeps weights"() {
    const values = Float32Array.from([0, 0.25, 1, 0.5]);
    assertClose(applyScale(values, 2, "linear"), values, 0);
  },
  "log scale spreads 1e-4..1 over 0..1"() {
    const got = applyScale(Float32Array.from([1, 0.01, LOG_FLOOR, 0, 1e-6]), 5, "log");
    assertClose(got, [1, 0.5, 0, 0, 0], 1e-6);
  },
  "per-row scale divides each row by its max"() {
    const got = applyScale(Float32Array.from([0.2, 0.1, 0.0, 0.0, 0.5, 0.25]), 3, "row");
    assertClose(got, [1, 0.5, 0, 0, 1, 0.5], 1e-6);
    assertClose(applyScale(new Float32Array(3), 3, "row"), [0, 0, 0], 0); // an all-zero row stays zero
  },
  "cells are painted one pixel each from the table"() {
    const image = paintCells([0, 1, 0.5, 0], 2, 2, BLUES);
    assertEqual(image.width, 2);
    assertEqual(Array.from(image.data.slice(4, 8)), [...lutColor(BLUES, 1), 255]);
    assertEqual(Array.from(image.data.slice(8, 12)), [...lutColor(BLUES, 0.5), 255]);
  },
  "text stays readable on its background"() {
    assertEqual(textOn([247, 251, 255]), "#111");
    assertEqual(textOn([8, 48, 107]), "#fff");
  },
};
