"""IDX files (the format of MNIST and of the data sets that copy its layout), and finding a data set's files.

:func:`read_idx` reads one file, :func:`read_idx_dir` the four files of a directory named as MNIST's
(``train-images-idx3-ubyte.gz``, ...; ``.gz`` or uncompressed), and :func:`find_data_dir` looks for
that directory in ``--data-dir``, then in places that may name environment variables. The
``mnist`` and ``fashion-mnist`` data sets are built on them, and so can a plugin's. Every file's
magic number and size is checked, so a truncated or foreign file is an error naming the file
instead of garbage pixels.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from ..common.errors import ArgumentError, DataError
from ..common.files import is_file, read_bytes
from .splits import DataSplits

#: The toolkit's environment variable for data directories (``mnist`` reads it, others look beneath it).
DATA_DIR_ENV = "CONDGEN_DATA_DIR"
#: ``(split, field)`` -> the IDX file's name without ``.gz``, as MNIST names them.
IDX_FILES = {
    ("train", "image"): "train-images-idx3-ubyte",
    ("train", "label"): "train-labels-idx1-ubyte",
    ("test", "image"): "t10k-images-idx3-ubyte",
    ("test", "label"): "t10k-labels-idx1-ubyte",
}
# IDX magic: two zero bytes, the type code (0x08 = unsigned byte), the number of dimensions.
_MAGIC = {"image": (0x0803, 3), "label": (0x0801, 1)}


class _Known(NamedTuple):
    dataset: str  # the name --dataset reads it by
    sizes: tuple[int, int]  # train, test
    label_sha256: frozenset[str]  # of each split's labels (the bytes after the label file's 8-byte header)


# Public data sets whose files bear the same four names, told apart by their fixed label files: CI's
# $CONDGEN_DATA_DIR holds MNIST, and Fashion-MNIST's files must never be read as MNIST's (nor the reverse).
_KNOWN = {
    "MNIST": _Known("mnist", (60000, 10000), frozenset({
        "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
        "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
    })),
    "Fashion-MNIST": _Known("fashion-mnist", (60000, 10000), frozenset({
        "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
        "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
    })),
}


def _a(name: str) -> str:
    """The article before a data set's name: "an MNIST", "an IDX", "a Fashion-MNIST" (acronyms spelled out)."""
    spelled = name[:2].isupper() and name[0] in "FHLMNRSX"  # ef, aitch, el, em, en, ar, es, ex
    return "an" if name[0].upper() in "AEIOU" or spelled else "a"


def _find(directory: Path, stem: str, name: str) -> Path | None:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if is_file(candidate, f"{name} file"):
            return candidate
    return None


def _refuse_two_versions(directory: Path, stem: str, name: str, kind: str, read: Tensor) -> None:
    """DataError where the directory holds a split's file both gzipped and not (``read``: the ``.gz`` one's data)
    and the two differ: which one is meant cannot be guessed. The same data twice is fine."""
    gz, plain = directory / f"{stem}.gz", directory / stem
    if not (is_file(gz, f"{name} file") and is_file(plain, f"{name} file")):
        return
    other = read_idx(plain, kind, name=name)
    if other.shape != read.shape or not torch.equal(other, read):
        raise DataError(f"{name} directory {str(directory)!r} holds {gz.name} and {plain.name}, with different "
                        f"data ({tuple(read.shape)} and {tuple(other.shape)}): remove the one that is not meant")


def missing_idx_files(directory: Path, name: str) -> list[str]:
    """The ``.gz`` names of the four files that ``directory`` holds in neither form."""
    return [f"{stem}.gz" for stem in IDX_FILES.values() if _find(directory, stem, name) is None]


