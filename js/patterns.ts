/** Asking the kernel for one head's pattern: fresh ids, stale replies dropped, a small LRU cache. */

import type { AnyModel } from "@anywidget/types";
import { bytesOf, decodeWeights } from "./buffers";
import type { ExplorerState, KernelMessage, Pattern, PatternRequest } from "./types";

const CACHE_SIZE = 24;

export class PatternClient {
  private nextId: number;
  private latestId = -1;
  private readonly cache = new Map<string, Pattern>();

  constructor(
    private readonly model: AnyModel<ExplorerState>,
    private readonly onPattern: (pattern: Pattern) => void,
    private readonly onError: (message: string) => void,
  ) {
    // Every view of this model hears every reply: ids from a per-view range keep them apart.
    this.nextId = Math.floor(Math.random() * 2 ** 31) * 1024;
  }

  request(revision: number, layer: number, head: number): void {
    const cached = this.cache.get(key(revision, layer, head));
    this.latestId = this.nextId++;
    if (cached) {
      this.remember(cached); // refresh its place in the LRU order
      this.onPattern(cached);
      return;
    }
    const message: PatternRequest = { type: "pattern", id: this.latestId, layer, head };
    this.model.send(message);
  }

  /** Handles a `msg:custom` from the kernel; returns false if it was not for this client. */
  receive(message: KernelMessage, buffers: DataView[]): boolean {
    if (message.type === "error") {
      if (message.id !== null && message.id !== this.latestId) return false;
      this.onError(message.message);
      return true;
    }
    if (message.type !== "pattern" || message.id !== this.latestId || !buffers?.length) return false;
    const pattern: Pattern = {
      revision: message.revision,
      layer: message.layer,
      head: message.head,
      n: message.n,
      values: decodeWeights(bytesOf(buffers[0]), message.dtype, message.n * message.n),
    };
    this.remember(pattern);
    this.onPattern(pattern);
    return true;
  }

  private remember(pattern: Pattern): void {
    const k = key(pattern.revision, pattern.layer, pattern.head);
    this.cache.delete(k);
    this.cache.set(k, pattern);
    while (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
  }
}

function key(revision: number, layer: number, head: number): string {
  return `${revision}:${layer}:${head}`;
}
