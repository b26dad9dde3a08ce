"""The MLPs the engine is built from, and the MLP encoder and decoder (``model.arch: mlp``, the seed's)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .architecture import Architecture, NetworkShapes

ACTIVATIONS = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
}


#: The dtypes autocast computes in (``train.precision: bf16``); a network's output in one is taken back to fp32.
_HALF = (torch.bfloat16, torch.float16)


def full_precision(t: Tensor) -> Tensor:
    """``t`` in fp32 if autocast left it in a half-precision dtype, else as it is (fp32, or fp64 in a test):
    the likelihood, the KL and the prior's Gaussian are computed in full precision."""
    return t.float() if t.dtype in _HALF else t


class MLPEncoder(nn.Sequential):
    """``(x (N, *data_shape), e (N, E))`` -> ``(mu, logvar)`` ``(N, L)`` each: an MLP on ``[x flattened, e]``."""

    def forward(self, x: Tensor, e: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        mu, logvar = super().forward(torch.cat([x.flatten(1), e], dim=1)).chunk(2, dim=1)
        return mu, logvar


class MLPDecoder(nn.Sequential):
    """``(z (N, L), e (N, E))`` -> ``(N, P, *data_shape)``: an MLP on ``[z, e]``."""

    def __init__(self, *layers: nn.Module, out_shape: Sequence[int]) -> None:
        super().__init__(*layers)
        self.out_shape = tuple(out_shape)

    def forward(self, z: Tensor, e: Tensor) -> Tensor:  # type: ignore[override]
        return super().forward(torch.cat([z, e], dim=-1)).view(z.shape[0], *self.out_shape)


class MLP(Architecture):
    """The seed's networks: MLPs on the flattened data and the embeddings (``model.hidden`` for the encoder,
    ``model.decoder_hidden`` for the decoder), for data of any shape; a spatial embedding is taken flattened."""

    name = "mlp"

    def build_encoder(self, shapes: NetworkShapes) -> nn.Module:
        return MLPEncoder(*mlp(shapes.x_dim + shapes.embed_dim, self.model.hidden, 2 * shapes.latent_dim,
                               self.model.activation))

    def build_decoder(self, shapes: NetworkShapes) -> nn.Module:
        return MLPDecoder(*mlp(shapes.latent_dim + shapes.embed_dim, self.model.decoder_widths,
                               shapes.params * shapes.x_dim, self.model.activation),
                          out_shape=(shapes.params, *shapes.data_shape))


def mlp(in_dim: int, widths: Sequence[int], out_dim: int, activation: str) -> nn.Sequential:
    """Linear layers of ``widths`` with ``activation`` between them: ``(B, in_dim)`` -> ``(B, out_dim)``."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(in_dim, width), ACTIVATIONS[activation]()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)
