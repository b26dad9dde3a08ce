"""The plugin boundary: the hooks a condgen plugin may implement.

A plugin is a module (or object) with functions decorated ``@condgen.hookimpl`` whose names
match these specifications. It is found through the entry-point group ``condgen``::

    # pyproject.toml of a plugin distribution
    [project.entry-points.condgen]
    my_plugin = "my_package.plugin_module"

Every hook takes a ``register`` callback, so a plugin adds things by calling it and never
needs to return values; the toolkit calls each plugin's hook on its own so one broken
plugin is reported by name instead of breaking the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from torch import Tensor

    from .command import Command
    from .conditioner import Conditioner
    from .data.splits import DatasetLoader

PROJECT_NAME = "condgen"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def condgen_register_conditioners(register: Callable[[type[Conditioner]], None]) -> None:
    """Register conditioner classes: call ``register(MyConditioner)`` once for each.

    ``MyConditioner`` must subclass :class:`condgen.Conditioner` with a unique ``name``;
    anything else marks the plugin broken in ``condgen plugins`` and is skipped.
    """


@hookspec
def condgen_register_datasets(register: Callable[[str, DatasetLoader], None]) -> None:
    """Register data sets: call ``register(name, loader)`` once for each.

    ``loader(config: condgen.DataConfig) -> condgen.DataSplits`` returns the train and test
    splits as dicts of tensors sharing their first dimension; it is selected with
    ``--dataset NAME`` (or ``data.dataset`` in a config file).
    """


@hookspec
def condgen_register_commands(register: Callable[[Command], None]) -> None:
    """Register extra ``condgen`` subcommands: call ``register(condgen.Command(...))`` once for each.

    A command whose name is taken (by condgen or by another plugin) marks the plugin broken in
    ``condgen plugins`` and is skipped.
    """


@hookspec
def condgen_register_attributes(register: Callable[[str, Callable[[Tensor], Tensor]], None]) -> None:
    """Register attribute functions: call ``register(name, function)`` once for each.

    ``function(images)`` maps images ``(B, C, H, W)`` in [0, 1] to one float per image ``(B,)``
    (the ink of a digit, its slant). Conditioners look them up with :func:`condgen.attributes`:
    the ``regression`` conditioner conditions on them, and checks its samples by them. A name
    registered twice keeps the first and marks the later plugin broken.
    """
