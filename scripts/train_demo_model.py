#!/usr/bin/env python
"""Train the small demo model bundled with attn_widget (``attn-widget-demo``).

Everything runs offline on a CPU in about 10-15 minutes:

1. Text: docstrings of Python's standard library (gathered with ``ast``), plus
   docstrings of a few installed packages (``--extra-packages``, numpy by
   default) and a small amount of template English sentences with common names
   so that words such as " Mary", " John" or " store" become single tokens.
2. A GPT-2 style byte-level BPE tokenizer (HF ``tokenizers``) with
   ``<|endoftext|>`` as BOS/EOS/pad; the tokenizer prepends BOS itself.
3. A 2-layer attention-only TransformerLens-native model built with
   ``TransformerBridge.boot_native`` and trained with next-token cross entropy.
   Most training sequences are a random segment repeated to fill the context,
   which makes previous-token and induction heads form quickly (an abrupt phase
   change, around step 1,500 with the defaults).
4. Scores from a small independent implementation: repeated random token
   induction score, previous-token score on ordinary text, and attention to
   position 0 (BOS), per head.

Output (``src/attn_widget/models/demo/`` by default): ``model.safetensors``
(float16), ``config.json`` (``TransformerBridgeConfig`` fields), the tokenizer
files written by ``save_pretrained`` and a ``README.md``.

Usage::

    .venv/bin/python scripts/train_demo_model.py            # defaults
    .venv/bin/python scripts/train_demo_model.py --steps 500 --out /tmp/demo
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import random
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
EOT = "<|endoftext|>"
PROMPT = "When Mary and John went to the store, Mary gave a drink to John."

SKIP_DIRS = {"__pycache__", "site-packages", "dist-packages", "idle_test", "ensurepip", "lib2to3"}

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
    """Yield (relative path, docstring) for modules, classes and functions under root."""
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
                        yield str(path.relative_to(root)), doc


def gather_docstrings(extra_packages: list[str], max_chars: int, time_budget_s: float) -> list[str]:
    """Docstrings of the stdlib (first) and of the named installed packages, deduplicated."""
    roots = [Path(sysconfig.get_paths()["stdlib"])]
    purelib = Path(sysconfig.get_paths()["purelib"])
    for pkg in extra_packages:
        if (purelib / pkg).is_dir():
            roots.append(purelib / pkg)
        else:
            print(f"  (package {pkg!r} not installed, skipped)")
    seen: set[str] = set()
    docs: list[str] = []
    total = 0
    t0 = time.time()
    for root in roots:
        n_before, chars_before = len(docs), total
        # Each extra package gets at most half of what is left, so the stdlib dominates.
        cap = max_chars if root == roots[0] else total + (max_chars - total) // 2
        for _, doc in iter_docstrings(root):
            if doc in seen:
                continue
            seen.add(doc)
            docs.append(doc)
            total += len(doc)
            if total >= cap or time.time() - t0 > time_budget_s:
                break
        print(f"  {root}: {len(docs) - n_before} docstrings, {total - chars_before:,} chars")
    return docs


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
]


def template_sentences(n: int, rng: random.Random) -> list[str]:
    """Short paragraphs of simple English sentences with common first names."""
    paragraphs = []
    for _ in range(n):
        sents = []
        for _ in range(rng.randint(2, 4)):
            a, b = rng.sample(NAMES, 2)
            sents.append(rng.choice(TEMPLATES).format(A=a, B=b, P=rng.choice(PLACES), O=rng.choice(OBJECTS)))
        paragraphs.append(" ".join(sents))
    return paragraphs


# ---------------------------------------------------------------------- tokenizer
def train_tokenizer(texts: list[str], vocab_size: int, n_ctx: int, save_dir: Path):
    """Train a GPT-2 style byte-level BPE tokenizer.

    Returns (tokenizer to save, tokenizer to use). The second one is saved to
    ``save_dir`` and loaded back, because ``boot_native``
    needs a tokenizer with a ``name_or_path`` (an in-memory one raises KeyError).
    It prepends BOS itself (``add_bos_token=True``), like Llama's tokenizer.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
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
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOT,
        eos_token=EOT,
        unk_token=EOT,
        pad_token=EOT,
        add_bos_token=True,
        add_eos_token=False,
        model_max_length=n_ctx,
    )
    fast.save_pretrained(str(save_dir))
    return fast, load_tokenizer(save_dir)


