"""MNIST from the four canonical IDX files, read from a directory the user names.

Where to look, in order: ``data.data_dir`` (``--data-dir``), ``$CONDGEN_DATA_DIR``, a
previous download in the cache, then torchvision's download. Both ``.gz`` and
uncompressed files are accepted. Every file's magic number and size is checked, so a
truncated or foreign file is an error naming the file instead of garbage pixels.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..common.errors import DataError
from ..common.files import is_file, read_bytes
from .splits import DataSplits

if TYPE_CHECKING:
    from .config import DataConfig

DATA_DIR_ENV = "CONDGEN_DATA_DIR"
FILES = {
    ("train", "image"): "train-images-idx3-ubyte",
    ("train", "label"): "train-labels-idx1-ubyte",
    ("test", "image"): "t10k-images-idx3-ubyte",
    ("test", "label"): "t10k-labels-idx1-ubyte",
}
# IDX magic: two zero bytes, the type code (0x08 = unsigned byte), the number of dimensions.
_MAGIC = {"image": (0x0803, 3), "label": (0x0801, 1)}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "condgen" / "mnist"


def _find(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if is_file(candidate, "MNIST file"):
            return candidate
    return None


def missing_files(directory: Path) -> list[str]:
    return [f"{stem}.gz" for stem in FILES.values() if _find(directory, stem) is None]


def read_idx(path: Path, kind: str) -> Tensor:
    """Read one IDX file: images ``(N, rows, cols)`` or labels ``(N,)``, dtype uint8."""
    raw = read_bytes(path, "MNIST file")  # "permission denied" is not "corrupt"
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"cannot read MNIST file {str(path)!r}: {exc} (truncated or not gzip? replace it)") from None
    magic, ndim = _MAGIC[kind]
    if len(raw) < 4 + 4 * ndim or struct.unpack(">I", raw[:4])[0] != magic:
        found = raw[:4].hex() if len(raw) >= 4 else "nothing"
        raise DataError(
            f"{str(path)!r} is not an MNIST {kind} file: IDX magic {magic:08x} expected, found {found}"
        )
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    expected = 4 + 4 * ndim + int(torch.tensor(dims).prod())
    if len(raw) != expected:
        raise DataError(
            f"MNIST file {str(path)!r} holds {len(raw)} bytes but its header {tuple(dims)} needs {expected}: "
            "the file is truncated or corrupt; replace it"
        )
    data = torch.frombuffer(bytearray(raw[4 + 4 * ndim :]), dtype=torch.uint8)
    return data.reshape(dims)


def _check_splits(directory: Path, splits: dict[str, dict[str, Tensor]]) -> None:
    """Each split's files agree, and the training files are not the test files (swapped or copied)."""
    name = {kind: {split: FILES[split, kind] for split in splits} for kind in ("image", "label")}
    for split, fields in splits.items():
        n_img, n_lab = fields["image"].shape[0], fields["label"].shape[0]
        if n_img != n_lab:
            raise DataError(
                f"MNIST {split} split in {str(directory)!r} has {n_img} images ({name['image'][split]}) but {n_lab} "
                f"labels ({name['label'][split]}); are train and t10k files swapped?"
            )
    n_train, n_test = splits["train"]["image"].shape[0], splits["test"]["image"].shape[0]
    if n_train < n_test:
        raise DataError(
            f"MNIST files in {str(directory)!r} look swapped: the train files hold {n_train} items, fewer than the "
            f"t10k (test) files' {n_test} (MNIST has 60000 and 10000); rename them to the split they hold"
        )
    if n_train == n_test and torch.equal(splits["train"]["image"], splits["test"]["image"]):
        raise DataError(
            f"MNIST files in {str(directory)!r}: the train and t10k images are the same file's contents; "
            "put the real training files back (train-images-idx3-ubyte: 60000 images)"
        )


def read_mnist_dir(directory: str | Path) -> DataSplits:
    """Splits ``{"image": (N, 1, 28, 28) float32 in [0, 1], "label": (N,) int64}`` from a directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"MNIST directory {str(directory)!r} does not exist")
    missing = missing_files(directory)
    if missing:
        raise DataError(
            f"MNIST directory {str(directory)!r} lacks {', '.join(missing)}; "
            f"it needs the four files {', '.join(s + '.gz' for s in FILES.values())}"
        )
    splits: dict[str, dict[str, Tensor]] = {"train": {}, "test": {}}
    for (split, kind), stem in FILES.items():
        splits[split][kind] = read_idx(_find(directory, stem), kind)  # type: ignore[arg-type]
    _check_splits(directory, splits)
    for split, fields in splits.items():
        if int(fields["label"].max()) > 9:
            raise DataError(f"MNIST {split} labels in {str(directory)!r} go up to {int(fields['label'].max())}, not 9")
        fields["image"] = fields["image"].unsqueeze(1).float().div_(255.0)
        fields["label"] = fields["label"].long()
    return DataSplits(train=splits["train"], test=splits["test"])


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
    """The ``mnist`` dataset loader registered by the toolkit."""
    return read_mnist_dir(locate_mnist(config.data_dir))
