"""Conditions given by a user: Python values and command-line text into tensors.

The batch rule, for ``run.sample({name: value, ...}, num)``: each conditioner turns its value
into ``K`` conditions ``(K, ...)`` (:meth:`condgen.Conditioner.conditions_from_value`). ``K = 1``
is used for all ``num`` samples; ``K = num`` gives one condition per sample; any other ``K`` is
an error. On the command line, ``--condition NAME=TEXT`` gives ``K`` conditions
(:meth:`condgen.Conditioner.parse_condition`), and each combination is one row of samples
(:mod:`condgen.pictures.rows`).

A conditioner the model was trained to do without (condition dropout, ``optional`` below) may
be left out: its condition is then absent, and samples range over all its values.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from torch import Tensor

from ..common.errors import CondgenError, ConditionError, PluginError
from ..plugin.conditioner import Conditioner, describe_value, value_fault


def _check_names(
    conditioners: Mapping[str, Conditioner], given: Sequence[str], how: str, optional: Collection[str] = ()
) -> None:
    unknown = [n for n in given if n not in conditioners]
    if unknown:
        raise ConditionError(
            f"this model has no conditioner {unknown[0]!r}; its conditioners are {list(conditioners) or 'none'}"
        )
    missing = [n for n in conditioners if n not in given and n not in optional]
    if missing:
        left_out = (f"; only {', '.join(map(repr, optional))} may be left out, being trained with condition dropout"
                    if optional else "; a condition may be left out only in a model trained with condition "
                    "dropout for it (train.condition_dropout)")
        raise ConditionError(
            f"a condition for {missing[0]!r} is needed ({how}); this model is conditioned on {list(conditioners)}"
            + left_out
        )


def _from_value(name: str, cond: Conditioner, value: Any) -> Tensor:
    """One conditioner's ``(K, ...)`` conditions from a Python value, under the rules every conditioner is held to
    (:func:`condgen.plugin.conditioner.value_fault`), whatever its own ``conditions_from_value`` checks: a value no
    conditioner takes is refused before it is handed over, and a conditioner that fails on a value with another
    exception than ConditionError, or gives no conditions, is a ConditionError naming the value."""
    # bools pass here: a conditioner may take a mask's True/False inside its value ((image, mask)); one that takes
    # numbers refuses them in its conversion (tensor_from_value), as the conformance kit checks
    fault = None if isinstance(value, str) else value_fault(value, bools=True)
    if fault is not None:
        raise ConditionError(f"condition {name!r} cannot be made from {describe_value(value)}: {fault}")
    try:
        c = cond.conditions_from_value(value)
    except CondgenError:
        raise
    except Exception as exc:  # the conditioner did not check the value: the value is still what was wrong
        said = str(exc).splitlines()[0] if str(exc) else ""
        raise ConditionError(f"condition {name!r} cannot be made from {describe_value(value)} ({type(value).__name__}): "
                             f"its conditioner raised {type(exc).__name__}: {said} (if the value is right, this is a bug "
                             "in the conditioner's plugin; --debug shows where)") from None
    if not isinstance(c, Tensor) or c.dim() == 0:
        raise PluginError(f"conditioner {name!r}: conditions_from_value gave {type(c).__name__}, not a tensor "
                          "(K, ...) (a bug in its plugin)")
    if c.shape[0] == 0:
        raise ConditionError(f"condition {name!r}: {describe_value(value)} gives no conditions (an empty batch); give at "
                             "least one")
    return c


def conditions_from_values(
    conditioners: Mapping[str, Conditioner],
    values: Mapping[str, Any],
    num: int | None = None,
    optional: Collection[str] = (),
) -> dict[str, Tensor]:
    """``{name: value}`` -> ``{name: (num, ...)}`` by the batch rule above (``(K, ...)`` when ``num`` is None);
    the ``optional`` conditioners may be left out, and are left out of the result too."""
    if not isinstance(values, Mapping):
        raise ConditionError(
            f"conditions must be a mapping of conditioner name to value, e.g. {{'label': 5}}; got {values!r}"
        )
    _check_names(conditioners, list(values), "e.g. --condition NAME=... or run.sample({NAME: ...})", optional)
    out = {}
    for name, cond in conditioners.items():
        if name not in values:
            continue
        c = _from_value(name, cond, values[name])
        if num is not None and c.shape[0] != num:
            if c.shape[0] != 1:
                raise ConditionError(
                    f"condition {name!r} gives {c.shape[0]} conditions, but num is {num}: give one condition "
                    f"(used for every sample) or exactly num of them (one per sample)"
                )
            c = c.expand(num, *c.shape[1:])
        out[name] = c
    return out


def parse_condition_texts(
    conditioners: Mapping[str, Conditioner],
    texts: Sequence[str],
    optional: Collection[str] = (),
    given: Collection[str] = (),
) -> dict[str, Tensor]:
    """``["label=5", ...]`` -> ``{name: (K, ...)}``; each conditioner must be given exactly once, but
    the ``optional`` ones may be left out, and the ``given`` ones (whose conditions a command takes from
    its own flags, as ``condgen inpaint`` its image and mask) must be."""
    if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
        raise ConditionError(f"conditions must be a list of NAME=VALUE strings, e.g. ['label=5'], got {texts!r}")
    parsed: dict[str, Tensor] = {}
    for text in texts:
        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConditionError(f"--condition {text!r} must look like NAME=VALUE, e.g. label=5")
        if name not in conditioners:
            raise ConditionError(
                f"--condition {text!r}: this model has no conditioner {name!r}; "
                f"its conditioners are {list(conditioners) or 'none'}"
            )
        if name in given:
            raise ConditionError(f"--condition {text!r}: this command takes the conditions of {name!r} from its own "
                                 "flags (see its --help); --condition gives the other conditioners' values")
        if name in parsed:
            raise ConditionError(f"--condition {name}=... is given twice; give several values as {name}=a,b")
        parsed[name] = conditioners[name].parse_condition(value.strip())
    _check_names(conditioners, [*parsed, *given], "e.g. --condition NAME=...", optional)
    return parsed
