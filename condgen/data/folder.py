"""The ``image-folder`` data set: a user's own images, one subfolder per class (torchvision's ImageFolder layout).

Either ``DIR/train/<class>/*.png`` and ``DIR/test/<class>/*.png``, or ``DIR/<class>/*.png`` split into train
and test by a seeded fraction (``test_fraction``, ``split_seed``: both stored in the run's config). PNG, JPEG,
WebP, BMP and TIFF are read with Pillow, as greyscale or RGB, resized to ``size`` if given. The class is the
``label`` field, and the folder names are its class names (``DataSplits.classes``). A CSV of attributes beside
the images (``attributes``, :mod:`condgen.data.attributes`) adds a field for each of its columns, and with
it the images may lie in the folder itself, without class subfolders::

    condgen train --dataset image-folder --data-dir photos/ --data-option 'size=[32,32]' \\
        --conditioner label:num_classes=5 --out runs/photos

Every problem with a folder or a file is one :class:`condgen.DataError` naming it, before anything is
trained: an empty folder, a class folder without images, a file that is not an image or is cut short
(refused, or skipped with a warning and a count where ``bad_files: skip``), images of mixed modes, images
of several sizes without ``size``, a test image that is also a training image.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Optional

import numpy as np
import torch
from pydantic import Field, field_validator
from tqdm.auto import tqdm

from ..common.errors import DataError
from ..common.files import access_error
from .attributes import Attributes
from .config import DatasetOptions
from .splits import DataSplits

if TYPE_CHECKING:
    from .config import DataConfig

#: The file endings read as images (any case).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
#: Pillow's modes of greyscale images; every other mode is read as colour.
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
#: The largest side an image may be resized to.
MAX_SIDE = 4096


class ImageFolderOptions(DatasetOptions):
    """The options of the ``image-folder`` data set."""

    size: Optional[list[int]] = Field(
        None, description="[H, W] every image is made; default: the images' own size, which must then be one")
    method: Literal["resize", "crop", "resize-crop"] = Field(
        "resize", description="how an image is made [H, W]: resize (stretched), crop (its centre), or resize-crop "
        "(scaled so it covers [H, W], then its centre)")
    mode: Literal["auto", "grey", "rgb"] = Field(
        "auto", description="grey (1 channel) or rgb (3 channels); auto: what the images are, which must then be one")
    test_fraction: float = Field(
        0.1, gt=0, lt=1, description="the share of each class held out as the test split, for a folder without "
        "train/ and test/ subfolders")
    split_seed: int = Field(0, ge=0, le=2**32 - 1, description="the seed of that split (stored, so it is the same "
                            "split when the run is evaluated)")
    bad_files: Literal["refuse", "skip"] = Field(
        "refuse", description="a file that is not a readable image: refuse the folder (naming it), or skip it "
        "with a warning and a count")
    attributes: Optional[str] = Field(
        None, description="a CSV of the images' attributes (relative to --data-dir, or absolute): a column naming "
        "each image (its path under --data-dir, or its file name where that is unique), and any number of other "
        "columns, each a field: numbers (for the regression conditioner) or categories (for label); with it, the "
        "images may also lie directly in the folder, without class subfolders")
    file_column: str = Field("file", min_length=1, description="the CSV's column of image names")
    attribute_types: dict[str, Literal["number", "category"]] = Field(
        default_factory=dict, description="a CSV column's type, where it is not what its values say (a column of "
        "numbers is numbers, any other a category)")

    @field_validator("size")
    @classmethod
    def _two_sides(cls, v: Optional[list[int]]) -> Optional[list[int]]:
        if v is not None and (len(v) != 2 or any(not 1 <= s <= MAX_SIDE for s in v)):
            raise ValueError(f"size must be [H, W], two whole numbers from 1 to {MAX_SIDE}, got {v}")
        return v


def _images_in(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir()
                      if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file())
    except OSError as exc:
        raise access_error("image folder", folder, exc) from None


def _class_folders(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        raise access_error("image folder", folder, exc) from None


def _listing(folder: Path, what: str, flat: bool = False) -> dict[str, list[Path]]:
    """``{class name: its image files}`` of one folder of class subfolders; with ``flat``, a folder of images
    without subfolders is one class named ``""``."""
    classes = _class_folders(folder)
    if not classes:
        loose = _images_in(folder)
        if flat and loose:
            return {"": loose}
        hint = (f" (it holds {len(loose)} image(s) directly: put them in one subfolder per class, e.g. "
                f"{folder / 'cats'}/)" if loose else "")
        raise DataError(f"image folder {str(folder)!r} ({what}) has no class subfolders{hint}; lay it out as "
                        "DIR/<class>/<image>, or DIR/train/<class>/... and DIR/test/<class>/...")
    listing = {}
    for sub in classes:
        files = _images_in(sub)
        if not files:
            if _class_folders(sub):  # a folder of folders: a split of another name (val/), or a level too deep
                raise DataError(f"class folder {str(sub)!r} holds folders, not images; lay the data out as "
                                "DIR/<class>/<image>, or as DIR/train/<class>/... and DIR/test/<class>/... (a "
                                "validation folder is the test split: rename it test/)")
            raise DataError(f"class folder {str(sub)!r} holds no images ({', '.join(IMAGE_SUFFIXES)}); add some, or "
                            "remove the folder")
        listing[sub.name] = files
    return listing


def _class_order(names: Sequence[str]) -> list[str]:
    """Class names in index order: by number where every name is a whole number (``2`` before ``10``), so a
    folder's number is its index; else as text."""
    if names and all(n.isdigit() for n in names):
        return sorted(names, key=lambda n: (int(n), n))
    return sorted(names)


