/** The widget's synced traits (see src/attn_widget/widget/traits.py) and custom messages (widget/protocol.py).
 *  ExplorerState lists the trait names and nothing else, so a misspelt trait does not compile;
 *  tests/test_contract.py checks it against the kernel's synced traits. */

import type { ColorScale, COMPOSITION_LABELS, Metric, ShadeBy, Weighting } from "../contract.gen";

export type CompositionKind = keyof typeof COMPOSITION_LABELS;

export interface ExplorerState {
  prompt: string;
  layer: number;
  head: number;
  metric: Metric;
  tokens: string[];
  n_layers: number;
  n_heads: number;
  model_name: string;
  /** Each layer's module path (and pass, for a looped model); empty where the backend names none. */
  layer_names: string[];
  /** Per-head scores of each metric this explorer offers; null where a score is undefined (NaN). */
  score_table: Partial<Record<Metric | `${Metric}_change`, (number | null)[][]>>;
  thumbnails: DataView | ArrayBuffer | Uint8Array | null;
  thumbnail_side: number;
  revision: number;
  error: string;
  read_only_prompt: boolean;
  color_scale: ColorScale;
  focus_token: number;
  focus_locked: boolean;
  shade_by: ShadeBy;
  weighting: Weighting;
  compare_prompt: string;
  answer: string;
  counterfactual: string;
  /** Per-source logit attribution of the selected head at `attribution_query` (empty: no answer). */
  attribution: number[];
  attribution_query: number;
  head_classes: string[][];
  summary_rows: SummaryRow[];
  /** Layers whose scores are in; the rest of score_table's rows are null (pending). */
  scored_layers: number;
  /** Names the kernel's static snapshot output, which a live view hides (attn_widget.export.snapshot). */
  snapshot_key?: string;
  standalone?: boolean; // a standalone page (no kernel): attn_widget.export.standalone
  /** Dataset mode, sinks and head similarity (src/attn_widget/widget/traits.py). */
  progress: { label?: string; done?: number; total?: number; run?: number; interrupt?: boolean };
  dataset_size: number;
  dataset_index: number;
  score_spread: Record<string, (number | null)[][]>;
  exclude_sinks: boolean;
  sink_threshold: number;
  sink_positions: number[][][];
  show_similarity: boolean;
  similarity: { order?: number[][]; distance?: number[][] };
  /** The head composition view: its kind ("" closed) and its data (src/attn_widget/widget/traits.py). */
  composition_kind: "" | CompositionKind;
  composition: { kind?: CompositionKind; n_layers?: number; n_heads?: number; scores?: DataView | ArrayBuffer | Uint8Array };
}

/** One line of the reference notebook's summary (attn_widget.maths.summary.SummaryRow). */
export interface SummaryRow {
  finding: string;
  layer: number;
  head: number;
  metric: string;
  /** null when the score is undefined (NaN weights). */
  value: number | null;
}

/** A window of queries [q0, q1) x keys [k0, k1). */
export interface Window {
  q0: number;
  q1: number;
  k0: number;
  k1: number;
}

export type Axis = "query" | "key";

export type Request =
  | { type: "pattern"; id: number; layer: number; head: number }
  | ({ type: "tile"; id: number; layer: number; head: number; rows: number; cols: number } & Window)
  | { type: "row"; id: number; layer: number; head: number; index: number; axis: Axis };

interface ReplyBase {
  id: number;
  layer: number;
  head: number;
  revision: number;
  n: number;
  dtype: "float16" | "uint8";
  /** A difference between two prompts, in [-1, 1] (uint8: 0 at 127.5). */
  signed?: boolean;
}

export type KernelMessage =
  | (ReplyBase & { type: "pattern" })
  | (ReplyBase & Window & { type: "tile"; tile_rows: number; tile_cols: number; undefined?: number })
  | (ReplyBase & { type: "row"; index: number; axis: Axis })
  | { type: "error"; id: number | null; message: string };

/** One head's weights, decoded: row-major n x n, query rows, key columns. */
export interface Pattern {
  kind: "pattern";
  revision: number;
  layer: number;
  head: number;
  n: number;
  values: Float32Array;
  signed?: boolean;
}

/** A max-pooled window of one head: rows x cols cells over the window's tokens. */
export interface Tile extends Window {
  kind: "tile";
  revision: number;
  layer: number;
  head: number;
  n: number;
  rows: number;
  cols: number;
  values: Float32Array;
  signed?: boolean;
}

/** The weights one token gives (axis "query": its row) or receives ("key": its column). */
export interface Line {
  revision: number;
  layer: number;
  head: number;
  index: number;
  axis: Axis;
  values: Float32Array;
  signed?: boolean;
}

export type HeadData = Pattern | Tile;
