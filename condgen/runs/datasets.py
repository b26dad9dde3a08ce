"""Loading a registered data set by the name in a run's config."""

from __future__ import annotations

from ..common.errors import DataError
from ..data.splits import DataSplits, is_levels
from ..plugin.registry import registry
from .config import DataConfig, validated_data_options


def load_dataset(config: DataConfig) -> DataSplits:
    """Load the data set named in ``config`` through its registered loader, with limits applied."""
    loader = registry().dataset_loader(config.dataset)
    splits = loader(validated_data_options(config))
    if not isinstance(splits, DataSplits):
        raise DataError(f"dataset {config.dataset!r} loader returned {type(splits).__name__}, not DataSplits")
    if config.x_field not in splits.train:
        raise DataError(
            f"data.x_field = {config.x_field!r} is not a field of dataset {config.dataset!r}; "
            f"its fields are {sorted(splits.train)}"
        )
    x = splits.train[config.x_field]
    if x.dim() < 2 or not (x.is_floating_point() or is_levels(x)):
        raise DataError(
            f"data.x_field = {config.x_field!r}: the model generates floats of shape (N, features...) (or images "
            f"as uint8 levels, (N, C, H, W)), but this field holds {str(x.dtype).removeprefix('torch.')} of shape "
            f"{tuple(x.shape)}" + ("; give one value per item as shape (N, 1)" if x.dim() == 1 else "")
        )
    if config.x_field not in splits.test:
        raise DataError(f"dataset {config.dataset!r}: its test split has no field {config.x_field!r} (its fields: "
                        f"{sorted(splits.test)}), which its train split has")
    test_x = splits.test[config.x_field]
    if test_x.shape[1:] != x.shape[1:] or test_x.dtype != x.dtype:  # one model takes both
        raise DataError(f"dataset {config.dataset!r}: its test split's {config.x_field!r} items are "
                        f"{str(test_x.dtype).removeprefix('torch.')} {list(test_x.shape[1:])}, its train split's "
                        f"{str(x.dtype).removeprefix('torch.')} {list(x.shape[1:])}; a model takes one shape")
    return splits.limited(config.train_limit, config.test_limit)
