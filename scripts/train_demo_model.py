#!/usr/bin/env python
"""Train the small demo model bundled with attn_widget (``attn-widget-demo``).

A Llama-shaped model (rotary positions, grouped-query attention, RMSNorm, a small
SwiGLU MLP), trained from scratch, offline, on CPU cores:

1. Text: docstrings of Python's standard library (gathered with ``ast``), the
   prose paragraphs of the Python documentation sources (Debian ``python3-doc``,
   ``/usr/share/doc/python3*/html/_sources``), the ``fortunes`` quotations
   (Debian ``fortunes``, ``/usr/share/games/fortunes``) and template English
   sentences with common names, places and times of day. Missing sources are
   skipped (the README records what was used).
2. A byte-level BPE tokenizer (HF ``tokenizers``), 8,192 tokens by default, with
   ``<|endoftext|>`` as BOS/EOS/pad (prepended by the tokenizer). Common English
   words such as " evening", " home", " Mary" stay whole (checked).
3. A 2-layer ``LlamaForCausalLM`` (transformers, sdpa attention) trained with
   next-token cross entropy in two phases:
   - short (96 tokens): mostly pairs of a random segment and its copy, a new
     length each pair, half of them 2 tokens long, each pair weighing the same in
     the loss. Copies at a new distance each time leave no fixed offset to learn,
     and 2-token copies leave no source for a circuit keyed on the token two or
     more back: only a previous-token head in layer 0 and induction heads in
     layer 1 predict them all (an abrupt phase change, between steps 2,250 and 2,500). Half the
     segments draw their ids at their frequency in the text, so the copies hold
     " the", commas and full stops as often as text does: a head that reads the
     last content word, passing over them, misses those copies. With
     longer segments, or segments repeated to fill the context, the model built
     circuits shifted by 2 to 9 tokens instead, whose attention misses the
     induction target although they predict the copies;
   - long (512 to 4,096 tokens): a random segment repeated once (the repeated
     random token test), segments repeated many times, repeated text passages
     and plain text, so the induction heads stay sharp over thousands of keys. Each segment's ids are
     distinct: recurring ids give a token several candidate sources, and a
     layer-0 head that blends the token before with the one before that tells
     them apart better, which lowers the previous-token head's score on text.
   The loss is taken on a random subset of the predictable positions (the
   unembedding is most of the cost on a CPU).
4. Scores from a small independent implementation (eager attention weights from
   the Hugging Face model, ``output_attentions=True``): repeated random token
   induction score at seq_len 50, 500 and 2,000, previous-token score and
   attention to BOS on ordinary text, per head.

Output (``src/attn_widget/models/demo/`` by default): ``config.json``
(``LlamaConfig``), ``model.safetensors`` (float16, tied embeddings stored once),
``tokenizer.json`` / ``tokenizer_config.json`` and a ``README.md`` with the
recipe, timings and score tables.

Usage::

    .venv/bin/python scripts/train_demo_model.py --threads 2
    .venv/bin/python scripts/train_demo_model.py --measure   # re-measure the shipped model, update its README
    .venv/bin/python scripts/train_demo_model.py --short-steps 50 --long-steps 10 --out /tmp/demo
"""

from __future__ import annotations

import argparse
import ast
import math
import os
import random
import re
import shutil
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "src" / "attn_widget" / "models" / "demo"
MODEL_NAME = "attn-widget-demo"
EOT = "<|endoftext|>"
PROMPT = "When Mary and John went to the store, Mary gave a drink to John."
MUST_BE_WHOLE = [
    " evening", " home", " Mary", " John", " store", " park", " morning", " house", " went", " gave",
    " drink", " school", " friend", " water", " night", " time", " people", " world",
]  # fmt: skip

SKIP_DIRS = {"__pycache__", "site-packages", "dist-packages", "idle_test", "ensurepip", "lib2to3"}
FORTUNES_DIR = Path("/usr/share/games/fortunes")
FORTUNES_SKIP = {"art", "ascii-art", "translate-me", "off"}

# Sentences used only for the final previous-token / BOS scores (not trained on).
EVAL_TEXTS = [
    "The quick brown fox jumps over the lazy dog while the farmer watches from the gate.",
    "Return a new list containing all items from the iterable in ascending order.",
    "When the file is opened in text mode, the encoding defaults to the locale setting.",
    "She walked to the market in the morning and bought bread, cheese and fresh apples.",
    "This function is called when the object is about to be destroyed by the garbage collector.",
    "If the timeout argument is not given, the call blocks until the operation completes.",
]


