"""Screenshots of the explorer for the docs: JupyterLab 1400 px wide with the file browser open (its
default), light and dark themes, and the analysis bar open.

.venv/bin/python scripts/screenshots.py     # writes docs/explorer-light.png, explorer-dark.png, explorer-analysis.png
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from attn_widget.testing.lab import chromium, open_and_run, running_lab

REPO = Path(__file__).resolve().parent.parent

PROMPT = (
    "The attention pattern of a head shows which tokens it reads. The attention pattern of a head "
    "shows which tokens it reads, and an induction head finds the earlier copy."
)
CELLS = [
    "from attn_widget import AttentionExplorer",
    f"w = AttentionExplorer(prompt={PROMPT!r}, layer=1, head=1)\nw",
]
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as root,
        running_lab(Path(root), kernel_path=[REPO / "tests"]) as lab,
        chromium() as browser,
    ):
        notebook = lab.write_notebook("screenshots.ipynb", CELLS)
        # 1400 px wide as in the measurements; taller, so that the whole widget is on screen.
        page = browser.new_page(viewport={"width": 1400, "height": 1500})
        open_and_run(page, lab, notebook)
        page.wait_for_function("document.querySelector('[data-view=heatmap]')?.dataset.drawn?.endsWith(':1:1')",
                               timeout=120_000)  # fmt: skip
        page.evaluate("window.jupyterapp.commands.execute('filebrowser:activate')")
        page.wait_for_timeout(800)
        for name, theme in THEMES.items():
            page.evaluate(f"window.jupyterapp.commands.execute('apputils:change-theme', {{theme: {theme!r}}})")
            page.wait_for_timeout(1500)
            page.locator("[data-view=tokens] .aw-token").nth(30).hover()
            path = REPO / "docs" / f"explorer-{name}.png"
            page.locator(".attn-widget").screenshot(path=str(path))
            print("wrote", path)
        page.locator("[data-role=analysis] > summary").click()
        page.wait_for_timeout(500)
        path = REPO / "docs" / "explorer-analysis.png"
        page.locator(".attn-widget").screenshot(path=str(path))
        print("wrote", path)


if __name__ == "__main__":
    main()
