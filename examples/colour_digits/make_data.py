"""Colour digits: real MNIST digits at 32x32, in a random colour on a random background colour.

Each MNIST digit (28x28, padded by 2 pixels a side to 32x32: MNIST centres its digits in a 20x20 box, so
the padding is background and cropping it off gives the digit back exactly) is drawn as

    pixel = (1 - g) * background + g * foreground,      g = the digit's grey level in [0, 1],

rounded to 8-bit levels. The two colours are HSV colours:

- foreground: hue ``fg_hue`` uniform on [0, 0.8), saturation 1, value 1 (a pure, bright colour);
- background: hue ``bg_hue`` uniform on [0, 0.8) but at least 0.25 from ``fg_hue`` around the hue circle
  (rejection sampling), saturation 0.8, value 0.45 (a darker, still clearly coloured one).

Hue lives on a circle (0 and 1 are the same red). Both hues are kept to [0, 0.8), red through yellow,
green, cyan and blue to violet, so a hue is an ordinary number there: the regression targets ``fg_hue``
and ``bg_hue`` have no wrap-around jump, and the Pearson correlation of requested against measured hue is
well defined. A measured hue is read on the circle and put back on the line by :func:`linear_hue`, the
unused arc [0.8, 1) cut at its middle (a hue just below 1 is a red a little past 0, so negative).

:func:`measure` reads both colours back from an image (a sample's too) and the digit's grey level;
:func:`make_npz` writes the ``npz`` data set ``condgen train --dataset npz`` reads::

    python examples/colour_digits/make_data.py --data-dir DIR [--out FILE.npz] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

import condgen

#: Hues are drawn from [0, HUE_RANGE): the rest of the circle is left out, so hue needs no wrap-around.
HUE_RANGE = 0.8
#: The least distance around the hue circle between the digit's and the background's hue.
MIN_HUE_GAP = 0.25
FG_SATURATION, FG_VALUE = 1.0, 1.0
BG_SATURATION, BG_VALUE = 0.8, 0.45
#: MNIST's 28x28 padded by PAD pixels a side to SIZE x SIZE.
MNIST_SIDE, PAD = 28, 2
SIZE = MNIST_SIDE + 2 * PAD
#: The frame of this many pixels round the image is read as background (MNIST leaves at least 4 blank a side).
BORDER = 3
#: The digit's colour is the mean of the pixels at least this share of the farthest pixel's distance from
#: the background colour (the stroke's core, where MNIST's grey level is 1 or nearly).
INK_SHARE = 0.8
#: Bump when the data change, so a cached file of the old recipe is not read as the new one.
VERSION = 1
TARGETS = ("fg_hue", "bg_hue")


def hsv_to_rgb(h: Tensor, s: float | Tensor, v: float | Tensor) -> Tensor:
    """HSV (each ``(...)``, in [0, 1]; hue in turns) -> RGB ``(..., 3)`` in [0, 1]."""
    h, s, v = torch.broadcast_tensors(torch.as_tensor(h, dtype=torch.float32),
                                      torch.as_tensor(s, dtype=torch.float32), torch.as_tensor(v, dtype=torch.float32))
    # the standard formula: channel n's value is v - v s max(0, min(k, 4 - k, 1)), k = (n + 6 h) mod 6
    k = (torch.tensor([5.0, 3.0, 1.0]) + 6 * h.unsqueeze(-1)) % 6
    return v.unsqueeze(-1) * (1 - s.unsqueeze(-1) * torch.clamp(torch.minimum(k, 4 - k), 0, 1))


def rgb_to_hue(rgb: Tensor) -> Tensor:
    """RGB ``(..., 3)`` -> hue ``(...)`` in [0, 1) turns (0 for a grey, which has none)."""
    r, g, b = rgb.float().unbind(-1)
    top, bottom = rgb.float().max(-1).values, rgb.float().min(-1).values
    chroma = (top - bottom).clamp_min(1e-8)
    sextant = torch.where(top == r, ((g - b) / chroma) % 6,
                          torch.where(top == g, (b - r) / chroma + 2, (r - g) / chroma + 4))
    return torch.where(top - bottom > 1e-8, sextant / 6, torch.zeros_like(r)) % 1.0


def hue_gap(a: Tensor, b: Tensor) -> Tensor:
    """The distance between hues ``a`` and ``b`` around the circle, in [0, 0.5]."""
    d = (a - b).abs() % 1.0
    return torch.minimum(d, 1 - d)


def linear_hue(h: Tensor) -> Tensor:
    """A hue read on the circle, [0, 1), as a number on the line of the data's hues [0, HUE_RANGE): the unused
    arc is cut at its middle, so a hue in [HUE_RANGE + (1 - HUE_RANGE) / 2, 1) becomes negative."""
    cut = HUE_RANGE + (1 - HUE_RANGE) / 2
    return torch.where(h >= cut, h - 1, h)


def draw_hues(n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``n`` (digit hue, background hue) pairs ``(n,)`` each: both uniform on [0, HUE_RANGE), the background's
    redrawn until it is at least MIN_HUE_GAP from the digit's."""
    fg = torch.rand(n, generator=generator) * HUE_RANGE
    bg = torch.rand(n, generator=generator) * HUE_RANGE
    close = hue_gap(fg, bg) < MIN_HUE_GAP
    while close.any():
        bg[close] = torch.rand(int(close.sum()), generator=generator) * HUE_RANGE
        close = hue_gap(fg, bg) < MIN_HUE_GAP
    return fg, bg


