"""The ``inpaint`` conditioner: condition a CVAE on the observed part ``x * m`` of an image and
its mask ``m`` (1 = observed, 0 = missing), and generate the missing pixels.

The conditioner is :class:`InpaintConditioner`; the mask generators are in :mod:`condgen_inpaint.masks`.
This entry-point module imports them (and torch) only when a hook runs or an export is first used;
building ``condgen``'s command line imports just the ``inpaint`` command's declaration.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import condgen

if TYPE_CHECKING:
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


_EXPORTS = {
    "InpaintConditioner": ".conditioner",
    "InpaintConfig": ".conditioner",
    "inpaint": ".completion",
    **dict.fromkeys(["HALVES", "MASK_KINDS", "MaskMix", "MaskSpec", "centre_mask", "dropout_mask", "half_mask",
                     "parse_mask_spec", "quadrant_mask", "random_rect_mask", "user_mask"], ".masks"),
}


def __getattr__(name: str) -> Any:
    # no __dir__ listing these: pluggy looks at every name dir() gives, which would import them all
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@condgen.hookimpl
def condgen_register_conditioners(register: Callable[[type[condgen.Conditioner]], None]) -> None:
    from .conditioner import InpaintConditioner

    register(InpaintConditioner)


@condgen.hookimpl
def condgen_register_commands(register: Callable[[condgen.Command], None]) -> None:
    from .command import COMMAND  # its declaration imports no torch; running it does

    register(COMMAND)


@condgen.hookimpl
def condgen_register_widgets(register: Callable[[type[condgen.Widget]], None]) -> None:
    from .widget import InpaintWidget  # imports no gradio: the demo page hands it the module

    register(InpaintWidget)
