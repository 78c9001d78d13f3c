/** Typed access to the synced traits, with hover updates to the kernel throttled. */

import type { AnyModel } from "@anywidget/types";
import type { ExplorerState } from "./types";

const HOVER_SYNC_MS = 80;

export class Store {
  private hoverTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(readonly model: AnyModel<ExplorerState>) {}

  get<K extends keyof ExplorerState>(key: K): ExplorerState[K] {
    return this.model.get(key);
  }

  /** Set traits and send them to the kernel now. */
  save(values: Partial<ExplorerState>): void {
    for (const key of Object.keys(values) as (keyof ExplorerState)[]) this.model.set(key, values[key]!);
    this.model.save_changes();
  }

  select(layer: number, head: number): void {
    const nLayers = this.get("n_layers");
    const nHeads = this.get("n_heads");
    if (layer < 0 || layer >= nLayers || head < 0 || head >= nHeads) return; // never send an impossible head
    this.save({ layer, head });
  }

  /** Hovering changes the views at once and reaches the kernel at most every HOVER_SYNC_MS. */
  hoverToken(index: number | null): void {
    if (this.get("focus_locked")) return;
    const value = index ?? -1;
    if (this.get("focus_token") === value) return;
    this.model.set("focus_token", value);
    if (this.hoverTimer === null) {
      this.hoverTimer = setTimeout(() => {
        this.hoverTimer = null;
        this.model.save_changes();
      }, HOVER_SYNC_MS);
    }
  }

  /** Click on a token: lock the focus on it; a second click (or Escape) unlocks. */
  toggleLock(index: number): void {
    if (this.get("focus_locked")) this.save({ focus_locked: false, focus_token: index });
    else this.save({ focus_locked: true, focus_token: index });
  }

  unlock(): void {
    if (this.get("focus_locked")) this.save({ focus_locked: false, focus_token: -1 });
  }

  dispose(): void {
    if (this.hoverTimer !== null) clearTimeout(this.hoverTimer);
  }
}
