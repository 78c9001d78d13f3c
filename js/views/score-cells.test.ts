import { assertEqual, type Tests } from "../testing";
import { formatScore, scoreAt, scoreProgress, scoreRange, scoredCells, type ScoreRows } from "./score-cells";

const PARTIAL: ScoreRows = [[0.5, null, 0.25], null, null];

export const tests: Tests = {
  "scores format without throwing on pending or odd values"() {
    assertEqual(formatScore(0.123456), "0.123");
    assertEqual(formatScore(0.123456, 4), "0.1235");
    assertEqual(formatScore(null), "pending");
    assertEqual(formatScore(undefined), "pending");
    assertEqual(formatScore(Number.NaN), "NaN");
    assertEqual(formatScore(Infinity), "Infinity");
  },
  "pending rows and cells are skipped, scored ones kept in order"() {
    assertEqual(scoreAt(PARTIAL, 0, 0), 0.5);
    assertEqual(scoreAt(PARTIAL, 0, 1), null);
    assertEqual(scoreAt(PARTIAL, 2, 0), null);
    assertEqual(scoreAt(PARTIAL, 7, 0), null); // past the table
    assertEqual(scoreAt(undefined, 0, 0), null);
    assertEqual(scoreAt([[Number.NaN]], 0, 0), null);
    assertEqual(scoredCells(PARTIAL, 3, 3), [
      [0, 0, 0.5],
      [0, 2, 0.25],
    ]);
    assertEqual(scoreRange(scoredCells(PARTIAL, 3, 3)), [0.25, 0.5]);
    assertEqual(scoreRange([]), [0, 0]);
  },
  "progress shows while layers are missing and goes once all are in"() {
    assertEqual(scoreProgress(3, 32), "scores: 3 / 32 layers");
    assertEqual(scoreProgress(0, 32), "scores: 0 / 32 layers");
    assertEqual(scoreProgress(32, 32), null);
    assertEqual(scoreProgress(undefined, 32), null); // a kernel that does not report progress
  },
};