# --------------------------------------------------------------------------- data
def iter_docstrings(root: Path):
    """Yield docstrings of modules, classes and functions under root."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in SKIP_DIRS and not d.startswith("test") and not d.startswith(".")
        )
        for name in sorted(filenames):
            if not name.endswith(".py") or name.startswith("test"):
                continue
            path = Path(dirpath) / name
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    doc = ast.get_docstring(node, clean=True)
                    if doc and len(doc) >= 40:
                        yield doc


def gather_docstrings(max_chars: int, time_budget_s: float) -> list[str]:
    """Docstrings of the standard library, deduplicated, up to max_chars."""
    seen: set[str] = set()
    docs: list[str] = []
    total = 0
    t0 = time.time()
    for doc in iter_docstrings(Path(sysconfig.get_paths()["stdlib"])):
        if doc in seen:
            continue
        seen.add(doc)
        docs.append(doc)
        total += len(doc)
        if total >= max_chars or time.time() - t0 > time_budget_s:
            break
    return docs


_ROLE = re.compile(r":[\w:.-]+:`~?!?([^`<]*?)(?:\s*<[^>]*>)?`")
_LITERAL = re.compile(r"``([^`]*)``")
_LINK = re.compile(r"`([^`<]*?)(?:\s*<[^>]*>)?`_{1,2}")


def gather_python_doc_prose(max_chars: int) -> tuple[list[str], str | None]:
    """Prose paragraphs of the Python documentation's reST sources (Debian python3-doc)."""
    roots = sorted({p.resolve() for p in Path("/usr/share/doc").glob("python3*/html/_sources")})
    if not roots:
        return [], None
    paragraphs: list[str] = []
    total = 0
    for path in sorted(roots[-1].rglob("*.txt")):
        if "whatsnew" in path.parts or "c-api" in path.parts:
            continue
        for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
            if not block or block[0] in " \t.:=-*>+|#" or block.startswith(("..", ">>>")):
                continue
            text = " ".join(block.split())
            text = _LINK.sub(r"\1", _LITERAL.sub(r"\1", _ROLE.sub(r"\1", text))).replace("**", "")
            letters = sum(c.isalpha() or c == " " for c in text)
            if len(text) >= 80 and letters >= 0.85 * len(text):
                paragraphs.append(text)
                total += len(text)
        if total >= max_chars:
            break
    return paragraphs, str(roots[-1])


def gather_fortunes() -> list[str]:
    """Quotations of the Debian fortunes files, one string each, whitespace collapsed."""
    if not FORTUNES_DIR.is_dir():
        return []
    out = []
    for path in sorted(FORTUNES_DIR.iterdir()):
        if not path.is_file() or path.suffix in (".dat", ".u8") or path.name in FORTUNES_SKIP:
            continue
        for entry in path.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            text = " ".join(entry.split())
            if len(text) >= 30 and sum(c.isalpha() or c == " " for c in text) >= 0.8 * len(text):
                out.append(text)
    return out


NAMES = [
    "Mary",
    "John",
    "Alice",
    "Bob",
    "James",
    "Sarah",
    "Tom",
    "Anna",
    "David",
    "Emma",
    "Michael",
    "Lisa",
    "Paul",
    "Kate",
    "Peter",
    "Laura",
    "Mark",
    "Susan",
    "George",
    "Emily",
    "Jack",
    "Rachel",
    "Daniel",
    "Julia",
    "Chris",
    "Linda",
    "Kevin",
    "Amy",
    "Robert",
    "Helen",
]
PLACES = [
    "store",
    "park",
    "school",
    "office",
    "restaurant",
    "station",
    "hospital",
    "library",
    "garden",
    "house",
    "beach",
    "market",
    "cafe",
    "museum",
    "shop",
    "river",
    "farm",
    "church",
    "city",
    "village",
]
OBJECTS = [
    "drink",
    "book",
    "ball",
    "letter",
    "ring",
    "bag",
    "cake",
    "key",
    "flower",
    "pen",
    "gift",
    "phone",
    "coat",
    "basket",
    "bottle",
    "ticket",
]
TIMES = ["morning", "evening", "afternoon", "night", "weekend"]
TEMPLATES = [
    "When {A} and {B} went to the {P}, {A} gave a {O} to {B}.",
    "When {A} and {B} got a {O} at the {P}, {B} decided to give it to {A}.",
    "After {A} and {B} arrived at the {P}, {A} handed the {O} to {B}.",
    "{A} and {B} walked to the {P}. Later, {B} gave the {O} to {A}.",
    "Then, {A} and {B} had a long day at the {P}. {A} gave a {O} to {B}.",
    "{A} met {B} near the {P} and they talked about the {O} for an hour.",
    "Yesterday {A} found a {O} in the {P} and showed it to {B}.",
    "{A} asked {B} to bring the {O} back to the {P} before dinner.",
    "At the {P}, {B} bought a {O} for {A}, who was very happy.",
    "{A} went to the {P} with {B}, and {B} forgot the {O} there.",
    "In the {T}, {A} left the {P} and went home with {B}.",
    "That {T}, {B} stayed at home and {A} went to the {P} alone.",
    "Every {T} {A} walks from home to the {P}, and {B} comes along with a {O}.",
    "On Sunday {T}, {A} and {B} came home late from the {P}.",
    "{A} called {B} in the {T} to say that the {O} was still at home.",
]


def template_sentences(n: int, rng: random.Random) -> list[str]:
    """Short paragraphs of simple English sentences with common names, places and times of day."""
    paragraphs = []
    for _ in range(n):
        sents = []
        for _ in range(rng.randint(2, 4)):
            a, b = rng.sample(NAMES, 2)
            sents.append(
                rng.choice(TEMPLATES).format(A=a, B=b, P=rng.choice(PLACES), O=rng.choice(OBJECTS), T=rng.choice(TIMES))
            )
        paragraphs.append(" ".join(sents))
    return paragraphs


