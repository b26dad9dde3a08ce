"""The plugin boundary: the hooks a condgen plugin may implement.

A plugin is a module (or object) with functions decorated ``@condgen.hookimpl`` whose names
match these specifications. It is found through the entry-point group ``condgen``::

    # pyproject.toml of a plugin distribution
    [project.entry-points.condgen]
    my_plugin = "my_package.plugin_module"

Every hook takes a ``register`` callback, so a plugin adds things by calling it and never
needs to return values; the toolkit calls each plugin's hook on its own so one broken
plugin is reported by name instead of breaking the others.

One rule holds for a name that more than one plugin registers, whatever the hook: the name is
withdrawn. Neither entry is used, each of those plugins is listed as broken in ``condgen plugins``
with an error naming all of them, one warning says so, and using the name is an error naming
them and the fix (uninstall one, or block one with ``CONDGEN_BLOCK_PLUGINS=NAME``). Which one would
win otherwise would depend on the order plugins load in, which no user chooses or sees. The names
condgen itself uses (its commands, and the data sets of its own plugin) are reserved: a plugin
registering one is refused and listed as broken, and condgen's own is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from torch import Tensor

    from ..data.splits import DatasetLoader
    from ..engine.architecture import Architecture
    from ..engine.likelihood import Likelihood
    from .callback import Callback
    from .command import Command
    from .conditioner import Conditioner
    from .widget import Widget

__all__ = [
    "PROJECT_NAME",
    "hookspec",
    "hookimpl",
    "condgen_register_conditioners",
    "condgen_register_datasets",
    "condgen_register_commands",
    "condgen_register_attributes",
    "condgen_register_architectures",
    "condgen_register_likelihoods",
    "condgen_register_callbacks",
    "condgen_register_widgets",
]

PROJECT_NAME = "condgen"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def condgen_register_conditioners(register: Callable[[type[Conditioner]], None]) -> None:
    """Register conditioner classes: call ``register(MyConditioner)`` once for each.

    ``MyConditioner`` must subclass :class:`condgen.Conditioner`; anything else marks the plugin
    broken in ``condgen plugins`` and is skipped. A ``name`` that another plugin registers too is
    withdrawn: neither class is used, both plugins are marked broken, and a run or config naming
    it is an error naming both (uninstall one, or block one with ``CONDGEN_BLOCK_PLUGINS=NAME``).
    """


@hookspec
def condgen_register_datasets(register: Callable[[str, DatasetLoader], None]) -> None:
    """Register data sets: call ``register(name, loader)`` once for each.

    ``loader(config: condgen.DataConfig) -> condgen.DataSplits`` returns the train and test
    splits as dicts of tensors sharing their first dimension; it is selected with
    ``--dataset NAME`` (or ``data.dataset`` in a config file). A data set with options of its own
    gives its loader an ``options`` attribute, a subclass of :class:`condgen.DatasetOptions`: the
    config's ``data.options`` (``--data-option KEY=VALUE``) are validated by it when the run config
    is parsed and reach the loader as ``config.options``, a dict with the defaults filled in; a data
    set without one takes no options. ``name`` must be a non-empty string and ``loader`` callable
    (with ``options``, if any, a ``DatasetOptions`` subclass), or the plugin is marked broken and the data set
    skipped. The toolkit applies ``data.train_limit`` / ``test_limit`` to what the loader returns, so
    a loader returns whole splits. A name another plugin registers too is withdrawn: neither loader
    is used, both plugins are marked broken, and ``--dataset NAME`` is an error naming both. The
    toolkit's own names (``mnist``, ``npz``, ``fashion-mnist``, ``image-folder``) are reserved:
    registering one marks the plugin broken, and the toolkit's is kept.
    """


@hookspec
def condgen_register_commands(register: Callable[[Command], None]) -> None:
    """Register extra ``condgen`` subcommands: call ``register(condgen.Command(...))`` once for each.

    A command named like one of condgen's own (``plugins``, ``train``, ``sample``, ``evaluate``, ``export``,
    ``report``, ``demo``) marks the plugin broken in ``condgen plugins`` and is skipped. A name another
    plugin registers too is withdrawn: neither command runs, both plugins are marked broken, and ``condgen NAME``
    is an error naming both.
    """


@hookspec
def condgen_register_attributes(register: Callable[[str, Callable[[Tensor], Tensor]], None]) -> None:
    """Register attribute functions: call ``register(name, function)`` once for each.

    ``function(images)`` maps images ``(B, C, H, W)`` in [0, 1] to one float per image ``(B,)``
    (the ink of a digit, its slant). Conditioners look them up with :func:`condgen.attributes`:
    the ``regression`` conditioner conditions on them, and checks its samples by them. ``name``
    must be a Python identifier and ``function`` callable, or the plugin is marked broken and the
    function skipped. A name another plugin registers too is withdrawn: neither function is
    used, both plugins are marked broken, and calling the name's function is an error naming both.
    """


@hookspec
def condgen_register_architectures(register: Callable[[type[Architecture]], None]) -> None:
    """Register architectures: call ``register(MyArchitecture)`` once for each.

    ``MyArchitecture`` must subclass :class:`condgen.Architecture`, have a ``name`` matching
    ``[a-z][a-z0-9_-]*`` and implement ``build_encoder`` and ``build_decoder``, or the plugin is marked
    broken and the class skipped. ``--arch NAME`` (``model.arch``) selects it; the networks it builds
    follow the contract of :mod:`condgen.engine.architecture` (encoder ``(x, e) -> (mu, logvar)``, decoder
    ``(z, e) ->`` the likelihood's parameters of x's shape), and the toolkit checks their shapes on a probe
    batch before training. A name another plugin registers too is withdrawn: neither class is used, both
    plugins are marked broken, and ``--arch NAME`` is an error naming both. The toolkit's own names
    (``mlp``, ``conv``) are reserved: registering one marks the plugin broken, and the toolkit's is kept.
    """


@hookspec
def condgen_register_likelihoods(register: Callable[[type[Likelihood]], None]) -> None:
    """Register likelihoods p(x | z, c): call ``register(MyLikelihood)`` once for each.

    ``MyLikelihood`` must subclass :class:`condgen.Likelihood`, with a ``name`` matching
    ``[a-z][a-z0-9_-]*``, or the plugin is marked broken and the class skipped. ``--likelihood NAME``
    (``model.likelihood``, ``NAME:ARG`` where it takes an argument) selects it; it is built as every
    likelihood is, ``cls(data_shape, argument, gaussian_std, min_std)``, and scores x with ``nll`` (see
    :class:`condgen.Likelihood`). A name another plugin registers too is withdrawn: neither class is used,
    both plugins are marked broken, and ``--likelihood NAME`` is an error naming both. The toolkit's own
    names (``bernoulli``, ``gaussian``, ``gaussian-pixel``, ``gaussian-shared``, ``logistic``,
    ``logistic-mixture``) are reserved: registering one marks the plugin broken, and the toolkit's is kept.
    """


@hookspec
def condgen_register_callbacks(register: Callable[[type[Callback]], None]) -> None:
    """Register training callbacks: call ``register(MyCallback)`` once for each.

    ``MyCallback`` must subclass :class:`condgen.Callback`, with a ``name`` matching ``[a-z][a-z0-9_-]*``,
    or the plugin is marked broken and the class skipped. ``--log NAME`` (``train.log: [NAME, ...]``) selects
    it for a run; the training loop builds it, ``cls(log)``, on rank 0 and calls its ``on_train_start``,
    ``on_epoch_end``, ``on_train_end`` and ``on_fault`` (see :class:`condgen.Callback`). Each epoch is saved
    before its callbacks run, and a callback that raises is reported and dropped: it never loses the run. A
    name another plugin registers too is withdrawn: neither class is used, both plugins are marked broken, and
    ``--log NAME`` is an error naming both. The toolkit's own names (``pictures``, ``tensorboard``) are
    reserved: registering one marks the plugin broken, and the toolkit's is kept.
    """


@hookspec
def condgen_register_widgets(register: Callable[[type[Widget]], None]) -> None:
    """Register the demo page's inputs for conditioners: call ``register(MyWidget)`` once for each.

    ``MyWidget`` must subclass :class:`condgen.Widget`, with ``conditioner`` the registered name of the
    conditioner it serves (``[a-z][a-z0-9_]*``) and its own ``build`` and ``value``, or the plugin is marked
    broken and the class skipped. ``condgen demo`` gives every conditioner of that name in a run this input
    (see :class:`condgen.Widget`); a conditioner with none gets a text box taking its ``--condition`` form.
    A conditioner name that another plugin registers a widget for too is withdrawn: neither widget is used,
    both plugins are marked broken, and ``condgen demo`` on a run with that conditioner is an error naming both.
    """
