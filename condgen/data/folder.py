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

import contextlib
import hashlib
import io
import math
import multiprocessing
import os
import signal
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Optional

import numpy as np
import torch
from pydantic import Field, field_validator, model_validator
from tqdm.auto import tqdm

from ..common.errors import DataError
from ..common.files import access_error
from ..common.memory import available_bytes
from .attributes import Attributes
from .cache import CacheEntry, digest
from .config import DatasetOptions
from .splits import DataSplits
from .stored import StoredArray

if TYPE_CHECKING:
    from .config import DataConfig

#: The file endings read as images (any case).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
#: Pillow's modes of greyscale images; every other mode is read as colour.
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
#: The largest side an image may be resized to.
MAX_SIDE = 4096
#: A split of at least this many files is decoded in worker processes, in chunks of CHUNK_FILES.
PROCESS_FILES = 1024
CHUNK_FILES = 256
#: The most decoded pixels waiting to be written at a time.
IN_FLIGHT_BYTES = 256 * 2**20


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
    missing: Literal["refuse", "absent"] = Field(
        "refuse", description="an empty cell of the attributes CSV: refuse the folder (naming the row and column), "
        "or take it as that item's condition absent (its conditioner must be trained with condition dropout)")
    attribute_types: dict[str, Literal["number", "category"]] = Field(
        default_factory=dict, description="a CSV column's type, where it is not what its values say (a column of "
        "numbers is numbers, any other a category)")

    background: Literal["white", "black"] = Field(
        "white", description="the colour transparent pixels (PNG, WebP, TIFF with alpha) are laid over")
    cache: bool = Field(
        True, description="decode the folder once into a cache (in ${XDG_CACHE_HOME:-~/.cache}/condgen/, or "
        "$CONDGEN_CACHE_DIR) that later runs read without decoding again; false: decode every run, into memory")
    keep: Literal["auto", "memory", "disk"] = Field(
        "auto", description="where training reads the images from: memory (fastest), or disk (the cache, read a "
        "batch at a time: for data bigger than memory); auto: memory where the images take at most a quarter of "
        "the memory available")

    @model_validator(mode="after")
    def _disk_needs_the_cache(self) -> "ImageFolderOptions":
        if self.keep == "disk" and not self.cache:
            raise ValueError("keep=disk reads the images from the cache, which cache=false turns off: use one of "
                             "them")
        return self

    @field_validator("size")
    @classmethod
    def _two_sides(cls, v: Optional[list[int]]) -> Optional[list[int]]:
        if v is not None and (len(v) != 2 or any(not 1 <= s <= MAX_SIDE for s in v)):
            raise ValueError(f"size must be [H, W], two whole numbers from 1 to {MAX_SIDE}, got {v}")
        return v


def _images_in(folder: Path) -> list[str]:
    """The image files of ``folder``, as paths (``str``: a folder may hold 100,000s, and ``pathlib`` takes
    microseconds a path), sorted by name."""
    try:
        with os.scandir(folder) as entries:  # the file types come with the listing: no stat a file
            return sorted(e.path for e in entries if not e.name.startswith(".")
                          and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES and e.is_file())
    except OSError as exc:
        raise access_error("image folder", folder, exc) from None


