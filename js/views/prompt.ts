/** The prompt box: Enter runs the model, Shift+Enter adds a line. */

import { element, viewRoot } from "./canvas";

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
    this.root.append(this.input, this.run, this.status);
  }

  setPrompt(prompt: string, readOnly: boolean): void {
    this.input.value = prompt;
    this.input.readOnly = readOnly;
    this.run.disabled = readOnly;
    this.input.title = readOnly ? "These patterns were given precomputed: there is no model to re-run" : "";
  }

  setBusy(busy: boolean): void {
    this.status.textContent = busy ? "running\u2026" : "";
  }

  private submit(): void {
    this.setBusy(true);
    this.onSubmit(this.input.value);
  }
}