def colours(fg_hue: Tensor, bg_hue: Tensor) -> tuple[Tensor, Tensor]:
    """The digit's and the background's RGB colours ``(N, 3)`` for hues ``(N,)``."""
    return hsv_to_rgb(fg_hue, FG_SATURATION, FG_VALUE), hsv_to_rgb(bg_hue, BG_SATURATION, BG_VALUE)


def colour_digits(grey: Tensor, fg_hue: Tensor, bg_hue: Tensor) -> Tensor:
    """Digits ``(N, 28, 28)`` (uint8 levels, or floats in [0, 1]) and hues ``(N,)`` -> ``(N, 3, 32, 32)`` uint8."""
    g = grey.float() / 255 if grey.dtype == torch.uint8 else grey.float()
    g = torch.nn.functional.pad(g, (PAD, PAD, PAD, PAD)).unsqueeze(1)  # (N, 1, 32, 32)
    fg, bg = colours(fg_hue, bg_hue)
    x = (1 - g) * bg[:, :, None, None] + g * fg[:, :, None, None]
    return (x * 255).round().clamp(0, 255).to(torch.uint8)


def measure(images: Tensor) -> dict[str, Tensor]:
    """Read the colours and the digit back from images ``(N, 3, 32, 32)`` (uint8 levels or floats in [0, 1]).

    - background colour ``bg_rgb`` ``(N, 3)``: the per-channel median of the BORDER-pixel frame;
    - the stroke's core colour ``fg_core_rgb``: the mean of the pixels whose distance from the background colour
      is at least INK_SHARE of the farthest pixel's;
    - digit colour ``fg_rgb``: where the ray from the background colour through the core colour leaves the RGB
      cube. The data's digit colours lie on the cube's surface (saturation and value 1) and every pixel is a
      blend of the two colours, so this is the digit colour even where the core is a blend (a faint or blurred
      stroke); for the data it is the digit's colour exactly, 8-bit rounding apart;
    - ``fg_hue``, ``bg_hue``, ``fg_core_hue`` ``(N,)``: their hues on the line of the data's hues
      (:func:`linear_hue`);
    - ``grey`` ``(N, 1, 28, 28)`` in [0, 1]: each pixel's share of the way from the background colour to the
      digit colour (its projection on that segment, clipped), the padding cropped off: the digit as MNIST
      draws it, for the MNIST classifier.
    """
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    n = x.shape[0]
    frame = torch.ones(x.shape[-2:], dtype=torch.bool)
    frame[BORDER:-BORDER, BORDER:-BORDER] = False
    bg = x[:, :, frame].median(dim=2).values  # (N, 3)
    offset = x - bg[:, :, None, None]
    distance = offset.norm(dim=1).flatten(1)  # (N, H*W)
    core = distance >= INK_SHARE * distance.max(1, keepdim=True).values
    flat = x.flatten(2)  # (N, 3, H*W)
    fg = (flat * core[:, None]).sum(2) / core.sum(1, keepdim=True).clamp_min(1)
    direction = fg - bg
    # the digit's colour has a channel at 1 and one at 0 (saturation and value 1): on the RGB cube's surface. A
    # stroke pixel is a blend bg + g (fg - bg), so the ray from the background colour through the core's mean
    # leaves the cube at the digit's colour, however much of the background the core's pixels hold
    step = torch.where(direction > 1e-6, (1 - bg) / direction.clamp_min(1e-6),
                       torch.where(direction < -1e-6, -bg / direction.clamp_max(-1e-6), torch.full_like(bg, math.inf)))
    edge = (bg + step.min(1, keepdim=True).values.clamp(1, 1e3) * direction).clamp(0, 1)
    share = (offset * direction[:, :, None, None]).sum(1) / direction.pow(2).sum(1).clamp_min(1e-6)[:, None, None]
    grey = share.clamp(0, 1)[:, PAD:PAD + MNIST_SIDE, PAD:PAD + MNIST_SIDE].reshape(n, 1, MNIST_SIDE, MNIST_SIDE)
    return {"fg_rgb": edge, "fg_core_rgb": fg, "bg_rgb": bg, "fg_hue": linear_hue(rgb_to_hue(edge)),
            "fg_core_hue": linear_hue(rgb_to_hue(fg)), "bg_hue": linear_hue(rgb_to_hue(bg)), "grey": grey}


