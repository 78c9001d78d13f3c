"""`make test-wheel`: does a wheel built from the sdist work where nothing else of this checkout is?

  python scripts/check_wheel.py installed PAGE.html   # in the clean venv the wheel went into
  python scripts/check_wheel.py browser PAGE.html     # in the dev venv: the page draws in Chromium

The first imports the installed package (not this checkout), checks the JS bundles are in it and
the widget's _esm is non-empty, runs the bundled demo model and saves a standalone page, which
carries the installed bundle; the second opens that page offline and waits for the heatmap.
"""

from __future__ import annotations

import sys
from pathlib import Path


def installed(page: Path) -> None:
    import attn_widget
    from attn_widget import AttentionExplorer
    from attn_widget.export.standalone import BUNDLE_DIR as STATIC

    location = Path(attn_widget.__file__).resolve()
    checkout = Path(__file__).resolve().parents[1]
    assert checkout / "src" not in location.parents, f"imported the checkout, not the wheel: {location}"
    for name in ("widget.js", "widget.css", "standalone.js"):
        size = (STATIC / name).stat().st_size
        assert size > 1000, f"{name} is only {size} bytes"
    w = AttentionExplorer(prompt="When Mary and John went to the store, Mary gave a drink to John.", layer=1, head=1)
    esm = w._esm if isinstance(w._esm, str) else ""
    assert len(esm) > 1000 and "render" in esm, "the widget's _esm is empty"
    w.save(page)
    print(f"wheel OK: {location.parent}, bundle {len(esm)} chars, page {page.stat().st_size} bytes")


def browser(page: Path) -> None:
    from attn_widget.testing.lab import chromium

    with chromium() as b:
        tab = b.new_page()
        tab.route("http*://**", lambda route: route.abort())  # offline: no CDN could help
        tab.goto(page.resolve().as_uri())
        tab.wait_for_function(
            "document.querySelector('[data-view=heatmap]')?.dataset.drawn === '1:1:1'", timeout=30_000
        )
        print("the wheel's standalone page draws its heatmap in Chromium")


if __name__ == "__main__":
    {"installed": installed, "browser": browser}[sys.argv[1]](Path(sys.argv[2]))
