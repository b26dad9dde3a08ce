"""The ``label`` conditioner: condition a CVAE on a class label (e.g. the MNIST digit).

The seed's design (Sohn et al. 2015, and the classic MNIST CVAE) is a one-hot vector of
width ``num_classes`` concatenated into the encoder and decoder inputs; a learned
embedding of chosen width is the alternative. On the command line::

    condgen sample RUN --condition label=5        # one row of fives
    condgen sample RUN --condition label=0,1,2    # one row per listed class
    condgen sample RUN --condition label=all      # one row per class
    condgen sample RUN --condition label=Sneaker,bag   # by name (any case), where the data names its classes

The conditioner is in :mod:`condgen_label.conditioner`. This entry-point module only declares
the hook and imports the conditioner (and torch) when the hook runs or an export is first used,
so commands that need no conditioner (``condgen --help``) do not pay for torch.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import condgen

if TYPE_CHECKING:
    from .conditioner import LabelConditioner, LabelConfig, OneHot

try:
    __version__ = version("condgen-label")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["LabelConditioner", "LabelConfig", "OneHot"]


def __getattr__(name: str) -> Any:
    # no __dir__ listing these: pluggy looks at every name dir() gives, which would import them all
    if name in __all__:
        from . import conditioner

        return getattr(conditioner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@condgen.hookimpl
def condgen_register_conditioners(register: Callable[[type[condgen.Conditioner]], None]) -> None:
    from .conditioner import LabelConditioner

    register(LabelConditioner)


@condgen.hookimpl
def condgen_register_widgets(register: Callable[[type[condgen.Widget]], None]) -> None:
    from .widget import LabelWidget  # imports no gradio: the demo page hands it the module

    register(LabelWidget)
