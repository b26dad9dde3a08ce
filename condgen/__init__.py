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

What a plugin may use is exported here; everything else is internal.
"""

from ._version import __version__
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