class _Decoded:
    """One image file read: its pixels ``(H, W, C)`` uint8, Pillow's mode, and a digest of its bytes."""

    def __init__(self, path: Path, pixels: np.ndarray | None, mode: str, digest: str, problem: str | None) -> None:
        self.path, self.pixels, self.mode, self.digest, self.problem = path, pixels, mode, digest, problem


def _decode(path: Path, options: ImageFolderOptions) -> _Decoded:
    from PIL import Image, ImageOps

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise access_error("image", path, exc) from None
    digest = hashlib.sha1(raw).hexdigest()
    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.load()  # decodes now: a file cut short fails here, not later
            mode = img.mode
            img = ImageOps.exif_transpose(img)  # a phone's photo the way up it was taken
            want = {"grey": "L", "rgb": "RGB"}.get(options.mode) or ("L" if mode in _GREY_MODES else "RGB")
            img = _eight_bit(img).convert(want)
    except Image.DecompressionBombError as exc:
        return _Decoded(path, None, "", digest, f"{exc} (Pillow's limit on pixels: a bigger image may be a "
                                                "decompression bomb)")
    except Exception as exc:  # Pillow's errors for a bad file are of many types: each is that file's problem
        return _Decoded(path, None, "", digest, f"{type(exc).__name__}: {exc}")
    img = _fit(img, options, path)
    return _Decoded(path, np.asarray(img, dtype=np.uint8).reshape(img.height, img.width, -1), mode, digest, None)


def _eight_bit(img):
    """``img`` with 8 bits a channel: 16-bit levels scaled down (Pillow's own conversion would clip them), float
    pixels taken as [0, 1]."""
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        levels = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode != "I" or levels.max() > 255 else 255.0
        return Image.fromarray(np.clip(np.round(levels * 255.0 / top), 0, 255).astype(np.uint8), mode="L")
    if img.mode == "F":
        return Image.fromarray(np.clip(np.round(np.asarray(img) * 255.0), 0, 255).astype(np.uint8), mode="L")
    return img


def _fit(img, options: ImageFolderOptions, path: Path):
    """``img`` made ``options.size`` by ``options.method`` (as it is without a size)."""
    from PIL import Image

    if options.size is None:
        return img
    h, w = options.size
    if options.method == "resize":
        return img.resize((w, h), Image.Resampling.BILINEAR)
    if options.method == "resize-crop":
        scale = max(w / img.width, h / img.height)
        img = img.resize((max(w, round(img.width * scale)), max(h, round(img.height * scale))),
                         Image.Resampling.BILINEAR)
    if img.width < w or img.height < h:
        raise DataError(f"image {str(path)!r} is {img.height}x{img.width}, smaller than size [{h}, {w}], which "
                        "method crop cannot make; use --data-option method=resize-crop (or resize)")
    left, top = (img.width - w) // 2, (img.height - h) // 2
    return img.crop((left, top, left + w, top + h))


def _read(files: Sequence[Path], options: ImageFolderOptions, what: str) -> list[_Decoded]:
    """Every file decoded, on the available cores (Pillow releases the GIL while it decodes), with a bar."""
    workers = max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8))
    pool = ThreadPoolExecutor(workers)
    decoded = []
    try:
        with tqdm(total=len(files), desc=f"reading {what}", unit="image", leave=False, disable=None) as bar:
            for item in pool.map(lambda p: _decode(p, options), files):
                decoded.append(item)
                bar.update()
    except BaseException:  # an error, or Ctrl-C: the files still queued are not read first
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return decoded


