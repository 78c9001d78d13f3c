"""The bundled demo model: small, offline, Llama-shaped, and its heads do what the reference notebook
teaches, at long range too.

Scores are the project's own (`AttentionExplorer.scores`, `run_repeated_tokens_test`), the ones users see.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from attn_widget import AttentionExplorer, magics
from attn_widget.models import DEMO_MODEL_DIR, DEMO_MODEL_NAME, load_demo_model

PROMPT = "When Mary and John went to the store, Mary gave a drink to John."
WHOLE_WORDS = [" evening", " home", " Mary", " John", " store", " park"]
ORDINARY_TEXT = [  # not in the training data: sentences of the kind it was trained on
    "When the file is opened in text mode, the encoding defaults to the locale setting.",
    "Return a new list containing all items from the iterable in ascending order.",
    "She walked to the market in the morning and bought bread, cheese and fresh apples.",
    "If the timeout argument is not given, the call blocks until the operation completes.",
]


@pytest.fixture(scope="module")
def explorer():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        return AttentionExplorer(prompt=PROMPT)  # no model: the bundled one


def test_bundled_files_are_small():
    files = [f for f in DEMO_MODEL_DIR.iterdir() if f.is_file()]
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"} <= {f.name for f in files}
    assert sum(f.stat().st_size for f in files) <= 10 * 2**20


def test_it_has_the_shape_of_todays_models():
    config = json.loads((DEMO_MODEL_DIR / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "llama"  # rotary positions, RMSNorm
    assert config["num_key_value_heads"] < config["num_attention_heads"]  # grouped-query attention
    assert config["max_position_embeddings"] >= 4096


def test_it_is_a_transformer_bridge_over_a_hugging_face_llama():
    from transformer_lens import TransformerBridge
    from transformers import LlamaForCausalLM

    model = load_demo_model()
    assert isinstance(model, TransformerBridge) and isinstance(model.original_model, LlamaForCausalLM)
    assert model.cfg.n_ctx >= 4096


def test_common_words_are_one_token_each():
    tokenizer = load_demo_model().tokenizer
    assert [word for word in WHOLE_WORDS if len(tokenizer.tokenize(word)) != 1] == []


def test_no_model_means_the_demo_model(explorer):
    assert explorer.model_name == DEMO_MODEL_NAME
    assert AttentionExplorer(DEMO_MODEL_NAME, prompt="Hello").model_name == DEMO_MODEL_NAME


def test_the_prompt_reads_as_words(explorer):
    assert explorer.tokens[0] == "<|endoftext|>"
    words = explorer.tokens[1:]
    assert "".join(words) == PROMPT
    assert [t.strip() for t in words] == re.findall(r"\w+|[^\w\s]", PROMPT)  # no word split into pieces


def _one_token_match_share(ids: list[int], queries: np.ndarray, period: int) -> float:
    """What an induction head that matches the query's token alone puts, on average, on the key
    `period - 1` before each query: its weight split evenly over every key that follows an earlier
    occurrence of the query's token. A token that occurs more than once before the query shares the
    weight, so this is below 1 on long sequences from few ids and on text."""
    shares = []
    for q in queries:
        keys = [k for k in range(1, q + 1) if ids[k - 1] == ids[q]]
        shares.append(1 / len(keys) if q - period + 1 in keys else 0.0)
    return float(np.mean(shares))


@pytest.mark.parametrize(("seq_len", "batch"), [(50, 8), (500, 8), (2000, 4)])
def test_an_induction_head_on_repeated_random_tokens(explorer, seq_len, batch):
    target = 0.6 if seq_len >= 2000 else 0.8  # the targets
    assert explorer.run_repeated_tokens_test(seq_len=seq_len, batch=batch, seed=0).max() >= target


def test_a_previous_token_head_on_random_tokens(explorer):
    explorer.prompt = "".join(explorer.model.tokenizer.decode([i]) for i in range(300, 340))
    assert explorer.scores["previous_token"][0].max() >= 0.8  # in layer 0, where induction needs it


def test_a_previous_token_head_on_ordinary_text(explorer):
    scores = []
    for text in ORDINARY_TEXT:
        explorer.prompt = text
        scores.append(explorer.scores["previous_token"])
    assert np.mean(scores, axis=0).max() >= 0.8


def test_the_induction_head_copies_across_a_long_repeated_passage(explorer):
    import argparse
    import cmd

    tokenizer = load_demo_model().tokenizer
    passage = " " + " ".join(" ".join(module.__doc__.split()) for module in (argparse, cmd))  # ~1,100 tokens
    period = len(tokenizer.tokenize(passage))
    explorer.prompt = passage + passage
    assert len(explorer.tokens) == 1 + 2 * period > 2000
    induction = explorer.scores["induction"]
    layer, head = np.unravel_index(np.argmax(induction), induction.shape)
    pattern = explorer.pattern(int(layer), int(head))
    queries = np.arange(1 + period, 2 * period)  # the second copy
    ids = [int(i) for i in load_demo_model().tokenizer(passage + passage)["input_ids"]]
    one_token_match = _one_token_match_share(ids, queries, period)  # common words recur: about 0.35
    # the key after the first occurrence
    assert pattern[queries, queries - period + 1].mean() >= 0.7 * one_token_match


def test_a_head_rests_on_the_first_token(explorer):  # a BOS sink
    scores = []
    for text in ORDINARY_TEXT:
        explorer.prompt = text
        scores.append(explorer.scores["first_token"])
    assert np.mean(scores, axis=0).max() >= 0.5


def test_attn_without_a_model_uses_the_demo_model(ipython_shell, monkeypatch):
    monkeypatch.setattr(magics, "_last_model", None)  # as in a fresh notebook
    explorer = ipython_shell.run_line_magic("attn", "The cat sat on the mat.")
    assert explorer.model_name == DEMO_MODEL_NAME


def test_loads_on_the_cpu_in_eval_mode():
    model = load_demo_model("cpu")
    assert not model.training and next(model.parameters()).device.type == "cpu"


def test_forward_pass_gives_finite_logits():
    model = load_demo_model()
    tokens = model.to_tokens(PROMPT)
    logits = model(tokens)
    assert logits.shape == (1, tokens.shape[1], model.cfg.d_vocab)
    assert logits.isfinite().all()


def _induction_by_hand(tokens):
    """The induction pattern written out: query q looks at k when the token before k is q's token."""
    ids = tokens.tolist()
    n = len(ids)
    return np.array([[float(0 < k <= q and ids[k - 1] == ids[q]) for k in range(n)] for q in range(n)])


