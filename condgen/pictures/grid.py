"""A grid of images as a PNG: rows labelled on the left, optionally headed by a picture each.

:func:`save_grid` is exported as ``condgen.save_grid``; the run's own pictures
(:mod:`condgen.pictures.drawing`) and ``condgen sample`` (:mod:`condgen.pictures.samples`) draw with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import torch
from torch import Tensor

from ..common.arguments import whole_number
from ..common.errors import ArgumentError, CondgenError
from ..common.files import write_atomic

#: The most images one picture holds (100 x 100 digits is already 2800 px square).
MAX_GRID_IMAGES = 10_000
#: The most images in one row of a picture (1,000 digits make a row 30,000 px wide).
MAX_GRID_COLUMNS = 1_000
#: Font size of row labels, and the width of one of their characters in inches (DejaVu Sans, generous).
LABEL_FONTSIZE = 9
_CHAR_INCHES = LABEL_FONTSIZE * 0.62 / 72


def is_image_shape(shape: Sequence[int]) -> bool:
    """Whether data of ``shape`` (one item's) are images ``(C, H, W)`` with 1 or 3 channels."""
    return len(shape) == 3 and shape[0] in (1, 3)


def pyplot():
    """matplotlib's pyplot, drawing to files only (it never needs a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, tight: bool = False) -> None:
    """Write a matplotlib figure to ``path`` (in the format its suffix names, PNG where it has none) through an
    atomic write, and close it: a full disk leaves an existing picture whole, and is a FileAccessError."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    if fmt not in fig.canvas.get_supported_filetypes():
        pyplot().close(fig)
        raise ArgumentError(f"cannot write picture {str(path)!r}: {fmt!r} is not a picture format matplotlib writes; "
                            "name a .png file")
    # tight: the saved picture grows to hold any label wider than the room estimated for it
    options = {"bbox_inches": "tight", "pad_inches": 0.03} if tight else {}
    try:
        write_atomic(path, lambda tmp: fig.savefig(str(tmp), format=fmt, **options), what="picture")
    finally:
        pyplot().close(fig)


def with_row_heads(images: Tensor, heads: Tensor) -> Tensor:
    """Rows ``(R * K, C, H, W)`` of K images, each headed by its picture in ``heads`` ``(R, C, H, W)`` and
    a blank: ``(R * (K + 2), C, H, W)``."""
    rows = images.reshape(heads.shape[0], -1, *images.shape[1:])
    blank = torch.ones(heads.shape[0], 1, *images.shape[1:], dtype=images.dtype)
    return torch.cat([heads.to(images.dtype).unsqueeze(1), blank, rows], dim=1).flatten(0, 1)


def grid_image(images: Tensor, per_row: int) -> Tensor:
    """``images`` ``(N, C, H, W)`` as one image ``(3, H', W')`` in [0, 1], ``per_row`` a row, white between them
    (a grey image comes out grey in three channels)."""
    from torchvision.utils import make_grid

    return make_grid(images.detach().float().cpu().clamp(0, 1), nrow=per_row, padding=2, pad_value=1.0)


def save_grid(images: Tensor, path: str | Path, per_row: int, row_labels: Sequence[str] | None = None,
              row_heads: Tensor | None = None) -> None:
    """Write ``images`` ``(N, C, H, W)`` in [0, 1] as a PNG grid of ``per_row`` columns, rows labelled.

    ``row_heads`` ``(N / per_row, C, H, W)``: a picture at the head of each row (what the row's
    images were made from, say), set off from them by a blank. At most :data:`MAX_GRID_COLUMNS`
    images a row and :data:`MAX_GRID_IMAGES` in all.
    """
    if not (isinstance(images, Tensor) and images.dim() == 4 and images.shape[0] >= 1):
        shown = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ArgumentError(f"save_grid: images must be a tensor (N, C, H, W) with N >= 1, got {shown}")
    per_row = whole_number("save_grid: per_row", per_row, minimum=1)
    if per_row > MAX_GRID_COLUMNS:
        raise ArgumentError(f"a picture's rows hold at most {MAX_GRID_COLUMNS:,} images, not {per_row:,}; save them "
                            "as an array (.npy) instead, or draw fewer per row")
    if images.shape[0] > MAX_GRID_IMAGES:
        raise ArgumentError(f"a picture holds at most {MAX_GRID_IMAGES:,} images, not {images.shape[0]:,}; "
                            "save them as an array (.npy) instead, or draw fewer")
    if not isinstance(path, (str, PathLike)) or not str(path).strip():
        raise ArgumentError(f"save_grid: path must name the PNG file to write, got {path!r}")
    if row_labels is not None and (isinstance(row_labels, str) or not all(isinstance(s, str) for s in row_labels)):
        raise ArgumentError(f"save_grid: row_labels must be a list of strings, got {row_labels!r}")
    if row_heads is not None:
        if images.shape[0] != row_heads.shape[0] * per_row or row_heads.shape[1:] != images.shape[1:]:
            raise CondgenError(f"save_grid: {row_heads.shape[0]} row heads of shape {tuple(row_heads.shape[1:])} "
                               f"need {row_heads.shape[0]} x {per_row} images of that shape, got "
                               f"{tuple(images.shape)}")
        images = with_row_heads(images.detach().float().cpu(), row_heads.detach().float().cpu())
        per_row += 2

    grid = grid_image(images, per_row)
    plt = pyplot()
    h, w = grid.shape[1:]
    # room left of the images for the longest row label, so no label is cut off
    label_width = (max(len(s) for s in row_labels) * _CHAR_INCHES + 0.2) if row_labels else 0.0
    width = w / 56 + label_width  # 56 grid pixels an inch: about two screen pixels per image pixel
    fig = plt.figure(figsize=(width, h / 56), dpi=100)
    ax = fig.add_axes((label_width / width, 0, 1 - label_width / width, 1))
    ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    if row_labels:
        cell = images.shape[2] + 2
        ax.set_yticks([2 + cell * i + images.shape[2] / 2 for i in range(len(row_labels))])
        ax.set_yticklabels(row_labels, fontsize=LABEL_FONTSIZE)
        ax.tick_params(length=0)
    else:
        ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    save_figure(fig, path, tight=bool(row_labels))
