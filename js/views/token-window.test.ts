import { assertEqual, type Tests } from "../testing";
import { STRIP_WINDOW, follow, maxPool, parseTokenIndex, tokenAtFraction, windowAround } from "./token-window";

export const tests: Tests = {
  "a short prompt shows every token, a long one a clamped window around the centre"() {
    assertEqual(windowAround(10, 7), { start: 0, end: 10 });
    assertEqual(windowAround(0, 0), { start: 0, end: 0 });
    assertEqual(windowAround(32768, 20000, 300), { start: 19850, end: 20150 });
    assertEqual(windowAround(32768, 3, 300), { start: 0, end: 300 });
    assertEqual(windowAround(32768, 32767, 300), { start: 32468, end: 32768 });
    assertEqual(windowAround(STRIP_WINDOW + 1, 0).end - windowAround(STRIP_WINDOW + 1, 0).start, STRIP_WINDOW);
  },
  "the window stays while it holds the focus and recentres when the focus leaves it"() {
    const shown = { start: 100, end: 400 };
    assertEqual(follow(shown, 5000, 399, 300), shown); // the token under the pointer never moves
    assertEqual(follow(shown, 5000, 100, 300), shown);
    assertEqual(follow(shown, 5000, -1, 300), shown); // no focus: keep what is shown
    assertEqual(follow(shown, 5000, 400, 300), { start: 250, end: 550 });
    assertEqual(follow(shown, 5000, 4990, 300), { start: 4700, end: 5000 });
    assertEqual(follow(shown, 200, 50, 300), { start: 0, end: 200 }); // a shorter new prompt
  },
  "the minimap keeps each bin's strongest weight"() {
    const values = new Float32Array(1000);
    values[0] = 0.25;
    values[999] = 1;
    values[501] = 0.5;
    const pooled = maxPool(values, 10);
    assertEqual(Array.from(pooled), [0.25, 0, 0, 0, 0, 0.5, 0, 0, 0, 1]);
    assertEqual(Array.from(maxPool(Float32Array.from([0.25, 0.75, 0.5]), 6)), [0.25, 0.25, 0.75, 0.75, 0.5, 0.5]);
    assertEqual(Array.from(maxPool([], 3)), [0, 0, 0]);
  },
  "positions on the minimap and typed positions map to tokens inside the prompt"() {
    assertEqual(tokenAtFraction(0, 3000), 0);
    assertEqual(tokenAtFraction(0.5, 3000), 1500);
    assertEqual(tokenAtFraction(1, 3000), 2999);
    assertEqual(tokenAtFraction(-0.2, 3000), 0);
    assertEqual(parseTokenIndex(" 2999 ", 3000), 2999);
    assertEqual(parseTokenIndex("3000", 3000), null);
    assertEqual(parseTokenIndex("-1", 3000), null);
    assertEqual(parseTokenIndex("1.5", 3000), null);
    assertEqual(parseTokenIndex("", 3000), null);
  },
};
