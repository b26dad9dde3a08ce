"""In-memory data: a split is a dict of tensors that share their first dimension N.

MNIST is 60,000 x 784 bytes; holding it as tensors and batching by index avoids the
per-item Python work of a DataLoader, which dominates the time of a small MLP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..common.arguments import whole_number
from ..common.errors import DataError

if TYPE_CHECKING:
    from .config import DataConfig


@dataclass
class DataSplits:
    """Train and test splits, e.g. ``{"image": (N, 1, 28, 28) float in [0, 1], "label": (N,) int64}``.

    ``classes`` names the classes of a field of class indices where the data has names for them:
    ``{"label": ["T-shirt/top", "Trouser", ...]}``, index ``i`` named ``classes["label"][i]`` (a
    conditioner on that field learns them: :meth:`condgen.Conditioner.learn_class_names`).
    """

    train: dict[str, Tensor]
    test: dict[str, Tensor]
    classes: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for split_name in ("train", "test"):
            split = getattr(self, split_name)
            sizes = {k: v.shape[0] for k, v in split.items()}
            if not sizes or len(set(sizes.values())) != 1:
                raise DataError(f"{split_name} split fields must share their first dimension, got sizes {sizes}")
        for name, names in self.classes.items():
            if name not in self.train:
                raise DataError(f"the class names given for field {name!r} name no field of the data "
                                f"(its fields: {sorted(self.train)})")
            if not (isinstance(names, list) and names and all(isinstance(n, str) and n.strip() for n in names)):
                raise DataError(f"the class names of field {name!r} must be a list of non-empty strings, got {names!r}")
            folded = [n.strip().casefold() for n in names]
            twice = sorted({n for n in names if folded.count(n.strip().casefold()) > 1})
            if twice:
                raise DataError(f"field {name!r} names two classes {twice[0]!r} (names are matched without regard "
                                "to case): give each class its own name")

    def limited(self, train_limit: int | None, test_limit: int | None) -> "DataSplits":
        """The first ``train_limit`` / ``test_limit`` items of each split (the class names stay)."""
        return DataSplits(_head(self.train, train_limit), _head(self.test, test_limit), dict(self.classes))


#: ``loader(config: condgen.DataConfig) -> DataSplits``, registered by a plugin under a dataset name.
DatasetLoader = Callable[["DataConfig"], DataSplits]


def _head(split: Mapping[str, Tensor], n: int | None) -> dict[str, Tensor]:
    return {k: (v[:n] if n is not None else v) for k, v in split.items()}


def split_size(split: Mapping[str, Tensor]) -> int:
    return next(iter(split.values())).shape[0]


def index_batch(split: Mapping[str, Tensor], idx: Tensor) -> dict[str, Tensor]:
    """Rows ``idx`` of every field: a batch ``{field: (B, ...)}``."""
    return {k: v[idx] for k, v in split.items()}


def iter_batches(
    split: Mapping[str, Tensor], batch_size: int, limit: int | None = None
) -> Iterator[tuple[int, dict[str, Tensor]]]:
    """``(start, batch)`` for consecutive slices of the first ``limit`` (default: all) items, in order."""
    whole_number("batch_size", batch_size, minimum=1)
    if limit is not None:
        whole_number("limit", limit, minimum=0)
    n = split_size(split) if limit is None else min(limit, split_size(split))
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        yield start, {k: v[start:stop] for k, v in split.items()}


def to_device(split: Mapping[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    return {k: v.to(device) for k, v in split.items()}
