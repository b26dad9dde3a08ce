"""The conditional VAE of Sohn et al. (2015) with MLP encoder and decoder.

Shapes: ``B`` batch, ``D`` flattened data size, ``E`` total embedding width (sum over
conditioners, in config order), ``L`` latent size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from .likelihood import make_likelihood

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
}


def mlp(in_dim: int, widths: Sequence[int], out_dim: int, activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(in_dim, width), _ACTIVATIONS[activation]()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL( N(mu, exp(logvar)) || N(0, I) ) per row: ``(B, L)`` -> ``(B,)``, closed form."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


@dataclass
class ELBOTerms:
    """Per-item terms of the negative ELBO, each ``(B,)`` in nats, and the posterior ``(B, L)``."""

    recon_nll: Tensor
    kl: Tensor
    mu: Tensor
    logvar: Tensor

    @property
    def neg_elbo(self) -> Tensor:
        return self.recon_nll + self.kl


class CVAE(nn.Module):
    """Encoder q(z|x, c), decoder p(x|z, c), reparameterised diagonal Gaussian latent.

    ``embeddings`` maps each conditioner's name to its embedding module, in the order their
    outputs are concatenated; with none, this is a plain VAE.
    """

    def __init__(
        self,
        data_shape: Sequence[int],
        config: ModelConfig,
        embeddings: Mapping[str, nn.Module] | None = None,
        embed_dims: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__()
        embeddings = dict(embeddings or {})
        embed_dims = dict(embed_dims or {})
        if list(embeddings) != list(embed_dims):
            raise ValueError(f"embeddings {list(embeddings)} and embed_dims {list(embed_dims)} differ")
        self.data_shape = tuple(int(s) for s in data_shape)
        self.config = config
        self.order = list(embeddings)
        self.embeddings = nn.ModuleDict(embeddings)
        x_dim = int(torch.tensor(self.data_shape).prod())
        e_dim = sum(embed_dims.values())
        self.x_dim, self.e_dim, self.latent_dim = x_dim, e_dim, config.latent_dim
        self.encoder = mlp(x_dim + e_dim, config.hidden, 2 * config.latent_dim, config.activation)
        self.decoder = mlp(config.latent_dim + e_dim, config.decoder_widths, x_dim, config.activation)
        self.likelihood = make_likelihood(config.likelihood, x_dim, config.gaussian_std)

    def embed(self, conditions: Mapping[str, Tensor], batch_size: int) -> Tensor:
        """Concatenated embeddings ``(B, E)`` of ``conditions`` (name -> ``(B, ...)``)."""
        if not self.order:
            return torch.zeros(batch_size, 0, device=self._device())
        missing = [n for n in self.order if n not in conditions]
        if missing:
            raise KeyError(f"conditions for {missing} are missing; the model needs {self.order}")
        return torch.cat([self.embeddings[n](conditions[n]) for n in self.order], dim=1)

    def encode(self, x: Tensor, e: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` ``(B, *data_shape)``, ``e`` ``(B, E)`` -> posterior mean and log-variance ``(B, L)`` each."""
        h = self.encoder(torch.cat([x.flatten(1), e], dim=1))
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: Tensor, e: Tensor) -> Tensor:
        """``z`` ``(B, L)``, ``e`` ``(B, E)`` -> likelihood parameters ``(B, D)`` (logits or means)."""
        return self.decoder(torch.cat([z, e], dim=1))

    def forward(
        self, x: Tensor, conditions: Mapping[str, Tensor], generator: torch.Generator | None = None
    ) -> ELBOTerms:
        """Negative-ELBO terms for a batch ``x`` ``(B, *data_shape)`` with one reparameterised z each."""
        e = self.embed(conditions, x.shape[0])
        mu, logvar = self.encode(x, e)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + eps * torch.exp(0.5 * logvar)
        params = self.decode(z, e)
        return ELBOTerms(self.likelihood.nll(params, x.flatten(1)), gaussian_kl(mu, logvar), mu, logvar)

    @torch.no_grad()
    def generate(
        self, conditions: Mapping[str, Tensor], num: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """Mean of p(x|z, c) for ``z ~ N(0, I)``: ``(num, *data_shape)``; conditions are ``(num, ...)``."""
        e = self.embed(conditions, num)
        z = torch.randn(num, self.latent_dim, generator=generator, device=self._device())
        return self.likelihood.mean(self.decode(z, e)).reshape(num, *self.data_shape)

    @torch.no_grad()
    def reconstruct(self, x: Tensor, conditions: Mapping[str, Tensor]) -> Tensor:
        """Mean of p(x|z=E[q(z|x,c)], c): ``(B, *data_shape)``."""
        e = self.embed(conditions, x.shape[0])
        mu, _ = self.encode(x, e)
        return self.likelihood.mean(self.decode(mu, e)).reshape(x.shape[0], *self.data_shape)

    def _device(self) -> torch.device:
        return next(self.parameters()).device
