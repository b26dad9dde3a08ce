"""Loading a registered data set by the name in a run's config, and who provides it."""

from __future__ import annotations

import warnings
from typing import Optional

from pydantic import ConfigDict

from ..common.errors import DataError, PluginError
from ..common.schema import StrictModel
from ..data.checks import check_splits
from ..data.splits import DataSplits, is_levels
from ..plugin.registry import PluginWarning, filtered_out, registry
from .config import DataConfig, validated_data_options


class StoredDataset(StrictModel):
    """The data set a run was trained on, as its checkpoint records it: the registered name and the plugin
    (and distribution) that provided it, to say what to install where it is missing."""

    model_config = ConfigDict(extra="ignore")

    name: str
    plugin: Optional[str] = None
    distribution: Optional[str] = None
    version: Optional[str] = None

    @classmethod
    def installed(cls, name: str) -> StoredDataset | None:
        """The installed provider of data set ``name``; None where no loaded plugin registers it."""
        reg = registry()
        if name not in reg.dataset_plugin:
            return None
        owner = reg.owner("dataset", name)
        return cls(name=name, plugin=owner.name, distribution=owner.distribution, version=owner.version)

    def check_installed(self, source: str) -> None:
        """Where this data set is not installed, a :class:`PluginError` saying which plugin provided it and
        what to install (or how the plugin filter leaves it out); where another plugin or distribution provides
        it now, a :class:`PluginWarning` naming both, as for a conditioner."""
        reg = registry()
        if self.name in reg.dataset_plugin or self.name in reg.datasets:
            now = StoredDataset.installed(self.name)
            if now is not None and (self.plugin or self.distribution) and (now.plugin, now.distribution) != (
                    self.plugin, self.distribution):
                warnings.warn(f"{source} was trained on data set {self.name!r} from "
                              f"{provider_words(self.plugin, self.distribution, self.version)}; the installed one is "
                              f"from {provider_words(now.plugin, now.distribution, now.version)}: check that it is "
                              "the same data", PluginWarning, stacklevel=3)
            return
        wanted = f"data set {self.name!r} from {provider_words(self.plugin, self.distribution, self.version)}"
        skipped = filtered_out(self.plugin, self.distribution)
        if skipped:
            raise PluginError(f"{source} was trained on {wanted}, which is installed but not loaded: {skipped}")
        hint = f"; install it: pip install {self.distribution}" if self.distribution else ""
        raise PluginError(f"{source} was trained on {wanted}, which is not installed{hint}")


def provider_words(plugin: str | None, distribution: str | None, version: str | None) -> str:
    """``plugin 'p' (distribution d 1.0)``: who provides a conditioner or data set, in a message."""
    dist = f"distribution {distribution} {version or ''}".rstrip() if distribution else "no distribution"
    return f"plugin {plugin!r} ({dist})"


def load_dataset(config: DataConfig, trained_on: StoredDataset | None = None, source: str = "the run") -> DataSplits:
    """Load the data set named in ``config`` through its registered loader, with limits applied. ``trained_on``
    (a stored run's record of its data set) turns a missing data set into an error naming what to install."""
    if trained_on is not None and trained_on.name == config.dataset:
        trained_on.check_installed(source)
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
    splits = splits.limited(config.train_limit, config.test_limit)
    check_splits(splits, config.x_field, config.dataset)
    return splits
