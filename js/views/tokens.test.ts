import { BLUES } from "../colors/colors";
import { assert, assertEqual, type Tests } from "../testing";
import { STRIP_WINDOW } from "./token-window";
import { TokenStripView } from "./tokens";

interface Calls {
  hover: (number | null)[];
  lock: number[];
  jump: number[];
}

function mounted(n: number): [TokenStripView, Calls] {
  const calls: Calls = { hover: [], lock: [], jump: [] };
  const view = new TokenStripView({
    hover: (i) => calls.hover.push(i),
    toggleLock: (i) => calls.lock.push(i),
    setShadeBy: () => {},
    jump: (i) => calls.jump.push(i),
  });
  document.body.append(view.root);
  view.setTokens(Array.from({ length: n }, (_, i) => ` t${i}`));
  return [view, calls];
}

const shown = (view: TokenStripView) => Array.from(view.root.querySelectorAll<HTMLElement>(".aw-token"), (t) => Number(t.dataset.index));

export const tests: Tests = {
  "a short prompt shows every token and no navigation"() {
    const [view] = mounted(20);
    assertEqual(
      shown(view),
      Array.from({ length: 20 }, (_, i) => i),
    );
    assert(view.root.querySelector<HTMLElement>("[data-role=token-jump]")!.closest<HTMLElement>("[hidden]"), "navigation is hidden");
    view.root.remove();
  },
  "a long prompt shows a window that follows the focus, shaded by the focused token's weights"() {
    const n = 32768;
    const [view] = mounted(n);
    assertEqual(shown(view).length, STRIP_WINDOW);
    assertEqual(view.root.dataset.window, `0:${STRIP_WINDOW}`);
    const weights = new Float32Array(n);
    weights[20000] = 1;
    weights[20001] = 0.5;
    view.update(20000, true, "received", weights, "linear", BLUES);
    const indices = shown(view);
    assertEqual(indices.length, STRIP_WINDOW);
    assert(indices[0] < 20000 && indices[indices.length - 1] > 20000, `window ${view.root.dataset.window}`);
    const focused = view.root.querySelector<HTMLElement>(".aw-token.aw-focused")!;
    assertEqual(focused.dataset.index, "20000");
    assertEqual(focused.dataset.weight, "1.0000");
    assertEqual(view.root.querySelector<HTMLElement>(".aw-token[data-index='20001']")!.dataset.weight, "0.5000");
    // a focus inside the window (a hovered token) does not move it
    const before = view.root.dataset.window;
    view.update(indices[3], false, "received", null, "linear", BLUES);
    assertEqual(view.root.dataset.window, before);
    view.root.remove();
  },
  "typing a position jumps there, hovering and clicking report absolute indices"() {
    const [view, calls] = mounted(5000);
    const box = view.root.querySelector<HTMLInputElement>("[data-role=token-jump]")!;
    box.value = "4321";
    box.dispatchEvent(new Event("change"));
    box.value = "5000"; // out of range: no jump
    box.dispatchEvent(new Event("change"));
    assertEqual(calls.jump, [4321]);
    view.showAround(4321);
    const token = view.root.querySelector<HTMLElement>(".aw-token[data-index='4321']")!;
    token.dispatchEvent(new MouseEvent("mouseenter"));
    token.click();
    assertEqual(calls.hover, [4321]);
    assertEqual(calls.lock, [4321]);
    view.root.remove();
  },
};