def read_idx(path: str | Path, kind: str, *, name: str = "IDX") -> Tensor:
    """One IDX file of unsigned bytes: ``kind="image"`` ``(N, rows, cols)`` or ``kind="label"`` ``(N,)``, uint8.

    A ``.gz`` file is decompressed. ``name`` (the data set's, ``"MNIST"``) names the file in errors.
    Another ``kind`` is an :class:`condgen.ArgumentError`.
    """
    if kind not in _MAGIC:
        raise ArgumentError(f"read_idx: kind must be {' or '.join(map(repr, _MAGIC))}, got {kind!r}")
    path = Path(path)
    raw = read_bytes(path, f"{name} file")  # "permission denied" is not "corrupt"
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                f"cannot read {name} file {str(path)!r}: {exc} (truncated or not gzip? replace it)"
            ) from None
    magic, ndim = _MAGIC[kind]
    if len(raw) < 4 + 4 * ndim or struct.unpack(">I", raw[:4])[0] != magic:
        found = raw[:4].hex() if len(raw) >= 4 else "nothing"
        raise DataError(
            f"{str(path)!r} is not {_a(name)} {name} {kind} file: IDX magic {magic:08x} expected, found {found}"
        )
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    expected = 4 + 4 * ndim + int(torch.tensor(dims).prod())
    if len(raw) != expected:
        raise DataError(
            f"{name} file {str(path)!r} holds {len(raw)} bytes but its header {tuple(dims)} needs {expected}: "
            "the file is truncated or corrupt; replace it"
        )
    data = torch.frombuffer(bytearray(raw[4 + 4 * ndim :]), dtype=torch.uint8)
    return data.reshape(dims)


def _refuse_other_known(directory: Path, name: str, labels: list[Tensor]) -> None:
    """Where ``name`` is a known data set's, a directory holding another known data set's files is refused.

    Another name (the default ``"IDX"``, a plugin's ``"KMNIST"``) reads any files: it asked for no
    particular data set, so MNIST's files are not "not its"."""
    if name not in _KNOWN:
        return
    digests = {hashlib.sha256(lab.numpy().tobytes()).hexdigest() for lab in labels}
    for other, known in _KNOWN.items():
        if other != name and digests & known.label_sha256:
            raise DataError(
                f"{str(directory)!r} holds {other}'s files, not {name}'s; --dataset {known.dataset} reads them, "
                f"or give --data-dir the directory of {name}'s four files"
            )


def _check_splits(directory: Path, name: str, splits: dict[str, dict[str, Tensor]]) -> None:
    """Each split's files agree, and the training files are not the test files (swapped or copied)."""
    stem = {kind: {split: IDX_FILES[split, kind] for split in splits} for kind in ("image", "label")}
    for split, fields in splits.items():
        n_img, n_lab = fields["image"].shape[0], fields["label"].shape[0]
        if n_img != n_lab:
            raise DataError(
                f"{name} {split} split in {str(directory)!r} has {n_img} images ({stem['image'][split]}) but {n_lab} "
                f"labels ({stem['label'][split]}); are train and t10k files swapped?"
            )
    known = _KNOWN.get(name)
    n_train, n_test = splits["train"]["image"].shape[0], splits["test"]["image"].shape[0]
    if n_train < n_test:
        sizes = f" ({name} has {known.sizes[0]} and {known.sizes[1]})" if known else ""
        raise DataError(
            f"{name} files in {str(directory)!r} look swapped: the train files hold {n_train} items, fewer than the "
            f"t10k (test) files' {n_test}{sizes}; rename them to the split they hold"
        )
    if n_train == n_test and torch.equal(splits["train"]["image"], splits["test"]["image"]):
        size = f": {known.sizes[0]} images" if known else ""
        raise DataError(
            f"{name} files in {str(directory)!r}: the train and t10k images are the same file's contents; "
            f"put the real training files back ({IDX_FILES['train', 'image']}{size})"
        )


