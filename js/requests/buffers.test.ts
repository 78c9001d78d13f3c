import { bytesOf, decodeWeights } from "./buffers";
import { assertClose, assertEqual, type Tests } from "../testing";

export const tests: Tests = {
  "a DataView with an offset is read from its offset"() {
    const backing = new Uint8Array([9, 9, 1, 2, 3]);
    assertEqual(Array.from(bytesOf(new DataView(backing.buffer, 2, 3))), [1, 2, 3]);
  },
  "uint8 weights decode to steps of 1/255"() {
    assertClose(decodeWeights(new Uint8Array([0, 255, 51]), "uint8", 3), [0, 1, 0.2], 1e-7);
  },
  "float16 weights decode exactly"() {
    // 1.0 = 0x3c00, 0.5 = 0x3800, 0.25 = 0x3400, 0 = 0, 2^-24 (smallest subnormal) = 0x0001, little-endian
    const bytes = new Uint8Array([0x00, 0x3c, 0x00, 0x38, 0x00, 0x34, 0x00, 0x00, 0x01, 0x00]);
    assertClose(decodeWeights(bytes, "float16", 5), [1, 0.5, 0.25, 0, 2 ** -24], 0);
  },
};
