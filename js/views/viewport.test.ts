import { assertEqual, type Tests } from "../testing";
import { MIN_SPAN, Viewport } from "./viewport";

export const tests: Tests = {
  "zoom keeps the point under the cursor and stops at the edges"() {
    const v = new Viewport(1000);
    v.zoom(0.5, 0, 0);
    assertEqual(v.window, { q0: 0, q1: 500, k0: 0, k1: 500 });
    v.zoom(0.5, 1, 1);
    assertEqual(v.window, { q0: 250, q1: 500, k0: 250, k1: 500 });
    v.zoom(100);
    assertEqual(v.window, { q0: 0, q1: 1000, k0: 0, k1: 1000 });
  },
  "zoom in stops at a few tokens, pan stays inside the prompt"() {
    const v = new Viewport(100);
    for (let i = 0; i < 50; i++) v.zoom(0.5);
    assertEqual(v.span, MIN_SPAN);
    v.pan(1000, -1000);
    assertEqual(v.start, { q: 100 - MIN_SPAN, k: 0 });
  },
  "centring on a far token zooms in around the diagonal, a short prompt stays whole"() {
    const v = new Viewport(3000);
    v.centerOn(2000, 256);
    assertEqual(v.window, { q0: 1872, q1: 2128, k0: 1872, k1: 2128 });
    v.centerOn(2990, 256);
    assertEqual(v.window, { q0: 2744, q1: 3000, k0: 2744, k1: 3000 });
    const short = new Viewport(15);
    short.centerOn(10, 256);
    assertEqual(short.window, { q0: 0, q1: 15, k0: 0, k1: 15 });
  },
};
