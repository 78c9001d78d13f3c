/** The prompt box: Enter runs the model, Shift+Enter adds a line. */

import { element, viewRoot } from "./canvas";

const BUSY_AFTER_MS = 500;

export class PromptView {
  readonly root = viewRoot("prompt", "aw-prompt");
  private readonly input = element("textarea", "aw-input");
  private readonly run = element("button", "aw-run", "Run");
  private readonly status = element("span", "aw-status");

  constructor(private readonly onSubmit: (prompt: string) => void) {
    this.root.tabIndex = -1; // the text box takes the focus itself
    this.input.rows = 2;
    this.input.setAttribute("aria-label", "prompt");
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) {
        e.preventDefault();
        this.submit();
      }
    });
    this.run.addEventListener("click", () => this.submit());
    this.status.dataset.role = "run-status";
    this.status.setAttribute("aria-live", "polite");
    this.root.append(this.input, this.run, this.status);
  }

  private busyTimer: ReturnType<typeof setTimeout> | null = null;
  private reason = "";

  /** `readOnly` with the reason there is nothing to run (precomputed attention, a standalone page):
   *  Run is hidden and the reason said. */
  setPrompt(prompt: string, readOnly: boolean, reason = "These patterns were given precomputed: there is no model to re-run"): void {
    this.input.value = prompt;
    this.input.readOnly = readOnly;
    this.run.hidden = readOnly;
    this.reason = readOnly ? reason : "";
    this.input.title = this.reason;
    if (this.busyTimer === null) this.status.textContent = this.reason;
  }

  /** "running…" for a run that takes over half a second (a quicker one would only flicker). */
  setBusy(busy: boolean): void {
    if (this.busyTimer !== null) clearTimeout(this.busyTimer);
    this.busyTimer = null;
    this.status.textContent = this.reason;
    if (!busy) return;
    this.busyTimer = setTimeout(() => {
      this.status.textContent = "running\u2026";
    }, BUSY_AFTER_MS);
  }

  private submit(): void {
    this.setBusy(true);
    this.onSubmit(this.input.value);
  }
}
