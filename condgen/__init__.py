"""condgen: conditional variational autoencoders with pluggable conditioners.

The pieces, one module each:

- ``hookspecs`` / ``plugins``: the plugin boundary and how plugins are found;
- ``conditioner``: the ``Conditioner`` base class plugins implement;
- ``engine``: the CVAE itself; ``training`` / ``evaluation``: the ELBO loop;
- ``run``: a trained model with its conditioners (load, sample); ``checkpoint``: safe files;
- ``data``: in-memory data sets and the MNIST reader; ``pictures``; ``cli``.
"""

__version__ = "0.1.0"

from .conditioner import Conditioner, ConditionerConfig  # noqa: E402
from .config import ConditionerSpec, DataConfig, ModelConfig, RunConfig, TrainConfig  # noqa: E402
from .data import DataSplits  # noqa: E402
from .errors import CondgenError, ConditionError, ConfigError, DataError, PluginError  # noqa: E402
from .hookspecs import hookimpl  # noqa: E402
from .run import Run, load_run  # noqa: E402
from .training import train  # noqa: E402

__all__ = [
    "__version__",
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
    "hookimpl",
    "load_run",
    "train",
]
