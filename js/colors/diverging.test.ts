import { lutColor } from "./colors";
import { RED_BLUE, centredByMax, signedShades } from "./diverging";
import { assertClose, assertEqual, type Tests } from "../testing";

export const tests: Tests = {
  "zero is white, the ends are blue and red"() {
    assertClose(lutColor(RED_BLUE, 0.5), [247, 247, 247], 2); // 256 entries: zero falls between two
    assertEqual(lutColor(RED_BLUE, 0), [33, 102, 172]);
    assertEqual(lutColor(RED_BLUE, 1), [178, 24, 43]);
  },
  "signed values map around the middle"() {
    const values = Float32Array.from([-1, 0, 0.5, -0.2, 0.1, 0]);
    assertClose(signedShades(values, 3, "linear"), [0, 0.5, 0.75, 0.4, 0.55, 0.5], 1e-6);
    assertClose(signedShades(values, 3, "row"), [0, 0.5, 0.75, 0, 0.75, 0.5], 1e-6);
  },
  "attributions scale by their largest magnitude"() {
    assertClose(centredByMax([2, -4, 0]), [0.75, 0, 0.5], 1e-6);
    assertClose(centredByMax([0, 0]), [0.5, 0.5], 0);
  },
};
