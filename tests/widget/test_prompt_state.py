"""One state transition for a prompt: whoever sets it (Python, the prompt box, the dataset
stepper, another thread), the explorer's state afterwards is the state of exactly one prompt;
what depends on the prompt is re-derived with it; Ctrl-C before the publication leaves the
previous state whole, during it the new one; errors last as long as their cause."""

from __future__ import annotations

import signal
import threading

import numpy as np
import pytest
from prompt_consistency import assert_one_prompt, reference

from attn_widget import AttentionExplorer
from attn_widget.analysis import prompt as prompt_module
from attn_widget.errors import PromptError
from conftest import recording

PROMPT = "When mary and john went to the store mary gave a drink to john"
SHORT = "the cat sat"
COMPARE = "When john and mary went to the store john gave a drink to mary"  # PROMPT's token count


@pytest.fixture
def weighed(full_bridge):
    return recording(AttentionExplorer(full_bridge, prompt=PROMPT, layer=1, head=2))


# ---- what depends on the prompt is re-derived with it ----------------------------------------


def test_with_an_answer_a_shorter_prompt_is_taken_and_its_attribution_re_derived(weighed):
    weighed.answer, weighed.counterfactual = " mary", " john"
    weighed.focus_token, weighed.focus_locked = 10, True  # attribution at a token the next prompt lacks
    assert weighed.attribution_query == 10
    weighed.prompt = SHORT
    assert_one_prompt(weighed)
    n = len(weighed.tokens)
    assert weighed.attribution_query == n - 1 and len(weighed.attribution) == n and weighed.error == ""
    expected = weighed.logit_attribution(1, 2)
    np.testing.assert_allclose(weighed.attribution, expected, atol=1e-5)
    weighed.set_state({"prompt": PROMPT})  # the prompt box: longer again
    weighed.set_state({"prompt": SHORT + " on"})  # and shorter
    assert_one_prompt(weighed)
    assert weighed.error == "" and len(weighed.attribution) == len(weighed.tokens)


def test_the_dataset_stepper_runs_the_prompt_it_steps_to(explorer):
    prompts = [PROMPT, SHORT, "the mat was on the cat and the dog"]
    explorer.run_dataset(prompts, batch_size=2, progress=False)
    revision = explorer.revision
    explorer.set_state({"dataset_index": 2, "prompt": prompts[2]})  # what the step buttons send
    assert explorer.dataset_index == 2 and explorer.prompt == prompts[2]
    assert_one_prompt(explorer)
    assert explorer.revision == revision + 1  # one run, not two
    explorer.set_state({"dataset_index": 1})  # the index alone decides the prompt too
    assert (explorer.dataset_index, explorer.prompt) == (1, SHORT)
    assert_one_prompt(explorer)
    explorer.set_state({"prompt": "a prompt of my own"})  # typing leaves the dataset
    assert explorer.dataset_index == -1
    assert_one_prompt(explorer)
    explorer.set_state({"dataset_index": 7, "prompt": "x"})  # out of range: refused, nothing changes
    assert "out of range" in explorer.error and explorer.prompt == "a prompt of my own"
    assert_one_prompt(explorer)


