"""Convolutional encoder and decoder for images ``(C, H, W)``, any size, square or not.

The encoder has one stage per entry of ``channels``, each a 3x3 convolution with stride 2 that halves the
resolution, then the ``hidden`` dense layers to the posterior's ``2L`` numbers. The decoder mirrors it:
dense layers from ``[z, e]`` to the last stage's maps, one 4x4 transposed convolution with stride 2 per
stage back up, and a 3x3 convolution to ``PARAMS * C`` maps (the likelihood's parameters per element).

A flat embedding ``e`` ``(B, E)`` is broadcast over the image as ``E`` constant maps and concatenated at the
encoder's input and at the decoder's first stage. An image whose sides the stages cannot halve evenly is
padded (zeros, at the bottom and the right) to the next multiple of ``2 ** stages`` inside the encoder, and
the decoder's output is cropped back, so samples have the data's shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .networks import ACTIVATIONS, mlp


def padded_side(side: int, stages: int) -> int:
    """``side`` rounded up to a multiple of ``2 ** stages``."""
    factor = 2 ** stages
    return math.ceil(side / factor) * factor


def _with_maps(h: Tensor, e: Tensor) -> Tensor:
    """``h`` ``(N, C, H, W)`` with ``e`` ``(N, E)`` as ``E`` more constant maps."""
    if e.shape[-1] == 0:
        return h
    return torch.cat([h, e[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])], dim=1)


class ConvEncoder(nn.Module):
    """``(x (B, C, H, W), e (B, E))`` -> ``(B, 2L)``: the posterior's means, then its log-variances."""

    def __init__(self, data_shape: Sequence[int], e_dim: int, channels: Sequence[int], hidden: Sequence[int],
                 out_dim: int, activation: str) -> None:
        super().__init__()
        c, h, w = data_shape
        stages = len(channels)
        self.padded = (padded_side(h, stages), padded_side(w, stages))
        layers: list[nn.Module] = []
        in_ch = c + e_dim
        for ch in channels:
            layers += [nn.Conv2d(in_ch, ch, 3, stride=2, padding=1), ACTIVATIONS[activation]()]
            in_ch = ch
        self.stages = nn.Sequential(*layers)
        flat = in_ch * (self.padded[0] >> stages) * (self.padded[1] >> stages)
        self.head = mlp(flat, hidden, out_dim, activation)

    def forward(self, x: Tensor, e: Tensor) -> Tensor:
        ph, pw = self.padded
        x = F.pad(x, (0, pw - x.shape[3], 0, ph - x.shape[2]))
        return self.head(self.stages(_with_maps(x, e)).flatten(1))


class ConvDecoder(nn.Module):
    """``(z (..., B, L), e (B, E))`` -> the likelihood's parameters ``(..., B, PARAMS * D)``, parameter by
    parameter (all ``D`` of the first, then the second's), as the likelihoods read them."""

    def __init__(self, data_shape: Sequence[int], in_dim: int, e_dim: int, channels: Sequence[int],
                 hidden: Sequence[int], params: int, activation: str) -> None:
        super().__init__()
        c, h, w = data_shape
        stages = len(channels)
        self.data_shape, self.params = (c, h, w), params
        self.start = (channels[-1], padded_side(h, stages) >> stages, padded_side(w, stages) >> stages)
        self.head = nn.Sequential(mlp(in_dim, hidden, math.prod(self.start), activation), ACTIVATIONS[activation]())
        layers: list[nn.Module] = []
        in_ch = channels[-1] + e_dim
        for ch in list(reversed(channels))[1:] + [channels[0]]:
            layers += [nn.ConvTranspose2d(in_ch, ch, 4, stride=2, padding=1), ACTIVATIONS[activation]()]
            in_ch = ch
        layers.append(nn.Conv2d(in_ch, params * c, 3, padding=1))
        self.stages = nn.Sequential(*layers)
        # the widest maps of a row: the full-size stage's channels, before the last convolution
        self.widest_maps = max(channels[0], params * c) * padded_side(h, stages) * padded_side(w, stages)

    def forward(self, z: Tensor, e: Tensor) -> Tensor:
        if z.dim() > e.dim():
            e = e.expand(*z.shape[:-1], e.shape[-1])
        lead = z.shape[:-1]
        n = math.prod(lead)  # not -1: z or e may be empty (no latent, no conditioner)
        zf, ef = z.reshape(n, z.shape[-1]), e.reshape(n, e.shape[-1])
        maps = self.head(torch.cat([zf, ef], dim=1)).view(n, *self.start)
        out = self.stages(_with_maps(maps, ef))
        c, h, w = self.data_shape
        out = out[:, :, :h, :w].reshape(n, self.params, c * h * w)  # cropped back to the data's size
        return out.reshape(*lead, self.params * c * h * w)
