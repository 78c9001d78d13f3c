"""Hatch build hook: every wheel and sdist carries the JS bundle, built from js/ when it is missing.

Without it, `pip install` from a git URL or an sdist gave a package whose import failed: the bundle
(src/attn_widget/static/) is not in git. An sdist carries the built bundle, so a wheel built from
it needs no Node.js; a git checkout needs Node.js 20+ and npm once.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

BUNDLES = ("widget.js", "widget.css", "standalone.js")


class JsBundleHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        static = root / "src" / "attn_widget" / "static"
        if all((static / name).is_file() for name in BUNDLES):
            return
        npm = shutil.which("npm")
        if npm is None or not (root / "package.json").is_file():
            missing = ", ".join(n for n in BUNDLES if not (static / n).is_file())
            raise RuntimeError(
                f"attn-widget: the JS bundle ({missing}) is missing and npm is not available to build it"
            )
        if not (root / "node_modules").exists():
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=root, check=True)
        subprocess.run([npm, "run", "--silent", "build"], cwd=root, check=True)
