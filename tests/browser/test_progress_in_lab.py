"""Progress in JupyterLab: a long run from Python (a dataset, a prompt) moves the widget's bar while
the kernel works, and the bar goes once it is done; the dataset stepper then counts the new prompts.
The model is slowed in the kernel so that each step outlasts the half-second threshold."""

from __future__ import annotations

import json

import pytest

from attn_widget.testing.lab import open_and_run

from .test_explorer_in_lab import SETUP_CELL, wait_for_state

pytestmark = pytest.mark.browser

PROMPT = "When mary and john went to the store mary gave a drink to john"
DATASET = [f"the cat sat on mat number {i} and mary gave a ball to john" for i in range(6)]
KEYS = ("prompt", "tokens", "dataset_index", "dataset_size")

SLOW_MODEL = """
import time
backend = w._session.backend
original_run, original_capture = backend.run, backend.capture
def slow_run(*args, **kwargs):
    time.sleep(0.4)
    return original_run(*args, **kwargs)
def slow_capture(tokens, on_layer, *args, **kwargs):
    def slow_layer(layer, attention):
        time.sleep(0.4)
        on_layer(layer, attention)
    return original_capture(tokens, slow_layer, *args, **kwargs)
backend.run, backend.capture = slow_run, slow_capture
"""


def start_in_kernel(page, code: str) -> None:
    """Send code to the notebook's kernel without waiting for it: the page is watched meanwhile."""
    page.evaluate(
        "(code) => { window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.requestExecute({code}); }",
        code,
    )


def progress_seen(page, text: str) -> None:
    page.wait_for_function(
        """(text) => {
            const p = document.querySelector('[data-role=progress]');
            return p && !p.hidden && p.textContent.includes(text);
        }""",
        arg=text,
        timeout=60_000,
    )


def test_long_runs_move_the_widgets_progress_bar(page, lab):
    log = lab.root / "progress.state.jsonl"
    cell = (
        f"w = AttentionExplorer(model, prompt={PROMPT!r})\n"
        "def log(change=None):\n"
        f"    with open({str(log)!r}, 'a') as f:\n"
        f"        f.write(json.dumps({{k: getattr(w, k) for k in {KEYS!r}}}) + '\\n')\n"
        f"w.observe(log, names={list(KEYS)!r})\n"
        "log()\n"
        "w"
    )
    open_and_run(page, lab, lab.write_notebook("progress.ipynb", [SETUP_CELL, cell]))
    wait_for_state(log, lambda s: s["prompt"] == PROMPT, timeout_s=90)
    bar = page.locator("[data-role=progress]")
    assert bar.is_hidden()  # a quick prompt showed none

    start_in_kernel(page, SLOW_MODEL + f"w.run_dataset({json.dumps(DATASET)}, batch_size=1, progress=False)")
    progress_seen(page, "dataset: ")
    text = bar.text_content()
    done = int(text.split("dataset: ")[1].split(" / ")[0])
    assert 0 < done < len(DATASET) and text.endswith(f"/ {len(DATASET)}"), text
    wait_for_state(log, lambda s: s["dataset_size"] == len(DATASET), timeout_s=60)
    page.wait_for_function("document.querySelector('[data-role=progress]').hidden", timeout=30_000)
    # the stepper counts the new prompts; the shown prompt is none of them
    stepper = page.locator("[data-role=dataset-position]")
    page.wait_for_function(
        "(n) => document.querySelector('[data-role=dataset-position]').textContent.includes('/ ' + n)",
        arg=len(DATASET),
    )
    assert stepper.text_content().strip() == f"\u2013 / {len(DATASET)}"

    # a prompt set from Python: the bar follows the model layer by layer, then the scores
    start_in_kernel(page, f"w.prompt = {DATASET[2]!r}")
    progress_seen(page, "running the model: ")
    wait_for_state(log, lambda s: s["prompt"] == DATASET[2], timeout_s=60)
    page.wait_for_function("document.querySelector('[data-role=progress]').hidden", timeout=30_000)

    # typed in the widget: ipywidgets holds the trait sync while it applies the update, yet the bar
    # moves while the model runs
    box = page.locator("[data-view=prompt] textarea")
    box.fill(DATASET[4])
    box.press("Enter")
    progress_seen(page, "running the model: ")
    wait_for_state(log, lambda s: s["prompt"] == DATASET[4], timeout_s=60)
    page.wait_for_function("document.querySelector('[data-role=progress]').hidden", timeout=30_000)
