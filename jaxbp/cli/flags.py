"""The flags of ``jaxbp train`` as data: a field with its metavar, help and converter, and the
converters from command-line text (each raises :class:`ConfigError` naming the flag and the range)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Collection
from typing import Any

MAX_HIDDEN_LAYERS = 100


class ConfigError(ValueError):
    """A setting is not usable; the message names the flag and a valid choice."""


Converter = Callable[[str, str], Any]


def as_flag_text(value: Any) -> str:
    """A setting as its flag would take it."""
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return "full" if value is None else str(value)


def flag_only(flag: str, text: str) -> bool:
    return bool(text)


def setting(default: Any, metavar: str, help: str, convert: Converter, **extra: Any) -> Any:
    """A field with its flag's metavar, help and converter (``{default}`` fills in the default)."""
    shown = extra.pop("shown_default", default)
    text = help.format(default=as_flag_text(shown))
    meta = {"metavar": metavar, "help": text, "convert": convert, **extra}
    return dataclasses.field(default=default, metadata=meta)


def choice_setting(default: Any, valid: Collection[str], help: str, **extra: Any) -> Any:
    listed = ", ".join(sorted(valid))
    return setting(
        default,
        "NAME",
        f"{help}: one of {listed} (default: {{default}})",
        lambda flag, text: to_choice(flag, text, valid),
        **extra,
    )


def number_setting(default: Any, metavar: str, help: str, expected: str, ok: Any, **extra: Any):
    return setting(
        default,
        metavar,
        f"{help} (default: {{default}})",
        lambda flag, text: to_number(flag, text, expected, ok),
        **extra,
    )


def integer_setting(default: Any, metavar: str, help: str, low: int, high: int, **extra: Any):
    return setting(
        default,
        metavar,
        f"{help} (default: {{default}})",
        lambda flag, text: to_integer(flag, text, low, high),
        **extra,
    )


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def to_choice(flag: str, text: str, valid: Any) -> str:
    if text not in valid:
        raise ConfigError(f"unknown {flag} {text!r}; valid choices are {', '.join(sorted(valid))}")
    return text


def to_number(flag: str, text: str, expected: str, ok: Callable[[float], bool]) -> float:
    try:
        value = float(text)
    except (ValueError, OverflowError):
        value = math.nan
    if not math.isfinite(value) or not ok(value):
        raise ConfigError(f"{flag} must be a finite number {expected}, got {text!r}")
    return value


def to_integer(flag: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text) if len(text) <= 40 else None
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise ConfigError(f"{flag} must be an integer from {low} to {high:,}, got {text[:40]!r}")
    return value


def to_batch_size(flag: str, text: str) -> int | None:
    if text == "full":
        return None
    try:
        value = int(text) if len(text) <= 40 else 0
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(
            f"{flag} must be a positive integer (or 'full' for full-batch), got {text[:40]!r}"
        )
    return value


def to_hidden(flag: str, text: str) -> tuple[int, ...]:
    if text.strip() in ("", "none"):
        return ()
    parts = text.split(",")
    if len(parts) > MAX_HIDDEN_LAYERS:
        raise ConfigError(f"{flag} has {len(parts)} layers; the limit is {MAX_HIDDEN_LAYERS}")
    return tuple(to_integer(flag, part.strip(), 1, 10**12) for part in parts)  # check_size bounds
