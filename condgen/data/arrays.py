"""The ``npz`` dataset: a user's own tensors from one NumPy ``.npz`` file.

The file holds ``train_<field>`` and ``test_<field>`` arrays for each field, sharing their first
dimension within a split (``train_x`` ``(N, 2)``, ``train_s`` ``(N,)``, ...)::

    condgen train --dataset npz --data-dir ring.npz --x-field x --likelihood gaussian ...
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..common.errors import DataError
from ..common.files import check_readable, is_file
from .splits import DataSplits

if TYPE_CHECKING:
    from .config import DataConfig


def _member(arrays: np.lib.npyio.NpzFile, name: str, path: Path) -> np.ndarray:
    """One array of the file, every member read whole (a field the run does not use too), so a damaged member
    or one of Python objects is named now, not met later."""
    try:
        return arrays[name]
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # numpy's words for an array of Python objects
            raise DataError(f"dataset 'npz': array {name!r} in {str(path)!r} holds Python objects (dtype object), "
                            "which are not read (they could run code); save it as numbers, or leave it out") from None
        raise DataError(f"dataset 'npz': array {name!r} in {str(path)!r} cannot be read ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"dataset 'npz': array {name!r} in {str(path)!r} is damaged ({exc}); write the file "
                        "again") from None


def load_npz_splits(config: DataConfig) -> DataSplits:
    """Read ``config.data_dir`` (a ``.npz`` file) into train and test splits of tensors."""
    if not config.data_dir:
        raise DataError("dataset 'npz' needs --data-dir FILE.npz (train_<field> and test_<field> arrays)")
    path = Path(config.data_dir)
    if not is_file(path, "npz file"):
        raise DataError(f"dataset 'npz': no such file {str(path)!r} (give --data-dir FILE.npz)")
    check_readable(path, "npz file")
    if path.stat().st_size == 0:
        raise DataError(f"dataset 'npz': {str(path)!r} is empty (0 bytes); write it again with numpy.savez")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"dataset 'npz': {str(path)!r} is not a readable .npz file ({exc})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(f"dataset 'npz': {str(path)!r} holds one array (a .npy); save train_<field> and "
                        "test_<field> arrays together with numpy.savez")
    with loaded as arrays:
        fields = {name: _member(arrays, name, path) for name in arrays.files}
    splits: dict[str, dict[str, torch.Tensor]] = {"train": {}, "test": {}}
    for name, array in fields.items():
        split, _, field = name.partition("_")
        if split not in splits or not field:
            raise DataError(f"dataset 'npz': array {name!r} in {str(path)!r} must be named train_<field> or "
                            "test_<field>")
        if array.dtype.kind not in "biuf":
            raise DataError(f"dataset 'npz': array {name!r} holds {array.dtype}, not numbers")
        if array.ndim == 0:
            raise DataError(f"dataset 'npz': array {name!r} is a single number; it needs one row per item")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        if array.dtype == np.uint8 and array.ndim >= 3:  # images as their levels: kept so, seen as floats in [0, 1]
            splits[split][field] = tensor
        else:
            splits[split][field] = tensor.float() if array.dtype.kind == "f" else tensor.long()
    if set(splits["train"]) != set(splits["test"]) or not splits["train"]:
        raise DataError(f"dataset 'npz': {str(path)!r} must hold the same fields for train_ and test_, got "
                        f"train {sorted(splits['train'])} and test {sorted(splits['test'])}")
    return DataSplits(train=splits["train"], test=splits["test"])