def _top_heads(scores: np.ndarray, k: int = 3) -> list[int]:
    return [int(i) for i in np.argsort(-scores.ravel(), kind="stable")[:k]]


REPEATED = [text + " " + text for text in ORDINARY_TEXT]  # second copies give induction heads work


def test_a_custom_induction_detector_ranks_heads_like_the_induction_score(explorer):
    explorer.prompt = REPEATED[0]
    custom = explorer.add_detector("my_induction", _induction_by_hand)
    try:
        assert _top_heads(custom) == _top_heads(explorer.scores["induction"])
        # the four heads of layer 1 are induction heads of near equal strength: the detector's
        # strongest are among them
        test_heads = set(_top_heads(explorer.run_repeated_tokens_test(), k=4))  # repeated random tokens
        assert set(_top_heads(custom, k=2)) <= test_heads
        result = explorer.run_dataset(REPEATED, batch_size=2, progress=False)
        assert _top_heads(result.mean["my_induction"]) == _top_heads(result.mean["induction"])
        assert set(_top_heads(result.mean["my_induction"], k=2)) <= test_heads
    finally:
        explorer.remove_detector("my_induction")


def test_retrieval_heads_are_the_induction_heads(explorer):
    retrieval = explorer.retrieval_test(haystack_len=60, needle_len=10, samples=8, seed=0)
    induction = explorer.run_repeated_tokens_test(seq_len=50, batch=8, seed=0)
    assert set(_top_heads(retrieval, k=4)) == set(_top_heads(induction, k=4))
    assert retrieval.max() >= 0.8
