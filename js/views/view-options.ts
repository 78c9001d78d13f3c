/** The view options (the kernel's ViewOptions): the weighting (attention or value-weighted), a
 *  compare prompt of the same length, and the answer / counterfactual tokens for logit attribution.
 *  Each field sends its trait on Enter (or change); the kernel answers with the views redrawn or an
 *  error. */

import { WEIGHTING_LABELS, type Weighting } from "../contract.gen";
import { element, viewRoot } from "./canvas";

export interface ViewOptions {
  weighting: Weighting;
  compare_prompt: string;
  answer: string;
  counterfactual: string;
}

/** A weighting selector (the heatmap and the head grid each get one; they stay in step). */
export function weightingSelect(onChange: (weighting: Weighting) => void): HTMLSelectElement {
  const select = element("select", "aw-select");
  select.dataset.role = "weighting";
  select.setAttribute("aria-label", "weighting");
  select.replaceChildren(...Object.entries(WEIGHTING_LABELS).map(([key, label]) => new Option(label, key)));
  select.addEventListener("change", () => onChange(select.value as Weighting));
  return select;
}

function field(role: string, label: string, placeholder: string, onSubmit: (value: string) => void): HTMLInputElement {
  const input = element("input", "aw-field");
  input.type = "text";
  input.dataset.role = role;
  input.placeholder = placeholder;
  input.setAttribute("aria-label", label);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") onSubmit(input.value);
  });
  input.addEventListener("change", () => onSubmit(input.value));
  return input;
}

export class ViewOptionsView {
  readonly root = viewRoot("view-options", "aw-view-options");
  private readonly compare: HTMLInputElement;
  private readonly answer: HTMLInputElement;
  private readonly counterfactual: HTMLInputElement;

  constructor(save: (values: Partial<ViewOptions>) => void) {
    this.compare = field("compare-prompt", "compare prompt", "compare with a prompt of the same token count (Enter)", (v) => save({ compare_prompt: v }));
    this.answer = field("answer", "answer token", 'answer: " John"', (v) => save({ answer: v }));
    this.counterfactual = field("counterfactual", "counterfactual token", "counterfactual", (v) => save({ counterfactual: v }));
    const attribution = element("span", "aw-attribution-form");
    attribution.append("logit attribution: ", this.answer, " \u2212 ", this.counterfactual);
    this.root.append(this.compare, attribution);
  }

  update(state: ViewOptions): void {
    // Never overwrite what the user is typing.
    for (const [input, value] of [
      [this.compare, state.compare_prompt],
      [this.answer, state.answer],
      [this.counterfactual, state.counterfactual],
    ] as const) {
      if (document.activeElement !== input) input.value = value;
    }
  }
}
