"""Progress shows for runs over half a second, in the widget (the `progress` trait) and as a notebook
bar; quick runs show none. A fake clock stands in for time: nothing here sleeps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from attn_widget import AttentionExplorer
from attn_widget.widget import progress as progress_module
from attn_widget.widget.progress import PROGRESS_AFTER_S, PROGRESS_INTERVAL_S, progress

PROMPT = "When mary and john went to the store mary gave a drink to john"


class FakeClock:
    """Each reading is `step` seconds after the last."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class FakeWidget:
    """What the front end hears of the `progress` trait: each change, or, while notifications are
    held (a front-end update being applied), only what send_state sends."""

    def __init__(self, held: bool = False) -> None:
        self.progress: dict[str, Any] = {}
        self.published: list[dict[str, Any]] = []
        self.held, self.observers = held, []

    def observe(self, handler, name: str) -> None:
        self.observers.append(handler)

    def unobserve(self, handler, name: str) -> None:
        self.observers.remove(handler)

    def set_trait(self, name: str, value: dict[str, Any]) -> None:
        assert name == "progress"
        self.progress = value
        if not self.held:
            self.published.append(dict(value))
            for handler in self.observers:
                handler({"name": name, "new": value})

    def send_state(self, key: str) -> None:
        assert key == "progress" and self.held, "sent twice"
        self.published.append(dict(self.progress))


class FakeBar:
    made: ClassVar[list[FakeBar]] = []

    def __init__(self, label: str, total: int, done: int, unit: str) -> None:
        self.label, self.total, self.n, self.unit, self.closed = label, total, done, unit, False
        self.phases = [(label, total)]
        FakeBar.made.append(self)

    def update(self, n: int) -> None:
        self.n += n

    def reset(self, total: int) -> None:
        self.n, self.total = 0, total

    def set_description(self, desc: str) -> None:
        self.label = desc
        self.phases.append((desc, self.total))

    def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def no_bars_yet():
    FakeBar.made = []


def run(widget: FakeWidget, clock: Callable[[], float], ticks: list[int], total: int, notebook: bool = True) -> None:
    with progress(widget, "scores", total, "layer", notebook, clock=clock, make_bar=FakeBar) as tick:
        for done in ticks:
            tick(done)
    assert widget.observers == []


@pytest.mark.parametrize("held", [False, True])
def test_the_front_end_hears_each_step_even_while_notifications_are_held(held):
    widget = FakeWidget(held)
    run(widget, FakeClock(1.0), [1, 2], total=2, notebook=False)
    assert widget.published == [
        {"label": "scores", "done": 1, "total": 2},
        {"label": "scores", "done": 2, "total": 2},
        {},
    ]


def test_a_run_under_the_threshold_shows_no_bar():
    widget = FakeWidget()
    steps = 6
    run(widget, FakeClock(PROGRESS_AFTER_S / (steps + 2)), list(range(1, steps + 1)), total=steps)
    assert widget.published == [] and FakeBar.made == []


def test_a_long_run_publishes_each_step_and_a_notebook_bar_from_the_threshold_on():
    widget = FakeWidget()
    step = max(PROGRESS_AFTER_S, PROGRESS_INTERVAL_S) * 0.6  # the threshold passes at the second tick
    run(widget, FakeClock(step), [1, 2, 3, 4], total=4)
    assert widget.published == [
        {"label": "scores", "done": 2, "total": 4},
        {"label": "scores", "done": 3, "total": 4},
        {"label": "scores", "done": 4, "total": 4},
        {},
    ]
    (bar,) = FakeBar.made
    assert (bar.label, bar.total, bar.unit, bar.n, bar.closed) == ("scores", 4, "layer", 4, True)


def test_steps_closer_than_the_interval_wait_but_the_last_always_shows():
    widget = FakeWidget()
    gap = PROGRESS_INTERVAL_S * 0.3
    readings = iter([0.0, *(PROGRESS_AFTER_S + i * gap for i in range(9))])  # the start, then 9 ticks
    run(widget, lambda: next(readings), list(range(1, 10)), total=9, notebook=False)
    assert [p.get("done") for p in widget.published] == [1, 5, 9, None]  # shown, one interval later, the end
    assert FakeBar.made == []  # notebook=False: the widget's bar only


