/** What to fetch before it is asked for: after a head is selected, the next key press most likely
 *  moves to another head of its layer (left, right, a click in the grid) or to the neighbouring
 *  layers (up, down). Nearest first, so a budget cuts off the least likely. */

export type HeadRef = [layer: number, head: number];

/** Two batches (each one "heads" request): the other heads of the layer, then the neighbouring
 *  layers, the same head first. */
export function prefetchBatches(layer: number, head: number, nLayers: number, nHeads: number): HeadRef[][] {
  const byDistance = (from: number) =>
    Array.from({ length: nHeads }, (_, h) => h).sort((a, b) => Math.abs(a - from) - Math.abs(b - from) || a - b);
  const sameLayer: HeadRef[] = byDistance(head)
    .filter((h) => h !== head)
    .map((h) => [layer, h]);
  const neighbours: HeadRef[] = [];
  for (const h of byDistance(head)) {
    for (const l of [layer + 1, layer - 1]) if (l >= 0 && l < nLayers) neighbours.push([l, h]);
  }
  return [sameLayer, neighbours];
}
