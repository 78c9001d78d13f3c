"""The explorer in IPython: the live widget, then a static snapshot (export/snapshot.py) under a
display id kept current, so a saved notebook still shows what it showed.

Two outputs rather than one bundle: a front end that re-renders an updated output would rebuild
the live widget on every click, and JupyterLab without a kernel renders a widget bundle as "model
not found" rather than falling back to its other mimetypes. Where the widget renders (a live
kernel) the front end hides the snapshot with its key; elsewhere the snapshot shows alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

UPDATE_DELAY_S = 1.0
"""Changes from the front end are gathered this long before the snapshot is redrawn (off the
path of the head replies)."""
WATCHED = ["layer", "head", "prompt", "color_scale", "metric", "weighting", "compare_prompt", "exclude_sinks"]
"""Traits that change the snapshot (prompt, not revision: the prompt is set after it)."""


class SnapshotOutput:
    """The snapshot output of one explorer: shown once, then redrawn when what it shows changes."""

    def __init__(
        self, key: str, bundle: Callable[[], dict[str, str]], idle_for: Callable[[], float] = lambda: UPDATE_DELAY_S
    ) -> None:
        """`idle_for()`: seconds since the kernel last answered a request (the redraw waits for quiet)."""
        self.key, self.bundle, self.idle_for = key, bundle, idle_for
        self.watching = False
        self.timer: asyncio.TimerHandle | None = None

    def show(self, widget_bundle: dict[str, Any], text: str) -> None:
        from IPython.display import display

        display({**widget_bundle, "text/plain": text}, raw=True)  # type: ignore[no-untyped-call]
        display(self.bundle(), raw=True, display_id=self.key)  # type: ignore[no-untyped-call]

    def schedule(self, from_front_end: bool) -> None:
        """At once for a change made in Python (the cell's outputs are final when it ends), once
        clicks settle for a change from the front end."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or not from_front_end:
            self.update()
        else:
            self.timer = loop.call_later(UPDATE_DELAY_S, self.update_when_idle)

    def update_when_idle(self) -> None:
        """Redraws once no request has been answered for UPDATE_DELAY_S, so a redraw never delays
        a head reply that is already waiting."""
        quiet = self.idle_for()
        if quiet < UPDATE_DELAY_S:
            self.timer = asyncio.get_running_loop().call_later(UPDATE_DELAY_S - quiet, self.update_when_idle)
            return
        self.update()

    def update(self) -> None:
        from IPython.display import update_display

        self.timer = None
        update_display(self.bundle(), raw=True, display_id=self.key)  # type: ignore[no-untyped-call]
