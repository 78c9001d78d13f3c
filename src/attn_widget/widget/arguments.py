"""Arguments checked at the explorer's boundary, each error naming the argument: the public
methods and the traits set from Python or the front end go through these before any work.

Bools are not whole numbers here (`layer=True` is a mistake, not layer 1), floats are not rounded
(`query=1.5` is refused, not read as 1), and text must be encodable (no lone surrogates).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from traitlets import HasTraits, TraitError

from attn_widget.errors import AttnWidgetError, ModelError, PromptError, WeightsError


class ArgumentError(AttnWidgetError, TypeError):
    """An argument of the wrong type or outside its range (a TypeError and a ValueError alike)."""


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {value!r:.60}"


def whole(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """An int (or numpy integer), never a bool or a float, within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentError(f"{name} must be a whole number, got {_kind(value)}")
    number = int(value)
    if minimum is not None and number < minimum:
        raise ArgumentError(f"{name} must be at least {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise ArgumentError(f"{name} must be at most {maximum}, got {number}")
    return number


def optional_whole(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int | None:
    return None if value is None else whole(name, value, minimum, maximum)


def real(name: str, value: Any, low: float, high: float, *, open_low: bool = False) -> float:
    """A finite real number (not a bool) in [low, high] (or (low, high] with `open_low`)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentError(f"{name} must be a number, got {_kind(value)}")
    number = float(value)
    below = number <= low if open_low else number < low
    if not math.isfinite(number) or below or number > high:
        bounds = f"{'(' if open_low else '['}{low:g}, {high:g}]"
        raise ArgumentError(f"{name} must be a finite number in {bounds}, got {number!r}")
    return number


def flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ArgumentError(f"{name} must be True or False, got {_kind(value)}")
    return value


def text(name: str, value: Any, error: type[AttnWidgetError] = ArgumentError) -> str:
    """A str that UTF-8 can encode: a lone surrogate (from a bad decode) is named with its position."""
    if not isinstance(value, str):
        raise ArgumentError(f"{name} must be a string, got {_kind(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise error(
            f"{name} holds a lone surrogate {value[err.start]!r} at character {err.start}: "
            "it is not text (decode the bytes with errors='replace' first)"
        ) from None
    return value


def prompt_text(name: str, value: Any) -> str:
    return text(name, value, PromptError)


def texts(name: str, values: Any) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ArgumentError(f"{name} must be a list of strings, got {_kind(values)}")
    return [text(f"{name}[{i}]", v) for i, v in enumerate(values)]


def indices(name: str, values: Any, count: int, what: str) -> list[int]:
    """A collection of indices below `count` (not a string: "01" is not [0, 1]), sorted, once each."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ArgumentError(f"{name} must be a list of {what} indices, got {_kind(values)}")
    chosen = sorted({whole(f"{name} item", v) for v in values})
    outside = [i for i in chosen if not 0 <= i < count]
    if outside:
        raise ArgumentError(f"{name}: {what} {outside[0]} is out of range: there are {what}s 0 to {count - 1}")
    if not chosen:
        raise ArgumentError(f"{name} is empty: give at least one {what}")
    return chosen


def choice(name: str, value: Any, options: Iterable[str]) -> str:
    allowed = list(options)
    if not isinstance(value, str) or value not in allowed:
        raise ArgumentError(f"unknown {name} {value!r:.60}: choose one of {', '.join(map(repr, allowed))}")
    return value


def reject_unknown(cls: type[HasTraits], kwargs: dict[str, Any]) -> None:
    """Keyword arguments beyond the named ones must be widget traits the user may set."""
    settable = {name for name, trait in cls.class_traits().items() if not trait.read_only}
    unknown = sorted(name for name in kwargs if name not in settable and name not in ("_esm", "_css"))
    if unknown:
        raise TypeError(
            f"{cls.__name__}() got unexpected keyword argument{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))}. It takes model, prompt, layer, head, tokenizer=, tokens=, "
            "and widget traits such as metric=, color_scale= or layout=."
        )


@contextmanager
def refused_as_trait_error() -> Iterator[None]:
    """A model that cannot weigh: a TraitError too, so traitlets keeps the old value."""
    try:
        yield
    except ModelError as err:
        if isinstance(err, TraitError):
            raise
        raise WeightsError(str(err)) from err
