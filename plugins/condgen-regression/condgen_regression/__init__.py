"""The ``regression`` conditioner: condition a CVAE on named real-valued targets, in their own units,
and the ``ink`` and ``slant`` attribute functions of images.

The conditioner is :class:`RegressionConditioner`; the attributes are in :mod:`condgen_regression.attributes`.
This entry-point module imports them (and torch) only when a hook runs or an export is first used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import condgen

if TYPE_CHECKING:
    from torch import Tensor

    from .attributes import ink, slant
    from .conditioner import RegressionConditioner, RegressionConfig
    from .parsing import parse_targets, parse_values

__all__ = ["RegressionConditioner", "RegressionConfig", "ink", "parse_targets", "parse_values", "slant"]
#: Each export -> its module, imported on first use.
_EXPORTS = {"RegressionConditioner": ".conditioner", "RegressionConfig": ".conditioner", "ink": ".attributes",
            "slant": ".attributes", "parse_targets": ".parsing", "parse_values": ".parsing"}


def __getattr__(name: str) -> Any:
    # no __dir__ listing these: pluggy looks at every name dir() gives, which would import them all
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@condgen.hookimpl
def condgen_register_conditioners(register: Callable[[type[condgen.Conditioner]], None]) -> None:
    from .conditioner import RegressionConditioner

    register(RegressionConditioner)


@condgen.hookimpl
def condgen_register_attributes(register: Callable[[str, Callable[[Tensor], Tensor]], None]) -> None:
    from .attributes import ATTRIBUTES

    for name, function in ATTRIBUTES.items():
        register(name, function)


@condgen.hookimpl
def condgen_register_widgets(register: Callable[[type[condgen.Widget]], None]) -> None:
    from .widget import RegressionWidget  # imports no gradio: the demo page hands it the module

    register(RegressionWidget)
