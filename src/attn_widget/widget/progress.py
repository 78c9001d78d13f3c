"""Progress of a long run (a prompt scored layer by layer, a dataset, an ablation sweep): the
widget's bar (the `progress` trait) and a notebook bar (tqdm.auto, when installed), both shown only
once the run has taken PROGRESS_AFTER_S, so quick runs never flash a bar."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from attn_widget.widget.traits import ExplorerTraits

PROGRESS_AFTER_S = 0.5
"""A run shows progress once it has taken this long; a shorter one shows none."""
PROGRESS_INTERVAL_S = 0.2
"""Once shown, the widget's bar hears of progress at most this often (and always of the end)."""

Tick = Callable[..., None]
"""`tick(done, steps=None, phase=None)`: that many steps of the run are finished; a new `phase` (a
label, with its `steps`) starts a new part of it ("running the model", then "scores")."""


class NotebookBar(Protocol):
    n: int

    def update(self, n: int) -> Any: ...

    def reset(self, total: int) -> Any: ...

    def set_description(self, desc: str) -> Any: ...

    def close(self) -> None: ...


def tqdm_bar(label: str, total: int, done: int, unit: str) -> NotebookBar | None:
    """A notebook bar from tqdm.auto (a widget in Jupyter, text elsewhere); None without tqdm."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    bar: NotebookBar = tqdm(total=total, initial=done, desc=label, unit=unit)
    return bar


@contextmanager
def progress(
    widget: ExplorerTraits,
    label: str,
    total: int,
    unit: str,
    notebook: bool = True,
    clock: Callable[[], float] | None = None,
    make_bar: Callable[[str, int, int, str], NotebookBar | None] | None = None,
    names: dict[str, Any] | None = None,
) -> Iterator[Tick]:
    """Yields `tick(done, steps=None, phase=None)` (`steps`: the total, when it changes). Once the
    run has taken PROGRESS_AFTER_S, each tick sets the `progress` trait ({"label", "done", "total"})
    and, with `notebook`, moves a notebook bar; the trait is cleared and the bar closed when the
    run ends, however it ends. A run that is over before it was shown shows nothing. `names` go into
    the trait as they are (the run's id for its stop button). `clock`
    (time.monotonic) and `make_bar` (tqdm_bar) are for tests."""
    clock = clock or time.monotonic
    make_bar = make_bar or tqdm_bar
    start = last = clock()
    shown = False
    bar: NotebookBar | None = None
    state: dict[str, Any] = {**(names or {}), "label": label, "done": 0, "total": total}
    heard: list[object] = []
    hear = heard.append

    def publish(value: dict[str, Any]) -> None:
        # A run asked by the front end runs inside ipywidgets' set_state, which holds trait
        # notifications (and so the sync) until it returns: then the bar goes out as it moves.
        heard.clear()
        widget.set_trait("progress", value)
        if not heard:
            widget.send_state("progress")

    def show(now: float, new_phase: bool) -> None:
        nonlocal shown, last, bar
        if notebook and not shown:
            bar = make_bar(state["label"], state["total"], state["done"], unit)
        elif bar is not None and new_phase:
            bar.reset(total=state["total"])
            bar.set_description(state["label"])
        shown, last = True, now
        publish(dict(state))
        if bar is not None:
            bar.update(state["done"] - bar.n)

    def tick(done: int, steps: int | None = None, phase: str | None = None) -> None:
        new_phase = phase is not None and phase != state["label"]
        state["done"] = done
        state["total"] = state["total"] if steps is None else steps
        state["label"] = phase or state["label"]
        now = clock()
        finished = done >= state["total"]
        if not shown and (now - start < PROGRESS_AFTER_S or finished):
            return  # quick so far, or this phase is over before a bar could say anything
        if not shown or new_phase or finished or now - last >= PROGRESS_INTERVAL_S:
            show(now, new_phase)

    widget.observe(hear, "progress")
    try:
        yield tick
    finally:
        if bar is not None:
            bar.close()
        if shown:
            publish({})
        widget.unobserve(hear, "progress")
