import { BLUES } from "../colors/colors";
import { assertEqual, type Tests } from "../testing";
import { HeadGridView, OverviewView, thumbBytes, type Thumbnails } from "./thumbnails";

/** 2 layers x 2 heads of 2 x 2 thumbnails; layer 1 all zero (not computed yet while in progress). */
function thumbs(inProgress: boolean, bytes = Uint8Array.from([255, 0, 9, 9, 255, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])): Thumbnails {
  return { bytes, side: 2, nLayers: 2, nHeads: 2, inProgress };
}

export const tests: Tests = {
  "all-zero thumbnails are pending while layers are still coming, data once all are in"() {
    assertEqual(Array.from(thumbBytes(thumbs(true), 0, 1)!), [255, 0, 0, 1]);
    assertEqual(thumbBytes(thumbs(true), 1, 0), null);
    assertEqual(Array.from(thumbBytes(thumbs(false), 1, 0)!), [0, 0, 0, 0]);
    assertEqual(thumbBytes(thumbs(false, new Uint8Array(10)), 1, 1), null); // missing bytes
  },
  "the grid and the overview draw pending thumbnails and say how many"() {
    const grid = new HeadGridView(
      () => {},
      () => {},
    );
    const overview = new OverviewView(() => {});
    document.body.append(grid.root, overview.root);
    const style = { scale: "linear" as const, lut: BLUES };
    grid.update(thumbs(true), 1, 0, [], style);
    overview.update(thumbs(true), 1, 0, style);
    assertEqual(grid.root.dataset.pending, "2");
    assertEqual(
      Array.from(grid.root.querySelectorAll<HTMLElement>(".aw-thumb"), (c) => c.dataset.pending),
      ["true", "true"],
    );
    assertEqual(overview.root.dataset.pending, "2");
    grid.update(thumbs(false), 1, 0, [], style);
    overview.update(thumbs(false), 1, 0, style);
    assertEqual([grid.root.dataset.pending, overview.root.dataset.pending], ["0", "0"]);
    grid.root.remove();
    overview.root.remove();
  },
};
