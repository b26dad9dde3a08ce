"""condgen: conditional variational autoencoders with pluggable conditioners.

The pieces, one module each:

- ``hookspecs`` / ``plugins``: the plugin boundary and how plugins are found;
- ``conditioner``: the ``Conditioner`` base class plugins implement;
- ``engine``: the CVAE itself (priors, likelihoods, objective, likelihood estimate);
- ``config``: validated run configs; ``build``: a run from its config;
- ``training`` / ``evaluation``: the training loop, test figures;
- ``run``: a model with its conditioners (score, sample); ``conditions``: user values into conditions;
- ``store`` / ``checkpoint``: saving and loading runs, in safe files;
- ``data``: in-memory data sets and the MNIST reader; ``pictures``; ``rng``; ``cli``.

What a plugin may use is exported here; everything else is internal. The exports are imported
on first use (PEP 562), so ``import condgen`` and ``condgen.hookimpl`` do not import torch:
``condgen --help`` and a plugin's entry-point module stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:  # the static view, for type checkers and the API reference
    from .command import Command
    from .conditioner import Conditioner, ConditionerConfig
    from .config import ConditionerSpec, DataConfig, ModelConfig, RunConfig, TrainConfig
    from .data import DataSplits, iter_batches
    from .errors import (
        ArgumentError,
        CheckpointError,
        CondgenError,
        ConditionError,
        ConfigError,
        DataError,
        FileAccessError,
        NumericalError,
        PluginError,
        ResourceError,
        RunDirectoryBusy,
    )
    from .evaluation import evaluate
    from .files import save_array
    from .hookspecs import hookimpl
    from .pictures import save_grid
    from .plugins import attributes
    from .rng import EVAL_SEED, seeded_generator
    from .run import Run
    from .store import load_run
    from .training import train

#: Each export -> the module that defines it (imported when the name is first used).
_EXPORTS = {
    "Command": ".command",
    "Conditioner": ".conditioner",
    "ConditionerConfig": ".conditioner",
    **dict.fromkeys(["ConditionerSpec", "DataConfig", "ModelConfig", "RunConfig", "TrainConfig"], ".config"),
    "DataSplits": ".data",
    "iter_batches": ".data",
    **dict.fromkeys(["ArgumentError", "CheckpointError", "CondgenError", "ConditionError", "ConfigError",
                     "DataError", "FileAccessError", "NumericalError", "PluginError", "ResourceError",
                     "RunDirectoryBusy"], ".errors"),
    "evaluate": ".evaluation",
    "save_array": ".files",
    "hookimpl": ".hookspecs",
    "save_grid": ".pictures",
    "attributes": ".plugins",
    "EVAL_SEED": ".rng",
    "seeded_generator": ".rng",
    "Run": ".run",
    "load_run": ".store",
    "train": ".training",
}

__all__ = [
    "__version__",
    "EVAL_SEED",
    "ArgumentError",
    "CheckpointError",
    "FileAccessError",
    "NumericalError",
    "ResourceError",
    "RunDirectoryBusy",
    "Command",
    "Conditioner",
    "ConditionerConfig",
    "ConditionerSpec",
    "CondgenError",
    "ConditionError",
    "ConfigError",
    "DataConfig",
    "DataError",
    "DataSplits",
    "ModelConfig",
    "PluginError",
    "Run",
    "RunConfig",
    "TrainConfig",
    "attributes",
    "evaluate",
    "hookimpl",
    "iter_batches",
    "load_run",
    "save_array",
    "save_grid",
    "seeded_generator",
    "train",
]


def __getattr__(name: str) -> Any:
    """An export, imported now and kept; or a submodule (``condgen.plugins``), as eager imports made
    every one an attribute of the package."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    if not name.startswith("_"):
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":  # the submodule exists but an import inside it failed
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