def _check_alike(decoded: list[_Decoded], folder: Path, options: ImageFolderOptions) -> None:
    """DataError unless the images (of both splits) have one mode (in ``auto``) and one size."""
    if options.mode == "auto":
        grey = [d for d in decoded if d.mode in _GREY_MODES]
        colour = [d for d in decoded if d.mode not in _GREY_MODES]
        if grey and colour:
            raise DataError(f"image folder {str(folder)!r} mixes greyscale and colour images ({grey[0].path.name} is "
                            f"{grey[0].mode}, {colour[0].path.name} is {colour[0].mode}); choose one with "
                            "--data-option mode=grey or mode=rgb")
    first = decoded[0]
    other = next((d for d in decoded if d.pixels.shape != first.pixels.shape), None)
    if other is not None:
        raise DataError(f"image folder {str(folder)!r} holds images of several sizes ({first.path.name} is "
                        f"{first.pixels.shape[0]}x{first.pixels.shape[1]}, {other.path.name} "
                        f"{other.pixels.shape[0]}x{other.pixels.shape[1]}); make them one with "
                        "--data-option 'size=[H,W]'")


def _stack(decoded: list[_Decoded]) -> torch.Tensor:
    """``(N, C, H, W)`` uint8 (the images' levels) of images of one size."""
    pixels = np.stack([d.pixels for d in decoded])  # (N, H, W, C) uint8
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()


