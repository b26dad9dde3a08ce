"""Data checked whole when it is loaded, the same for every data set (built-in or a plugin's): each loader's
output passes through :func:`check_splits` before anything is built from it or a run directory is made.

What it refuses, naming the split, the field and an item: a field whose items have another shape or kind in the
test split than in the training split (one model takes both), and values of x that no likelihood can score:
NaN or inf, or numbers so large that float32 arithmetic in the loss overflows. Missing values of a condition
(NaN in a condition field) are not this module's: the conditioners read them as absent conditions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from ..common.errors import DataError
from .splits import DataSplits, split_size

#: The largest |x| a data set may hold: the squares and exponentials of the loss overflow float32 not far
#: beyond (a Gaussian's (x - mean)^2 / std^2 reaches float32's 3.4e38 for |x| ~ 1e19 at std 1, far sooner at
#: a small std), and data this large is never in units a decoder can learn; standardise it.
LARGEST_VALUE = 1e8
#: Items read at once (a field may be a StoredArray read from its file).
CHECK_ROWS = 4096


@dataclass(frozen=True)
class ValueRange:
    """The smallest and largest value of a split's x as the model sees it (image levels: [0, 1], their bounds)."""

    low: float
    high: float


def _kind(t: Tensor) -> str:
    return "floats" if t.is_floating_point() else "booleans" if t.dtype == torch.bool else "whole numbers"


def _dtype(t: Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _item_shape(t: Tensor) -> list[int]:
    return list(t.shape[1:])


def check_splits(splits: DataSplits, x_field: str, dataset: str) -> None:
    """DataError unless the test split's fields match the training split's and x holds only finite values of a
    size float32 can score, in either split."""
    where = f"dataset {dataset!r}"
    for field, train in splits.train.items():
        test = splits.test.get(field)
        if test is None:
            continue  # a field the test split lacks is the conditioner's to ask for (require_field)
        # x exactly (image levels and floats are not one model's input), the others by kind
        kind = _dtype if field == x_field else _kind
        if _item_shape(test) != _item_shape(train) or kind(test) != kind(train):
            fix = ("give both splits the same shape" if _item_shape(test) != _item_shape(train) else
                   "give both splits the same dtype (images as uint8 levels in both, or floats in both)"
                   if field == x_field else
                   "give both splits the same kind (a missing class is -1 in whole numbers, a missing number NaN "
                   "in floats)")
            raise DataError(f"{where}: the test split's {field!r} items are {kind(test)} of shape "
                            f"{_item_shape(test)}, the training split's {kind(train)} of shape "
                            f"{_item_shape(train)}; one model takes both: {fix}")
    for split, name in (("train", "training"), ("test", "test")):
        value_range(getattr(splits, split), x_field, f"{where}: the {name} split's {x_field!r}")


def value_range(split: Mapping[str, Tensor], x_field: str, what: str) -> ValueRange:
    """The range of ``split[x_field]`` as the model sees it, read a block of items at a time; DataError (``what``
    names the field) where it holds NaN, inf or a value beyond :data:`LARGEST_VALUE`."""
    x = split[x_field]
    n = split_size(split)
    if not x.is_floating_point():  # image levels, seen as levels / 255: finite and in [0, 1] without a read
        return ValueRange(0.0, 1.0)
    low, high = float("inf"), float("-inf")
    for start in range(0, n, CHECK_ROWS):
        rows = x[start:start + CHECK_ROWS].flatten(1)  # in its own dtype: a float64 1e300 is not inf here
        finite = torch.isfinite(rows)
        if not bool(finite.all()):
            item, element = (~finite).nonzero()[0].tolist()
            value = float(rows[item, element])
            raise DataError(f"{what} holds {value} (item {start + item}, element {element}): x must be finite "
                            "numbers; drop or fill those items")
        big = rows.abs() > LARGEST_VALUE
        if bool(big.any()):
            item, element = big.nonzero()[0].tolist()
            raise DataError(f"{what} holds {float(rows[item, element]):.4g} (item {start + item}, element {element}), "
                            f"beyond +-{LARGEST_VALUE:.0e}: values this large overflow the loss in float32; "
                            "standardise the data (subtract the mean, divide by the std)")
        if rows.numel():
            low, high = min(low, float(rows.min())), max(high, float(rows.max()))
    return ValueRange(low, high) if n else ValueRange(0.0, 0.0)
