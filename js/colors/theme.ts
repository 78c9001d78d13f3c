/** Light or dark: follow the host (JupyterLab, VS Code), else the page's own background. */

import { BLUES, BLUES_DARK, type Lut } from "./colors";

function backgroundIsDark(el: HTMLElement): boolean | null {
  for (let node: HTMLElement | null = el; node; node = node.parentElement) {
    const match = getComputedStyle(node).backgroundColor.match(/[\d.]+/g);
    if (match && (match.length < 4 || Number(match[3]) > 0)) {
      const [r, g, b] = match.map(Number);
      return 0.299 * r + 0.587 * g + 0.114 * b < 128;
    }
  }
  return null;
}

export function isDark(el: HTMLElement): boolean {
  const body = document.body;
  if (body.dataset.jpThemeLight === "false") return true;
  if (body.dataset.jpThemeLight === "true") return false;
  if (body.classList.contains("vscode-dark") || body.classList.contains("vscode-high-contrast")) return true;
  if (body.classList.contains("vscode-light")) return false;
  return backgroundIsDark(el) ?? window.matchMedia?.("(prefers-color-scheme: dark)").matches ?? false;
}

export function patternLut(el: HTMLElement): Lut {
  return isDark(el) ? BLUES_DARK : BLUES;
}

/** Calls `onChange` when the host switches theme; returns the unsubscribe. */
export function watchTheme(onChange: () => void): () => void {
  const observer = new MutationObserver(onChange);
  observer.observe(document.body, { attributes: true, attributeFilter: ["class", "data-jp-theme-light", "data-jp-theme-name"] });
  return () => observer.disconnect();
}
