"""The contract of an architecture: how the CVAE's encoder q(z|x,c) and decoder p(x|z,c) are built.

An architecture (``model.arch``) is a class that builds the two networks for the shapes of one model
(:class:`NetworkShapes`). The toolkit's own, ``mlp`` and ``conv``, are registered through the plugin hook
``condgen_register_architectures`` just as a third party's are; the conditional prior stays an MLP on the
embeddings whatever the architecture.

The networks' contract, with ``N`` rows, ``E`` the embeddings' total width, ``L`` the latent size and ``P``
the likelihood's parameters per element of x:

- encoder ``(x (N, *data_shape), e (N, E))`` -> ``(mu, logvar)``, each ``(N, L)``;
- decoder ``(z (N, L), e (N, E))`` -> the likelihood's parameters ``(N, P, *data_shape)`` (logits, means, or
  locations and log-scales, parameter by parameter).

``e`` holds every conditioner's embedding, flattened and concatenated in config order. A conditioner may give
a **spatial** embedding ``(N, E_i, H_i, W_i)`` (feature maps: the observed part of an image); it is flattened
into ``e`` like the others, so an MLP takes it as it is, and :meth:`EmbeddingLayout.split` gives a
convolutional network the flat part and the maps back.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class EmbeddingLayout:
    """Where each conditioner's embedding lies in ``e`` ``(N, E)``: one shape per conditioner, in config order,
    ``(E_i,)`` for a flat embedding or ``(E_i, H_i, W_i)`` for a spatial one."""

    shapes: tuple[tuple[int, ...], ...] = ()

    @property
    def width(self) -> int:
        """``E``: the numbers of all embeddings of one row."""
        return sum(math.prod(s) for s in self.shapes)

    @property
    def flat_width(self) -> int:
        """The numbers of the flat embeddings of one row."""
        return sum(s[0] for s in self.shapes if len(s) == 1)

    @property
    def maps(self) -> tuple[tuple[int, int, int], ...]:
        """``(E_i, H_i, W_i)`` of each spatial embedding, in config order."""
        return tuple((s[0], s[1], s[2]) for s in self.shapes if len(s) == 3)

    @property
    def map_channels(self) -> int:
        """The channels of all spatial embeddings together."""
        return sum(m[0] for m in self.maps)

    def split(self, e: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``e`` ``(N, E)`` -> the flat embeddings ``(N, flat_width)`` and each spatial one ``(N, E_i, H_i, W_i)``."""
        flat, maps, start = [], [], 0
        for shape in self.shapes:
            size = math.prod(shape)
            part = e[:, start:start + size]
            start += size
            if len(shape) == 1:
                flat.append(part)
            else:
                maps.append(part.reshape(e.shape[0], *shape))
        if len(flat) == 1:
            return flat[0], maps
        return (torch.cat(flat, dim=1) if flat else e.new_zeros(e.shape[0], 0)), maps


@dataclass(frozen=True)
class NetworkShapes:
    """What an architecture builds its networks for."""

    #: One item of x: ``(C, H, W)`` for images, ``(D,)`` for vectors.
    data_shape: tuple[int, ...]
    #: The conditioners' embeddings in ``e``.
    embeddings: EmbeddingLayout
    #: ``L``: the latent size; 0 for the deterministic baseline, which builds no encoder (its decoder gets ``z``
    #: ``(N, 0)``).
    latent_dim: int
    #: ``P``: the numbers per element of x the decoder gives the likelihood.
    params: int

    @property
    def x_dim(self) -> int:
        """``D``: the numbers of one item of x."""
        return math.prod(self.data_shape)

    @property
    def embed_dim(self) -> int:
        """``E``: the width of ``e``."""
        return self.embeddings.width


class Architecture(ABC):
    """Builds a CVAE's encoder and decoder. Subclass it, set ``name``, implement the two builders, and register
    the class with the ``condgen_register_architectures`` hook; ``--arch NAME`` (``model.arch``) selects it.

    The toolkit makes one instance per model, passing the model config (:class:`condgen.ModelConfig`): read its
    ``hidden``, ``decoder_widths``, ``channels`` and ``activation`` as the built-ins do, so ``--hidden``,
    ``--channels`` and ``--activation`` mean the same for every architecture. The networks follow the contract
    in this module's docstring; the toolkit checks their output shapes on a probe batch before training.
    """

    #: The unique name it is registered under (``[a-z][a-z0-9_-]*``).
    name: ClassVar[str]

    def __init__(self, model: Any) -> None:
        self.model = model

    def check_data(self, data_shape: Sequence[int]) -> None:
        """Raise ValueError saying why and what to do instead if this architecture cannot model items of
        ``data_shape`` (a conv net takes images ``(C, H, W)``). Default: it takes any."""

    @abstractmethod
    def build_encoder(self, shapes: NetworkShapes) -> nn.Module:
        """A fresh encoder: ``(x (N, *data_shape), e (N, E))`` -> ``(mu, logvar)``, each ``(N, L)``."""

    @abstractmethod
    def build_decoder(self, shapes: NetworkShapes) -> nn.Module:
        """A fresh decoder: ``(z (N, L), e (N, E))`` -> ``(N, P, *data_shape)``. It may have an int attribute
        ``row_width``: the most numbers one row holds at once inside it (a conv stage's maps), which sizes the
        chunks of importance sampling; its linear layers' widths are counted without it."""
