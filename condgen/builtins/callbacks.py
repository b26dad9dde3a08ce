"""The toolkit's own training callbacks (``train.log``, :class:`condgen.Callback`), registered through the same
hook as any plugin's: ``pictures`` (the run's pictures when training ends; ``condgen.train`` adds it unless
``pictures=False``, the command line unless ``--no-pictures``) and ``tensorboard`` (``--log tensorboard``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..plugin.hookspecs import hookimpl

if TYPE_CHECKING:
    from ..plugin.callback import Callback


@hookimpl
def condgen_register_callbacks(register: Callable[[type[Callback]], None]) -> None:
    # imported here, not above: this module loads with every command, `condgen --help` too, without torch
    from .pictures import PicturesCallback
    from .tensorboard import TensorBoardCallback

    register(PicturesCallback)
    register(TensorBoardCallback)
