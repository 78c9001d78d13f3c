"""The explorer's research API: detectors, dataset mode, sinks, head similarity, retrieval test."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
import torch
from transformer_lens.head_detector import detect_head, get_induction_head_detection_pattern

from attn_widget.analysis.dataset import DATASET_METRICS
from attn_widget.errors import AttnWidgetError, SelectionError
from attn_widget.maths.detectors import DetectorError
from attn_widget.widget import progress as progress_module
from tiny_models import random_prompt

PROMPT = "When mary and john went to the store mary gave a drink to john"


def _prompts(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [random_prompt(rng, rng.randint(4, 20)) for _ in range(count)]


def _cached_patterns(model, prompt: str) -> torch.Tensor:
    _, cache = model.run_with_cache(model.to_tokens(prompt))
    return torch.stack([cache[f"blocks.{i}.attn.hook_pattern"][0] for i in range(model.cfg.n_layers)]).double()


@pytest.mark.parametrize("measure", ["mul", "abs"])
def test_a_custom_detector_equals_transformer_lens_detect_head(explorer, bridge, measure):
    scores = explorer.add_detector("tl_induction", get_induction_head_detection_pattern, measure=measure)
    tokens = bridge.to_tokens(PROMPT)
    reference = detect_head(bridge, PROMPT, get_induction_head_detection_pattern(tokens.cpu()), error_measure=measure)
    np.testing.assert_allclose(scores, reference.numpy(), atol=5e-4 if measure == "abs" else 1e-5)
    assert "tl_induction" in explorer.score_table and "tl_induction" in explorer.scores
    if measure == "mul":  # the same cells as the built-in induction score
        np.testing.assert_allclose(scores, explorer.scores["induction"], atol=1e-5)
    explorer.prompt = "the cat sat on the mat the cat"  # follows the prompt
    reference = detect_head(
        bridge, "the cat sat on the mat the cat",
        get_induction_head_detection_pattern(bridge.to_tokens("the cat sat on the mat the cat").cpu()),
        error_measure=measure,
    )  # fmt: skip
    np.testing.assert_allclose(
        explorer.scores["tl_induction"], reference.numpy(), atol=5e-4 if measure == "abs" else 1e-5
    )
    explorer.remove_detector("tl_induction")
    assert "tl_induction" not in explorer.score_table


def test_built_in_example_detectors(explorer, bridge):
    patterns = _cached_patterns(bridge, PROMPT)
    ids = bridge.to_tokens(PROMPT)[0]
    same = (ids[:, None] == ids[None, :]).double().tril()
    expected = (patterns * same).sum((-2, -1)) / patterns.sum((-2, -1))
    np.testing.assert_allclose(explorer.scores["same_token"], expected.numpy(), atol=1e-5)
    assert {"same_token", "successor"} <= set(explorer.detectors)


def test_bad_detectors_raise_naming_themselves_and_the_widget_goes_on(explorer):
    with pytest.raises(DetectorError, match="'wrong shape' returned shape"):
        explorer.add_detector("wrong shape", lambda t: np.zeros((2, 2)))
    with pytest.raises(DetectorError, match="'nan' returned NaN"):
        explorer.add_detector("nan", lambda t: np.full((len(t), len(t)), np.nan))
    with pytest.raises(DetectorError, match="'boom' raised RuntimeError: no"):
        explorer.add_detector("boom", lambda t: (_ for _ in ()).throw(RuntimeError("no")))
    with pytest.raises(DetectorError, match="already a metric"):
        explorer.add_detector("induction", lambda t: np.eye(len(t)))
    assert set(explorer.detectors) == {"same_token", "successor"}
    # Works on this prompt's length only: fine now, reported (and left out) on a longer prompt.
    n = len(explorer.tokens)
    explorer.add_detector("fixed", lambda t: np.eye(n))
    explorer.prompt = PROMPT + " and the cat"
    assert "'fixed' returned shape" in explorer.error
    assert "fixed" not in explorer.score_table and "induction" in explorer.score_table
    explorer.prompt = PROMPT
    assert explorer.error == "" and "fixed" in explorer.score_table


def test_run_dataset_publishes_means_spread_and_steps_through_prompts(explorer, monkeypatch):
    clock = itertools.count()  # every batch takes a second: past the threshold, each reported
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: float(next(clock)))
    prompts = _prompts(5)
    seen = []
    explorer.observe(lambda change: seen.append(dict(change["new"])), "progress")
    explorer.add_detector("tl_induction", get_induction_head_detection_pattern)
    result = explorer.run_dataset(prompts, batch_size=2, progress=False)
    during = list(seen)
    assert result.n_prompts == 5 and result.n_tokens > 5
    assert set(explorer.dataset_scores) == set(DATASET_METRICS) | {"same_token", "successor", "tl_induction"}
    alone = []
    for p in prompts:
        explorer.prompt = p
        alone.append(explorer.scores)
    for metric in ("induction", "sink_share", "same_token", "tl_induction"):
        each = np.stack([a[metric] for a in alone])
        np.testing.assert_allclose(explorer.dataset_scores[metric]["mean"], each.mean(0), atol=1e-5)
        np.testing.assert_allclose(explorer.dataset_scores[metric]["std"], each.std(0), atol=1e-5)
        np.testing.assert_allclose(explorer.score_table["dataset:" + metric], each.mean(0), atol=2e-5)
        np.testing.assert_allclose(explorer.score_spread["dataset:" + metric], each.std(0), atol=2e-5)
    assert [s.get("done") for s in during] == [2, 4, 5, None] and during[-1] == {}
    assert explorer.dataset_size == 5
    explorer.metric = "dataset:induction"
    explorer.dataset_index = 3
    assert explorer.prompt == prompts[3] and explorer.dataset_index == 3
    explorer.prompt = "the cat"  # one's own prompt again
    assert explorer.dataset_index == -1
    with pytest.raises(SelectionError, match="dataset prompt 9 is out of range"):
        explorer.dataset_index = 9
    assert len(explorer.dataset.table()) == len(explorer.dataset.metrics) * 12


def test_no_dataset_yet(explorer):
    with pytest.raises(AttnWidgetError, match="run_dataset"):
        explorer.dataset_scores  # noqa: B018


def test_sinks_match_the_patterns(explorer, bridge):
    patterns = _cached_patterns(bridge, PROMPT)
    n = patterns.shape[-1]
    sinks = explorer.sinks()
    alpha = np.zeros((3, 4, n))
    for layer in range(3):
        for head in range(4):
            for k in range(n):
                alpha[layer, head, k] = patterns[layer, head, k:, k].mean().item()
    np.testing.assert_allclose(sinks.received, alpha, atol=1e-5)
    # a sink is seen by enough queries: at least 4 and a quarter of the prompt (n - k queries see key k)
    eligible = np.array([n - k >= min(n, max(4, -(-n // 4))) for k in range(n)])
    clear = np.abs(alpha - 0.3) > 1e-5  # a float32 sum may split a near-tie
    np.testing.assert_array_equal(sinks.sink_mask[clear], ((alpha > 0.3) & eligible)[clear])
    assert explorer.sink_positions[1][2] == [int(k) for k in np.flatnonzero(sinks.sink_mask[1, 2])]
    share = (patterns * torch.as_tensor(sinks.sink_mask)[:, :, None, :]).sum(-1).mean(-1)
    np.testing.assert_allclose(explorer.scores["sink_share"], share.numpy(), atol=1e-5)
    explorer.sink_threshold = 0.9
    assert explorer.sinks().threshold == 0.9
    clear = np.abs(alpha - 0.9) > 1e-5
    np.testing.assert_array_equal(explorer.sinks().sink_mask[clear], ((alpha > 0.9) & eligible)[clear])
    assert explorer.sinks().sink_mask.sum() < sinks.sink_mask.sum()


def test_the_heatmap_can_exclude_sinks(explorer):
    layer, head = next((i, h) for i in range(3) for h in range(4) if explorer.sink_positions[i][h])
    sinks = explorer.sink_positions[layer][head]
    revision = explorer.revision
    explorer.exclude_sinks = True
    assert explorer.revision == revision + 1  # the front end asks again
    explorer._on_front_end_message(explorer, {"type": "pattern", "id": 1, "layer": layer, "head": head}, [])
    _reply, buffers = explorer.sent[-1]
    n = len(explorer.tokens)
    shown = np.frombuffer(buffers[0], dtype="<f2").reshape(n, n).astype(np.float64)
    raw = explorer.pattern(layer, head).astype(np.float64)
    raw[:, sinks] = 0
    rows = raw.sum(-1, keepdims=True)
    expected = np.divide(raw, rows, out=np.zeros_like(raw), where=rows > 1e-6)  # else all on sinks: left at zero
    np.testing.assert_allclose(shown, expected, atol=2e-3)
    assert (shown[:, sinks] == 0).all()


def test_head_similarity_on_the_prompt(explorer, bridge):
    patterns = _cached_patterns(bridge, PROMPT).reshape(12, -1, len(explorer.tokens))
    result = explorer.head_similarity()
    for i, j in [(0, 5), (3, 11), (7, 7)]:
        p, q = patterns[i], patterns[j]
        m = (p + q) / 2
        js = (0.5 * torch.special.xlogy(p, p / m).nansum(-1) + 0.5 * torch.special.xlogy(q, q / m).nansum(-1)).mean()
        assert result.distance[i, j] == pytest.approx(js.item() / np.log(2), abs=1e-5)
    assert sorted(map(tuple, explorer.similarity["order"])) == [(i, h) for i in range(3) for h in range(4)]
    assert np.allclose(explorer.similarity["distance"], result.ordered(), atol=1e-5)


def test_similarity_view_follows_the_prompt_while_shown(explorer):
    explorer.show_similarity = True
    first = explorer.similarity["distance"]
    explorer.prompt = "the cat sat on the mat"
    assert explorer.similarity["distance"] != first
    explorer.show_similarity = False
    assert explorer.similarity == {}


def test_retrieval_test_is_a_score_view(explorer):
    scores = explorer.retrieval_test(haystack_len=20, needle_len=4, samples=3, seed=1)
    assert scores.shape == (3, 4)
    np.testing.assert_allclose(explorer.score_table["retrieval"], scores, atol=1e-5)
    explorer.metric = "retrieval"


def test_precomputed_attention_gets_detectors_sinks_and_similarity(tokenizer):
    from references import hf_model, precomputed_from_hf

    widget = precomputed_from_hf(hf_model("gpt2", tokenizer), tokenizer, numpy=True)
    patterns = torch.stack([torch.from_numpy(widget.pattern(layer, 0)) for layer in range(2)])  # head 0 of each layer
    scores = widget.add_detector("diagonal", lambda t: np.eye(len(t)))
    np.testing.assert_allclose(scores[:, 0], patterns.diagonal(dim1=-2, dim2=-1).mean(-1).numpy(), atol=2e-3)
    assert widget.sinks().received.shape == (2, 4, len(widget.tokens))
    assert widget.head_similarity().distance.shape == (8, 8)
    with pytest.raises(AttnWidgetError, match="precomputed attention cannot"):
        widget.run_dataset(["the cat"])


def _dataset_run_with(explorer, on_second_batch, prompts: list[str]) -> tuple[object, list[int]]:
    """`run_dataset` in batches of 2, with `on_second_batch()` called as the second batch runs; the
    result and the backend passes made."""
    original, calls = explorer._session.backend.run, []

    def run(tokens, on_pattern, last_layer=None):
        calls.append(1)
        if len(calls) == 2:
            on_second_batch()
        return original(tokens, on_pattern, last_layer)

    explorer._session.backend.run = run
    try:
        return explorer.run_dataset(prompts, batch_size=2, progress=False), calls
    finally:
        explorer._session.backend.run = original


def test_an_interrupted_dataset_run_keeps_what_finished(explorer, capsys):
    def interrupt():
        raise KeyboardInterrupt

    result, _ = _dataset_run_with(explorer, interrupt, _prompts(6))
    assert result.interrupted and result.n_prompts == 2 and explorer.dataset_size == 2
    assert "kept the 2 of 6 prompts" in capsys.readouterr().out
    assert explorer.progress == {} and "dataset:induction" in explorer.score_table
    explorer.dataset_index = 1  # the finished prompts can still be stepped through
    assert explorer.prompt == _prompts(6)[1]


def test_the_stop_message_stops_a_dataset_run_after_its_batch(explorer, capsys, monkeypatch):
    """The progress bar's stop button names its run: that run stops after the batch under way."""
    clock = itertools.count()  # every batch takes a second: the bar (and its stop button) shows
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: float(next(clock)))

    def stop():
        explorer._on_front_end_message(explorer, {"type": "stop", "run": explorer.progress["run"] + 1}, [])
        explorer._on_front_end_message(explorer, {"type": "stop", "run": explorer.progress["run"]}, [])

    result, calls = _dataset_run_with(explorer, stop, _prompts(6))
    assert result.interrupted and result.n_prompts == 4 and len(calls) == 2  # the other run's stop did nothing
    assert "kept the 4 of 6 prompts" in capsys.readouterr().out and explorer.progress == {}


