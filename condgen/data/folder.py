"""The ``image-folder`` data set: a user's own images, one subfolder per class (torchvision's ImageFolder layout).

Either ``DIR/train/<class>/*.png`` and ``DIR/test/<class>/*.png``, or ``DIR/<class>/*.png`` split into train
and test by a seeded fraction (``test_fraction``, ``split_seed``: both stored in the run's config). PNG, JPEG,
WebP, BMP and TIFF are read with Pillow, as greyscale or RGB, resized to ``size`` if given. The class is the
``label`` field, and the folder names are its class names (``DataSplits.classes``)::

    condgen train --dataset image-folder --data-dir photos/ --data-option 'size=[32,32]' \\
        --conditioner label:num_classes=5 --out runs/photos

Every problem with a folder or a file is one :class:`condgen.DataError` naming it, before anything is
trained: an empty folder, a class folder without images, a file that is not an image or is cut short
(refused, or skipped with a warning and a count where ``bad_files: skip``), images of mixed modes, images
of several sizes without ``size``, a test image that is also a training image.
"""

from __future__ import annotations

import hashlib
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


def _listing(folder: Path, what: str) -> dict[str, list[Path]]:
    """``{class name: its image files}`` of one folder of class subfolders."""
    classes = _class_folders(folder)
    if not classes:
        loose = _images_in(folder)
        hint = (f" (it holds {len(loose)} image(s) directly: put them in one subfolder per class, e.g. "
                f"{folder / 'cats'}/)" if loose else "")
        raise DataError(f"image folder {str(folder)!r} ({what}) has no class subfolders{hint}; lay it out as "
                        "DIR/<class>/<image>, or DIR/train/<class>/... and DIR/test/<class>/...")
    listing = {}
    for sub in classes:
        files = _images_in(sub)
        if not files:
            raise DataError(f"class folder {str(sub)!r} holds no images ({', '.join(IMAGE_SUFFIXES)}); add some, or "
                            "remove the folder")
        listing[sub.name] = files
    return listing


class _Decoded:
    """One image file read: its pixels ``(H, W, C)`` uint8, Pillow's mode, and a digest of its bytes."""

    def __init__(self, path: Path, pixels: np.ndarray | None, mode: str, digest: str, problem: str | None) -> None:
        self.path, self.pixels, self.mode, self.digest, self.problem = path, pixels, mode, digest, problem


def _decode(path: Path, options: ImageFolderOptions) -> _Decoded:
    from PIL import Image, UnidentifiedImageError

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise access_error("image", path, exc) from None
    digest = hashlib.sha1(raw).hexdigest()
    try:
        with Image.open(path) as img:
            img.load()  # decodes now: a file cut short fails here, not later
            mode = img.mode
            want = {"grey": "L", "rgb": "RGB"}.get(options.mode) or ("L" if mode in _GREY_MODES else "RGB")
            img = img.convert(want)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:  # Pillow's errors for a bad file
        return _Decoded(path, None, "", digest, f"{type(exc).__name__}: {exc}")
    img = _fit(img, options, path)
    return _Decoded(path, np.asarray(img, dtype=np.uint8).reshape(img.height, img.width, -1), mode, digest, None)


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
    with ThreadPoolExecutor(workers) as pool, tqdm(total=len(files), desc=f"reading {what}", unit="image",
                                                    leave=False, disable=None) as bar:
        decoded = []
        for item in pool.map(lambda p: _decode(p, options), files):
            decoded.append(item)
            bar.update()
    return decoded


def _stack(decoded: list[_Decoded], folder: Path, options: ImageFolderOptions) -> torch.Tensor:
    """``(N, C, H, W)`` float32 in [0, 1] from images that all have one mode and one size."""
    if options.mode == "auto":
        grey = [d for d in decoded if d.mode in _GREY_MODES]
        colour = [d for d in decoded if d.mode not in _GREY_MODES]
        if grey and colour:
            raise DataError(f"image folder {str(folder)!r} mixes greyscale and colour images ({grey[0].path.name} is "
                            f"{grey[0].mode}, {colour[0].path.name} is {colour[0].mode}); choose one with "
                            "--data-option mode=grey or mode=rgb")
    shapes = {d.pixels.shape for d in decoded}
    if len(shapes) > 1:
        first = decoded[0]
        other = next(d for d in decoded if d.pixels.shape != first.pixels.shape)
        raise DataError(f"image folder {str(folder)!r} holds images of several sizes ({first.path.name} is "
                        f"{first.pixels.shape[0]}x{first.pixels.shape[1]}, {other.path.name} "
                        f"{other.pixels.shape[0]}x{other.pixels.shape[1]}); make them one with "
                        "--data-option 'size=[H,W]'")
    pixels = np.stack([d.pixels for d in decoded])  # (N, H, W, C) uint8
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def _split(listing: dict[str, list[Path]], options: ImageFolderOptions) -> tuple[dict, dict]:
    """A seeded ``test_fraction`` of each class held out: ``(train, test)`` listings, each class in both."""
    gen = torch.Generator().manual_seed(options.split_seed)
    train, test = {}, {}
    for name, files in listing.items():
        if len(files) < 2:
            raise DataError(f"class {name!r} has {len(files)} image(s): a split into train and test needs at least 2 "
                            "per class (or lay the folder out as train/ and test/)")
        order = torch.randperm(len(files), generator=gen).tolist()
        held = min(len(files) - 1, max(1, round(options.test_fraction * len(files))))
        test[name] = sorted(files[i] for i in order[:held])
        train[name] = sorted(files[i] for i in order[held:])
    return train, test