def test_threads_setting_prompts_leave_one_prompt(explorer):
    """A thread setting `prompt` from Python and another sending front-end updates: every state
    published, and the last, belongs to one prompt."""
    prompts = [PROMPT, SHORT, "the dog sat on the mat", "mary gave john a ball", "to the park"]
    analyses = {p: reference(explorer, p) for p in prompts}
    torn: list[tuple[str, list[str]]] = []

    def check(_change):  # every publication, as observers see it
        if explorer.tokens != analyses[explorer.prompt].tokens:
            torn.append((explorer.prompt, list(explorer.tokens)))

    explorer.observe(check, names=["revision"])

    def from_python(offset: int) -> None:
        for i in range(6):
            explorer.prompt = prompts[(i + offset) % len(prompts)]

    def from_front_end(offset: int) -> None:
        for i in range(6):
            explorer.set_state({"prompt": prompts[(i + offset) % len(prompts)]})

    threads = [threading.Thread(target=from_python, args=(0,)), threading.Thread(target=from_front_end, args=(2,))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert torn == []
    assert_one_prompt(explorer, analyses[explorer.prompt])


# ---- the stop button -------------------------------------------------------------------------


def test_ctrl_c_after_the_model_ran_before_the_prompt_is_stored_keeps_the_previous_state(explorer, monkeypatch):
    before = {name: getattr(explorer, name) for name in ("prompt", "tokens", "thumbnails", "score_table")}
    previous = reference(explorer, explorer.prompt)
    finish = prompt_module.PromptAnalysis.finish

    def interrupted(self, *args, **kwargs):
        finish(self, *args, **kwargs)  # the model has run and every layer is reduced
        raise KeyboardInterrupt

    monkeypatch.setattr(prompt_module.PromptAnalysis, "finish", interrupted)
    with pytest.raises(KeyboardInterrupt):
        explorer.prompt = SHORT
    assert {name: getattr(explorer, name) for name in before} == before
    assert "Interrupted" in explorer.error
    assert_one_prompt(explorer, previous)
    monkeypatch.setattr(prompt_module.PromptAnalysis, "finish", finish)
    explorer.prompt = SHORT
    assert_one_prompt(explorer)
    assert explorer.error == ""


def test_ctrl_c_while_the_new_state_is_published_arrives_once_it_is_whole(explorer):
    def press_stop(_change):
        signal.raise_signal(signal.SIGINT)  # the stop button, in the middle of the publication

    explorer.observe(press_stop, names=["tokens"])
    with pytest.raises(KeyboardInterrupt):
        explorer.prompt = SHORT
    explorer.unobserve(press_stop, names=["tokens"])
    assert explorer.prompt == SHORT
    assert_one_prompt(explorer)


# ---- errors last as long as their cause ----------------------------------------------------------


def test_the_compare_prompts_error_goes_with_it(weighed):
    weighed.compare_prompt = COMPARE
    assert weighed.error == ""
    weighed.prompt = SHORT  # another token count: shown without the comparison, and said so
    assert "compare prompt" in weighed.error
    assert_one_prompt(weighed)
    weighed.compare_prompt = ""
    assert weighed.error == ""
    with pytest.raises(PromptError, match="same token count"):
        weighed.compare_prompt = COMPARE  # refused at once: the prompt is SHORT
    assert weighed.compare_prompt == ""
    weighed.prompt = PROMPT  # a prompt of the compare prompt's length again clears it too
    weighed.compare_prompt = COMPARE
    weighed.prompt = SHORT
    assert "compare prompt" in weighed.error
    weighed.prompt = PROMPT
    assert weighed.error == "" and weighed._session.options.comparing


def test_a_failing_detectors_error_goes_when_it_is_removed(explorer):
    import torch

    def short_only(ids):
        if len(ids) > 8:
            raise RuntimeError("too long for me")
        return torch.tril(torch.ones(len(ids), len(ids)))

    explorer.prompt = SHORT
    explorer.add_detector("short_only", short_only)
    assert explorer.error == ""
    explorer.prompt = PROMPT
    assert "short_only" in explorer.error and "short_only" not in explorer.score_table
    explorer.remove_detector("short_only")
    assert explorer.error == ""
    explorer.add_detector("short_again", lambda ids: torch.eye(len(ids)))
    assert explorer.error == "" and "short_again" in explorer.score_table


def test_a_refused_prompts_error_goes_with_the_next_good_prompt(explorer):
    explorer.set_state({"prompt": ""})
    assert "empty" in explorer.error
    assert_one_prompt(explorer)
    explorer.prompt = SHORT
    assert explorer.error == ""


def test_a_prompt_typed_in_the_widget_runs_the_model_once(bridge, monkeypatch):
    """ipywidgets applies a front-end update inside hold_trait_notifications, and traitlets sets the
    held prompt again when the hold ends: that must not run the model a second time."""
    w = AttentionExplorer(bridge, prompt="When mary and john went")
    runs: list[str] = []
    original = prompt_module.PromptAnalysis.__init__

    def counted(self, backend, prompt, *args, **kwargs):
        runs.append(prompt)
        original(self, backend, prompt, *args, **kwargs)

    monkeypatch.setattr(prompt_module.PromptAnalysis, "__init__", counted)
    w.set_state({"prompt": "The cat sat on the mat"})
    assert runs == ["The cat sat on the mat"] and w.prompt == "The cat sat on the mat" and w.error == ""
    w.prompt = "The dog sat on the mat"  # from Python, as before
    assert runs[1:] == ["The dog sat on the mat"]