def load_tokenizer(folder: Path):
    """Load a saved tokenizer the way ``attn_widget.models.load_demo_model`` does.

    ``add_bos_token=True`` is passed again because transformers does not keep it
    in tokenizer_config.json; without it ``boot_native`` re-loads the tokenizer
    through ``AutoTokenizer`` (slower, and it looks for a model config).
    """
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast.from_pretrained(str(folder), add_bos_token=True)


# -------------------------------------------------------------------------- model
def model_config(args, d_vocab: int) -> dict:
    """The TransformerBridgeConfig fields written to config.json."""
    return {
        "model_name": "attn-widget-demo",
        "n_layers": args.n_layers,
        "n_heads": args.n_heads,
        "d_model": args.d_model,
        "d_head": args.d_head,
        "n_ctx": args.n_ctx,
        "d_vocab": d_vocab,
        "attn_only": True,
        "normalization_type": "LN",
        "act_fn": "relu",
        "init_mode": "gpt2",
        "seed": args.seed,
        "tokenizer_prepends_bos": True,
        "default_prepend_bos": True,
    }


def build_model(cfg_dict: dict, tokenizer):
    from transformer_lens import TransformerBridge, TransformerBridgeConfig

    cfg = TransformerBridgeConfig(**cfg_dict)
    return TransformerBridge.boot_native(cfg, tokenizer=tokenizer, model_name=cfg_dict["model_name"])


class Batcher:
    """Training batches: BOS + either a text window or a repeated random segment."""

    def __init__(
        self,
        stream: torch.Tensor,
        bos: int,
        vocab: int,
        n_ctx: int,
        batch: int,
        repeat_frac: float,
        seg_min: int,
        seg_max: int,
        seed: int,
    ):
        self.stream, self.bos, self.vocab, self.n_ctx, self.batch = stream, bos, vocab, n_ctx, batch
        self.repeat_frac, self.seg_min, self.seg_max = repeat_frac, seg_min, seg_max
        self.g = torch.Generator().manual_seed(seed)

    def _rand(self) -> float:
        return torch.rand((), generator=self.g).item()

    def _randint(self, lo: int, hi: int) -> int:  # inclusive lo, exclusive hi
        return int(torch.randint(lo, hi, (), generator=self.g))

    def __call__(self) -> torch.Tensor:
        n = self.n_ctx - 1
        x = torch.empty(self.batch, self.n_ctx, dtype=torch.long)
        x[:, 0] = self.bos
        for i in range(self.batch):
            if self._rand() < self.repeat_frac:
                length = self._randint(self.seg_min, self.seg_max + 1)
                if self._rand() < 0.5:  # uniformly random ordinary tokens
                    seg = torch.randint(1, self.vocab, (length,), generator=self.g)
                else:  # a piece of real text
                    s = self._randint(0, len(self.stream) - length)
                    seg = self.stream[s : s + length]
                x[i, 1:] = seg.repeat(math.ceil(n / length))[:n]
            else:
                s = self._randint(0, len(self.stream) - n)
                x[i, 1:] = self.stream[s : s + n]
        return x


# ------------------------------------------------------------------------- scores
def attention_patterns(model, tokens: torch.Tensor) -> torch.Tensor:
    """Attention patterns stacked as [layer, batch, head, query, key]."""
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name.endswith("hook_pattern"))
    return torch.stack([cache[f"blocks.{layer}.attn.hook_pattern"] for layer in range(model.cfg.n_layers)])


def induction_scores(model, bos: int, vocab: int, batch: int = 16, half_len: int = 40, seed: int = 0) -> torch.Tensor:
    """[layer, head] mean attention from each second-half token to the token after its first occurrence."""
    g = torch.Generator().manual_seed(seed)
    rand = torch.randint(1, vocab, (batch, half_len), generator=g)
    tokens = torch.cat([torch.full((batch, 1), bos), rand, rand], dim=1)
    pat = attention_patterns(model, tokens)
    q = torch.arange(1 + half_len, 1 + 2 * half_len)
    k = q - half_len + 1
    return pat[:, :, :, q, k].mean(dim=(1, 3))


