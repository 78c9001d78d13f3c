"""`%attn [--model NAME] [--layer L] [--head H] [--] PROMPT`: an explorer from one line.

NAME is a variable in the user namespace; without it the last model `%attn` used (or, the first
time, the bundled demo model). The prompt is the rest of the line, taken as typed (quotes and all);
after `--` it is taken as typed even when it starts with dashes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError

from attn_widget.errors import AttnWidgetError
from attn_widget.widget.explorer import DEFAULT_PROMPT, AttentionExplorer

_OPTION = re.compile(r"\s*--(model|layer|head)(?:=|\s+)(\S+)")
_END_OF_OPTIONS = re.compile(r"\s*--(?:\s|$)")
_last_model: Any = None


@dataclass
class AttnArgs:
    prompt: str
    model: str | None = None
    layer: int = 0
    head: int = 0


def parse_line(line: str) -> AttnArgs:
    args = AttnArgs(prompt="")
    rest = line
    while match := _OPTION.match(rest):
        option, value = match.groups()
        if option == "model":
            args.model = value
        elif not re.fullmatch(r"\d+", value):
            raise UsageError(f"%attn: --{option} takes a whole number, got {value!r}")
        else:
            setattr(args, option, int(value))
        rest = rest[match.end() :]
    if end := _END_OF_OPTIONS.match(rest):
        rest = rest[end.end() :]
    elif rest.lstrip().startswith("--"):
        raise UsageError(
            f"%attn: unknown option {rest.split()[0]!r}; use --model, --layer, --head "
            "(or -- before a prompt that starts with dashes)"
        )
    args.prompt = rest.strip() or DEFAULT_PROMPT
    return args


def attn(line: str, user_ns: dict[str, Any]) -> AttentionExplorer:
    global _last_model
    args = parse_line(line)
    model = _last_model
    if args.model is not None:
        if args.model not in user_ns:
            raise UsageError(f"%attn: no variable named {args.model!r} in this notebook")
        model = user_ns[args.model]
    try:
        explorer = AttentionExplorer(model, prompt=args.prompt, layer=args.layer, head=args.head)
    except AttnWidgetError as err:
        raise UsageError(f"%attn: {err}") from None
    _last_model = explorer.model
    return explorer


def register(ipython: Any) -> None:
    ipython.register_magic_function(lambda line: attn(line, ipython.user_ns), magic_kind="line", magic_name="attn")
