"""Loading a registered data set by the name in a run's config."""

from __future__ import annotations

from ..common.errors import DataError
from ..data.splits import DataSplits
from ..plugin.registry import registry
from .config import DataConfig


def load_dataset(config: DataConfig) -> DataSplits:
    """Load the data set named in ``config`` through its registered loader, with limits applied."""
    loader = registry().dataset_loader(config.dataset)
    splits = loader(config)
    if not isinstance(splits, DataSplits):
        raise DataError(f"dataset {config.dataset!r} loader returned {type(splits).__name__}, not DataSplits")
    if config.x_field not in splits.train:
        raise DataError(
            f"data.x_field = {config.x_field!r} is not a field of dataset {config.dataset!r}; "
            f"its fields are {sorted(splits.train)}"
        )
    x = splits.train[config.x_field]
    if x.dim() < 2 or not x.is_floating_point():
        raise DataError(
            f"data.x_field = {config.x_field!r}: the model generates floats of shape (N, features...), but this "
            f"field holds {str(x.dtype).removeprefix('torch.')} of shape {tuple(x.shape)}"
            + ("; give one value per item as shape (N, 1)" if x.dim() == 1 else "")
        )
    return splits.limited(config.train_limit, config.test_limit)
