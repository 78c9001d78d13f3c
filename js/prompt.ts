/** The prompt box (Enter runs, Shift+Enter adds a line) and the token strip. */

import { displayToken, element } from "./canvas";

export class PromptView {
  readonly root = element("div", "aw-prompt");
  private readonly input = element("textarea", "aw-input");
  private readonly run = element("button", "aw-run", "Run");
  private readonly status = element("span", "aw-status");

  constructor(private readonly onSubmit: (prompt: string) => void) {
    this.root.dataset.view = "prompt";
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

  /** The kernel's prompt; the box follows it unless the user is mid-edit of something else. */
  setPrompt(prompt: string, readOnly: boolean): void {
    this.input.value = prompt;
    this.input.readOnly = readOnly;
    this.run.disabled = readOnly;
  }

  setBusy(busy: boolean): void {
    this.status.textContent = busy ? "running\u2026" : "";
  }

  private submit(): void {
    this.setBusy(true);
    this.onSubmit(this.input.value);
  }
}

export class TokenStripView {
  readonly root = element("div", "aw-tokens");
  private spans: HTMLSpanElement[] = [];

  constructor(private readonly onHover: (index: number | null) => void) {
    this.root.dataset.view = "tokens";
  }

  setTokens(tokens: string[]): void {
    this.spans = tokens.map((token, i) => {
      const span = element("span", "aw-token", displayToken(token, 40));
      span.title = `${i}: ${JSON.stringify(token)}`;
      span.dataset.index = String(i);
      span.addEventListener("mouseenter", () => this.onHover(i));
      span.addEventListener("mouseleave", () => this.onHover(null));
      return span;
    });
    this.root.replaceChildren(...this.spans);
  }

  highlight(index: number | null): void {
    this.spans.forEach((span, i) => span.classList.toggle("aw-hovered", i === index));
  }
}