def read_idx_dir(
    directory: str | Path, *, name: str = "IDX", classes: Sequence[str] | None = None, num_classes: int | None = None,
    levels: bool = False,
) -> DataSplits:
    """Splits ``{"image": (N, 1, rows, cols) float32 in [0, 1], "label": (N,) int64}`` from the four IDX files
    of ``directory``, named as MNIST's (``train-images-idx3-ubyte.gz``, ...; ``.gz`` or uncompressed).
    With ``levels`` the images stay ``uint8`` 0..255, a quarter of the memory (what a data-set loader
    returns: every batch sees them as floats in [0, 1], :class:`condgen.DataSplits`).

    ``name`` (the data set's, ``"Fashion-MNIST"``) names it in errors. ``classes`` names the labels
    0, 1, ... (kept as the splits' ``classes["label"]``); a label of ``num_classes`` (default
    ``len(classes)``; unchecked without either) or more is an error; both given, they must agree
    (else an :class:`condgen.ArgumentError`). MNIST's and Fashion-MNIST's files are recognised, so
    with ``name`` one of theirs (``"MNIST"``, ``"Fashion-MNIST"``) the other's files are refused;
    any other name reads either.
    """
    if classes is not None and num_classes is not None and len(classes) != num_classes:
        raise ArgumentError(f"read_idx_dir: classes names {len(classes)} classes but num_classes is {num_classes}; "
                            "give one of them, or as many names as num_classes")
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{name} directory {str(directory)!r} does not exist")
    missing = missing_idx_files(directory, name)
    if missing:
        raise DataError(
            f"{name} directory {str(directory)!r} lacks {', '.join(missing)}; "
            f"it needs the four files {', '.join(s + '.gz' for s in IDX_FILES.values())}"
        )
    splits: dict[str, dict[str, Tensor]] = {"train": {}, "test": {}}
    # the small label files first: a directory of the wrong data set is refused before 45 MB of images are read
    for kind in ("label", "image"):
        for split, fields in splits.items():
            path = _find(directory, IDX_FILES[split, kind], name)
            fields[kind] = read_idx(path, kind, name=name)  # type: ignore[arg-type]  # not None: checked above
            _refuse_two_versions(directory, IDX_FILES[split, kind], name, kind, fields[kind])
        if kind == "label":
            _refuse_other_known(directory, name, [fields["label"] for fields in splits.values()])
    _check_splits(directory, name, splits)
    if num_classes is None and classes is not None:
        num_classes = len(classes)
    for split, fields in splits.items():
        top = int(fields["label"].max()) if fields["label"].numel() else 0
        if num_classes is not None and top >= num_classes:
            raise DataError(f"{name} {split} labels in {str(directory)!r} go up to {top}, not {num_classes - 1}")
        fields["image"] = fields["image"].unsqueeze(1) if levels else fields["image"].unsqueeze(1).float().div_(255.0)
        fields["label"] = fields["label"].long()
    return DataSplits(train=splits["train"], test=splits["test"],
                      classes={"label": list(classes)} if classes is not None else {})


_VAR = re.compile(r"\$(\w+)|\$\{(\w+)\}")


def find_data_dir(
    data_dir: str | Path | None, places: Sequence[str | Path], *, name: str, install: str = ""
) -> Path:
    """The directory of a data set's four IDX files: ``data_dir`` (``--data-dir``, ``data.data_dir``) as given,
    else the first of ``places`` that holds any of them.

    A place may name environment variables (``"$CONDGEN_DATA_DIR/fashion-mnist"``); one whose variable
    is unset or empty is passed over. Found nowhere: a one-line :class:`condgen.DataError` saying where
    it looked, then ``install`` (``"install it with `apt-get install ...`"``) and how to pass the files.
    """
    if data_dir:
        return Path(data_dir).expanduser()
    looked = ["no --data-dir was given"]
    for place in map(str, places):
        unset = [a or b for a, b in _VAR.findall(place) if not os.environ.get(a or b)]
        if unset:
            looked.append(f"{place}: {unset[0]} is unset")
            continue
        directory = Path(_VAR.sub(lambda m: os.environ[m.group(1) or m.group(2)], place)).expanduser()
        if any(_find(directory, stem, name) for stem in IDX_FILES.values()):
            return directory
        shown = repr(str(directory)) if str(directory) == place else f"{place} = {str(directory)!r}"
        looked.append(f"{shown} holds none of its files" if directory.is_dir() else f"{shown} does not exist")
    files = ", ".join(s + ".gz" for s in IDX_FILES.values())
    raise DataError(
        f"{name} was not found ({'; '.join(looked)}): {install + ', or ' if install else ''}"
        f"put {files} in a directory and pass --data-dir DIR"
    )
