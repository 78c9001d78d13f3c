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
        [--markdown docs/architectures.md]

It exits 1 when any model is silent or raw.
"""

from __future__ import annotations

import argparse
import contextlib
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
FILL_WHEN_UNSET: dict[str, int] = {
    # left None by some configs and read as numbers by their models
    "head_dim": 16, "num_key_value_heads": 2, "num_experts_per_tok": 2, "n_routed_experts": 4,
    "n_shared_experts": 1,
}  # fmt: skip
MAMBA_SIZES: dict[str, int] = {
    # state-space mixers of hybrid models: heads x head width = 2 x hidden_size
    "mamba_n_heads": 8, "mamba_d_head": 16, "mamba_num_heads": 8, "mamba_head_dim": 16, "mamba_headdim": 16,
    "mamba_d_ssm": 128, "mamba_d_state": 16, "mamba_chunk_size": 16, "mamba_dt_rank": 8, "rotary_dim": 8,
}  # fmt: skip
QSA = {"indexer_n_heads": 2, "indexer_kv_heads": 1, "indexer_head_dim": 16, "indexer_budget": WINDOW,
       "indexer_compress_ratio": 2}  # fmt: skip
OVERRIDES: dict[str, dict[str, Any]] = {
    # Where the general shrinking leaves a config its model cannot be built from, or a hybrid with no
    # softmax attention layer among its first two: the least that makes it a tiny model of its kind.
    "bamba": {"attn_layer_indices": [1]},
    # the global transformer reads cross_attn_k local states at once: its width is theirs x cross_attn_k
    "blt": {"global_config.hidden_size": 128, "global_config.head_dim": 32, "encoder_config.hidden_size_global": 128,
            "decoder_config.hidden_size_global": 128, "encoder_hash_byte_group_vocab": 512},
    "cohere_compass_text": {"rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 1e4}}},
    # rotary over head_dim x partial_rotary_factor (1/4), which must be the rotary part of its keys (8)
    "dots3_note": {"text_config.head_dim": 32},
    "dots3_note_text": {"head_dim": 32},
    "dbrx": {"attn_config.rope_theta": 1e4, "attn_config.clip_qkv": 8.0},
    "gemma3n_text": {
        "num_kv_shared_layers": 0, "intermediate_size": [128, 128], "activation_sparsity_pattern": [0.0, 0.0],
        "hidden_size_per_layer_input": 16, "vocab_size_per_layer_input": 64, "laurel_rank": 8,
    },
    "granitemoehybrid": {"layer_types": ["linear_attention", "full_attention"]},
    "mamba2": {"num_heads": 8, "head_dim": 16, "state_size": 16, "chunk_size": 16},
    "qwen4_exp": {f"text_config.{k}": v for k, v in QSA.items()},
    "qwen4_exp_text": QSA,
    "xlstm": {"embedding_dim": 64},
    # assistants draft from another model's key/value states: sharing none, they build (and cannot run alone)
    "gemma4_assistant": {"text_config.num_kv_shared_layers": 0},
    "gemma4_unified_assistant": {"text_config.num_kv_shared_layers": 0},
    "jamba": {"attn_layer_period": 2, "attn_layer_offset": 1, "expert_layer_period": 2, "expert_layer_offset": 1},
    "lfm2_moe": {"layer_types": ["conv", "full_attention"], "num_dense_layers": 1},
    "musicgen": {"decoder.num_codebooks": 1},
    "musicgen_melody": {"decoder.num_codebooks": 1},
    "nemotron_h": {"layers_block_type": ["linear_attention", "full_attention"]},
    "recurrent_gemma": {"block_types": ["recurrent", "attention"]},
    # the shared transformer block reads [hidden, embeddings]: its heads are 2 x hidden_size / heads wide
    "zamba": {"num_hidden_layers": 4, "layers_block_type": ["linear_attention", "hybrid"] * 2, "attention_head_dim": 32,
              "attention_hidden_size": 128},
    "zamba2": {"hybrid_layer_ids": [1], "layers_block_type": ["linear_attention", "hybrid"], "attention_head_dim": 32,
               "attention_hidden_size": 128},
}  # fmt: skip
CONFIG_ARGUMENTS: dict[str, dict[str, Any]] = {
    # configs whose defaults do not pass their own validation
    "gemma4_assistant": {"text_config": {"hidden_size_per_layer_input": 0, "vocab_size_per_layer_input": 0}},
}
SUB_MODEL: dict[str, str] = {
    # composite configs whose causal LM is built from one part
    "musicgen": "decoder",
    "musicgen_melody": "decoder",
}
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
        for value in vars(c).values():
            parts = value if isinstance(value, list | tuple) else [value]  # per-layer configs come in lists
            stack.extend(v for v in parts if isinstance(v, PretrainedConfig))
    return found


def _get(config: Any, name: str) -> Any:
    """An attribute, None where absent or where the config refuses a global value (a per-layer one)."""
    try:
        return getattr(config, name, None)
    except Exception:
        return None


def _set(config: Any, name: str, value: Any) -> None:
    """Set where the config lets it: a derived property (no setter), or an attribute that must be set
    through others (prophetnet's layer counts), keeps its value."""
    with contextlib.suppress(AttributeError, NotImplementedError):
        setattr(config, name, value)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _shrink(config: Any) -> None:
    for c in _sub_configs(config):
        for name, value in (SIZES | MAMBA_SIZES).items():
            old = _get(c, name)
            if _is_count(old):
                _set(c, name, min(old, value) if name in ("first_k_dense_replace",) else value)
        for name, value in FILL_WHEN_UNSET.items():
            if name in vars(c) and vars(c)[name] is None:
                _set(c, name, value)
        rope, nope = _get(c, "qk_rope_head_dim"), _get(c, "qk_nope_head_dim")
        if isinstance(rope, int) and isinstance(nope, int):
            _set(c, "head_dim", rope)  # multi-head latent attention: rotary part and whole key width
            if isinstance(_get(c, "num_key_value_heads"), int):
                _set(c, "num_key_value_heads", _get(c, "num_attention_heads"))  # its keys have every head
            if _get(c, "qk_head_dim") is not None:
                _set(c, "qk_head_dim", rope + nope)
        types = _get(c, "layer_types")
        if isinstance(types, list) and types:  # one layer of each kind, so attention layers stay
            kinds = list(dict.fromkeys(types))[:2]
            _set(c, "layer_types", (kinds * 2)[:2])
        for name in ("max_position_embeddings", "n_positions", "max_target_positions", "max_source_positions"):
            old = _get(c, name)
            if _is_count(old):
                _set(c, name, max(2 * PROMPT_TOKENS, min(old, 512)))
        vocab = _get(c, "vocab_size")
        if _is_count(vocab):
            _set(c, "vocab_size", max(vocab, 64) if vocab < 64 else min(vocab, 512))
        vocab = _get(c, "vocab_size")
        for name in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"):
            value = _get(c, name)
            if isinstance(vocab, int) and isinstance(value, int) and value >= vocab:
                _set(c, name, 1)
        if c.model_type == "reformer":
            c.is_decoder = True  # its causal-LM head asks for it
            c.axial_pos_embds_dim = [c.hidden_size // 2, c.hidden_size // 2]
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout"):
            if isinstance(_get(c, name), float):
                _set(c, name, 0.0)


def _override(config: Any, model_type: str) -> None:
    for path, value in OVERRIDES.get(model_type, {}).items():
        *owners, name = path.split(".")
        target = config
        for owner in owners:
            target = getattr(target, owner)
        setattr(target, name, value)


def tiny_config(model_type: str) -> Any:
    """The model type's own config, shrunk (layers, heads, widths, windows) and fixed where needed."""
    from transformers import AutoConfig

    config = AutoConfig.for_model(model_type, **CONFIG_ARGUMENTS.get(model_type, {}))
    _shrink(config)
    _override(config, model_type)
    return getattr(config, SUB_MODEL[model_type]) if model_type in SUB_MODEL else config


def build(model_type: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    config = tiny_config(model_type)
    torch.manual_seed(0)
    if model_type in SUB_MODEL:  # the auto class maps the composite config, not its part
        import transformers
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

        model = getattr(transformers, MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[model_type])._from_config(config).eval()
    else:
        model = AutoModelForCausalLM.from_config(config).eval()
    if hasattr(model, "set_default_language"):  # X-MOD: one adapter per language, chosen before a pass
        model.set_default_language(next(iter(getattr(model.config, "languages", None) or ["en_XX"])))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2 and any(part in name.split(".")[-2] for part in QK_NAMES if "." in name):
                p.mul_(SHARPEN)
    return model


def _vocab(model: Any) -> int:
    embeddings = model.get_input_embeddings()
    if isinstance(embeddings, list | tuple) or hasattr(embeddings, "__getitem__"):
        embeddings = embeddings[0]  # one table per codebook (musicgen)
    return int(embeddings.num_embeddings)


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
    if attentions is None:  # a model with no attention weights to give (a recurrent or state-space one)
        return []
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
    from attn_widget.backends.attention_interface import capturing_attention

    if hasattr(backend, "routed"):
        return backend.routed()
    if not getattr(backend, "captures_queries", False):
        return contextlib.nullcontext()
    return capturing_attention(backend.model, {}, lambda *_: None, None, False)  # type: ignore[call-arg]


def explore(model: Any, ids: Any) -> tuple[list[Any], Any, str]:
    """The explorer's attention per layer, the model's logits while the explorer is routed in, and
    how the explorer reads it (captured from the model's kernel, or eager attention and why)."""
    import torch

    from attn_widget.backends import backend_for
    from attn_widget.maths.layer import dense

    backend = backend_for(model, tokenizer=Stub())
    got: dict[int, Any] = {}
    backend.capture(ids, lambda layer, attention: got.__setitem__(layer, dense(attention).float()))
    with torch.no_grad(), _routed(backend):
        logits = _logits(model(input_ids=ids, use_cache=False))
    why = getattr(backend, "why_eager", None)
    return [got[i] for i in sorted(got)], logits, f"eager: {why}" if why else "captured"


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
            "reason": f"{type(err).__name__}: {str(err).strip().splitlines()[0][:200] if str(err).strip() else ''}",
        }
    if not expected:  # no softmax attention (a recurrent or state-space model): the explorer must say so
        try:
            got, _, _ = explore(model, ids)
        except AttnWidgetError as err:
            return {"class": "refused", "reason": str(err)}
        except Exception as err:
            return {"class": "raw", "reason": f"{type(err).__name__}: {err}"[:300]}
        return {"class": "silent", "reason": f"{len(got)} layers where eager output_attentions gives none"}
    if any(not bool(torch.isfinite(e).all()) for e in expected):
        return {"class": "untestable", "reason": "eager weights are not finite"}
    try:
        got, logits, path = explore(model, ids)
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
    return {"class": "exact", "reason": f"worst {worst:.2g}, {len(got)} layers, {path}"}


def _child(model_type: str, conn: Any) -> None:
    import warnings

    warnings.simplefilter("ignore")
    try:
        result = check(model_type)
    except BaseException as err:
        result = {"class": "raw", "reason": f"{type(err).__name__}: {err}"[:300]}
    conn.send(result)
    conn.close()


def preload(model_types: list[str]) -> None:
    """Every model type's classes and the explorer, imported once in the parent: each forked child
    starts with them (copy-on-write) instead of importing transformers' modeling code again, which
    costs seconds per model type where its forward passes cost a fraction of one. No torch operation
    runs here: a process that has run one may not fork safely."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    import attn_widget.backends.huggingface  # noqa: F401
    import attn_widget.maths.layer  # noqa: F401

    for model_type in model_types:
        with contextlib.suppress(Exception):  # a model that fails to import fails in its own child
            MODEL_FOR_CAUSAL_LM_MAPPING[CONFIG_MAPPING[model_type]]


def run(model_types: list[str], workers: int, timeout: float, progress: bool = True) -> dict[str, dict[str, Any]]:
    """Each model type in a forked process, everything it imports imported once, here."""
    preload(model_types)
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


def markdown(results: dict[str, dict[str, Any]]) -> str:
    """The per-type table of docs/architectures.md."""
    import transformers

    counts = Counter(r["class"] for r in results.values())
    lines = [
        "# Every causal-LM architecture in transformers",
        "",
        f"Generated by `python scripts/architecture_sweep.py --markdown docs/architectures.md` (transformers "
        f"{transformers.__version__}): each model type in the causal-LM mapping built tiny and random from its own "
        f"config, sharpened, and explored on a {PROMPT_TOKENS}-token prompt against the same model's eager "
        f"`output_attentions` (tolerance {TOLERANCE:g}); the logits must not change while the explorer runs.",
        "",
        " · ".join(f"{c} {counts.get(c, 0)}" for c in CLASSES) + f" (of {len(results)})",
        "",
        "| model type | class | detail |",
        "|---|---|---|",
    ]
    for name, r in sorted(results.items()):
        reason = r["reason"].replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{name}` | {r['class']} | {reason} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--only", default="", help="comma-separated model types (default: all)")
    parser.add_argument("--json", default="", help="write the results here")
    parser.add_argument("--markdown", default="", help="write the per-type table here (docs/architectures.md)")
    args = parser.parse_args()
    types = [t for t in args.only.split(",") if t] or all_model_types()
    results = run(types, args.workers, args.timeout)
    print(summary(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown(results))
    return 1 if any(r["class"] in ("silent", "raw") for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
