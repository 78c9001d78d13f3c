"""A standalone page: the explorer's own front end inlined, over the chosen layers' patterns
embedded as compressed binary. Opens offline in any browser, with no kernel and no CDN.

Everything placed inside <script> is made script-safe: JSON has `<`, `>` and `&` escaped, so a
token such as `</script>` stays text; the bundle's own `</script` and `<!--`, if any, are escaped.
"""

from __future__ import annotations

import base64
import html
import json
import re
import zlib
from pathlib import Path
from typing import Any

from attn_widget.export.svg import xml_safe

BUNDLE_DIR = Path(__file__).resolve().parent.parent / "static"
"""The front end's bundle (built from js/ into the package): the widget's and the page's."""

_UNSAFE_IN_SCRIPT = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def script_json(value: Any) -> str:
    """JSON that can sit inside a <script> element whatever its strings hold."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return re.sub("[<>&\u2028\u2029]", lambda m: _UNSAFE_IN_SCRIPT[m.group()], text)


def script_safe_code(code: str) -> str:
    """JS or CSS source that cannot end its element early (`</script` inside a string or regex)."""
    return re.sub(r"</(script|style)", r"<\\/\1", code, flags=re.IGNORECASE).replace("<!--", "<\\!--")


def b64_deflate(data: bytes) -> str:
    """Bytes as they travel inside the page: deflated, then base64."""
    return base64.b64encode(zlib.compress(data, 6)).decode("ascii")


def render_page(data: dict[str, Any], title: str, script: str, css: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f"<title>{html.escape(xml_safe(title))}</title>\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<style>body{{margin:16px;font-family:system-ui,sans-serif}}\n{script_safe_code(css)}</style>\n"
        "</head><body>\n"
        f'<script type="application/json" data-attn-widget>{script_json(data)}</script>\n'
        f"<script>{script_safe_code(script)}</script>\n"
        "</body></html>\n"
    )


def standalone_html(data: dict[str, Any], title: str) -> str:
    """The page: `data` is {"state": synced traits, "buffers": {trait: base64 deflate},
    "layers": {layer: {"dtype", "deflate"}}} (widget/view.py `page_data`)."""
    script = (BUNDLE_DIR / "standalone.js").read_text(encoding="utf-8")
    css = (BUNDLE_DIR / "widget.css").read_text(encoding="utf-8")
    return render_page(data, title, script, css)