def test_a_new_phase_shows_its_label_and_restarts_the_bar():
    widget = FakeWidget()
    with progress(widget, "running the model", 2, "layer", clock=FakeClock(1.0), make_bar=FakeBar) as tick:
        tick(1)
        tick(2)
        tick(1, 2, "scores")
        tick(2)
    assert [(p.get("label"), p.get("done")) for p in widget.published] == [
        ("running the model", 1),
        ("running the model", 2),
        ("scores", 1),
        ("scores", 2),
        (None, None),
    ]
    (bar,) = FakeBar.made
    assert bar.phases == [("running the model", 2), ("scores", 2)] and bar.n == 2 and bar.closed


def test_a_run_that_fails_clears_the_bar():
    widget = FakeWidget()
    with (
        pytest.raises(KeyboardInterrupt),
        progress(widget, "dataset", 10, "prompt", clock=FakeClock(1.0), make_bar=FakeBar) as tick,
    ):
        tick(3)
        raise KeyboardInterrupt
    assert widget.published == [{"label": "dataset", "done": 3, "total": 10}, {}]
    assert FakeBar.made[0].closed


def test_a_prompt_scored_layer_by_layer_shows_progress_in_the_widget_and_the_notebook(bridge, monkeypatch):
    """A slow prompt (the fake clock makes every step a second): the widget hears of every layer,
    a notebook bar follows when Python asked; a prompt typed in the widget gets the widget's bar only."""
    w = AttentionExplorer(bridge, prompt=PROMPT)
    monkeypatch.setattr(progress_module.time, "monotonic", FakeClock(1.0))
    monkeypatch.setattr(progress_module, "tqdm_bar", FakeBar)
    seen: list[dict[str, Any]] = []
    w.observe(lambda change: seen.append(dict(change["new"])), "progress")
    w.prompt = "Then mary and john went to the park"
    layers = bridge.cfg.n_layers
    steps = [(phase, d) for phase in ("running the model", "scores") for d in range(1, layers + 1)]
    assert seen == [{"label": phase, "done": d, "total": layers} for phase, d in steps] + [{}]
    (bar,) = FakeBar.made
    assert (bar.n, bar.total, bar.unit, bar.closed) == (layers, layers, "layer", True)
    assert bar.phases == [("running the model", layers), ("scores", layers)]
    # typed in the widget: ipywidgets holds notifications while it applies the update, so each
    # step goes out through send_state, as it happens
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(w, "send_state", lambda key=None: sent.append(dict(w.progress)) if key == "progress" else None)
    w.set_state({"prompt": "The cat sat on the mat"})
    assert w.tokens[-1].strip() == "mat" and w.error == ""
    assert [(p.get("label"), p.get("done")) for p in sent[: 2 * layers + 1]] == [*steps, (None, None)]
    assert all(p == {} for p in sent[2 * layers :]) and len(FakeBar.made) == 1  # then the held sync: the same {}


def test_a_quick_prompt_shows_no_progress(bridge, monkeypatch):
    w = AttentionExplorer(bridge, prompt=PROMPT)
    monkeypatch.setattr(progress_module.time, "monotonic", FakeClock(PROGRESS_AFTER_S / 100))
    monkeypatch.setattr(progress_module, "tqdm_bar", FakeBar)
    seen: list[dict[str, Any]] = []
    w.observe(lambda change: seen.append(dict(change["new"])), "progress")
    w.prompt = "Then mary and john went to the park"
    assert seen == [] and FakeBar.made == [] and w.progress == {}


def test_after_a_dataset_run_the_stepper_counts_the_new_prompts(bridge):
    w = AttentionExplorer(bridge, prompt=PROMPT)
    first = ["the cat sat", "a dog ran", "mary went home"]
    w.run_dataset(first, progress=False)
    w.dataset_index = 1
    assert (w.dataset_index, w.dataset_size, w.prompt) == (1, 3, "a dog ran")
    second = [f"prompt number {i} of the new set" for i in range(30)]
    w.run_dataset(second, progress=False)  # the shown prompt is none of them: the stepper shows "- / 30"
    assert (w.dataset_index, w.dataset_size, w.prompt) == (-1, 30, "a dog ran")
    w.run_dataset(["a dog ran", *second[:29]], progress=False)  # it is the first: "1 / 30"
    assert (w.dataset_index, w.dataset_size, w.prompt) == (0, 30, "a dog ran")
