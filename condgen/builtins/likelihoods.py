"""The toolkit's own likelihoods (``model.likelihood``), registered through the same hook as any plugin's."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..plugin.hookspecs import hookimpl

if TYPE_CHECKING:
    from ..engine.likelihood import Likelihood


@hookimpl
def condgen_register_likelihoods(register: Callable[[type[Likelihood]], None]) -> None:
    # imported here, not above: this module loads with every command, `condgen --help` too, without torch
    from ..engine.likelihood import LIKELIHOODS

    for cls in LIKELIHOODS.values():
        register(cls)
