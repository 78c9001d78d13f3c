/** What to fetch before it is asked for: after a head is selected, the next key press most likely
 *  moves to another head of its layer (left, right, a click in the grid) or to the neighbouring
 *  layers (up, down). Nearest first, so a budget cuts off the least likely. */

export type HeadRef = [layer: number, head: number];

/** Three batches (each one or more "heads" requests): the other heads of the layer, then the
 *  neighbouring layers, then the layers two away (a walk through a layer outruns the kernel, so
 *  the next layers must already be on their way); in each, the same head first. */
export function prefetchBatches(layer: number, head: number, nLayers: number, nHeads: number): HeadRef[][] {
  const byDistance = (from: number) => Array.from({ length: nHeads }, (_, h) => h).sort((a, b) => Math.abs(a - from) - Math.abs(b - from) || a - b);
  const sameLayer: HeadRef[] = byDistance(head)
    .filter((h) => h !== head)
    .map((h) => [layer, h]);
  const layersAway = (d: number): HeadRef[] => {
    const refs: HeadRef[] = [];
    for (const h of byDistance(head)) for (const l of [layer + d, layer - d]) if (l >= 0 && l < nLayers) refs.push([l, h]);
    return refs;
  };
  return [sameLayer, layersAway(1), layersAway(2)];
}
