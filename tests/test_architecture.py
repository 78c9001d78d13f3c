"""docs/architecture.md is the map a newcomer reads first: every module of the package is on it."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "attn_widget"


def test_every_module_of_the_package_is_on_the_map():
    doc = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    modules = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "static" not in path.parts and not (path.name == "__init__.py" and path.parent != PACKAGE)
    )
    missing = [m for m in modules if f"`{m}`" not in doc]
    assert not missing, f"docs/architecture.md leaves out {missing}"


def test_the_map_names_no_module_that_is_gone():
    doc = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    import re

    named = set(re.findall(r"`((?:[a-z_]+/)?[a-z_]+\.py)`", doc))
    gone = [m for m in named if not (PACKAGE / m).exists()]
    assert not gone, f"docs/architecture.md names modules that do not exist: {gone}"
