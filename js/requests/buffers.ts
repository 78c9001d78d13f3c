/** Decoding the kernel's binary buffers. */

/** A view over a buffer's bytes: a DataView's offset is not always 0. */
export function bytesOf(data: DataView | ArrayBuffer | Uint8Array | null | undefined): Uint8Array {
  if (!data) return new Uint8Array(0);
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

let float16Table: Float32Array | null = null;

/** All 65536 half-precision values, built once: decoding is then one lookup per weight. */
function float16Lookup(): Float32Array {
  if (float16Table) return float16Table;
  const table = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const fraction = bits & 0x3ff;
    if (exponent === 0) table[bits] = sign * 2 ** -14 * (fraction / 1024);
    else if (exponent === 31) table[bits] = fraction ? NaN : sign * Infinity;
    else table[bits] = sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
  }
  float16Table = table;
  return table;
}

export function decodeWeights(bytes: Uint8Array, dtype: "float16" | "uint8", count: number): Float32Array {
  const out = new Float32Array(count);
  if (dtype === "uint8") {
    for (let i = 0; i < count; i++) out[i] = bytes[i] / 255;
    return out;
  }
  const table = float16Lookup();
  for (let i = 0; i < count; i++) out[i] = table[bytes[2 * i] | (bytes[2 * i + 1] << 8)];
  return out;
}

/** uint8 tiles have no room for NaN: the kernel sends a second buffer, 1 where a cell is undefined. */
export function markUndefined(values: Float32Array, mask: Uint8Array): void {
  for (let i = 0; i < values.length && i < mask.length; i++) if (mask[i]) values[i] = Number.NaN;
}
