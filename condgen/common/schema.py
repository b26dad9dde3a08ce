"""The base of every config model: unknown fields, bools, text and non-finite numbers are refused.

pydantic's lax mode turns ``true`` into 1 and ``"50"`` into 50, and accepts ``inf`` and
``nan``. In a config those are mistakes, not numbers, so :class:`StrictModel` refuses them
for every field whose type is a number, in the toolkit's configs and in every plugin's
(:class:`condgen.ConditionerConfig` derives from it). Text typed on the command line is the
one exception: wrapped in :class:`Text`, it is converted as before (``embed_dim=16``).
"""

from __future__ import annotations

import math
import types
import typing
from collections import abc
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

_NUMBERS = (int, float)
#: Deepest nesting of lists and mappings a config value may have (none needs more than a few levels).
MAX_DEPTH = 20


class Text(str):
    """A value typed on the command line: a number field converts it, where a file's text is refused."""


def _leaf_types(annotation: Any) -> set[type]:
    """The scalar types a field annotation admits: ``Optional[list[int]]`` -> ``{int, NoneType}``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _leaf_types(typing.get_args(annotation)[0])
    if origin is Literal:
        return {type(a) for a in typing.get_args(annotation)}
    if origin in (Union, types.UnionType):
        return set().union(*(_leaf_types(a) for a in typing.get_args(annotation)))
    if origin in (list, tuple, set, frozenset, abc.Sequence, abc.MutableSequence, abc.Set, abc.Collection,
                  abc.Iterable):
        return set().union(*(_leaf_types(a) for a in typing.get_args(annotation) if a is not Ellipsis))
    if origin in (dict, abc.Mapping, abc.MutableMapping):
        return _leaf_types(typing.get_args(annotation)[1])
    if origin is not None:  # another generic: leave it to pydantic
        return {object}
    return {annotation} if isinstance(annotation, type) else {object}


def _check_numbers(value: Any, leaves: set[type], depth: int = 0) -> Any:
    """``value``, or ValueError for a bool, a file's text or a non-finite float where only numbers are
    allowed, and for nesting deeper than :data:`MAX_DEPTH` (a YAML alias can even make a list hold itself)."""
    if isinstance(value, (list, tuple, dict)) and depth >= MAX_DEPTH:
        raise ValueError(f"lists or mappings nested more than {MAX_DEPTH} deep (or holding themselves)")
    if isinstance(value, (list, tuple)):
        return type(value)(_check_numbers(v, leaves, depth + 1) for v in value)
    if isinstance(value, dict):
        return {k: _check_numbers(v, leaves, depth + 1) for k, v in value.items()}
    numbers = bool(leaves & set(_NUMBERS))
    numeric_only = numbers and leaves <= {int, float, type(None)}
    wanted = "a whole number" if float not in leaves else "a number"
    if isinstance(value, bool) and numbers and bool not in leaves and object not in leaves:
        raise ValueError(f"{wanted} is wanted, not the bool {str(value).lower()}")
    if isinstance(value, Text) or not numeric_only:
        return value
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{wanted} is wanted, not the text {value!r} (write it without quotes)")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{wanted} is wanted, not {value}")
    return value


class StrictModel(BaseModel):
    """Base of every config: unknown fields are errors, assignments are validated, and a number
    field takes only numbers (finite ones), never a bool or a file's text."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        return value if field is None else _check_numbers(value, _leaf_types(field.annotation))
