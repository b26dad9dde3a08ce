"""The ``regression`` conditioner: condition a CVAE on named real-valued targets, in their own units,
and the ``ink`` and ``slant`` attribute functions of images.

The conditioner is :class:`RegressionConditioner`; the attributes are in :mod:`condgen_regression.attributes`.
"""

from collections.abc import Callable

from torch import Tensor

import condgen

from .attributes import ATTRIBUTES, ink, slant
from .conditioner import RegressionConditioner, RegressionConfig
from .parsing import parse_targets, parse_values

__all__ = ["RegressionConditioner", "RegressionConfig", "ink", "parse_targets", "parse_values", "slant"]


@condgen.hookimpl
def condgen_register_conditioners(register: Callable[[type[condgen.Conditioner]], None]) -> None:
    register(RegressionConditioner)


@condgen.hookimpl
def condgen_register_attributes(register: Callable[[str, Callable[[Tensor], Tensor]], None]) -> None:
    for name, function in ATTRIBUTES.items():
        register(name, function)