def _class_folders(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        raise access_error("image folder", folder, exc) from None


def _listing(folder: Path, what: str, flat: bool = False) -> dict[str, list[str]]:
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
    """What is kept of one image file read: Pillow's mode, a digest of its bytes, its size ``(C, H, W)`` as
    made, or the problem that kept it from being read."""

    __slots__ = ("path", "mode", "digest", "shape", "problem")

    def __init__(self, path: str, mode: str, digest: str, shape: tuple[int, ...] | None, problem: str | None) -> None:
        self.path, self.mode, self.digest, self.shape, self.problem = path, mode, digest, shape, problem


def _decode(path: str, options: ImageFolderOptions) -> tuple[_Decoded, np.ndarray | None]:
    """The file read and its pixels ``(C, H, W)`` uint8 (None where it is not a readable image)."""
    from PIL import Image, ImageOps

    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise access_error("image", path, exc) from None
    digest = hashlib.sha1(raw).hexdigest()
    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.load()  # decodes now: a file cut short fails here, not later
            mode = img.mode
            img = ImageOps.exif_transpose(img)  # a phone's photo the way up it was taken
            img = _over_background(img, options.background)
            want = {"grey": "L", "rgb": "RGB"}.get(options.mode) or ("L" if mode in _GREY_MODES else "RGB")
            img = _eight_bit(img).convert(want)
    except Image.DecompressionBombError as exc:
        return _Decoded(path, "", digest, None, f"{exc} (Pillow's limit on pixels: a bigger image may be a "
                                               "decompression bomb)"), None
    except Exception as exc:  # Pillow's errors for a bad file are of many types: each is that file's problem
        return _Decoded(path, "", digest, None, f"{type(exc).__name__}: {exc}"), None
    img = _fit(img, options, path)
    pixels = np.ascontiguousarray(np.asarray(img, dtype=np.uint8).reshape(img.height, img.width, -1).transpose(2, 0, 1))
    return _Decoded(path, mode, digest, pixels.shape, None), pixels


def _over_background(img, background: str):
    """``img`` with its transparent pixels laid over ``background``: dropping the alpha channel (Pillow's
    ``convert``) would show whatever colour the transparent pixels happen to hold."""
    from PIL import Image

    if img.mode not in ("RGBA", "LA", "PA", "RGBa", "La") and not (img.mode in ("P", "L", "RGB")
                                                                     and "transparency" in img.info):
        return img
    rgba = img.convert("RGBA")
    level = 255 if background == "white" else 0
    flat = Image.alpha_composite(Image.new("RGBA", rgba.size, (level, level, level, 255)), rgba)
    grey = img.mode in ("LA", "La", "L") or (img.mode == "P" and img.palette and img.palette.mode == "L")
    return flat.convert("L" if grey else "RGB")


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


def _fit(img, options: ImageFolderOptions, path: str):
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


def _decode_chunk(paths: Sequence[str], options: ImageFolderOptions) -> list[tuple[_Decoded, np.ndarray | None]]:
    return [_decode(p, options) for p in paths]


def _ignore_interrupts() -> None:
    """A decoding worker's start: Ctrl-C is the parent's to handle (one message, not one per worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _decoded(files: Sequence[str], options: ImageFolderOptions, what: str) -> Iterator[tuple[_Decoded, np.ndarray | None]]:
    """Every file decoded, in order, on the available cores, with a bar. At most :data:`IN_FLIGHT_BYTES` of
    decoded pixels are ahead of the reader (chunks are sized from the first images' size), so a folder of
    any size, and of images of any size, takes a bounded memory.

    A folder of :data:`PROCESS_FILES` files or more is decoded in worker processes (forked: Pillow holds the
    GIL for part of each image, so threads reach 1.2x on two cores and processes 1.75x); a smaller one in
    threads, where starting processes would cost more than they save."""
    workers = max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8))
    forked = workers > 1 and len(files) >= PROCESS_FILES and "fork" in multiprocessing.get_all_start_methods()
    pool = (ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_ignore_interrupts)
            if forked else ThreadPoolExecutor(workers))
    size = [4]  # files a chunk: 4 until the first chunk tells the images' size
    queued = iter(files)
    ahead: deque = deque()

    def submit() -> bool:
        chunk = list(islice(queued, size[0]))
        if chunk:
            ahead.append(pool.submit(_decode_chunk, chunk, options))
        return bool(chunk)

    try:
        with tqdm(total=len(files), desc=f"decoding {what}", unit="image", leave=False, disable=None) as bar:
            submit()
            while ahead:
                try:
                    items = ahead.popleft().result()
                except BrokenProcessPool:
                    raise DataError(f"a process decoding the {what} died (out of memory, or a crash in Pillow on "
                                    "one of the files); try again, or decode in one process with fewer at a "
                                    "time by setting a smaller --data-option 'size=[H,W]'") from None
                pixels = max((p.nbytes for _, p in items if p is not None), default=0)
                if pixels:  # as many files a chunk as fill a share of the budget, up to CHUNK_FILES
                    size[0] = max(1, min(CHUNK_FILES if forked else 16, IN_FLIGHT_BYTES // (4 * workers * pixels)))
                while len(ahead) < 2 * workers and submit():
                    pass
                bar.update(len(items))
                yield from items
    finally:  # done, an error, or Ctrl-C: the files still queued are not read first
        pool.shutdown(wait=True, cancel_futures=True)


class _MemoryRows:
    """Rows collected in memory, as the cache's writer would write them to a file."""

    def __init__(self, most: int) -> None:
        self.most, self.count, self.rows = most, 0, None

    def write(self, data: np.ndarray) -> None:
        if self.rows is None:
            self.rows = np.empty((self.most, data.nbytes), dtype=np.uint8)
        self.rows[self.count] = data.reshape(-1)
        self.count += 1


def _decode_split(files: Sequence[str], options: ImageFolderOptions, what: str, rows, root: Path
                  ) -> tuple[list[_Decoded], tuple[int, ...] | None]:
    """``files`` decoded, each readable image's pixels written to ``rows`` (one row each, in order), those of
    another size than the first not (the size check refuses them); and that size, ``(C, H, W)`` (None where
    no file is readable)."""
    read, first = [], None
    # closed on any way out, an error in this loop too: its workers stop now, not when a traceback is freed
    with contextlib.closing(_decoded(files, options, what)) as decoded:
        for info, pixels in decoded:
            read.append(info)
            if pixels is not None:
                first = first or info.shape
                if info.shape == first:
                    rows.write(pixels)
    _check_alike([d for d in read if d.problem is None], root, options)
    return read, first


def _split_images(root: Path, split: str, files: Sequence[str], options: ImageFolderOptions
                  ) -> tuple[list[_Decoded], StoredArray | torch.Tensor | None]:
    """``split``'s files read, and the readable ones' pixels, ``(N, C, H, W)`` uint8 with row ``k`` the
    ``k``-th readable file's: from the cache where it holds them (else decoded into it first), or, without
    the cache, decoded into memory. None where no file is readable."""
    what = f"{split} images"
    if not options.cache:
        rows = _MemoryRows(len(files))
        read, shape = _decode_split(files, options, what, rows, root)
        return read, (None if shape is None else torch.from_numpy(rows.rows[: rows.count]).view(-1, *shape))
    # the split's options too: runs that split one folder two ways keep an entry each, not rebuild each other's
    entry = CacheEntry("image-folder", digest({"folder": str(root.resolve()), "size": options.size,
                                              "method": options.method, "mode": options.mode,
                                              "background": options.background,
                                              "split": [options.test_fraction, options.split_seed]}))
    relative = _relative(root, files)
    try:
        key = digest([[r, st.st_size, st.st_mtime_ns] for f, r in zip(files, relative) for st in (os.stat(f),)])
    except OSError as exc:
        raise access_error("image", getattr(exc, "filename", root), exc) from None
    with entry.locked():
        meta = entry.open_split(split, key)
        if meta is not None and not _describes(meta, len(files)):
            warnings.warn(f"the data cache {str(entry.path)!r} ({split}) is damaged: its description does not "
                          "describe its files; building it again", stacklevel=2)
            meta = None
        if meta is None:
            writer = entry.writer(split)
            try:
                read, shape = _decode_split(files, options, what, writer, root)
                meta = writer.commit(key, {"shape": shape, "files": [
                    [r, d.mode, d.digest, d.problem] for r, d in zip(relative, read)]})
            except BaseException:
                writer.abandon()
                raise
        # the key names the files in order: the description's k-th file is files[k]
        read = [_Decoded(f, mode, dig, None if problem else tuple(meta["shape"]), problem)
                for f, (_, mode, dig, problem) in zip(files, meta["files"])]
        if meta["shape"] is None:
            return read, None
        # opened while the lock is held: the file checked is the file read, whatever a later rebuild does
        return read, StoredArray(entry.rows_path(split), tuple(meta["shape"]))


def _describes(meta: dict, count: int) -> bool:
    """Whether a cache entry's description (checked against its key and rows) holds what reading it needs: a
    record of each of the ``count`` files, and the shape of the rows of the readable ones."""
    files, shape = meta.get("files"), meta.get("shape")
    if not (isinstance(files, list) and len(files) == count and all(isinstance(f, list) and len(f) == 4 for f in files)):
        return False
    readable = sum(f[3] is None for f in files)
    if shape is None:
        return readable == 0
    return (isinstance(shape, list) and len(shape) == 3 and all(isinstance(n, int) and n > 0 for n in shape)
            and meta.get("bytes") == readable * math.prod(shape))


def _check_alike(decoded: list[_Decoded], folder: Path, options: ImageFolderOptions) -> None:
    """DataError unless the images (of both splits) have one mode (in ``auto``) and one size."""
    if options.mode == "auto":
        grey = [d for d in decoded if d.mode in _GREY_MODES]
        colour = [d for d in decoded if d.mode not in _GREY_MODES]
        if grey and colour:
            raise DataError(f"image folder {str(folder)!r} mixes greyscale and colour images ({_name(grey[0].path)} is "
                            f"{grey[0].mode}, {_name(colour[0].path)} is {colour[0].mode}); choose one with "
                            "--data-option mode=grey or mode=rgb")
    if not decoded:
        return
    first = decoded[0]
    other = next((d for d in decoded if d.shape != first.shape), None)
    if other is not None:
        raise DataError(f"image folder {str(folder)!r} holds images of several sizes ({_name(first.path)} is "
                        f"{first.shape[1]}x{first.shape[2]}, {_name(other.path)} {other.shape[1]}x{other.shape[2]}); "
                        "make them one with --data-option 'size=[H,W]'")


def _name(path: str) -> str:
    return os.path.basename(path)


def _relative(root: Path, files: Sequence[str]) -> list[str]:
    """Each of ``files`` (paths under ``root``, as :func:`_listing` gives them) as its path under ``root``, with
    ``/`` between folders whatever the system: ``train/cat/1.png``."""
    cut = len(os.path.join(str(root), ""))
    return [f[cut:].replace(os.sep, "/") for f in files]


def _in_memory(options: ImageFolderOptions, size: int) -> bool:
    """Whether images of ``size`` bytes are held in memory (``keep``; ``auto``: where they take at most a quarter
    of the memory available) rather than read from the cache a batch at a time."""
    if options.keep != "auto":
        return options.keep == "memory"
    available = available_bytes()
    return available is None or size <= available // 4


def _held_out(seed: int, name: str, relative: str) -> float:
    """A number in [0, 1) that is the file's own: from the seed, its class and its path, so adding or removing
    other files (or classes) moves no file between train and test."""
    digest = hashlib.sha256(f"{seed}\0{name}\0{relative}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _split(listing: dict[str, list[str]], options: ImageFolderOptions, root: Path) -> tuple[dict, dict]:
    """The files of each class whose own number (:func:`_held_out`) is below ``test_fraction`` are the test
    split: ``(train, test)`` listings, each class in both (at least one file each)."""
    train, test = {}, {}
    for name, files in listing.items():
        if len(files) < 2:
            raise DataError(f"class {name or 'of the folder'!r} has {len(files)} image(s): a split into train and test "
                            "needs at least 2 per class (or lay the folder out as train/ and test/)")
        own = {f: _held_out(options.split_seed, name, r) for f, r in zip(files, _relative(root, files))}
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
    decoded: dict[str, list[tuple[_Decoded, int]]] = {}  # each split's readable files: k-th is pixel row k
    pixels: dict[str, StoredArray | torch.Tensor] = {}
    skipped = []
    for split, listing in listings.items():
        files = [(f, index[name]) for name in names if name in listing for f in listing[name]]
        read, images = _split_images(root, split, [f for f, _ in files], options)
        bad = [d for d in read if d.problem is not None]
        if bad and options.bad_files == "refuse":
            raise DataError(f"{str(bad[0].path)!r} is not a readable image ({bad[0].problem})"
                            + (f", and {len(bad) - 1} more file(s) are not either" if len(bad) > 1 else "")
                            + "; replace or remove it, or skip such files with --data-option bad_files=skip")
        skipped += bad
        decoded[split] = [(d, y) for d, (_, y) in zip(read, files) if d.problem is None]
        if images is None:
            raise DataError(f"image folder {str(root)!r} has no readable {split} image ({len(bad)} skipped as not "
                            "readable); add some")
        pixels[split] = images
    _check_alike([d for items in decoded.values() for d, _ in items], root, options)  # both splits: one model
    train_digests = {d.digest: d.path for d, _ in decoded["train"]}
    shared = [(d.path, train_digests[d.digest]) for d, _ in decoded["test"] if d.digest in train_digests]
    if shared:
        raise DataError(f"the test image {str(shared[0][0])!r} is also a training image ({str(shared[0][1])!r})"
                        + (f", and {len(shared) - 1} more test images are too" if len(shared) > 1 else "")
                        + "; a test split must hold images the model never trained on: remove one of each copy")
    in_memory = _in_memory(options, sum(p.numel() for p in pixels.values()))
    splits: dict[str, dict[str, torch.Tensor]] = {}
    kept_paths: dict[str, list[str]] = {}
    gen = torch.Generator().manual_seed(options.split_seed)
    for split, items in decoded.items():
        order = torch.randperm(len(items), generator=gen)  # classes mixed
        images = pixels[split]
        if isinstance(images, StoredArray):
            images = images.select(order.numpy())
            splits[split] = {"image": images[:] if in_memory else images}
        else:
            splits[split] = {"image": images[order]}
        items = [items[i] for i in order.tolist()]
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
                    kept: dict[str, list[str]], skipped: list[str]) -> dict[str, list[str]]:
    """Each CSV column as a field of both splits (in place); the class names of its category columns."""
    csv_path = Path(options.attributes)
    table = Attributes(csv_path if csv_path.is_absolute() else root / csv_path, options.file_column,
                       options.attribute_types, reserved=("image", "label"), missing=options.missing)
    every = [p for paths in kept.values() for p in paths] + skipped
    by_path = dict(zip(_relative(root, every), every))
    by_name: dict[str, list[str]] = {}
    for p in every:
        by_name.setdefault(_name(p), []).append(p)
    named: dict[str, str] = {}  # image -> the CSV's name of it
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
