/** Save buttons: the current view as PNG or SVG. With a kernel, the kernel draws it (the same
 *  figure as `explorer.save`) and sends the bytes back; with none (a standalone page), the
 *  heatmap's canvas is saved as PNG. Either way the browser downloads a file. */

import type { AnyModel } from "@anywidget/types";
import { bytesOf } from "../requests/buffers";
import { element } from "./canvas";
import type { ExplorerState } from "../state/types";
import { headLabel } from "./labels";

type Format = "png" | "svg";
const MIME: Record<Format, string> = { png: "image/png", svg: "image/svg+xml" };
const VIEWS = ["heatmap", "grid", "scores", "all"];

interface ExportReply {
  type: "export" | "error";
  id: number;
  filename?: string;
  format?: Format;
  message?: string;
}

export function download(bytes: BlobPart, filename: string, type: string): void {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  const link = element("a");
  link.href = url;
  link.download = filename;
  link.style.display = "none";
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export class ExportBar {
  readonly root = element("div", "aw-export");
  private readonly viewSelect = element("select", "aw-select");
  private readonly status = element("span", "aw-hint");
  private pending = new Set<number>();
  private nextId = Math.floor(Math.random() * 2 ** 31) * 1024 + 512;

  constructor(
    private readonly model: AnyModel<ExplorerState>,
    private readonly matrix: () => HTMLCanvasElement | null,
    private readonly dark: () => boolean,
  ) {
    this.root.dataset.role = "export";
    this.viewSelect.setAttribute("aria-label", "view to save");
    this.viewSelect.replaceChildren(...VIEWS.map((v) => new Option(v, v)));
    const buttons = (["png", "svg"] as Format[]).map((format) => {
      const button = element("button", "aw-button", `Save ${format.toUpperCase()}`);
      button.dataset.format = format;
      button.addEventListener("click", () => this.save(format));
      return button;
    });
    this.root.append("save ", this.viewSelect, " ", ...buttons, " ", this.status);
    if (this.offline) {
      buttons[1].hidden = true; // no kernel to draw the figure: the canvas is what there is
      this.viewSelect.hidden = true;
    }
  }

  private get offline(): boolean {
    return Boolean(this.model.get("standalone"));
  }

  save(format: Format): void {
    if (this.offline) {
      this.matrix()?.toBlob((blob) => blob && download(blob, this.filename("png"), MIME.png), MIME.png);
      return;
    }
    const id = this.nextId++;
    this.pending.add(id);
    this.status.textContent = "\u2026";
    const view = this.viewSelect.value;
    this.model.send({ type: "export", id, format, view, theme: this.dark() ? "dark" : "light" });
  }

  /** A kernel reply; returns false if it was not for this bar. */
  receive(message: ExportReply, buffers: DataView[]): boolean {
    if (!this.pending.has(message.id)) return false;
    this.pending.delete(message.id);
    if (message.type === "error" || !buffers?.length || !message.format) {
      this.status.textContent = message.message ?? "saving failed";
      return true;
    }
    this.status.textContent = "";
    download(bytesOf(buffers[0]) as BlobPart, message.filename ?? this.filename(message.format), MIME[message.format]);
    return true;
  }

  private filename(format: Format): string {
    return `attention-${headLabel(this.model.get("layer"), this.model.get("head"))}.${format}`;
  }
}