def make_split(grey: Tensor, label: Tensor, generator: torch.Generator) -> dict[str, np.ndarray]:
    """One split's fields: ``image`` ``(N, 3, 32, 32)`` uint8, ``label`` ``(N,)`` int64, the hues float32."""
    fg_hue, bg_hue = draw_hues(grey.shape[0], generator)
    return {"image": colour_digits(grey, fg_hue, bg_hue).numpy(), "label": label.long().numpy(),
            "fg_hue": fg_hue.numpy().astype(np.float32), "bg_hue": bg_hue.numpy().astype(np.float32)}


def save_npz(splits: dict[str, dict[str, np.ndarray]], path: str | Path) -> Path:
    """Write ``{"train": fields, "test": fields}`` as ``train_<field>`` and ``test_<field>`` arrays (the ``npz``
    data set's layout), through a temporary file so a half-written file is never read."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **{f"{split}_{k}": v for split, fields in splits.items() for k, v in fields.items()})
    tmp.replace(path)
    return path


def default_path(seed: int = 0) -> Path:
    """Where the data set is kept unless told otherwise: in condgen's cache, never in the repository."""
    from condgen.data.cache import cache_root

    return cache_root() / "colour_digits" / f"colour-digits-v{VERSION}-seed{seed}.npz"


def make_npz(data_dir: str | Path | None, path: str | Path | None = None, seed: int = 0) -> Path:
    """The colour-digit data set from the MNIST files in ``data_dir`` (default ``$CONDGEN_DATA_DIR``), written to
    ``path`` (default :func:`default_path`) unless it is there already; returns its path."""
    path = Path(path) if path else default_path(seed)
    if path.is_file():
        return path
    directory = condgen.find_data_dir(data_dir, ["$CONDGEN_DATA_DIR"], name="MNIST")
    mnist = condgen.read_idx_dir(directory, name="MNIST", num_classes=10, levels=True)
    gen = torch.Generator().manual_seed(seed)
    splits = {name: make_split(fields["image"][:, 0], fields["label"], gen)
              for name, fields in (("train", mnist.train), ("test", mnist.test))}
    return save_npz(splits, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("CONDGEN_DATA_DIR"), help="the four MNIST files")
    parser.add_argument("--out", default=None, help=f"the .npz to write (default {default_path()})")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(make_npz(args.data_dir, args.out, args.seed))


if __name__ == "__main__":
    main()
