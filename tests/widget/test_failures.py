"""A model that raises, runs out of memory or is interrupted mid-run; rejected front-end updates;
unknown keyword arguments. The model is left as it was, the explorer keeps the previous prompt's
state and says what happened in `error`, and the next prompt works."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from attn_widget import AttentionExplorer
from attn_widget.errors import ModelError

PROMPT = "When mary and john went to the store mary gave a drink to john"
NEXT = "the cat sat on the mat"


def tiny_hf_gpt2(tokenizer):
    """In training mode with sdpa attention, as built from a config: the backend must switch both and back."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_head=4, n_embd=32, n_positions=64, vocab_size=len(tokenizer))
    return GPT2LMHeadModel(config)


def model_state(model) -> dict:
    """Everything a run may change: hooks on every module, training flags, attention implementation."""
    modules = {
        name: (dict(m._forward_hooks), dict(m._forward_pre_hooks), dict(m._backward_hooks), m.training)
        for name, m in model.named_modules()
    }
    config = getattr(model, "config", None)
    return {"modules": modules, "attn": getattr(config, "_attn_implementation", None)}


def shown_state(widget: AttentionExplorer) -> dict:
    names = ("prompt", "tokens", "revision", "score_table", "thumbnails", "head_classes", "layer", "head")
    return {name: getattr(widget, name) for name in names}


def failing_layer(model):
    """The second layer's attention module, whose forward the tests make fail."""
    if hasattr(model, "transformer"):  # Hugging Face GPT-2
        return model.transformer.h[1].attn
    return model.blocks[1].attn  # TransformerBridge


FAILURES = {
    "raises": lambda: RuntimeError("shape mismatch in a custom layer"),
    "out_of_memory": lambda: torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
}


@pytest.fixture(params=["bridge", "hf"])
def model_and_explorer(request, tokenizer):
    if request.param == "bridge":
        model = request.getfixturevalue("bridge")
        widget = AttentionExplorer(model, prompt=PROMPT)
    else:
        model = tiny_hf_gpt2(tokenizer)
        widget = AttentionExplorer(model, PROMPT, tokenizer=tokenizer)
    return model, widget


@contextmanager
def broken_layer(model, error: BaseException) -> Iterator[None]:
    """The second layer raises `error` as it starts (a pre-hook: bridges forward attribute writes)."""

    def fail(*_args):
        raise error

    handle = failing_layer(model).register_forward_pre_hook(fail)
    try:
        yield
    finally:
        handle.remove()


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failing_model_leaves_model_and_explorer_as_they_were(model_and_explorer, failure):
    model, widget = model_and_explorer
    shown_before, clean = shown_state(widget), model_state(model)
    error = FAILURES[failure]()
    with broken_layer(model, error):
        model_before = model_state(model)
        with pytest.raises(ModelError, match=type(error).__name__) as raised:
            widget.prompt = NEXT
        assert raised.value.__cause__ is error
        assert model_state(model) == model_before
        assert shown_state(widget) == shown_before
        assert type(error).__name__ in widget.error and str(error) in widget.error
    widget.prompt = NEXT  # the next prompt works
    assert "".join(widget.tokens).endswith(NEXT) and widget.error == ""
    assert model_state(model) == clean


def test_the_stop_button_interrupts_restores_and_propagates(model_and_explorer):
    """KeyboardInterrupt is how the notebook's stop button reaches the kernel: the user must see
    it stop (so it propagates), after the model and the explorer are put back."""
    model, widget = model_and_explorer
    shown_before = shown_state(widget)
    with broken_layer(model, KeyboardInterrupt()):
        model_before = model_state(model)
        with pytest.raises(KeyboardInterrupt):
            widget.prompt = NEXT
        assert model_state(model) == model_before
        assert shown_state(widget) == shown_before
        assert "Interrupted" in widget.error
    widget.prompt = NEXT
    assert "".join(widget.tokens).endswith(NEXT) and widget.error == ""


def test_a_failure_of_a_front_end_prompt_shows_and_the_box_goes_back(model_and_explorer, monkeypatch):
    model, widget = model_and_explorer
    resent: list[list[str]] = []
    send_state = widget.send_state
    monkeypatch.setattr(widget, "send_state", lambda key=None: (resent.append(key), send_state(key)))
    shown_before = shown_state(widget)
    with broken_layer(model, torch.cuda.OutOfMemoryError("CUDA out of memory")):
        widget.set_state({"prompt": NEXT})  # no exception out of the comm
        assert shown_state(widget) == shown_before and "OutOfMemoryError" in widget.error
        assert ["prompt"] in resent  # the front end's box shows the kept prompt again
    with broken_layer(model, KeyboardInterrupt()):
        with pytest.raises(KeyboardInterrupt):
            widget.set_state({"prompt": NEXT, "layer": 0})
        assert shown_state(widget) == shown_before and "Interrupted" in widget.error
    widget.set_state({"prompt": NEXT})
    assert "".join(widget.tokens).endswith(NEXT) and widget.error == ""


