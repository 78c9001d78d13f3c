"""The explorer in every notebook host we can run here (JupyterLab is test_explorer_in_lab.py):
Notebook 7, Voila and marimo. In each: it renders, a click selects a head in the kernel, a typed
prompt re-runs the model. VS Code cannot run here: its theme path is tested on a plain page."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from attn_widget.testing.lab import Lab

from .hosts import running_host
from .test_explorer_in_lab import SETUP_CELL, explorer_cell, last_state, wait_for_state

pytestmark = pytest.mark.browser

SRC = Path(__file__).resolve().parents[2] / "src"
MARIMO_APP = """import marimo

app = marimo.App()


@app.cell
def _():
{setup}
    return (explorer,)


@app.cell
def _(explorer):
    explorer
    return


if __name__ == "__main__":
    app.run()
"""


def write_host_files(host: str, root: Path) -> tuple[str, Path]:
    """The notebook (or marimo app) showing one explorer that logs its kernel state; its log."""
    lab = Lab(root, "")
    cell = explorer_cell(lab, "explorer")
    if host == "marimo":
        body = SETUP_CELL + "\n" + cell.rsplit("\n", 1)[0]  # marimo shows the explorer in its own cell
        (root / "app.py").write_text(MARIMO_APP.format(setup="\n".join("    " + line for line in body.splitlines())))
        return "app.py", root / "explorer.state.jsonl"
    lab.write_notebook("host.ipynb", [SETUP_CELL, cell])
    return "host.ipynb", root / "explorer.state.jsonl"


def open_in_host(page, host: str, url: str, notebook: str) -> None:
    if host == "notebook7":
        page.goto(f"{url}/notebooks/{notebook}")
        page.wait_for_function(
            "(() => { const w = window.jupyterapp?.shell.currentWidget;"
            " return w?.sessionContext?.session?.kernel?.status === 'idle'; })()",
            timeout=90_000,
        )
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    else:
        page.goto(url)


@pytest.mark.parametrize("host", ["notebook7", "voila", "marimo"])
def test_explorer_renders_selects_and_reruns_in_host(host, browser, tmp_path, monkeypatch):
    tool = {"notebook7": "jupyter-notebook", "voila": "voila", "marimo": "marimo"}[host]
    if shutil.which(tool, path=str(Path(sys.executable).parent)) is None:
        pytest.skip(f"{host} is not installed (pip install -e '.[test]')")
    monkeypatch.setenv("PYTHONPATH", f"{SRC}:{__import__('os').environ.get('PYTHONPATH', '')}")
    notebook, log = write_host_files(host, tmp_path)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    with running_host(host, tmp_path, notebook) as url:
        open_in_host(page, host, url, notebook)
        first = wait_for_state(log, lambda s: s["revision"] >= 1, timeout_s=120)
        page.locator("[data-view=heatmap][data-drawn$=':0:1']").wait_for(timeout=90_000)

        page.locator("[data-view=grid] button[data-head='3']").click()
        wait_for_state(log, lambda s: (s["layer"], s["head"]) == (0, 3))
        page.locator("[data-view=heatmap][data-drawn$=':0:3']").wait_for(timeout=30_000)

        box = page.locator("[data-view=prompt] textarea")
        box.fill("the cat sat on the mat")
        box.press("Enter")
        state = wait_for_state(log, lambda s: s["revision"] > first["revision"], timeout_s=60)
        assert "".join(state["tokens"][1:]) == "the cat sat on the mat"
        page.locator(f"[data-view=heatmap][data-drawn^='{state['revision']}:']").wait_for(timeout=30_000)
        if host != "marimo":  # the live view hides the kernel's static snapshot
            assert page.locator("[data-aw-snapshot]").count() >= 1
            assert not page.locator("[data-aw-snapshot]").first.is_visible()
    assert last_state(log)["head"] == 3
    assert not [e for e in errors if "attn" in e.lower() or "widget" in e.lower()], errors


def test_vscode_theme_path_on_a_plain_page(bridge, browser, tmp_path):
    """VS Code cannot run here. Its notebook webview marks the body `vscode-light` / `vscode-dark` /
    `vscode-high-contrast` and sets --vscode-* colours; the front end (js/colors/theme.ts) must follow."""
    from attn_widget import AttentionExplorer
    from attn_widget.export.colormaps import LUTS

    w = AttentionExplorer(bridge, prompt="When mary and john went to the store", layer=0, head=1)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(w.save(tmp_path / "page.html").as_uri())
    page.locator("[data-view=heatmap][data-drawn='1:0:1']").wait_for(timeout=30_000)
    corner = (  # the top-right cell: a key after the query, no attention in a causal head
        "(() => { const c = document.querySelector('[data-role=matrix]');"
        " return Array.from(c.getContext('2d').getImageData(c.width - 2, 1, 1, 1).data.slice(0, 3)); })()"
    )
    themes = {"vscode-dark": "blues_dark", "vscode-light": "blues", "vscode-high-contrast": "blues_dark"}
    for body_class, lut in themes.items():
        background = "#1e1e1e" if "light" not in body_class else "#ffffff"
        page.evaluate(
            "([cls, bg]) => { document.body.className = cls;"
            " document.body.style.setProperty('--vscode-editor-background', bg);"
            " const fg = cls.includes('light') ? '#333' : '#ddd';"
            " document.body.style.setProperty('--vscode-editor-foreground', fg); }",
            [body_class, background],
        )
        expected = json.dumps([int(c) for c in LUTS[lut][0]], separators=(",", ":"))
        page.wait_for_function(f"JSON.stringify({corner}) === '{expected}'", timeout=10_000)
        colour = page.evaluate("getComputedStyle(document.querySelector('.attn-widget')).color")
        assert colour == ("rgb(51, 51, 51)" if "light" in body_class else "rgb(221, 221, 221)"), colour
    page.close()
