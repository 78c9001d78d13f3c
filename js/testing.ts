/** A tiny test kit for the JS unit tests, which run in a real Chromium (tests/browser/test_js_units.py). */

export type Tests = Record<string, () => void | Promise<void>>;

export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new Error(message);
}

export function assertEqual<T>(actual: T, expected: T, message = ""): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${message} expected ${e}, got ${a}`);
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, message = ""): void {
  assertEqual(actual.length, expected.length, `${message} length:`);
  for (let i = 0; i < actual.length; i++) {
    if (!(Math.abs(actual[i] - expected[i]) <= tolerance)) {
      throw new Error(`${message} at ${i}: expected ${expected[i]} \u00b1 ${tolerance}, got ${actual[i]}`);
    }
  }
}