def test_detectors_and_sinks_at_any_length(tokenizer):
    """Past 512 tokens (the old dense pass's limit) a prompt still has its detectors and sinks, scored
    in the prompt's own sweep and equal to the dense pattern's."""
    from attn_widget import AttentionExplorer
    from attn_widget.maths import sinks
    from attn_widget.maths.detectors import detector_score
    from tiny_models import native_model

    prompt = random_prompt(random.Random(7), 600)
    explorer = AttentionExplorer(native_model(tokenizer, n_ctx=1024), prompt=prompt)
    n = len(explorer.tokens)
    assert n > 512
    explorer.add_detector("diagonal", lambda t: np.eye(len(t)))
    assert "diagonal" in explorer.score_table and "sink_share" in explorer.scores and explorer.error == ""
    pattern = torch.from_numpy(explorer.pattern(1, 2))
    expected = torch.from_numpy(explorer._session.research.detectors["same_token"].expected(
        explorer._session.current().token_ids[0]).numpy())  # fmt: skip
    assert explorer.scores["same_token"][1, 2] == pytest.approx(
        float(detector_score(pattern[None], expected, "mul")[0]), abs=1e-5
    )
    assert explorer.scores["diagonal"][1, 2] == pytest.approx(float(pattern.diagonal().sum() / pattern.sum()), abs=1e-5)
    received = sinks.received_attention(pattern)
    np.testing.assert_allclose(explorer.sinks().received[1, 2], received.numpy(), atol=1e-6)
    assert len(explorer.sinks().received[0, 0]) == n


def test_a_rolled_back_front_end_update_restores_the_prompts_extras(explorer):
    sinks_before = explorer.sink_positions
    explorer.set_state({"prompt": "the cat sat on the mat", "layer": 99})  # the layer fails: all rolled back
    assert explorer.prompt == PROMPT and "layer 99" in explorer.error
    assert explorer.sink_positions == sinks_before
    assert len(explorer.sinks().received[0, 0]) == len(explorer.tokens)
