"""Checks of the Python API's arguments, so a wrong one is a :class:`condgen.ArgumentError` naming it."""

from __future__ import annotations

import operator
from typing import Any

from .errors import ArgumentError

#: The largest seed a torch generator takes.
MAX_SEED = 2**64 - 1


def whole_number(name: str, value: Any, minimum: int = 0, maximum: int | None = None) -> int:
    """``value`` if it is an int (not a bool) in ``[minimum, maximum]``; else ArgumentError naming ``name``."""
    try:  # any integer type: int, numpy.int64, a one-element integer tensor
        number = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        number = None
    if number is None or number < minimum or (maximum is not None and number > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ArgumentError(f"{name} must be a whole number {bound}, got {value!r}")
    return number


def seed_value(name: str, value: Any) -> int | None:
    """A seed: None (from the OS) or a whole number in ``[0, 2**64 - 1]``."""
    return None if value is None else whole_number(name, value, 0, MAX_SEED)
