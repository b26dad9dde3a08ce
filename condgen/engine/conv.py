"""Convolutional encoder and decoder for images ``(C, H, W)``, any size, square or not (``model.arch: conv``).

The encoder has one stage per entry of ``channels``, each a 3x3 convolution with stride 2 that halves the
resolution, then the ``hidden`` dense layers to the posterior's ``2L`` numbers. The decoder mirrors it:
dense layers from ``[z, flat embeddings]`` to the last stage's maps, one 4x4 transposed convolution with
stride 2 per stage back up, and a 3x3 convolution to ``P * C`` maps (the likelihood's parameters per element).

Conditions come in two forms (:class:`~condgen.engine.architecture.EmbeddingLayout`). The flat embeddings
``(N, E)`` are broadcast over the image as ``E`` constant maps and concatenated at the encoder's input and at
the decoder's first stage, and they scale and shift every upsampling stage's maps (FiLM). The spatial ones
``(N, E_i, H_i, W_i)`` are resized to the image's size where theirs differs, then averaged down to each stage's
resolution and concatenated as channels at the input of every convolution of both networks, so the observed
pixels of an inpainting condition reach the decoder's last layer.

An image whose sides the stages cannot halve evenly is padded (zeros, at the bottom and the right) to the next
multiple of ``2 ** stages`` inside the networks (its spatial embeddings too), and the decoder's output is
cropped back, so samples have the data's shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .architecture import Architecture, NetworkShapes
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


class _Pyramid:
    """The spatial embeddings of a batch, concatenated, at the padded image's resolution and each stage's below."""

    def __init__(self, maps: list[Tensor], size: tuple[int, int], padded: tuple[int, int], stages: int,
                 memory_format: torch.memory_format = torch.contiguous_format) -> None:
        self.levels: list[Tensor | None] = [None] * (stages + 1)
        if not maps:
            return
        resized = [m if tuple(m.shape[2:]) == size else
                   F.interpolate(m, size=size, mode="bilinear", antialias=True, align_corners=False) for m in maps]
        level = torch.cat(resized, dim=1) if len(resized) > 1 else resized[0]
        level = F.pad(level, (0, padded[1] - size[1], 0, padded[0] - size[0]))
        for s in range(stages + 1):
            self.levels[s] = level.contiguous(memory_format=memory_format)  # as the maps they join are kept
            if s < stages:
                level = F.avg_pool2d(level, 2)

    def joined(self, h: Tensor, stage: int) -> Tensor:
        """``h`` with the maps of its resolution (``stage`` halvings below the padded image) as more channels."""
        level = self.levels[stage]
        return h if level is None else torch.cat([h, level], dim=1)


class ConvEncoder(nn.Module):
    """``(x (N, C, H, W), e (N, E))`` -> the posterior's means and log-variances, ``(N, L)`` each."""

    def __init__(self, shapes: NetworkShapes, channels: Sequence[int], hidden: Sequence[int], activation: str) -> None:
        super().__init__()
        c, h, w = shapes.data_shape
        self.layout, self.size = shapes.embeddings, (h, w)
        stages = len(channels)
        self.padded = (padded_side(h, stages), padded_side(w, stages))
        extra = self.layout.map_channels
        layers: list[nn.Module] = []
        in_ch = c + self.layout.flat_width
        for ch in channels:
            layers += [nn.Conv2d(in_ch + extra, ch, 3, stride=2, padding=1), ACTIVATIONS[activation]()]
            in_ch = ch
        self.stages = nn.Sequential(*layers)
        self.memory_format = torch.contiguous_format
        flat = in_ch * (self.padded[0] >> stages) * (self.padded[1] >> stages)
        self.head = mlp(flat, hidden, 2 * shapes.latent_dim, activation)

    def forward(self, x: Tensor, e: Tensor) -> tuple[Tensor, Tensor]:
        ph, pw = self.padded
        flat, maps = self.layout.split(e)
        pyramid = _Pyramid(maps, self.size, self.padded, len(self.stages) // 2, self.memory_format)
        h = _with_maps(F.pad(x, (0, pw - x.shape[3], 0, ph - x.shape[2])), flat).contiguous(
            memory_format=self.memory_format)
        for i, layer in enumerate(self.stages):
            h = layer(pyramid.joined(h, i // 2) if i % 2 == 0 else h)
        mu, logvar = self.head(h.flatten(1)).chunk(2, dim=1)
        return mu, logvar


class _LearnedStart(nn.Module):
    """The decoder's first maps when it has neither a latent nor a flat embedding (a deterministic model on
    spatial conditions alone): learned numbers, the same for every row. ``(N, 0)`` -> ``(N, width)``."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.randn(width) * 0.02)

    def forward(self, nothing: Tensor) -> Tensor:
        return self.value.expand(nothing.shape[0], -1)


class _Modulation(nn.Module):
    """FiLM (Perez et al. 2018): ``h`` ``(N, C, H, W)`` -> ``h * (1 + gamma(e)) + beta(e)``, ``gamma`` and
    ``beta`` ``(N, C)`` linear in the flat embeddings ``e`` ``(N, E)``. A condition that sets what a stage draws
    everywhere (a colour) multiplies the maps of where it is drawn (a stroke), which constant maps concatenated at
    the first stage only add to. Starts as the identity."""

    def __init__(self, embed_width: int, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(embed_width, 2 * channels)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, h: Tensor, e: Tensor) -> Tensor:
        gamma, beta = self.linear(e).to(h.dtype)[:, :, None, None].chunk(2, dim=1)
        return torch.addcmul(beta, h, 1 + gamma)  # one pass over h, which a stage's maps make the cost


class ConvDecoder(nn.Module):
    """``(z (N, L), e (N, E))`` -> the likelihood's parameters ``(N, P, C, H, W)``."""

    def __init__(self, shapes: NetworkShapes, channels: Sequence[int], hidden: Sequence[int], activation: str) -> None:
        super().__init__()
        c, h, w = shapes.data_shape
        self.layout, self.size, self.params, self.data_channels = shapes.embeddings, (h, w), shapes.params, c
        stages = len(channels)
        self.padded = (padded_side(h, stages), padded_side(w, stages))
        self.start = (channels[-1], self.padded[0] >> stages, self.padded[1] >> stages)
        flat_width, extra = self.layout.flat_width, self.layout.map_channels
        # the spatial embeddings come in as channels at every resolution, so the dense layers do without them
        width = shapes.latent_dim + flat_width
        self.head = (nn.Sequential(mlp(width, hidden, math.prod(self.start), activation), ACTIVATIONS[activation]())
                     if width else _LearnedStart(math.prod(self.start)))
        layers: list[nn.Module] = []
        in_ch = channels[-1] + flat_width
        widest = 0
        films: list[nn.Module] = []
        for s, ch in zip(range(stages, 0, -1), list(reversed(channels))[1:] + [channels[0]]):
            layers += [nn.ConvTranspose2d(in_ch + extra, ch, 4, stride=2, padding=1), ACTIVATIONS[activation]()]
            widest = max(widest, (in_ch + extra) * (self.padded[0] >> s) * (self.padded[1] >> s))
            in_ch = ch
            if flat_width:
                films.append(_Modulation(flat_width, ch))
        layers.append(nn.Conv2d(in_ch + extra, shapes.params * c, 3, padding=1))
        self.stages = nn.Sequential(*layers)
        #: Each upsampling stage's output scaled and shifted per channel by the flat embeddings (empty without).
        self.film = nn.ModuleList(films)
        self.memory_format = torch.contiguous_format
        #: The most numbers of a row at once: the widest input of a convolution, or the full-size output.
        self.row_width = max(widest, max(in_ch + extra, shapes.params * c) * self.padded[0] * self.padded[1])

    def forward(self, z: Tensor, e: Tensor) -> Tensor:
        n = z.shape[0]
        flat, maps = self.layout.split(e)
        stages = len(self.stages) // 2
        pyramid = _Pyramid(maps, self.size, self.padded, stages, self.memory_format)
        h = _with_maps(self.head(torch.cat([z, flat], dim=1)).view(n, *self.start), flat).contiguous(
            memory_format=self.memory_format)
        for i, layer in enumerate(self.stages):
            h = layer(pyramid.joined(h, stages - i // 2) if i % 2 == 0 else h)
            if i % 2 == 1 and self.film:
                h = self.film[i // 2](h, flat)
        height, width = self.size
        return h[:, :, :height, :width].reshape(n, self.params, self.data_channels, height, width)  # cropped back


class Conv(Architecture):
    """Convolutions that halve the resolution per stage (``model.channels``), 3x3 with stride 2 down and 4x4
    transposed with stride 2 up, no normalisation, the ``model.activation`` between; the dense layers of
    ``model.hidden`` (encoder) and ``model.decoder_hidden`` (decoder) between the maps and the latent. For
    images ``(C, H, W)`` of any size; spatial embeddings join every resolution."""

    name = "conv"

    def check_data(self, data_shape: Sequence[int]) -> None:
        if len(data_shape) != 3:
            raise ValueError(f"takes images (C, H, W), but the items have shape {list(data_shape)}; use --arch mlp, "
                             "or data of images")

    def build_encoder(self, shapes: NetworkShapes) -> nn.Module:
        return ConvEncoder(shapes, self.model.channels, self.model.hidden, self.model.activation)

    def build_decoder(self, shapes: NetworkShapes) -> nn.Module:
        return ConvDecoder(shapes, self.model.channels, self.model.decoder_widths, self.model.activation)
