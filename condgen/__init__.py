"""condgen: conditional variational autoencoders with pluggable conditioners.

The layers, top to bottom (each imports only those below it; docs/architecture.md):

- ``cli``: the ``condgen`` command; ``api``: :func:`train` with the run's pictures;
  ``builtins``: the toolkit's own plugins; ``testing``: the conformance kit;
- ``training``: the loop, optimizer, torchrun, evaluation; ``pictures``: grids and the run's pictures;
- ``runs``: configs, building, :class:`Run`, conditions, checkpoints, run directories;
- ``plugin``: the plugin boundary (hook specs, the :class:`Conditioner` contract, commands, the registry);
- ``data``: data-set configs, in-memory splits, the MNIST and npz readers; ``engine``: the CVAE itself;
- ``common``: errors, files, memory, devices, seeds, argument checks, the strict config base.

What a plugin may use is exported here; everything else is internal. The exports are imported
on first use (PEP 562), so ``import condgen`` and ``condgen.hookimpl`` do not import torch:
``condgen --help`` and a plugin's entry-point module stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:  # the static view, for type checkers and the API reference
    from .api import train
    from .common.errors import (
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
    from .common.files import save_array
    from .common.rng import EVAL_SEED, seeded_generator
    from .data import DataSplits, iter_batches
    from .data.attributes import is_missing
    from .data.config import DataConfig, DatasetOptions
    from .data.idx import find_data_dir, read_idx, read_idx_dir
    from .data.stored import StoredArray
    from .engine.architecture import Architecture, EmbeddingLayout, NetworkShapes
    from .engine.likelihood import Likelihood
    from .pictures.grid import save_grid
    from .pictures.rows import SampleRows
    from .pictures.samples import SampleFile, add_sample_arguments
    from .plugin.callback import Callback
    from .plugin.command import Command
    from .plugin.conditioner import Conditioner, ConditionerConfig, tensor_from_value
    from .plugin.hookspecs import hookimpl
    from .plugin.registry import attributes
    from .plugin.widget import Widget
    from .runs.config import ConditionerSpec, ModelConfig, RunConfig, TrainConfig
    from .runs.run import Run
    from .runs.store import load_run
    from .training.evaluation import evaluate

#: Each export -> the module that defines it (imported when the name is first used).
_EXPORTS = {
    "Callback": ".plugin.callback",
    "Widget": ".plugin.widget",
    "Command": ".plugin.command",
    **dict.fromkeys(["Architecture", "EmbeddingLayout", "NetworkShapes"], ".engine.architecture"),
    "Likelihood": ".engine.likelihood",
    "Conditioner": ".plugin.conditioner",
    "ConditionerConfig": ".plugin.conditioner",
    "tensor_from_value": ".plugin.conditioner",
    **dict.fromkeys(["ConditionerSpec", "ModelConfig", "RunConfig", "TrainConfig"], ".runs.config"),
    "DataConfig": ".data.config",
    "DatasetOptions": ".data.config",
    "DataSplits": ".data",
    "iter_batches": ".data",
    "is_missing": ".data.attributes",
    "StoredArray": ".data.stored",
    **dict.fromkeys(["find_data_dir", "read_idx", "read_idx_dir"], ".data.idx"),
    **dict.fromkeys(["ArgumentError", "CheckpointError", "CondgenError", "ConditionError", "ConfigError",
                     "DataError", "FileAccessError", "NumericalError", "PluginError", "ResourceError",
                     "RunDirectoryBusy"], ".common.errors"),
    "evaluate": ".training.evaluation",
    "save_array": ".common.files",
    "hookimpl": ".plugin.hookspecs",
    "save_grid": ".pictures.grid",
    "SampleRows": ".pictures.rows",
    **dict.fromkeys(["SampleFile", "add_sample_arguments"], ".pictures.samples"),
    "attributes": ".plugin.registry",
    "EVAL_SEED": ".common.rng",
    "seeded_generator": ".common.rng",
    "Run": ".runs.run",
    "load_run": ".runs.store",
    "train": ".api",
}

__all__ = [
    "__version__",
    "EVAL_SEED",
    "Architecture",
    "ArgumentError",
    "Callback",
    "Widget",
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
    "DatasetOptions",
    "EmbeddingLayout",
    "DataSplits",
    "Likelihood",
    "ModelConfig",
    "NetworkShapes",
    "PluginError",
    "Run",
    "RunConfig",
    "SampleFile",
    "SampleRows",
    "StoredArray",
    "TrainConfig",
    "add_sample_arguments",
    "attributes",
    "evaluate",
    "find_data_dir",
    "hookimpl",
    "is_missing",
    "iter_batches",
    "load_run",
    "read_idx",
    "read_idx_dir",
    "save_array",
    "save_grid",
    "seeded_generator",
    "tensor_from_value",
    "train",
]


def __getattr__(name: str) -> Any:
    """An export, imported now and kept; or a submodule (``condgen.plugin.registry``), as eager imports made
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
