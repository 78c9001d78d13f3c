/** The widget's synced traits (see src/attn_widget/explorer.py) and custom messages (protocol.py). */

export interface ExplorerState {
  prompt: string;
  layer: number;
  head: number;
  metric: string;
  tokens: string[];
  n_layers: number;
  n_heads: number;
  model_name: string;
  score_table: Record<string, number[][]>;
  thumbnails: DataView | ArrayBuffer | Uint8Array | null;
  thumbnail_side: number;
  revision: number;
  error: string;
  read_only_prompt: boolean;
  color_scale: "linear" | "log" | "row";
  focus_token: number;
  focus_locked: boolean;
  shade_by: "received" | "given";
  head_classes: string[][];
  summary_rows: SummaryRow[];
  [key: string]: unknown;
}

export interface PatternRequest {
  type: "pattern";
  id: number;
  layer: number;
  head: number;
}

export interface PatternReply {
  type: "pattern";
  id: number;
  layer: number;
  head: number;
  revision: number;
  n: number;
  dtype: "float16" | "uint8";
}

export interface ErrorReply {
  type: "error";
  id: number | null;
  message: string;
}

export type KernelMessage = PatternReply | ErrorReply;

/** One head's weights, decoded: row-major n x n, query rows, key columns. */
export interface Pattern {
  revision: number;
  layer: number;
  head: number;
  n: number;
  values: Float32Array;
}

/** One line of the reference notebook's summary (attn_widget.summary.SummaryRow). */
export interface SummaryRow {
  finding: string;
  layer: number;
  head: number;
  metric: string;
  value: number;
}
