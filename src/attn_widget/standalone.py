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
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import wire

if TYPE_CHECKING:
    from .explorer import AttentionExplorer

_UNSAFE_IN_SCRIPT = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def script_json(value: Any) -> str:
    """JSON that can sit inside a <script> element whatever its strings hold."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return re.sub("[<>&\u2028\u2029]", lambda m: _UNSAFE_IN_SCRIPT[m.group()], text)


def script_safe_code(code: str) -> str:
    """JS or CSS source that cannot end its element early (`</script` inside a string or regex)."""
    return re.sub(r"</(script|style)", r"<\\/\1", code, flags=re.IGNORECASE).replace("<!--", "<\\!--")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def page_data(explorer: AttentionExplorer, layers: Iterable[int]) -> dict[str, Any]:
    """The synced state (buffers apart, compressed) and each layer's heads as the kernel sends them."""
    state: dict[str, Any] = {}
    buffers: dict[str, str] = {}
    import anywidget

    inherited = set(anywidget.AnyWidget.class_trait_names())  # layout, tooltip, _esm...: not the explorer's
    for name in explorer.trait_names(sync=lambda sync: sync):
        if name.startswith("_") or name in inherited:
            continue
        value = getattr(explorer, name)
        if isinstance(value, bytes | bytearray | memoryview):
            buffers[name] = _b64(zlib.compress(bytes(value), 6))
        else:
            state[name] = value
    state.update(read_only_prompt=True, error="", focus_token=-1, focus_locked=False, standalone=True)
    analysis = explorer._current()
    embedded = {}
    for layer in layers:
        heads = analysis.layer_pattern(layer)
        dtype, data = wire.encode_pattern(heads)  # [heads, n, n], float16 up to 512 tokens, else uint8
        embedded[str(layer)] = {"dtype": dtype, "deflate": _b64(zlib.compress(data, 6))}
    return {"state": state, "buffers": buffers, "layers": embedded}


def render_page(data: dict[str, Any], title: str, script: str, css: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<style>body{{margin:16px;font-family:system-ui,sans-serif}}\n{script_safe_code(css)}</style>\n"
        "</head><body>\n"
        f'<script type="application/json" data-attn-widget>{script_json(data)}</script>\n'
        f"<script>{script_safe_code(script)}</script>\n"
        "</body></html>\n"
    )


def standalone_html(explorer: AttentionExplorer, layers: Iterable[int] | None = None) -> str:
    from .explorer import STATIC

    chosen = [explorer.layer] if layers is None else sorted({int(layer) for layer in layers})
    for layer in chosen:
        explorer._check_layer({"value": layer})
    script = (STATIC / "standalone.js").read_text(encoding="utf-8")
    css = (STATIC / "widget.css").read_text(encoding="utf-8")
    title = f"Attention: {explorer.model_name} \u00b7 {' '.join(explorer.prompt.split())[:80]}"
    return render_page(page_data(explorer, chosen), title, script, css)
