"""MNIST from the four canonical IDX files, read from a directory the user names.

Where to look, in order: ``data.data_dir`` (``--data-dir``), ``$CONDGEN_DATA_DIR``, a
previous download in the cache, then torchvision's download. The files are read by the IDX
reader shared with the other data sets of MNIST's layout (:mod:`.idx`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..common.errors import DataError
from .cache import cache_root
from .idx import DATA_DIR_ENV, IDX_FILES, missing_idx_files, read_idx_dir
from .splits import DataSplits

if TYPE_CHECKING:
    from .config import DataConfig

FILES = IDX_FILES  # DATA_DIR_ENV and FILES stay importable from here, as before the shared reader


def cache_dir() -> Path:
    return cache_root() / "mnist"


def missing_files(directory: Path) -> list[str]:
    return missing_idx_files(directory, "MNIST")


def read_mnist_dir(directory: str | Path, levels: bool = False) -> DataSplits:
    """Splits ``{"image": (N, 1, 28, 28) float32 in [0, 1], "label": (N,) int64}`` from a directory (with
    ``levels``, the images as ``uint8`` 0..255: see :func:`condgen.read_idx_dir`)."""
    return read_idx_dir(directory, name="MNIST", num_classes=10, levels=levels)


def _download(root: Path) -> Path:
    """Fetch MNIST with torchvision into ``root``; return the directory of the raw files."""
    from torchvision.datasets import MNIST

    for train in (True, False):
        MNIST(str(root), train=train, download=True)
    return root / "MNIST" / "raw"


def locate_mnist(data_dir: str | None) -> Path:
    """The directory to read MNIST from, downloading only when no directory was named."""
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    cached = cache_dir() / "MNIST" / "raw"
    if cached.is_dir() and not missing_files(cached):
        return cached
    try:
        return _download(cache_dir())
    except Exception as exc:
        raise DataError(
            f"MNIST is not available: no --data-dir was given, {DATA_DIR_ENV} is unset, and torchvision's "
            f"download failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
            f"Put {', '.join(s + '.gz' for s in FILES.values())} in a directory and pass --data-dir DIR "
            f"or set {DATA_DIR_ENV}=DIR"
        ) from None


def load_mnist_splits(config: DataConfig) -> DataSplits:
    """MNIST's handwritten digits: 28 x 28 grey pictures labelled 0 to 9, 60,000 to train on and 10,000 to test.

    The ``mnist`` data set: ``{"image": (N, 1, 28, 28) uint8, "label": (N,) int64}``, 60,000 train and 10,000
    test items, images kept as their levels (55 MB instead of float32's 220 MB). Read from ``--data-dir``,
    else ``$CONDGEN_DATA_DIR``, else torchvision's download, kept in the cache (:func:`locate_mnist`).
    """
    return read_mnist_dir(locate_mnist(config.data_dir), levels=True)