# ---------------------------------------------------------------------- tokenizer
def train_tokenizer(texts: list[str], vocab_size: int, n_ctx: int, save_dir: Path):
    """A GPT-2 style byte-level BPE tokenizer, saved to ``save_dir`` and loaded back from it.

    It prepends BOS itself (``add_bos_token=True``), like Llama's tokenizer; TransformerLens's
    bridge builder reloads a tokenizer by ``name_or_path``, so it must come from a folder.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    bos_id = tok.token_to_id(EOT)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{EOT} $A", pair=f"{EOT} $A {EOT} $B", special_tokens=[(EOT, bos_id)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOT,
        eos_token=EOT,
        unk_token=EOT,
        pad_token=EOT,
        model_max_length=n_ctx,
    )
    save_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(save_dir))
    return load_tokenizer(save_dir)


def load_tokenizer(folder: Path):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast.from_pretrained(str(folder))


# -------------------------------------------------------------------------- model
def llama_config(args, vocab: int, bos: int):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab,
        hidden_size=args.d_model,
        intermediate_size=args.d_mlp,
        num_hidden_layers=args.n_layers,
        num_attention_heads=args.n_heads,
        num_key_value_heads=args.n_kv_heads,
        head_dim=args.d_head,
        max_position_embeddings=args.n_ctx,
        rope_theta=args.rope_theta,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=bos,
        eos_token_id=bos,
        pad_token_id=bos,
        initializer_range=0.02,
        attention_bias=args.attention_bias,
        mlp_bias=False,
        attn_implementation="sdpa",
        architectures=["LlamaForCausalLM"],
    )


def build_model(config):
    from transformers import LlamaForCausalLM

    config._attn_implementation = "sdpa"
    return LlamaForCausalLM(config)


class Batcher:
    """Training batches: BOS + pairs of a random segment and its copy, a repeated random segment, a
    repeated text passage or plain text.

    Each batch returns ``(tokens, loss_mask)``: the mask marks the positions whose next token is
    predictable (second and later copies of a random segment; all positions of text).
    """

    def __init__(
        self,
        stream: torch.Tensor,
        bos: int,
        vocab: int,
        seed: int,
        pair_short_max: int = 4,
        text_freq: float = 0.0,
    ):
        self.stream, self.bos, self.vocab = stream, bos, vocab
        self.pair_short_max = pair_short_max
        self.text_freq = text_freq
        self.g = torch.Generator().manual_seed(seed)

    def rand(self) -> float:
        return torch.rand((), generator=self.g).item()

    def randint(self, lo: int, hi: int) -> int:  # inclusive lo, exclusive hi
        return int(torch.randint(lo, hi, (), generator=self.g))

    def random_segment(self, length: int, distinct: bool = True) -> torch.Tensor:
        if distinct:
            # Long segments: ids distinct within the segment, from the whole vocabulary or from the
            # explorer's test's range. A token that recurs in its segment has several candidate sources,
            # and a layer-0 head that blends the token before with the one before that matches them
            # better: that blend is what lowers the previous-token head's score on text.
            high = self.vocab if self.rand() < 0.5 else min(self.vocab, max(1000, 100 + length))
            return torch.randperm(high - 100, generator=self.g)[:length] + 100
        if self.text_freq and self.rand() < self.text_freq:
            # ids drawn one by one at their frequency in the text: " the", commas and full stops are
            # common here, so a previous-token head that passed over them would miss these copies
            ids = self.stream[torch.randint(0, len(self.stream), (length,), generator=self.g)]
            return torch.where(ids == self.bos, torch.randint(100, 1000, (length,), generator=self.g), ids)
        # the explorer's test's range: few enough ids that each is seen often
        return torch.randint(100, min(1000, self.vocab), (length,), generator=self.g)

    def text(self, length: int) -> torch.Tensor:
        s = self.randint(0, len(self.stream) - length)
        return self.stream[s : s + length]

    def row(self, n: int, kind: str, seg_min: int, seg_max: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n tokens after BOS and their loss mask (over the n + 1 positions)."""
        mask = torch.ones(n + 1, dtype=torch.bool)
        mask[-1] = False  # the last position has no next token
        if kind == "text":
            return self.text(n), mask
        length = self.randint(seg_min, min(seg_max, n) + 1)
        seg = self.random_segment(length) if kind == "random" else self.text(length)
        if kind == "random":
            mask[:length] = False  # the first copy of random tokens cannot be predicted
        if self.rand() < 0.3 and n > 2 * length:  # text before the repeats: induction from mid-context
            lead = self.randint(1, n - 2 * length + 1)
            body = seg.repeat(math.ceil((n - lead) / length))[: n - lead]
            if kind == "random":
                mask[: lead + length] = False
            return torch.cat([self.text(lead), body]), mask
        return seg.repeat(math.ceil(n / length))[:n], mask

    def pairs(self, n: int, seg_min: int, seg_max: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n tokens after BOS: random segments, each followed at once by its copy, each pair of its own
        length (and some text between pairs). No fixed offset finds the copy's source, so only
        induction (a previous-token head, then a head matching on it) predicts the copies: segments
        repeated to fill the context let a head a fixed multiple of the period back stand in for it."""
        parts, masks, used = [], [], 0
        while used < n:
            if self.rand() < 0.2:
                gap = min(self.randint(1, 16), n - used)
                parts.append(self.text(gap))
                masks.append(torch.full((gap,), 1.0 / 16))
                used += gap
                continue
            # Half the pairs are 2 to 4 tokens long: a circuit keyed on the token k back (instead of
            # a previous-token head) finds no source in a copy shorter than k + 1 tokens.
            length = self.randint(seg_min, (self.pair_short_max if self.rand() < 0.5 else seg_max) + 1)
            seg = self.random_segment(length, distinct=False)
            m = torch.zeros(2 * length)
            # position i predicts row[i]: the copy's tokens after its first, each pair weighing the
            # same in the loss, so the short pairs (which only induction through a previous-token
            # head predicts) count as much as the long ones
            m[length + 1 :] = 1.0 / (length - 1)
            parts.append(torch.cat([seg, seg]))
            masks.append(m)
            used += 2 * length
        row = torch.cat(parts)[:n]
        mask = torch.zeros(n + 1)
        mask[:n] = torch.cat(masks)[:n]  # position i predicts row[i]; the last position predicts nothing
        return row, mask

    def batch(
        self,
        n_ctx: int,
        batch: int,
        probs: dict[str, float],
        seg_min: int,
        seg_max: int,
        text_weight: float = 1.0,
    ):
        x = torch.empty(batch, n_ctx, dtype=torch.long)
        m = torch.empty(batch, n_ctx)
        x[:, 0] = self.bos
        kinds, weights = list(probs), torch.tensor(list(probs.values()))
        for i in range(batch):
            kind = kinds[int(torch.multinomial(weights, 1, generator=self.g))]
            if kind == "twice":  # the repeated random token test: one segment, then its copy
                half = (n_ctx - 1) // 2
                seg = self.random_segment(half)
                row = torch.cat([seg, seg, self.text(n_ctx - 1 - 2 * half)])
                mask = torch.zeros(n_ctx, dtype=torch.bool)
                mask[half : 2 * half] = True
            elif kind == "pairs":
                row, mask = self.pairs(n_ctx - 1, seg_min, min(seg_max, (n_ctx - 1) // 2))
            else:
                row, mask = self.row(n_ctx - 1, kind, seg_min, seg_max)
            if kind == "text":
                mask = mask.float() * text_weight
            x[i, 1:] = row
            m[i] = mask.float()
        return x, m


def loss_on(model, x: torch.Tensor, mask: torch.Tensor, max_positions: int, g: torch.Generator) -> torch.Tensor:
    """Cross entropy of the next token at up to max_positions positions, drawn in proportion to
    their weight in `mask` (0: never a target)."""
    hidden = model.model(input_ids=x).last_hidden_state  # [b, n, d]
    weights = mask.flatten()
    k = min(max_positions, int((weights > 0).sum()))
    flat = torch.multinomial(weights, k, replacement=False, generator=g)
    b_idx, p_idx = flat // mask.shape[1], flat % mask.shape[1]
    logits = model.lm_head(hidden[b_idx, p_idx])
    return F.cross_entropy(logits.float(), x[b_idx, p_idx + 1])


# ------------------------------------------------------------------------- scores
def patterns(model, tokens: torch.Tensor) -> list[torch.Tensor]:
    """Eager attention weights per layer, [batch, head, query, key] (independent of attn_widget)."""
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            out = model(input_ids=tokens, output_attentions=True)
        return [a.float() for a in out.attentions]
    finally:
        model.set_attn_implementation("sdpa")


def induction_scores(model, bos: int, vocab: int, seq_len: int, batch: int, seed: int) -> torch.Tensor:
    """[layer, head] mean attention from each second-copy token to the token after its first copy.

    As the explorer's test: BOS, then seq_len // 2 distinct random ids from [100, max(1000, 100 + seq_len // 2))
    repeated once, so that each second-copy token has one induction target.
    """
    half = seq_len // 2
    g = torch.Generator().manual_seed(seed)
    high = min(max(1000, 100 + half), vocab)
    seg = torch.stack([torch.randperm(high - 100, generator=g)[:half] + 100 for _ in range(batch)])
    tokens = torch.cat([torch.full((batch, 1), bos), seg, seg], dim=1)
    q = torch.arange(1 + half, 2 * half)  # second copy, last token excluded as in the notebook
    k = q - half + 1
    out = []
    for i in range(batch):  # one sequence at a time keeps the eager weights small
        layers = patterns(model, tokens[i : i + 1])
        out.append(torch.stack([a[0][:, q, k].mean(-1) for a in layers]))
    return torch.stack(out).mean(0)


def text_scores(model, tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """[layer, head] previous-token score and attention to BOS, averaged over texts."""
    prev, first = [], []
    for text in texts:
        tokens = tokenizer(text, return_tensors="pt")["input_ids"]  # BOS prepended
        layers = patterns(model, tokens)
        q = torch.arange(1, tokens.shape[1])
        prev.append(torch.stack([a[0][:, q, q - 1].mean(-1) for a in layers]))
        first.append(torch.stack([a[0][:, q, 0].mean(-1) for a in layers]))
    return torch.stack(prev).mean(0), torch.stack(first).mean(0)


def format_table(title: str, scores: torch.Tensor) -> str:
    n_layers, n_heads = scores.shape
    lines = [
        f"{title}",
        "",
        "| layer | " + " | ".join(f"H{h}" for h in range(n_heads)) + " |",
        "|---" * (n_heads + 1) + "|",
    ]
    for layer in range(n_layers):
        lines.append(f"| L{layer} | " + " | ".join(f"{scores[layer, h]:.2f}" for h in range(n_heads)) + " |")
    return "\n".join(lines)


def top(scores: torch.Tensor) -> str:
    i = int(scores.argmax())
    return f"{scores.max():.2f} (L{i // scores.shape[1]}H{i % scores.shape[1]})"


# ---------------------------------------------------------------- measured with attn_widget
MEASURED_BEGIN = "<!-- measured: written by scripts/train_demo_model.py --measure -->"
MEASURED_END = "<!-- end measured -->"


def long_text(tokenizer, n_tokens: int, skip: int = 0) -> str:
    """About n_tokens tokens (BOS included) of English: standard-library module docstrings, repeated,
    from token ``skip`` of the passage on."""
    import argparse as argparse_module
    import cmd
    import sched

    passage = " " + " ".join(" ".join(m.__doc__.split()) for m in (argparse_module, cmd, sched))
    text = passage * (1 + math.ceil((n_tokens + skip) / max(1, len(tokenizer.tokenize(passage)))))
    ids = tokenizer(text)["input_ids"][1 + skip : n_tokens + skip]
    return tokenizer.decode(ids)


def measure(out: Path, threads: int) -> str:
    """Load time, explorer timings, the explorer's own scores and the size on disk of the model in
    ``out``, as a README section (also printed)."""
    import statistics

    import transformer_lens  # noqa: F401  (the imports come first: the load time is after them)
    import transformers  # noqa: F401

    sys.path.insert(0, str(REPO / "src"))
    import attn_widget.models
    from attn_widget import AttentionExplorer

    torch.set_num_threads(threads)
    attn_widget.models.DEMO_MODEL_DIR = out
    t0 = time.perf_counter()
    from transformers import LlamaForCausalLM  # noqa: F401  (transformers imports its model classes lazily)

    lazy_import = time.perf_counter() - t0
    loads = []
    for _ in range(5):
        t0 = time.perf_counter()
        model = attn_widget.models.load_demo_model()
        loads.append(time.perf_counter() - t0)
    text = long_text(model.tokenizer, 4096)
    n = len(model.tokenizer(text)["input_ids"])
    t0 = time.perf_counter()
    explorer = AttentionExplorer(prompt=text)  # no model: the bundled one, loaded here
    first_ready = time.perf_counter() - t0
    reprompts = []
    for k in range(3):
        other = long_text(model.tokenizer, 4096, skip=100 * (k + 1))  # a different prompt each time
        t0 = time.perf_counter()
        explorer.prompt = other
        reprompts.append(time.perf_counter() - t0)
        assert abs(len(explorer.tokens) - n) <= 4, (len(explorer.tokens), n)
    induction = {
        seq_len: float(explorer.run_repeated_tokens_test(seq_len=seq_len, batch=batch, seed=0).max())
        for seq_len, batch in ((50, 8), (500, 8), (2000, 4))
    }
    prev, first = [], []
    for sentence in EVAL_TEXTS:
        explorer.prompt = sentence
        prev.append(explorer.scores["previous_token"])
        first.append(explorer.scores["first_token"])
    prev_top, first_top = np.mean(prev, axis=0), np.mean(first, axis=0)
    explorer.prompt = "".join(model.tokenizer.decode([i]) for i in range(300, 340))  # as tests/test_demo_model.py
    prev_ids = explorer.scores["previous_token"]
    files = [f for f in out.iterdir() if f.is_file()]
    size = sum(f.stat().st_size for f in files)

    def at(a: np.ndarray) -> str:
        i = int(np.argmax(a))
        return f"{a.max():.2f} (L{i // a.shape[1]}H{i % a.shape[1]})"

    section = f"""{MEASURED_BEGIN}
## Measured with attn_widget

On this machine ({os.cpu_count()} CPU cores shared with other jobs, load average {os.getloadavg()[0]:.1f} when the
measurement ended; torch {torch.__version__}, {threads} torch thread(s)), by
`python scripts/train_demo_model.py --measure --threads {threads}`; the scores are the explorer's own
(`run_repeated_tokens_test(seq_len=..., batch=..., seed=0)` and `scores`), as `tests/test_demo_model.py`
checks them.

| what | measured | target |
|---|---|---|
| top induction score, repeated random tokens, seq_len 50 (batch 8) | {induction[50]:.2f} | >= 0.8 |
| top induction score, seq_len 500 (batch 8) | {induction[500]:.2f} | >= 0.8 |
| top induction score, seq_len 2,000 (batch 4) | {induction[2000]:.2f} | >= 0.6 |
| top previous-token score (mean over {len(EVAL_TEXTS)} sentences) | {at(prev_top)} | >= 0.8 |
| top previous-token score, the {len(explorer.tokens) - 1} tokens of ids 300 to 339 in a row | {at(prev_ids)} | |
| top attention to BOS (`first_token`, same sentences) | {at(first_top)} | |
| size on disk, all files of this folder | {size:,} bytes ({size / 2**20:.2f} MiB) | <= 10 MiB |
| `load_demo_model()` after the imports: first call, median of the next 4 | {loads[0]:.2f} s, {statistics.median(loads[1:]):.2f} s | < 0.5 s |
| transformers' lazy import of its Llama classes (`from transformers import LlamaForCausalLM`), paid once per process by the first load when nothing imported them before | {lazy_import:.2f} s | |
| `AttentionExplorer(prompt=...)` at {n:,} tokens, model load included | {first_ready:.2f} s | |
| prompt to ready at {n:,} tokens (`explorer.prompt = ...`, median of 3) | {statistics.median(reprompts):.2f} s | |
{MEASURED_END}
"""
    print(section)
    return section


def write_measured(out: Path, section: str) -> None:
    readme = out / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    if MEASURED_BEGIN in text:
        head, _, rest = text.partition(MEASURED_BEGIN)
        _, _, tail = rest.partition(MEASURED_END + "\n")
        text = head + section + tail
    else:
        marker = "## Files"
        text = text.replace(marker, section + "\n" + marker) if marker in text else text + "\n" + section
    readme.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- main
SHORT_MIX = {"pairs": 0.9, "text": 0.1}
LONG_MIX = {"twice": 0.45, "random": 0.25, "passage": 0.1, "text": 0.2}
LONG_LENGTHS = {512: 0.25, 1024: 0.3, 2048: 0.3, 4096: 0.15}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--vocab-size", type=int, default=8192)
    p.add_argument("--n-layers", type=int, default=2)
    p.add_argument("--n-heads", type=int, default=4)
    p.add_argument("--n-kv-heads", type=int, default=2)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--d-head", type=int, default=64)
    p.add_argument("--d-mlp", type=int, default=256)
    p.add_argument("--n-ctx", type=int, default=4096)
    p.add_argument("--rope-theta", type=float, default=500_000.0)
    p.add_argument(
        "--attention-bias",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="biases on the q/k/v/o projections: a query and key bias let a head attend by position alone",
    )
    p.add_argument("--pair-short-max", type=int, default=2, help="half the short phase's pairs are 2 to this long")
    p.add_argument(
        "--text-freq",
        type=float,
        default=0.5,
        help="share of random segments whose ids are drawn at their frequency in the text",
    )
    p.add_argument("--short-steps", type=int, default=4000)
    p.add_argument("--short-len", type=int, default=96)
    p.add_argument("--short-batch", type=int, default=16)
    p.add_argument(
        "--short-loss-positions", type=int, default=768, help="positions per short step the loss is taken on"
    )
    p.add_argument("--long-steps", type=int, default=600)
    p.add_argument("--long-tokens", type=int, default=4096, help="tokens per long-phase step")
    p.add_argument("--loss-positions", type=int, default=1024, help="positions per long step the loss is taken on")
    p.add_argument("--final-norm-init", type=float, default=5.0, help="initial gain of the final RMSNorm (logit scale)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--long-lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--max-chars", type=int, default=4_000_000, help="cap on stdlib docstring characters")
    p.add_argument("--max-doc-chars", type=int, default=6_000_000, help="cap on python-doc prose characters")
    p.add_argument("--n-template", type=int, default=4000, help="number of template English paragraphs")
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--checkpoint", type=Path, default=Path(tempfile.gettempdir()) / "attn_widget_demo_ckpt.pt")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument(
        "--measure", action="store_true", help="only measure the model in --out with attn_widget and update its README"
    )
    args = p.parse_args()
    if args.measure:
        write_measured(args.out, measure(args.out, args.threads))
        return 0

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    t_start = time.time()

    # ---- data
    print("Gathering text ...", flush=True)
    t0 = time.time()
    docstrings = gather_docstrings(args.max_chars, time_budget_s=60.0)
    doc_prose, doc_root = gather_python_doc_prose(args.max_doc_chars)
    fortunes = gather_fortunes()
    rng = random.Random(args.seed)
    templates = template_sentences(args.n_template, rng)
    sources = [
        ("docstrings of the Python standard library", docstrings),
        (f"prose paragraphs of the Python documentation ({doc_root})", doc_prose),
        (f"quotations of the Debian fortunes files ({FORTUNES_DIR})", fortunes),
        ("template English sentences with common names, places and times of day", templates),
    ]
    data_lines = []
    for what, texts in sources:
        line = f"{len(texts):,} {what}: {sum(map(len, texts)):,} characters"
        print("  " + line, flush=True)
        if texts:
            data_lines.append(line)
    docs = [t for _, texts in sources for t in texts]
    rng.shuffle(docs)
    print(f"  {len(docs):,} texts in all; {time.time() - t0:.1f}s", flush=True)

    # ---- tokenizer
    t0 = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="attn_widget_demo_"))
    tokenizer = train_tokenizer(docs, args.vocab_size, args.n_ctx, tmp / "tokenizer")
    vocab, bos = len(tokenizer), tokenizer.bos_token_id
    print(f"Tokenizer: vocab {vocab}, bos id {bos}; {time.time() - t0:.1f}s")
    print(f"  {PROMPT!r} -> {tokenizer.tokenize(PROMPT)}")
    split = [w for w in MUST_BE_WHOLE if len(tokenizer.tokenize(w)) != 1]
    print(f"  words split into pieces: {split or 'none'}", flush=True)
    encodings = tokenizer.backend_tokenizer.encode_batch(docs, add_special_tokens=False)
    stream = torch.tensor([i for enc in encodings for i in [*enc.ids, bos]], dtype=torch.long)
    print(f"  training stream: {len(stream):,} tokens", flush=True)

    # ---- model
    config = llama_config(args, vocab, bos)
    model = build_model(config)
    with torch.no_grad():  # a usable logit scale for the tied unembedding from the first step
        model.model.norm.weight.fill_(args.final_norm_init)
    n_params = sum(p.numel() for p in model.parameters())
    shape = (
        f"{args.n_layers} layers, d_model {args.d_model}, {args.n_heads} query heads and {args.n_kv_heads} "
        f"key-value heads of d_head {args.d_head}{' (q/k/v/o biases)' if args.attention_bias else ''}, SwiGLU MLP "
        f"{args.d_mlp}, RMSNorm, rotary (theta "
        f"{args.rope_theta:g}), context {args.n_ctx}, tied embeddings"
    )
    print(f"Model: {shape}; {n_params:,} parameters", flush=True)

    params = list(model.parameters())
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
    )
    total_steps = args.short_steps + args.long_steps

    def lr_at(step: int) -> float:
        """Short phase: warm-up, flat. Long phase: cosine from long_lr to a tenth of it."""
        if step < args.short_steps:
            return args.lr * min(1.0, (step + 1) / args.warmup)
        frac = (step - args.short_steps) / max(1, args.long_steps)
        return args.long_lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))

    batcher = Batcher(
        stream,
        bos,
        vocab,
        seed=args.seed + 1,
        pair_short_max=args.pair_short_max,
        text_freq=args.text_freq,
    )
    loss_g = torch.Generator().manual_seed(args.seed + 2)
    len_g = torch.Generator().manual_seed(args.seed + 3)
    lengths, length_w = list(LONG_LENGTHS), torch.tensor(list(LONG_LENGTHS.values()))
    start_step, train_s_before = 0, 0.0
    phase_s = {"short": 0.0, "long": 0.0}
    if args.resume and args.checkpoint.exists():
        ck = torch.load(args.checkpoint, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        batcher.g.set_state(ck["batcher"])
        loss_g.set_state(ck["loss_g"])
        len_g.set_state(ck["len_g"])
        start_step, train_s_before = ck["step"], ck["train_s"]
        phase_s.update(ck.get("phase_s", {}))
        print(f"Resumed from {args.checkpoint} at step {start_step}", flush=True)

    def save_checkpoint(step: int, train_s: float, trained: torch.nn.Module = model) -> None:
        state = {
            "model": trained.state_dict(),
            "opt": opt.state_dict(),
            "batcher": batcher.g.get_state(),
            "loss_g": loss_g.get_state(),
            "len_g": len_g.get_state(),
            "step": step,
            "train_s": train_s,
            "phase_s": dict(phase_s),
        }
        torch.save(state, str(args.checkpoint) + ".tmp")
        os.replace(str(args.checkpoint) + ".tmp", args.checkpoint)

    print("Training ...", flush=True)
    model.train()
    t_train = time.time() - train_s_before
    ema = None
    for step in range(start_step, total_steps):
        t_step = time.time()
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        if step < args.short_steps:
            phase = "short"
            # text weighs per position what the gaps between pairs weigh
            x, mask = batcher.batch(args.short_len, args.short_batch, SHORT_MIX, 2, 48, text_weight=1 / 16)
        else:
            phase = "long"
            n = lengths[int(torch.multinomial(length_w, 1, generator=len_g))]
            x, mask = batcher.batch(n, max(1, args.long_tokens // n), LONG_MIX, 2, n // 2)
        loss = loss_on(model, x, mask, args.loss_positions if phase == "long" else args.short_loss_positions, loss_g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        phase_s[phase] += time.time() - t_step
        ema = loss.item() if ema is None or step == args.short_steps else 0.95 * ema + 0.05 * loss.item()
        if (step + 1) % args.log_every == 0 or step == start_step:
            print(
                f"  step {step + 1:5d} ({phase:5s} {x.shape[0]}x{x.shape[1]})  loss {ema:.3f}  "
                f"lr {lr_at(step):.1e}  {time.time() - t_train:6.0f}s",
                flush=True,
            )
        if args.eval_every and ((step + 1) % args.eval_every == 0 or step + 1 == args.short_steps):
            model.eval()
            ind50 = induction_scores(model, bos, vocab, 50, batch=4, seed=123)
            ind500 = induction_scores(model, bos, vocab, 500, batch=2, seed=123)
            prev, _ = text_scores(model, tokenizer, EVAL_TEXTS[:3])
            model.train()
            print(
                f"    eval: induction@50 {top(ind50)}, induction@500 {top(ind500)}, prev-token {top(prev)}",
                flush=True,
            )
            save_checkpoint(step + 1, time.time() - t_train)
    train_s = time.time() - t_train
    print(f"Training took {train_s:.0f}s ({train_s / 60:.1f} min) for {total_steps} steps", flush=True)

    # ---- save (float16), then reload the float16 weights so scores describe the shipped model
    from safetensors.torch import load_file, save_file

    args.out.mkdir(parents=True, exist_ok=True)
    for f in args.out.iterdir():
        if f.is_file() and f.name != "README.md":
            f.unlink()
    state = {
        k: v.detach().to(torch.float16).contiguous()
        for k, v in model.state_dict().items()
        if k != "lm_head.weight"  # tied to model.embed_tokens.weight
    }
    save_file(state, str(args.out / "model.safetensors"), metadata={"format": "pt", "name": MODEL_NAME})
    os.chmod(args.out / "model.safetensors", 0o644)  # safetensors writes 0600
    config.save_pretrained(str(args.out))
    tokenizer.save_pretrained(str(args.out))
    shutil.rmtree(tmp, ignore_errors=True)

    tokenizer = load_tokenizer(args.out)
    model = build_model(config)
    missing, unexpected = model.load_state_dict(
        {k: v.float() for k, v in load_file(str(args.out / "model.safetensors")).items()}, strict=False
    )
    assert set(missing) <= {"lm_head.weight"} and not unexpected, (missing, unexpected)
    model.tie_weights()
    model.eval()

    # ---- scores
    t0 = time.time()
    ind = {n: induction_scores(model, bos, vocab, n, batch=b, seed=0) for n, b in ((50, 16), (500, 8), (2000, 4))}
    prev, first = text_scores(model, tokenizer, EVAL_TEXTS)
    print(f"Scores took {time.time() - t0:.0f}s", flush=True)
    tables = "\n\n".join(
        [
            *(
                format_table(
                    f"Induction score, repeated random tokens at seq_len {n:,} (BOS, then {n // 2} distinct random "
                    f"ids from [100, {max(1000, 100 + n // 2)}) repeated once; mean A[q, q - {n // 2} + 1] over "
                    f"the second copy; batch {b}):",
                    ind[n],
                )
                for n, b in ((50, 16), (500, 8), (2000, 4))
            ),
            format_table(
                f"Previous-token score (mean A[q, q-1], q >= 1, over {len(EVAL_TEXTS)} English sentences):", prev
            ),
            format_table("Attention to BOS (mean A[q, 0], q >= 1, same sentences):", first),
        ]
    )
    total_s = time.time() - t_start
    print()
    print(f"Training time: {train_s:.0f}s ({train_s / 60:.1f} min); total script time {total_s / 60:.1f} min")
    print(tables)
    files = sorted(f for f in args.out.iterdir() if f.is_file() and f.name != "README.md")
    sizes = "\n".join(f"- `{f.name}`: {f.stat().st_size:,} bytes" for f in files)
    total_bytes = sum(f.stat().st_size for f in files)

    changed = "".join(
        f" --{k.replace('_', '-')} {v}"
        for k, v in vars(args).items()
        if k not in ("out", "log_every", "eval_every", "threads", "checkpoint", "resume") and v != p.get_default(k)
    )
    data = "\n".join(f"- {line}" for line in data_lines)
    short_pairs = "2" if args.pair_short_max == 2 else f"2 to {args.pair_short_max}"
    text_freq_pct = round(args.text_freq * 100)
    readme = f"""# attn-widget-demo

A small Llama-shaped model bundled with `attn_widget` for demos and tests: rotary positions,
grouped-query attention (fewer key-value heads than query heads), RMSNorm, a context of
{args.n_ctx:,} tokens. `attn_widget.models.load_demo_model()` builds a `LlamaForCausalLM` from
`config.json`, loads `model.safetensors` and wraps it in a TransformerLens `TransformerBridge`;
`AttentionExplorer()` and `%attn` use it when no model is given.

It was trained from scratch, offline, on CPU cores by `scripts/train_demo_model.py`. Its heads show the
textbook patterns at long range: previous-token heads, induction heads that keep working across
thousands of tokens, and heads that rest on the first (BOS) token when there is nothing to copy.

## Shape

- {shape}
- {n_params:,} parameters, stored as float16 (the unembedding is the embedding, stored once)
- byte-level BPE tokenizer, vocabulary {vocab:,}; `{EOT}` (id {bos}) is BOS/EOS/pad and the tokenizer
  prepends it; common English words (" evening", " home", " Mary", " John", " store", " park") are one
  token each

## Training data

{data}

Tokenized into one stream of {len(stream):,} tokens, texts separated by BOS.

## Training

```
python scripts/train_demo_model.py --threads {args.threads}{changed}
```

Seed {args.seed}. The final RMSNorm's gain starts at {args.final_norm_init:g} (with tied embeddings of std 0.02
the logits are otherwise too small to copy a token from the context). AdamW (betas 0.9, 0.98, weight decay 0.01 on matrices), gradient clipping at 1.0; the loss
is next-token cross entropy on {args.short_loss_positions:,} (short phase) or {args.loss_positions:,} (long phase)
predictable positions per step, drawn at random (the first copy of random tokens is not predictable and is
never a target; the unembedding is most of the cost on a CPU).

