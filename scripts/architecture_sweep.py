"""Every model type in the installed transformers' causal-LM mapping, built tiny and random from its
own config, explored and compared with the same model's eager `output_attentions`.

Each model type runs in its own forked process with a timeout, so one hang or crash does not stop the
rest. Each ends in one class:

- exact: every layer equals eager within TOLERANCE, and the logits are unchanged while the explorer runs
- refused: a clear `AttnWidgetError` (the reason is printed)
- silent: the explorer showed something else than eager (values, layer count, NaN) or changed the logits
- raw: any other exception, a crash or a timeout
- untestable: the model cannot be built tiny here, or its own eager pass gives no weights to compare with

    python scripts/architecture_sweep.py [--workers 2] [--timeout 180] [--only llama,gpt2] [--json out.json]

It exits 1 when any model is silent or raw.
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing as mp
import os
import sys
import time
import traceback
from collections import Counter
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TOLERANCE = 1e-4
PROMPT_TOKENS = 40
WINDOW = 8
"""Small windows and top-k, so a 40-token prompt goes past them."""
CLASSES = ("exact", "refused", "silent", "raw", "untestable")

SIZES: dict[str, int] = {
    # layers, heads, widths
    "num_hidden_layers": 2, "n_layer": 2, "n_layers": 2, "num_layers": 2, "decoder_layers": 2,
    "encoder_layers": 2, "num_decoder_layers": 2, "num_encoder_layers": 2,
    "num_attention_heads": 4, "n_head": 4, "n_heads": 4, "decoder_attention_heads": 4,
    "encoder_attention_heads": 4, "num_heads": 4, "num_key_value_heads": 2, "num_kv_heads": 2,
    "hidden_size": 64, "n_embd": 64, "d_model": 64, "dim": 64, "embed_dim": 64,
    "head_dim": 16, "d_kv": 16, "intermediate_size": 128, "n_inner": 128, "ffn_dim": 128,
    "decoder_ffn_dim": 128, "encoder_ffn_dim": 128, "d_ff": 128,
    # mixtures of experts
    "num_experts": 4, "num_local_experts": 4, "n_routed_experts": 4, "num_experts_per_tok": 2,
    "moe_intermediate_size": 32, "n_shared_experts": 1, "shared_intermediate_size": 32,
    "first_k_dense_replace": 1, "n_group": 1, "topk_group": 1,
    # multi-head latent attention
    "q_lora_rank": 32, "kv_lora_rank": 16, "qk_rope_head_dim": 8, "qk_nope_head_dim": 8, "v_head_dim": 16,
    # windows and sparse key selection: small, so a short prompt goes past them
    "sliding_window": WINDOW, "window_size": WINDOW, "attention_window": WINDOW, "local_window_size": WINDOW,
    "index_topk": WINDOW,
}  # fmt: skip
SHARPEN = 4.0
"""Query and key weights are multiplied by this: random attention is near uniform otherwise."""
QK_NAMES = ("q_proj", "k_proj", "c_attn", "query", "key", "qkv", "query_key_value", "q_b_proj", "kv_b_proj", "Wqkv")


def _sub_configs(config: Any) -> list[Any]:
    from transformers import PretrainedConfig

    found, stack = [], [config]
    while stack:
        c = stack.pop()
        if any(c is f for f in found):
            continue
        found.append(c)
        stack.extend(v for v in vars(c).values() if isinstance(v, PretrainedConfig))
    return found


def _shrink(config: Any) -> None:
    for c in _sub_configs(config):
        for name, value in SIZES.items():
            try:
                old = getattr(c, name, None)
            except Exception:  # a per-layer attribute (gemma4) is set on its layers' configs
                continue
            if isinstance(old, int) and not isinstance(old, bool) and old > 0:
                setattr(c, name, min(old, value) if name in ("first_k_dense_replace",) else value)
        if isinstance(getattr(c, "qk_rope_head_dim", None), int) and isinstance(
            getattr(c, "qk_nope_head_dim", None), int
        ):
            c.head_dim = c.qk_rope_head_dim  # multi-head latent attention: rotary part and whole key width
            if isinstance(getattr(c, "num_key_value_heads", None), int):
                c.num_key_value_heads = c.num_attention_heads  # its keys have every head
            if hasattr(c, "qk_head_dim"):
                c.qk_head_dim = c.qk_rope_head_dim + c.qk_nope_head_dim
        types = getattr(c, "layer_types", None)
        if isinstance(types, list) and types:  # one layer of each kind, so attention layers stay
            kinds = list(dict.fromkeys(types))[:2]
            c.layer_types = (kinds * 2)[:2]
        for name in ("max_position_embeddings", "n_positions", "max_target_positions", "max_source_positions"):
            old = getattr(c, name, None)
            if isinstance(old, int) and old > 0:
                setattr(c, name, max(2 * PROMPT_TOKENS, min(old, 512)))
        if isinstance(getattr(c, "vocab_size", None), int) and c.vocab_size > 0:
            c.vocab_size = max(c.vocab_size, 64) if c.vocab_size < 64 else min(c.vocab_size, 512)
        vocab = getattr(c, "vocab_size", None)
        for name in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"):
            value = getattr(c, name, None)
            if isinstance(vocab, int) and isinstance(value, int) and value >= vocab:
                setattr(c, name, 1)
        if c.model_type == "reformer":
            c.is_decoder = True  # its causal-LM head asks for it
            c.axial_pos_embds_dim = [c.hidden_size // 2, c.hidden_size // 2]
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout"):
            if isinstance(getattr(c, name, None), float):
                setattr(c, name, 0.0)


def build(model_type: str) -> Any:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(model_type)
    _shrink(config)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2 and any(part in name.split(".")[-2] for part in QK_NAMES if "." in name):
                p.mul_(SHARPEN)
    return model


def _vocab(model: Any) -> int:
    return int(model.get_input_embeddings().num_embeddings)


def _logits(out: Any) -> Any:
    import torch

    logits = out.logits if hasattr(out, "logits") else out[0]
    return logits.float() if isinstance(logits, torch.Tensor) else None


def eager_reference(model: Any, ids: Any) -> list[Any]:
    import torch

    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        out = eager(input_ids=ids, output_attentions=True, use_cache=False)
    attentions = out.attentions if getattr(out, "attentions", None) is not None else out.get("decoder_attentions")
    # over the prompt's queries: a linear-attention layer (minimax) returns its state in this place
    n = int(ids.shape[-1])
    return [a.float() for a in attentions if isinstance(a, torch.Tensor) and a.dim() == 4 and a.shape[-2] == n]


class Stub:
    """A tokenizer stand-in: the sweep hands token ids to the backend itself."""

    bos_token_id = None

    def __call__(self, text: str) -> dict[str, list[int]]:
        return {"input_ids": [1] * len(text.split())}

    def decode(self, ids: list[int]) -> str:
        return str(ids)


def _routed(backend: Any) -> Any:
    """The model as the explorer runs it (its attention routed through the capture), recording nothing."""
    import contextlib

    from attn_widget.backends.attention_interface import capturing_attention

    if hasattr(backend, "routed"):
        return backend.routed()
    if not getattr(backend, "captures_queries", False):
        return contextlib.nullcontext()
    return capturing_attention(backend.model, {}, lambda *_: None, None, False)  # type: ignore[call-arg]


def explore(model: Any, ids: Any) -> tuple[list[Any], Any]:
    """The explorer's attention per layer, and the model's logits while the explorer is routed in."""
    import torch

    from attn_widget.backends import backend_for
    from attn_widget.maths.layer import dense

    backend = backend_for(model, tokenizer=Stub())
    got: dict[int, Any] = {}
    backend.capture(ids, lambda layer, attention: got.__setitem__(layer, dense(attention).float()))
    with torch.no_grad(), _routed(backend):
        logits = _logits(model(input_ids=ids, use_cache=False))
    return [got[i] for i in sorted(got)], logits


def check(model_type: str) -> dict[str, Any]:
    import torch

    from attn_widget.errors import AttnWidgetError

    try:
        model = build(model_type)
        torch.manual_seed(1)
        ids = torch.randint(3, _vocab(model), (1, PROMPT_TOKENS))
        with torch.no_grad():
            plain = _logits(model(input_ids=ids, use_cache=False))
        expected = eager_reference(model, ids)
    except Exception as err:  # the model itself, before the explorer
        return {
            "class": "untestable",
            "reason": f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}",
        }
    if not expected:
        return {"class": "untestable", "reason": "eager output_attentions gives no weights"}
    if any(not bool(torch.isfinite(e).all()) for e in expected):
        return {"class": "untestable", "reason": "eager weights are not finite"}
    try:
        got, logits = explore(model, ids)
    except AttnWidgetError as err:
        return {"class": "refused", "reason": str(err)}
    except Exception as err:
        return {"class": "raw", "reason": f"{type(err).__name__}: {err}"[:300], "trace": traceback.format_exc()[-1500:]}
    if len(got) != len(expected):
        return {"class": "silent", "reason": f"{len(got)} layers where eager has {len(expected)}"}
    worst = 0.0
    for layer, (g, e) in enumerate(zip(got, expected, strict=True)):
        if g.shape != e.shape:
            return {"class": "silent", "reason": f"layer {layer}: shape {tuple(g.shape)} vs eager {tuple(e.shape)}"}
        diff = float((g - e).abs().max())
        if diff != diff:
            return {"class": "silent", "reason": f"layer {layer}: NaN"}
        worst = max(worst, diff)
    if worst > TOLERANCE:
        return {"class": "silent", "reason": f"differs from eager by {worst:.3g}"}
    if plain is not None and logits is not None:
        change = float((plain - logits).abs().max() / plain.abs().max().clamp_min(1e-6))
        if not change <= TOLERANCE:
            return {"class": "silent", "reason": f"logits change by {change:.3g} (relative) while explored"}
    return {"class": "exact", "reason": f"worst {worst:.2g}, {len(got)} layers"}


def _child(model_type: str, conn: Any) -> None:
    import warnings

    warnings.simplefilter("ignore")
    try:
        result = check(model_type)
    except BaseException as err:
        result = {"class": "raw", "reason": f"{type(err).__name__}: {err}"[:300]}
    conn.send(result)
    conn.close()


def run(model_types: list[str], workers: int, timeout: float, progress: bool = True) -> dict[str, dict[str, Any]]:
    """Each model type in a forked process (torch and transformers imported once, here)."""
    import torch  # noqa: F401
    import transformers  # noqa: F401

    ctx = mp.get_context("fork")
    results: dict[str, dict[str, Any]] = {}
    pending = list(model_types)
    running: dict[str, tuple[Any, Any, float]] = {}
    while pending or running:
        while pending and len(running) < workers:
            name = pending.pop(0)
            parent, child = ctx.Pipe(duplex=False)
            process = ctx.Process(target=_child, args=(name, child), daemon=True)
            process.start()
            child.close()
            running[name] = (process, parent, time.monotonic())
        time.sleep(0.05)
        for name, (process, parent, started) in list(running.items()):
            result = None
            if parent.poll():
                try:
                    result = parent.recv()
                except EOFError:
                    result = {"class": "raw", "reason": f"crashed (exit code {process.exitcode})"}
            elif not process.is_alive():
                result = {"class": "raw", "reason": f"crashed (exit code {process.exitcode})"}
            elif time.monotonic() - started > timeout:
                process.kill()
                result = {"class": "raw", "reason": f"timed out after {timeout:.0f} s"}
            if result is not None:
                process.join(5)
                result["seconds"] = round(time.monotonic() - started, 1)
                results[name] = result
                del running[name]
                if progress:
                    print(f"{name:28s} {result['class']:10s} {result['reason'][:150]}", flush=True)
    return results


def all_model_types() -> list[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return list(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)


def summary(results: dict[str, dict[str, Any]]) -> str:
    counts = Counter(r["class"] for r in results.values())
    lines = [" ".join(f"{c}={counts.get(c, 0)}" for c in CLASSES) + f" (of {len(results)})"]
    for cls in ("refused", "silent", "raw", "untestable"):
        for name, r in sorted(results.items()):
            if r["class"] == cls:
                lines.append(f"  {cls:10s} {name}: {r['reason'][:240]}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--only", default="", help="comma-separated model types (default: all)")
    parser.add_argument("--json", default="", help="write the results here")
    args = parser.parse_args()
    types = [t for t in args.only.split(",") if t] or all_model_types()
    results = run(types, args.workers, args.timeout)
    print(summary(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)
    return 1 if any(r["class"] in ("silent", "raw") for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