def read_image_folder(directory: str | Path, options: ImageFolderOptions | None = None) -> DataSplits:
    """Splits ``{"image": (N, C, H, W) float32 in [0, 1], "label": (N,) int64}`` of a folder of class
    subfolders, with the class names (the subfolders', sorted) as ``classes["label"]``."""
    options = options or ImageFolderOptions()
    root = Path(directory)
    if not root.is_dir():
        raise DataError(f"image folder {str(root)!r} does not exist (give --data-dir DIR, a folder of class subfolders)")
    if (root / "train").is_dir() and (root / "test").is_dir():
        listings = {"train": _listing(root / "train", "train"), "test": _listing(root / "test", "test")}
        unknown = sorted(set(listings["test"]) - set(listings["train"]))
        if unknown:
            raise DataError(f"image folder {str(root / 'test')!r} has class {unknown[0]!r}, which {str(root / 'train')!r} "
                            "has not: every test class must be a training class")
    else:
        listings = dict(zip(("train", "test"), _split(_listing(root, "train and test"), options)))
    names = sorted(listings["train"])
    index = {name: i for i, name in enumerate(names)}
    splits: dict[str, dict[str, torch.Tensor]] = {}
    digests: dict[str, dict[str, Path]] = {}
    skipped = []
    for split, listing in listings.items():
        files = [f for name in sorted(listing) for f in listing[name]]
        labels = [index[name] for name in sorted(listing) for _ in listing[name]]
        decoded = _read(files, options, f"{split} images")
        bad = [d for d in decoded if d.problem is not None]
        if bad and options.bad_files == "refuse":
            raise DataError(f"{str(bad[0].path)!r} is not a readable image ({bad[0].problem})"
                            + (f", and {len(bad) - 1} more file(s) are not either" if len(bad) > 1 else "")
                            + "; replace or remove it, or skip such files with --data-option bad_files=skip")
        skipped += bad
        kept = [(d, y) for d, y in zip(decoded, labels) if d.problem is None]
        if not kept:
            raise DataError(f"image folder {str(root)!r} has no readable {split} image")
        digests[split] = {d.digest: d.path for d, _ in kept}
        splits[split] = {"image": _stack([d for d, _ in kept], root, options),
                         "label": torch.tensor([y for _, y in kept], dtype=torch.int64)}
    shared = sorted(set(digests["train"]) & set(digests["test"]))
    if shared:
        raise DataError(f"the test image {str(digests['test'][shared[0]])!r} is also a training image "
                        f"({str(digests['train'][shared[0]])!r}), and so are {len(shared) - 1} more; a test split "
                        "must hold images the model never trained on")
    if skipped:
        warnings.warn(f"image folder {str(root)!r}: skipped {len(skipped)} file(s) that are not readable images, "
                      f"e.g. {str(skipped[0].path)!r} ({skipped[0].problem})", stacklevel=2)
    return DataSplits(train=splits["train"], test=splits["test"], classes={"label": names})


def load_image_folder_splits(config: DataConfig) -> DataSplits:
    """Your own images, one subfolder per class (``--data-dir DIR``; ``condgen plugins image-folder``)."""
    if not config.data_dir:
        raise DataError("dataset 'image-folder' needs --data-dir DIR: a folder of class subfolders (DIR/<class>/*.png, "
                        "or DIR/train/<class>/... and DIR/test/<class>/...)")
    return read_image_folder(config.data_dir, ImageFolderOptions.model_validate(config.options))


load_image_folder_splits.options = ImageFolderOptions  # type: ignore[attr-defined]
