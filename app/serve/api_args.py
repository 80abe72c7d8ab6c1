"""Checks of the scripting API's arguments, as they arrive from JSON: nothing is coerced
silently (a frame of 1.5 is refused, not saved to frame 1; a missing text is refused, not
stored as "None")."""
from __future__ import annotations

import math

from app.errors import UsageError


class ApiArgumentError(UsageError, ValueError):
    """An argument of the wrong type or range; the message names it and what to send."""


def _describe(value) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def whole(value, name: str, minimum: int | None = None) -> int:
    """An integer (>= minimum, if given); a float only when it is whole (JSON has one number type).
    Ranges that depend on the project (ids, frames) are the store's to check: it names them."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiArgumentError(f"{name} must be an integer, got {_describe(value)}")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise ApiArgumentError(f"{name} must be a whole number, got {value!r}; send the integer you mean")
    if minimum is not None and value < minimum:
        raise ApiArgumentError(f"{name} must be {minimum} or more, got {value!r}")
    return int(value)


def optional_whole(value, name: str, minimum: int | None = None) -> int | None:
    return None if value is None else whole(value, name, minimum)


def text(value, name: str) -> str:
    """A string (whether it may be empty is the store's to say)."""
    if not isinstance(value, str):
        raise ApiArgumentError(f"{name} must be a string, got {_describe(value)}")
    return value


def flag(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise ApiArgumentError(f"{name} must be true or false, got {_describe(value)}")
    return value

