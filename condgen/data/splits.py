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
from .stored import StoredArray

if TYPE_CHECKING:
    from .config import DataConfig


@dataclass
class DataSplits:
    """Train and test splits, e.g. ``{"image": (N, 1, 28, 28) uint8, "label": (N,) int64}``.

    Images may be kept as their 256 levels, ``uint8`` (a quarter of float32's memory): every batch
    (:func:`iter_batches`, and the training's) and every whole split a conditioner is given sees them as
    float32 in [0, 1]; float images in [0, 1] work as well. Images too big for memory may be a
    :class:`condgen.StoredArray`, read from its file a batch at a time: indexing it gives tensors.

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
        classes: dict[str, list[str]] = {}
        for name, names in self.classes.items():
            if name not in self.train:
                raise DataError(f"the class names given for field {name!r} name no field of the data "
                                f"(its fields: {sorted(self.train)})")
            if not (isinstance(names, (list, tuple)) and names
                    and all(isinstance(n, str) and n.strip() for n in names)):
                raise DataError(f"the class names of field {name!r} must be a list of non-empty strings, got {names!r}")
            seen: dict[str, str] = {}
            for n in names:
                first = seen.get(n.strip().casefold())
                if first is not None:
                    raise DataError(f"field {name!r} names two classes {first!r} and {n!r} (names are matched without "
                                    "regard to case): give each class its own name")
                seen[n.strip().casefold()] = n
            classes[name] = list(names)  # a tuple too, kept as the list the field's type says
        self.classes = classes

    def limited(self, train_limit: int | None, test_limit: int | None) -> "DataSplits":
        """The first ``train_limit`` / ``test_limit`` items of each split (the class names stay)."""
        return DataSplits(_head(self.train, train_limit), _head(self.test, test_limit), dict(self.classes))


#: ``loader(config: condgen.DataConfig) -> DataSplits``, registered by a plugin under a dataset name.
DatasetLoader = Callable[["DataConfig"], DataSplits]


def _head(split: Mapping[str, Tensor], n: int | None) -> dict[str, Tensor]:
    return {k: (v if n is None else v.head(n) if isinstance(v, StoredArray) else v[:n]) for k, v in split.items()}


def split_size(split: Mapping[str, Tensor]) -> int:
    return next(iter(split.values())).shape[0]


def is_levels(t: Tensor) -> bool:
    """Whether a field holds images as their 256 levels: ``uint8`` ``(N, C, H, W)`` (or any ``(N, ...)`` of
    three or more dimensions), kept so in memory and seen as floats in [0, 1] (:func:`as_floats`)."""
    return t.dtype == torch.uint8 and t.dim() >= 3


def as_float(t: Tensor) -> Tensor:
    """``t`` as float32 in [0, 1] if it holds image levels (:func:`is_levels`), else ``t`` itself (a
    :class:`~condgen.data.stored.StoredArray` of levels: the same one, read as floats)."""
    if not is_levels(t):
        return t
    return t.as_floats() if isinstance(t, StoredArray) else t.float().div_(255.0)


def as_floats(fields: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``fields`` with every field of image levels (:func:`is_levels`) as float32 in [0, 1], on its device."""
    return {k: as_float(v) for k, v in fields.items()}


class FloatView(Mapping[str, Tensor]):
    """A whole split as conditioners see it (``fit``, ``example_conditions``, ``evaluate``): its image levels
    as float32 in [0, 1], each field converted when first read (and kept while the view lives)."""

    def __init__(self, split: Mapping[str, Tensor]) -> None:
        self._split, self._seen = split, {}

    def __getitem__(self, key: str) -> Tensor:
        if key not in self._seen:
            self._seen[key] = as_float(self._split[key])
        return self._seen[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._split)

    def __len__(self) -> int:
        return len(self._split)


def index_batch(split: Mapping[str, Tensor], idx: Tensor) -> dict[str, Tensor]:
    """Rows ``idx`` of every field: a batch ``{field: (B, ...)}``, image levels as floats in [0, 1]."""
    return as_floats({k: v[idx] for k, v in split.items()})


def iter_batches(
    split: Mapping[str, Tensor], batch_size: int, limit: int | None = None
) -> Iterator[tuple[int, dict[str, Tensor]]]:
    """``(start, batch)`` for consecutive slices of the first ``limit`` (default: all) items, in order; image
    levels (``uint8``) come as floats in [0, 1]."""
    whole_number("batch_size", batch_size, minimum=1)
    if limit is not None:
        whole_number("limit", limit, minimum=0)
    n = split_size(split) if limit is None else min(limit, split_size(split))
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        yield start, as_floats({k: v[start:stop] for k, v in split.items()})


def to_device(split: Mapping[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    return {k: v.to(device) for k, v in split.items()}