1. Short phase: {args.short_steps:,} steps of {args.short_batch} sequences of {args.short_len} tokens, lr
   {args.lr:g} (warm-up {args.warmup} steps). {int(SHORT_MIX["pairs"] * 100)}% pairs of a random segment (2 to 47 tokens, half of them
   {short_pairs} tokens, a new length each pair) and its copy, with short pieces of text between pairs, {int(SHORT_MIX["text"] * 100)}% plain
   text; each pair weighs the same in the loss (a copy's positions 1 / (length - 1) each, text 1/16). {text_freq_pct}% of random segments draw their ids
   one by one at their frequency in the text, so " the", commas and full stops are copied as often as they
   occur: a previous-token head that passed over them, as a head that reads the last content word does,
   would miss those copies. The rest draw ids from [100, 1000) (the explorer's test's range): few enough
   ids that each is seen often, which brings the phase change (previous-token and induction heads) early.
2. Long phase: {args.long_steps:,} steps of {args.long_tokens:,} tokens each, as sequences of
   {", ".join(f"{n:,}" for n in LONG_LENGTHS)} tokens (probabilities
   {", ".join(f"{w:g}" for w in LONG_LENGTHS.values())}), lr {args.long_lr:g} with cosine decay to a tenth.
   {int(LONG_MIX["twice"] * 100)}% one random segment of half the length repeated once (the repeated random
   token test), {int(LONG_MIX["random"] * 100)}% random segments of 2 tokens up to half the length repeated to
   fill, {int(LONG_MIX["passage"] * 100)}% repeated text passages, {int(LONG_MIX["text"] * 100)}% plain text.
   Here a random segment's ids are distinct, from the whole vocabulary
   (half the segments) or from [100, 1000) (widened to [100, 100 + length) for a longer segment): a token
   that recurs in its segment has several candidate sources, and a layer-0 head that blends the token
   before with the one before that tells them apart better. With segments drawn freely (half of them at
   the text's frequencies) that blend lowered the previous-token head's score on text from 0.91 to 0.78
   over the long phase.

Training took {train_s / 60:.1f} min on {args.threads} CPU thread(s) (short phase {phase_s["short"] / 60:.1f} min,
long phase {phase_s["long"] / 60:.1f} min; torch {torch.__version__}, {os.cpu_count()} cores on the machine); the
whole script, with data gathering, tokenizer and scores, {total_s / 60:.1f} min.

## Scores

Computed by the training script from the saved float16 weights, with eager attention weights of the
Hugging Face model (independent of attn_widget's own code). `tests/test_demo_model.py` checks the top
scores through the explorer (`run_repeated_tokens_test`, `scores`).

{tables}

## Files

{sizes}

{total_bytes:,} bytes in all (without this README).
"""
    (args.out / "README.md").write_text(readme)
    print(f"\nWrote {args.out} ({total_bytes / 1e6:.2f} MB without the README)")
    for f in sorted(args.out.iterdir()):
        print(f"  {f.name}: {f.stat().st_size:,} bytes")

    targets = {
        "induction@50 >= 0.8": ind[50].max() >= 0.8,
        "induction@500 >= 0.8": ind[500].max() >= 0.8,
        "induction@2000 >= 0.6": ind[2000].max() >= 0.6,
        "previous-token >= 0.8": prev.max() >= 0.8,
    }
    for name, ok in targets.items():
        print(f"  {'ok  ' if ok else 'MISS'} {name}")
    del model
    write_measured(args.out, measure(args.out, args.threads))
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
