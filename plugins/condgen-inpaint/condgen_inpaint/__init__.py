"""The ``inpaint`` conditioner: condition a CVAE on the observed part ``x * m`` of an image and
its mask ``m`` (1 = observed, 0 = missing), and generate the missing pixels.

The conditioner is :class:`InpaintConditioner`; the mask generators are in :mod:`condgen_inpaint.masks`.
"""

from collections.abc import Callable

import condgen

from .command import COMMAND
from .completion import inpaint
from .conditioner import InpaintConditioner, InpaintConfig

from .masks import (
    HALVES,
    MASK_KINDS,
    MaskMix,
    MaskSpec,
    centre_mask,
    dropout_mask,
    half_mask,
    parse_mask_spec,
    quadrant_mask,
    random_rect_mask,
    user_mask,
)

__all__ = [
    "InpaintConditioner",
    "InpaintConfig",
    "HALVES",
    "MASK_KINDS",
    "MaskMix",
    "MaskSpec",
    "centre_mask",
    "dropout_mask",
    "inpaint",
    "half_mask",
    "parse_mask_spec",
    "quadrant_mask",
    "random_rect_mask",
    "user_mask",
]


@condgen.hookimpl
def condgen_register_conditioners(register: Callable[[type[condgen.Conditioner]], None]) -> None:
    register(InpaintConditioner)


@condgen.hookimpl
def condgen_register_commands(register: Callable[[condgen.Command], None]) -> None:
    register(COMMAND)
