"""The README's screenshot of the "why" panel: the demo model's induction head on a repeated random
sequence, one cell of the second copy split into the components that wrote its query and key.

.venv/bin/python scripts/why_screenshot.py     # writes docs/why-induction.png
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from attn_widget.testing.lab import chromium, open_and_run, running_lab

REPO = Path(__file__).resolve().parent.parent
QUERY, KEY = 28, 9
CELLS = [
    "import random\n"
    "from attn_widget import AttentionExplorer\n"
    "from attn_widget.models import load_demo_model\n"
    "model = load_demo_model()\n"
    "tok = model.tokenizer\n"
    "words = [s for i in range(100, 4096) if (s := tok.decode([i])).startswith(' ') and s[1:].isalpha()\n"
    "         and tok.encode(s, add_special_tokens=False) == [i]]\n"
    "w = AttentionExplorer(model, prompt=''.join(random.Random(0).sample(words, 20) * 2), layer=1, head=1)\n"
    "w",
]


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as root,
        running_lab(Path(root), kernel_path=[REPO / "tests"]) as lab,
        chromium() as browser,
    ):
        notebook = lab.write_notebook("why.ipynb", CELLS)
        page = browser.new_page(viewport={"width": 1300, "height": 2000})
        open_and_run(page, lab, notebook)
        page.wait_for_function("document.querySelector('[data-view=heatmap]')?.dataset.drawn?.endsWith(':1:1')",
                               timeout=120_000)  # fmt: skip
        page.evaluate("window.jupyterapp.commands.execute('application:toggle-left-area')")
        page.locator("[data-role=why-toggle]").check()
        overlay = page.locator("[data-view=heatmap] canvas[data-role=overlay]").first
        overlay.scroll_into_view_if_needed()
        box = overlay.bounding_box()
        n = 41
        assert box is not None
        overlay.click(position={"x": (KEY + 0.5) * box["width"] / n, "y": (QUERY + 0.5) * box["height"] / n})
        page.wait_for_selector("[data-role=why-key] .aw-why-row", timeout=60_000)
        path = REPO / "docs" / "why-induction.png"
        page.locator("[data-view=heatmap]").screenshot(path=str(path))
        print("wrote", path)


if __name__ == "__main__":
    main()
