"""Attribute functions: a number computed from each image, to condition on or to check samples by.

An attribute function maps images ``(B, C, H, W)`` (or ``(B, H, W)``) in [0, 1] to ``(B,)``
float values. Plugins add them with the ``condgen_register_attributes`` hook; this plugin
registers the two below, for MNIST digits.
"""

from __future__ import annotations

import torch
from torch import Tensor

from condgen import ConditionError

#: Below this much ink an image counts as blank: its slant is 0.
BLANK_MASS = 1e-6


def _grey(images: Tensor) -> Tensor:
    """``(B, H, W)``: the images averaged over their channels."""
    if images.dim() == 4:
        return images.float().mean(1)
    if images.dim() == 3:
        return images.float()
    raise ConditionError(f"an attribute function needs images (B, C, H, W) or (B, H, W), got shape "
                         f"{tuple(images.shape)}; set the regression conditioner's image_field to an image field")


def ink(images: Tensor) -> Tensor:
    """The mean pixel value of each image ``(B,)``: how much ink, from 0 (blank) to 1 (all white)."""
    return _grey(images).mean((1, 2))


def slant(images: Tensor) -> Tensor:
    """Each image's shear ``(B,)``: mu11 / mu02 of its central second moments, weighted by the pixels.

    ``mu11 = sum (col - c_col)(row - c_row) x`` and ``mu02 = sum (row - c_row)^2 x``, with the
    centroid (c_row, c_col) weighted by x and rows counted downwards. An upright stroke has slant
    0; a stroke whose top leans right (col grows as row falls) has a negative slant. Blank: 0.
    """
    x = _grey(images)
    _, h, w = x.shape
    rows = torch.arange(h, dtype=x.dtype, device=x.device).view(1, h, 1)
    cols = torch.arange(w, dtype=x.dtype, device=x.device).view(1, 1, w)
    mass = x.sum((1, 2))
    safe = mass.clamp_min(BLANK_MASS)
    dr = rows - ((x * rows).sum((1, 2)) / safe).view(-1, 1, 1)
    dc = cols - ((x * cols).sum((1, 2)) / safe).view(-1, 1, 1)
    mu11 = (dc * dr * x).sum((1, 2))
    mu02 = (dr * dr * x).sum((1, 2))
    return torch.where((mass > BLANK_MASS) & (mu02 > BLANK_MASS), mu11 / mu02.clamp_min(BLANK_MASS),
                       torch.zeros_like(mass))


#: What this plugin registers.
ATTRIBUTES = {"ink": ink, "slant": slant}