# ---- rejected front-end updates: every trait of the update goes back ------------------------


@pytest.fixture
def explorer(bridge):
    widget = AttentionExplorer(bridge, prompt=PROMPT, layer=1, head=2)
    widget.resent = []
    send_state = widget.send_state
    widget.send_state = lambda key=None: (widget.resent.append(key), send_state(key))
    return widget


def test_a_rejected_update_restores_every_trait_it_touched(explorer):
    before = {k: getattr(explorer, k) for k in ("layer", "head", "color_scale", "shade_by", "focus_locked", "metric")}
    update = {"layer": 2, "head": 0, "color_scale": "log", "shade_by": "given", "focus_locked": True,
              "metric": "entropy", "focus_token": 999}  # fmt: skip
    explorer.set_state(update)
    assert "token 999 is out of range" in explorer.error
    assert {k: getattr(explorer, k) for k in before} == before
    assert explorer.focus_token == -1
    assert sorted(explorer.resent[-1]) == sorted(update)  # and every view is told so


def test_a_prompt_that_ran_is_undone_when_another_value_of_its_update_fails(explorer):
    shown_before = shown_state(explorer)
    explorer.set_state({"prompt": NEXT, "layer": 7})
    assert "layer 7 is out of range" in explorer.error
    after = shown_state(explorer)
    assert after.pop("revision") >= shown_before.pop("revision")
    assert after == shown_before
    assert explorer.pattern(0, 0).shape == (len(explorer.tokens),) * 2


@pytest.mark.parametrize("trait", ["tokens", "n_layers", "score_table", "revision", "read_only_prompt"])
def test_the_front_end_cannot_set_what_the_kernel_computes(explorer, trait):
    before = getattr(explorer, trait)
    explorer.set_state({trait: [] if trait in ("tokens",) else 99, "layer": 0})
    assert getattr(explorer, trait) == before and explorer.layer == 1
    assert trait in explorer.error


# ---- keyword arguments ----------------------------------------------------------------------


def test_unknown_keyword_arguments_raise_a_type_error_naming_them(bridge):
    with pytest.raises(TypeError, match="unexpected keyword arguments 'colour_scale', 'heads'"):
        AttentionExplorer(bridge, prompt=PROMPT, colour_scale="log", heads=2)
    with pytest.raises(TypeError, match="'n_layers'"):
        AttentionExplorer(bridge, prompt=PROMPT, n_layers=2)  # read-only: the model decides


def test_widget_traits_are_keyword_arguments_too(bridge):
    widget = AttentionExplorer(bridge, prompt=PROMPT, color_scale="log", metric="entropy", layout={"width": "600px"})
    assert (widget.color_scale, widget.metric, widget.layout.width) == ("log", "entropy", "600px")


@pytest.mark.parametrize("error", [KeyboardInterrupt(), torch.cuda.OutOfMemoryError("CUDA out of memory")])
def test_a_failure_while_the_scores_are_reduced_leaves_the_previous_prompt_whole(bridge, monkeypatch, error):
    """Nothing of a new prompt is published before all of it is computed: a failure while its
    scores are reduced leaves the previous prompt shown, in full, and says what happened."""
    from attn_widget.analysis import prompt as analysis

    widget = AttentionExplorer(bridge, prompt=PROMPT)
    shown_before = shown_state(widget)
    published: list[list[str]] = []
    widget.observe(lambda change: published.append(change["new"]), names=["tokens"])
    reduce_layer = analysis.reduce_layer
    calls = []

    def failing_second_layer(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise error
        return reduce_layer(*args, **kwargs)

    monkeypatch.setattr(analysis, "reduce_layer", failing_second_layer)
    with pytest.raises(type(error)):
        widget.prompt = NEXT
    assert len(calls) == 2 and published == []  # the model ran, and none of it went out
    after = shown_state(widget)
    assert after == shown_before and widget.error
    assert not np.isnan(np.array(widget.score_table["entropy"], dtype=float)).any()
    monkeypatch.setattr(analysis, "reduce_layer", reduce_layer)
    widget.prompt = NEXT
    assert "".join(widget.tokens).endswith(NEXT) and widget.error == ""
