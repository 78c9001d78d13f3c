"""Priorities among the front end's requests in the kernel: the head the user asked for before any
prefetch.

ipywidgets hands the kernel one comm message at a time on its event loop. A "heads" prefetch
answered in one go would hold that loop for every head in it, and a click on another head would
wait behind them all. Instead a prefetch becomes a job answered one head at a time, each head a
callback on the event loop a moment after the last: between two heads the loop reads the sockets,
so a head request that arrives is answered at once, ahead of the rest of the prefetch.

A view that wants a head already on its way in a prefetch waits for that prefetch's reply rather
than asking (js/requests). So a prefetch is answered in slices: after PREFETCH_SLICE_S of work it
replies with the heads done so far, the others empty; the front end then asks alone for the one a
view waits on (answered before any prefetch) and prefetches the rest again. The newest prefetch
goes first (it is around the newest selection); one made for an older revision of the prompt is
answered at once with what it has. Heads of layers past the capture budget are left out of a
prefetch: each would run the model (seconds at 4k tokens) for a head nobody asked for yet.
Without a running event loop (plain Python, tests) a prefetch is answered whole, at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from attn_widget.widget import protocol
from attn_widget.widget.answers import HeadsAnswer, Reply, Shown

PREFETCH_GAP_S = 0.001
"""The pause between two prefetched heads: long enough for the loop to read waiting messages."""

PREFETCH_SLICE_S = 0.03
"""Work on one prefetch before it replies with what it has: about what a clicked head may wait."""

Send = Callable[[dict[str, Any], list[bytes]], None]


class Prefetch:
    """The kernel's queue of prefetch jobs for one explorer."""

    def __init__(self, send: Send, revision: Callable[[], int]) -> None:
        self.send, self.revision = send, revision
        self.jobs: list[HeadsAnswer] = []
        self.started: dict[int, float] = {}
        """id(job) -> when its first head was started."""
        self.timer: asyncio.TimerHandle | None = None
        self.last_activity = 0.0
        """`time.monotonic()` of the last message or prefetched head (the snapshot waits for quiet)."""

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    def idle_for(self) -> float:
        """Seconds since the last request work; 0 while prefetch jobs wait."""
        return 0.0 if self.jobs else time.monotonic() - self.last_activity

    def start(self, request: protocol.HeadsRequest, shown: Shown) -> Reply | None:
        """Queues a prefetch job (checked now: bad heads raise); returns the reply itself when
        there is no event loop to spread it over."""
        self.touch()
        job = HeadsAnswer(request, shown)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            while not job.done:
                job.step()
            return job.reply()
        job.whole = False
        self.jobs.append(job)
        if self.timer is None:
            self.timer = loop.call_later(PREFETCH_GAP_S, self.step)
        return None

    def step(self) -> None:
        """Answers one head of the newest job; replies to the jobs that are done or out of date."""
        self.timer = None
        current = self.revision()
        for job in [job for job in self.jobs if job.shown.revision != current]:
            self._finish(job)
        if not self.jobs:
            return
        job = self.jobs[-1]
        started = self.started.setdefault(id(job), time.monotonic())
        try:
            job.step()
        except Exception as err:  # never let a prefetch kill the loop: answer with the reason
            self.jobs.remove(job)
            self.started.pop(id(job), None)
            self.send(protocol.error_reply(job.request.id, err), [])
        else:
            if job.done or time.monotonic() - started >= PREFETCH_SLICE_S:
                self._finish(job)
        self.touch()
        if self.jobs:
            self.timer = asyncio.get_running_loop().call_later(PREFETCH_GAP_S, self.step)

    def _finish(self, job: HeadsAnswer) -> None:
        self.jobs.remove(job)
        self.started.pop(id(job), None)
        reply, buffers = job.reply()
        self.send(reply, buffers)
