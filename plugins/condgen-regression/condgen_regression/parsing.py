"""Reading regression targets as a user types them: ``ink:0.25,slant:-0.3``, with sweeps ``ink:0.1..0.4/5``."""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from condgen import ConditionError

#: Most values one sweep may give, so a typo such as /5000 is caught before it draws a huge grid.
MAX_SWEEP = 100


#: Conditions are float32: a larger value would become inf.
FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def _in_range(value: float | int, shown: str, where: str) -> float:
    """``value`` as a float if it is finite and float32 holds it; else ConditionError showing ``shown``."""
    try:
        x = float(value)
    except OverflowError:
        x = math.inf
    if not math.isfinite(x):
        raise ConditionError(f"{where}: {shown} is not a finite number")
    if abs(x) > FLOAT32_MAX:
        raise ConditionError(f"{where}: {shown} is beyond the range of a float32 condition (+-{FLOAT32_MAX:.3g})")
    return x


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConditionError(f"{where}: {text.strip()!r} is not a number") from None
    return _in_range(value, repr(text.strip()), where)


def _python_number(x: Any, where: str) -> float:
    if isinstance(x, str):
        return _number(x, where)
    if isinstance(x, Tensor) and x.numel() == 1:
        x = x.item()
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        shown = repr(x) if isinstance(x, (bool, str, int, float)) else f"a {type(x).__name__}"
        raise ConditionError(f"{where}: {shown} is not a number")
    return _in_range(x, repr(x) if len(repr(x)) < 40 else f"{repr(x)[:20]}...", where)


def parse_values(text: str, where: str) -> list[float]:
    """``"0.25"`` -> ``[0.25]``; a sweep ``"0.1..0.4/4"`` -> ``[0.1, 0.2, 0.3, 0.4]`` (ends included)."""
    if ".." not in text:
        return [_number(text, where)]
    span, slash, count = text.partition("/")
    low, _, high = span.partition("..")
    if not slash:
        raise ConditionError(f"{where}: a sweep {text!r} needs a count, e.g. 0.1..0.4/5")
    try:
        n = int(count)
    except ValueError:
        raise ConditionError(f"{where}: the count of sweep {text!r} must be a whole number, e.g. 0.1..0.4/5") from None
    if not 2 <= n <= MAX_SWEEP:
        raise ConditionError(f"{where}: sweep {text!r} gives {n} values; give 2 to {MAX_SWEEP}")
    a, b = _number(low, where), _number(high, where)
    return torch.linspace(a, b, n, dtype=torch.float64).tolist()


def grid(per_target: Mapping[str, Sequence[float]], targets: Sequence[str]) -> Tensor:
    """Every combination of the targets' values, in the order of ``targets``: ``(K, T)`` float32."""
    rows = list(itertools.product(*[per_target[t] for t in targets]))
    return torch.tensor(rows, dtype=torch.float32).reshape(len(rows), len(targets))


def parse_targets(text: str, targets: Sequence[str]) -> Tensor:
    """``"ink:0.25,slant:-0.3"`` -> ``(K, T)``: one value (or sweep) for each target, each target once."""
    where = f"regression={text!r}"
    expected = ",".join(f"{t}:VALUE" for t in targets)
    given: dict[str, list[float]] = {}
    for part in text.split(","):
        name, colon, value = part.partition(":")
        name = name.strip()
        if not colon or not name:
            raise ConditionError(f"{where}: {part.strip()!r} must look like NAME:VALUE; give {expected}")
        if name not in targets:
            raise ConditionError(f"{where}: unknown target {name!r}; this model's targets are {', '.join(targets)}")
        if name in given:
            raise ConditionError(f"{where}: target {name!r} is given twice")
        given[name] = parse_values(value.strip(), f"{where}, target {name!r}")
    return grid(given, _complete(given, targets, where, expected))


def targets_from_mapping(value: Mapping[str, Any], targets: Sequence[str]) -> Tensor:
    """``{"ink": 0.25, "slant": [-0.3, 0.3]}`` -> ``(K, T)``: a number or a list of numbers for each target."""
    where = "regression condition"
    expected = ", ".join(f"{t!r}: number" for t in targets)
    given: dict[str, list[float]] = {}
    for name, v in value.items():
        if name not in targets:
            raise ConditionError(f"{where}: unknown target {name!r}; this model's targets are {', '.join(targets)}")
        if hasattr(v, "tolist") and not isinstance(v, (str, bytes)):  # a tensor or an array of values
            v = v.tolist()
        values = list(v) if isinstance(v, (list, tuple)) else [v]
        if not values:
            raise ConditionError(f"{where}: target {name!r} has no values")
        given[name] = [_python_number(x, f"{where}, target {name!r}") for x in values]
    return grid(given, _complete(given, targets, where, "{" + expected + "}"))


def _complete(given: Mapping[str, Any], targets: Sequence[str], where: str, expected: str) -> Sequence[str]:
    missing = [t for t in targets if t not in given]
    if missing:
        raise ConditionError(f"{where}: no value for target {missing[0]!r}; give every target: {expected}")
    return targets
