"""The stop button held back while a new state is published: a KeyboardInterrupt that arrives
then is raised once the state is whole, so the explorer never shows half of two prompts."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any


@contextmanager
def deferred() -> Iterator[None]:
    """SIGINT is recorded, not acted on, inside the block; afterwards the previous handler gets it
    (Python's default raises KeyboardInterrupt). Signals reach the main thread only: elsewhere
    there is nothing to hold back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[tuple[int, FrameType | None]] = []

    def record(signum: int, frame: FrameType | None) -> None:
        received.append((signum, frame))

    try:
        previous: Any = signal.signal(signal.SIGINT, record)
    except ValueError:  # an interpreter that does not let us handle signals: publish as is
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            if callable(previous):
                previous(*received[0])
            elif previous != signal.SIG_IGN:
                raise KeyboardInterrupt
