import { displayToken, headLabel, labelIndices } from "./labels";
import { assert, assertEqual, type Tests } from "../testing";

export const tests: Tests = {
  "every token is labelled when there is room"() {
    assertEqual(labelIndices(10, 400, 12), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  },
  "labels thin out so they never overlap"() {
    for (const n of [50, 333, 1024, 4096]) {
      const shown = labelIndices(n, 400, 12);
      const gapPx = ((shown[1] - shown[0]) * 400) / n;
      assert(gapPx >= 12, `n=${n}: labels ${gapPx}px apart`);
      assert(shown.length >= Math.floor(400 / 12 / 2), `n=${n}: only ${shown.length} labels`);
      assertEqual(shown[0], 0);
      assert(shown[shown.length - 1] < n);
    }
  },
  "a head is written L<layer>H<head>, as the kernel writes it"() {
    assertEqual(headLabel(1, 2), "L1H2");
    assertEqual(headLabel(11, 0), "L11H0");
  },
  "no tokens, no labels"() {
    assertEqual(labelIndices(0, 400, 12), []);
  },
  "tokens show whitespace and are cut to length"() {
    assertEqual(displayToken("a\nb\tc"), "a\u23ceb\u21e5c");
    assertEqual(displayToken("abcdefghijklmnopqrstuvwxyz", 5), "abcd\u2026");
  },
};
