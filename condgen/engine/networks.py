"""The MLPs the engine is built from, and the MLP encoder and decoder (``model.arch: mlp``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
}


class MLPEncoder(nn.Sequential):
    """``(x (B, *data_shape), e (B, E))`` -> ``(B, out)``: an MLP on ``[x flattened, e]``."""

    def forward(self, x: Tensor, e: Tensor) -> Tensor:  # type: ignore[override]
        return super().forward(torch.cat([x.flatten(1), e], dim=1))


class MLPDecoder(nn.Sequential):
    """``(z (..., B, L), e (B, E))`` -> ``(..., B, out)``: an MLP on ``[z, e]``."""

    def forward(self, z: Tensor, e: Tensor) -> Tensor:  # type: ignore[override]
        if z.dim() > e.dim():
            e = e.expand(*z.shape[:-1], e.shape[-1])
        return super().forward(torch.cat([z, e], dim=-1))


def mlp(in_dim: int, widths: Sequence[int], out_dim: int, activation: str) -> nn.Sequential:
    """Linear layers of ``widths`` with ``activation`` between them: ``(B, in_dim)`` -> ``(B, out_dim)``."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(in_dim, width), ACTIVATIONS[activation]()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)