def text_scores(model, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """[layer, head] previous-token score and attention to position 0, averaged over texts."""
    prev, first = [], []
    for text in texts:
        tokens = model.to_tokens(text)  # BOS prepended
        pat = attention_patterns(model, tokens)[:, 0]  # [layer, head, q, k]
        q = torch.arange(1, tokens.shape[1])
        prev.append(pat[:, :, q, q - 1].mean(-1))
        first.append(pat[:, :, q, 0].mean(-1))
    return torch.stack(prev).mean(0), torch.stack(first).mean(0)


def format_table(title: str, scores: torch.Tensor) -> str:
    n_layers, n_heads = scores.shape
    lines = [
        f"{title}",
        "| layer | " + " | ".join(f"H{h}" for h in range(n_heads)) + " |",
        "|---" * (n_heads + 1) + "|",
    ]
    for layer in range(n_layers):
        lines.append(f"| L{layer} | " + " | ".join(f"{scores[layer, h]:.2f}" for h in range(n_heads)) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=2200)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vocab-size", type=int, default=4096)
    p.add_argument("--n-layers", type=int, default=2)
    p.add_argument("--n-heads", type=int, default=4)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--d-head", type=int, default=32)
    p.add_argument("--n-ctx", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--repeat-frac", type=float, default=0.8, help="fraction of repeated-segment sequences")
    p.add_argument("--seg-min", type=int, default=8)
    p.add_argument("--seg-max", type=int, default=64)
    p.add_argument(
        "--extra-packages", default="numpy", help="comma-separated installed packages whose docstrings are added"
    )
    p.add_argument("--max-chars", type=int, default=4_000_000, help="cap on gathered docstring characters")
    p.add_argument("--n-template", type=int, default=3000, help="number of template English paragraphs")
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = p.parse_args()

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    t_start = time.time()

    # ---- data
    print("Gathering docstrings ...", flush=True)
    t0 = time.time()
    extra = [s for s in args.extra_packages.split(",") if s]
    docs = gather_docstrings(extra, args.max_chars, time_budget_s=50.0)
    rng = random.Random(args.seed)
    docs += template_sentences(args.n_template, rng)
    rng.shuffle(docs)
    n_held = max(1, len(docs) // 50)
    held_out, train_docs = docs[:n_held], docs[n_held:]
    print(
        f"  {len(train_docs)} training texts ({sum(map(len, train_docs)):,} chars), "
        f"{len(held_out)} held out; {time.time() - t0:.1f}s",
        flush=True,
    )

    # ---- tokenizer
    t0 = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="attn_widget_demo_"))
    tokenizer_to_save, tokenizer = train_tokenizer(train_docs, args.vocab_size, args.n_ctx, tmp / "tokenizer")
    vocab = len(tokenizer)
    bos = tokenizer.bos_token_id
    print(f"Tokenizer: vocab {vocab}, bos id {bos}; {time.time() - t0:.1f}s")
    print(f"  {PROMPT!r} -> {tokenizer.tokenize(PROMPT)}")
    encodings = tokenizer.backend_tokenizer.encode_batch(train_docs, add_special_tokens=False)
    ids = [i for enc in encodings for i in [*enc.ids, bos]]
    stream = torch.tensor(ids, dtype=torch.long)
    print(f"  training stream: {len(stream):,} tokens", flush=True)

    # ---- model
    cfg_dict = model_config(args, vocab)
    model = build_model(cfg_dict, tokenizer)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"Model: {args.n_layers} layers x {args.n_heads} heads, d_model {args.d_model}, d_head {args.d_head}, "
        f"n_ctx {args.n_ctx}, attn-only, {n_params:,} params"
    )

    params = list(model.parameters())
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
    )

    def lr_at(step: int) -> float:
        """Linear warm-up, flat, then cosine decay to a tenth over the last 20% of steps."""
        warm = min(1.0, (step + 1) / args.warmup)
        decay_from = 0.8 * args.steps
        if step < decay_from:
            return args.lr * warm
        return args.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - decay_from) / (0.2 * args.steps))))

    batcher = Batcher(
        stream,
        bos,
        vocab,
        args.n_ctx,
        args.batch_size,
        args.repeat_frac,
        args.seg_min,
        args.seg_max,
        seed=args.seed + 1,
    )

    print("Training ...", flush=True)
    t_train = time.time()
    ema = None
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        x = batcher()
        logits = model(x)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if (step + 1) % args.log_every == 0 or step == 0:
            print(
                f"  step {step + 1:5d}  loss {ema:.3f}  lr {lr_at(step):.1e}  {time.time() - t_train:6.0f}s", flush=True
            )
        if args.eval_every and (step + 1) % args.eval_every == 0:
            model.eval()
            ind = induction_scores(model, bos, vocab, batch=8, seed=123)
            prev, _ = text_scores(model, EVAL_TEXTS[:2])
            model.train()
            print(
                f"    eval: top induction {ind.max():.2f} "
                f"(L{ind.argmax() // ind.shape[1]}H{ind.argmax() % ind.shape[1]}), "
                f"top prev-token {prev.max():.2f}",
                flush=True,
            )
    train_s = time.time() - t_train
    print(f"Training took {train_s:.0f}s ({train_s / 60:.1f} min) for {args.steps} steps", flush=True)

    # ---- save (float16), then reload the float16 weights so scores describe the shipped model
    args.out.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import load_file, save_file

    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(args.out / "model.safetensors"), metadata={"format": "pt", "name": cfg_dict["model_name"]})
    os.chmod(args.out / "model.safetensors", 0o644)  # safetensors writes 0600
    (args.out / "config.json").write_text(json.dumps(cfg_dict, indent=2) + "\n")
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (args.out / f).exists():
            (args.out / f).unlink()
    tokenizer_to_save.save_pretrained(str(args.out))
    shutil.rmtree(tmp, ignore_errors=True)

    tokenizer = load_tokenizer(args.out)
    model = build_model(cfg_dict, tokenizer)
    model.load_state_dict({k: v.float() for k, v in load_file(str(args.out / "model.safetensors")).items()})
    model.eval()

    # ---- scores
    texts = EVAL_TEXTS + [d for d in held_out if not d.lstrip().startswith(">>>")][:10]
    ind = induction_scores(model, bos, vocab, batch=16, half_len=40, seed=0)
    prev, first = text_scores(model, texts)
    tables = "\n\n".join(
        [
            format_table("Induction score (repeated random tokens, batch 16, half_len 40):", ind),
            format_table(f"Previous-token score (mean A[q, q-1], q >= 1, over {len(texts)} texts):", prev),
            format_table("Attention to position 0 / BOS (mean A[q, 0], q >= 1, same texts):", first),
        ]
    )
    total_s = time.time() - t_start
    print()
    print(f"Training time: {train_s:.0f}s ({train_s / 60:.1f} min); total script time {total_s / 60:.1f} min")
    print(
        f"Model: n_layers={args.n_layers} n_heads={args.n_heads} d_model={args.d_model} d_head={args.d_head} "
        f"n_ctx={args.n_ctx} attn_only=True params={n_params:,} d_vocab={vocab}"
    )
    print(tables)
    files = sorted(f for f in args.out.iterdir() if f.is_file() and f.name != "README.md")
    sizes = "\n".join(f"- `{f.name}`: {f.stat().st_size:,} bytes" for f in files)

    changed = "".join(
        f" --{k.replace('_', '-')} {v}"
        for k, v in vars(args).items()
        if k not in ("out", "log_every", "eval_every", "threads") and v != p.get_default(k)
    )
    readme = f"""# attn-widget-demo

A tiny TransformerLens-native, attention-only model bundled with `attn_widget` for
demos and tests. Load it with `attn_widget.models.load_demo_model()`.

It was trained from scratch, offline, on a CPU: docstrings of the Python
standard library and of {", ".join(extra) or "no other package"}, plus a few
thousand template English sentences with common first names. Most training
sequences were a random segment repeated to fill the context, so its heads show
the textbook patterns: previous-token heads, induction heads and heads that
rest on the first (BOS) token.

## Shape

- {args.n_layers} layers x {args.n_heads} heads, d_model {args.d_model}, d_head {args.d_head}, n_ctx {args.n_ctx},
  attention only (no MLPs), LayerNorm, learned positional embeddings
- {n_params:,} parameters, stored as float16
- byte-level BPE tokenizer, vocabulary {vocab}; `<|endoftext|>` (id {bos}) is BOS/EOS/pad, prepended by `to_tokens`

## Training

```
python scripts/train_demo_model.py{changed}
```

{args.steps} steps, batch {args.batch_size}, AdamW lr {args.lr:g}
(warmup {args.warmup}, cosine decay over the last 20%),
{int(args.repeat_frac * 100)}% repeated segments of {args.seg_min}-{args.seg_max} tokens, seed {args.seed}.
Training took {train_s / 60:.1f} min on {os.cpu_count()} CPU cores (torch {torch.__version__}).

## Scores

Computed by the training script with the saved float16 weights.

{tables}

## Files

{sizes}
"""
    (args.out / "README.md").write_text(readme)
    total = sum(f.stat().st_size for f in args.out.iterdir() if f.is_file())
    print(f"\nWrote {args.out} ({total / 1e6:.2f} MB in all)")
    for f in sorted(args.out.iterdir()):
        print(f"  {f.name}: {f.stat().st_size:,} bytes")

    ok = ind.max() >= 0.6 and prev.max() >= 0.6
    print("Scores meet the thresholds (>= 0.6)." if ok else "WARNING: scores below the 0.6 thresholds.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