def _held_out(seed: int, name: str, relative: str) -> float:
    """A number in [0, 1) that is the file's own: from the seed, its class and its path, so adding or removing
    other files (or classes) moves no file between train and test."""
    digest = hashlib.sha256(f"{seed}\0{name}\0{relative}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _split(listing: dict[str, list[Path]], options: ImageFolderOptions, root: Path) -> tuple[dict, dict]:
    """The files of each class whose own number (:func:`_held_out`) is below ``test_fraction`` are the test
    split: ``(train, test)`` listings, each class in both (at least one file each)."""
    train, test = {}, {}
    for name, files in listing.items():
        if len(files) < 2:
            raise DataError(f"class {name or 'of the folder'!r} has {len(files)} image(s): a split into train and test "
                            "needs at least 2 per class (or lay the folder out as train/ and test/)")
        own = {f: _held_out(options.split_seed, name, f.relative_to(root).as_posix()) for f in files}
        ranked = sorted(files, key=own.__getitem__)
        held = min(len(files) - 1, max(1, sum(u < options.test_fraction for u in own.values())))
        test[name], train[name] = sorted(ranked[:held]), sorted(ranked[held:])
    return train, test


def read_image_folder(directory: str | Path, options: ImageFolderOptions | None = None) -> DataSplits:
    """Splits ``{"image": (N, C, H, W) uint8, "label": (N,) int64}`` of a folder of class subfolders, with the
    class names (the subfolders', sorted; by number where all are numbers) as ``classes["label"]``.

    Each split's items are in an order drawn from ``split_seed``, not class by class, so the first N of
    them (``--train-limit``, the pictures) are of every class.
    """
    options = options or ImageFolderOptions()
    root = Path(directory)
    if not root.is_dir():
        raise DataError(f"image folder {str(root)!r} does not exist (give --data-dir DIR, a folder of class subfolders)")
    flat = options.attributes is not None  # the CSV can give every field: class subfolders are not needed
    if (root / "train").is_dir() and (root / "test").is_dir():
        listings = {"train": _listing(root / "train", "train", flat), "test": _listing(root / "test", "test", flat)}
        unknown = sorted(set(listings["test"]) - set(listings["train"]))
        if unknown:
            raise DataError(f"image folder {str(root / 'test')!r} has class {unknown[0]!r}, which {str(root / 'train')!r} "
                            "has not: every test class must be a training class")
    else:
        listings = dict(zip(("train", "test"), _split(_listing(root, "train and test", flat), options, root)))
    names = _class_order(list(listings["train"]))
    index = {name: i for i, name in enumerate(names)}
    decoded: dict[str, list[tuple[_Decoded, int]]] = {}
    skipped = []
    for split, listing in listings.items():
        files = [(f, index[name]) for name in names if name in listing for f in listing[name]]
        read = _read([f for f, _ in files], options, f"{split} images")
        bad = [d for d in read if d.problem is not None]
        if bad and options.bad_files == "refuse":
            raise DataError(f"{str(bad[0].path)!r} is not a readable image ({bad[0].problem})"
                            + (f", and {len(bad) - 1} more file(s) are not either" if len(bad) > 1 else "")
                            + "; replace or remove it, or skip such files with --data-option bad_files=skip")
        skipped += bad
        decoded[split] = [(d, y) for d, (_, y) in zip(read, files) if d.problem is None]
        if not decoded[split]:
            raise DataError(f"image folder {str(root)!r} has no readable {split} image ({len(bad)} skipped as not "
                            "readable); add some")
    _check_alike([d for items in decoded.values() for d, _ in items], root, options)  # both splits: one model
    train_digests = {d.digest: d.path for d, _ in decoded["train"]}
    shared = [(d.path, train_digests[d.digest]) for d, _ in decoded["test"] if d.digest in train_digests]
    if shared:
        raise DataError(f"the test image {str(shared[0][0])!r} is also a training image ({str(shared[0][1])!r})"
                        + (f", and {len(shared) - 1} more test images are too" if len(shared) > 1 else "")
                        + "; a test split must hold images the model never trained on: remove one of each copy")
    splits: dict[str, dict[str, torch.Tensor]] = {}
    kept_paths: dict[str, list[Path]] = {}
    gen = torch.Generator().manual_seed(options.split_seed)
    for split, items in decoded.items():
        items = [items[i] for i in torch.randperm(len(items), generator=gen).tolist()]  # classes mixed
        splits[split] = {"image": _stack([d for d, _ in items])}
        if names != [""]:  # class subfolders: the label is the folder
            splits[split]["label"] = torch.tensor([y for _, y in items], dtype=torch.int64)
        kept_paths[split] = [d.path for d, _ in items]
    if skipped:
        warnings.warn(f"image folder {str(root)!r}: skipped {len(skipped)} file(s) that are not readable images, "
                      f"e.g. {str(skipped[0].path)!r} ({skipped[0].problem})", stacklevel=2)
    classes = {"label": names} if names != [""] else {}
    if options.attributes is not None:
        classes.update(_add_attributes(root, options, splits, kept_paths, [d.path for d in skipped]))
    return DataSplits(train=splits["train"], test=splits["test"], classes=classes)


def _add_attributes(root: Path, options: ImageFolderOptions, splits: dict[str, dict[str, torch.Tensor]],
                    kept: dict[str, list[Path]], skipped: list[Path]) -> dict[str, list[str]]:
    """Each CSV column as a field of both splits (in place); the class names of its category columns."""
    csv_path = Path(options.attributes)
    table = Attributes(csv_path if csv_path.is_absolute() else root / csv_path, options.file_column,
                       options.attribute_types, reserved=("image", "label"))
    every = [p for paths in kept.values() for p in paths] + skipped
    by_path = {p.relative_to(root).as_posix(): p for p in every}
    by_name: dict[str, list[Path]] = {}
    for p in every:
        by_name.setdefault(p.name, []).append(p)
    named: dict[Path, str] = {}  # image -> the CSV's name of it
    for key, (line, _) in table.rows.items():
        path = by_path.get(key) or (by_name[key][0] if len(by_name.get(key, [])) == 1 else None)
        if path is None:
            raise DataError(f"attributes CSV {str(table.path)!r} row {line} names {key!r}, which is not an image of "
                            f"{str(root)!r} (name an image by its path under it, e.g. "
                            f"{next(iter(by_path), 'cats/1.png')!r}, or by a file name only one image has)")
        if path in named:
            raise DataError(f"attributes CSV {str(table.path)!r} names image {str(path)!r} twice ({named[path]!r} "
                            f"and {key!r}); give each image one row")
        named[path] = key
    classes: dict[str, list[str]] = {}
    for split, paths in kept.items():
        lost = [p for p in paths if p not in named]
        if lost:
            raise DataError(f"image {str(lost[0])!r} has no row in attributes CSV {str(table.path)!r}"
                            + (f", nor do {len(lost) - 1} more" if len(lost) > 1 else "") + "; give every image a row")
        fields, classes = table.fields([named[p] for p in paths])
        splits[split].update(fields)
    return classes


def load_image_folder_splits(config: DataConfig) -> DataSplits:
    """Your own images, one subfolder per class (``--data-dir DIR``; ``condgen plugins image-folder``)."""
    if not config.data_dir:
        raise DataError("dataset 'image-folder' needs --data-dir DIR: a folder of class subfolders (DIR/<class>/*.png, "
                        "or DIR/train/<class>/... and DIR/test/<class>/...)")
    return read_image_folder(config.data_dir, ImageFolderOptions.model_validate(config.options))


load_image_folder_splits.options = ImageFolderOptions  # type: ignore[attr-defined]
