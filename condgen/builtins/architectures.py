"""The toolkit's own architectures (``model.arch``), registered through the same hook as any plugin's."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..plugin.hookspecs import hookimpl

if TYPE_CHECKING:
    from ..engine.architecture import Architecture


@hookimpl
def condgen_register_architectures(register: Callable[[type[Architecture]], None]) -> None:
    # imported here, not above: this module loads with every command, `condgen --help` too, without torch
    from ..engine.model import ARCHITECTURES

    for cls in ARCHITECTURES.values():
        register(cls)
