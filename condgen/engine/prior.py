"""Priors p(z | c) over the latent: the standard normal, or Sohn et al.'s conditional prior network.

Both are diagonal Gaussians. The standard prior ignores the condition; the conditional
prior is an MLP on the concatenated condition embeddings ``e`` ``(B, E)`` that gives a mean
and a log-variance ``(B, L)``. The KL of the ELBO is taken against the prior in closed form,
and generation draws z from it. Shapes: ``B`` batch, ``E`` embedding width, ``L`` latent size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .gaussian import gaussian_kl, gaussian_kl_between, gaussian_log_prob, standard_log_prob
from .networks import full_precision, mlp


class StandardPrior(nn.Module):
    """p(z | c) = N(0, I), whatever c is (the seed's prior)."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim

    def kl(self, mu: Tensor, logvar: Tensor, e: Tensor) -> Tensor:
        """KL( q(z|x,c) || p(z|c) ) per item: posterior ``(B, L)`` each -> ``(B,)``."""
        return gaussian_kl(mu, logvar)

    def sample(self, e: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One z per row of ``e`` ``(B, E)``: ``(B, L)``."""
        return torch.randn(e.shape[0], self.latent_dim, generator=generator, device=e.device, dtype=e.dtype)

    def log_prob(self, z: Tensor, e: Tensor) -> Tensor:
        """log p(z | c) for ``z`` ``(S, B, L)`` and ``e`` ``(B, E)``: ``(S, B)``."""
        return standard_log_prob(z)


class ConditionalPrior(nn.Module):
    """p(z | c) = N(mu(e), exp(logvar(e))): Sohn et al.'s prior network on the condition embeddings."""

    def __init__(self, embed_dim: int, latent_dim: int, hidden: Sequence[int], activation: str) -> None:
        super().__init__()
        if embed_dim < 1:
            raise ValueError("a conditional prior needs at least one conditioner")
        self.latent_dim = latent_dim
        self.net = mlp(embed_dim, hidden, 2 * latent_dim, activation)
        # start as N(0, I) for every condition, the seed's prior: a random start makes the KL's
        # exp(-logvar_p) large and early training unstable
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def params(self, e: Tensor) -> tuple[Tensor, Tensor]:
        """Prior mean and log-variance ``(B, L)`` each for embeddings ``e`` ``(B, E)``."""
        mu, logvar = full_precision(self.net(e)).chunk(2, dim=-1)  # fp32 under autocast: the KL is taken from them
        return mu, logvar

    def kl(self, mu: Tensor, logvar: Tensor, e: Tensor) -> Tensor:
        mu_p, logvar_p = self.params(e)
        return gaussian_kl_between(mu, logvar, mu_p, logvar_p)

    def sample(self, e: Tensor, generator: torch.Generator | None = None) -> Tensor:
        mu_p, logvar_p = self.params(e)
        eps = torch.randn(mu_p.shape, generator=generator, device=mu_p.device, dtype=mu_p.dtype)
        return mu_p + eps * torch.exp(0.5 * logvar_p)

    def log_prob(self, z: Tensor, e: Tensor) -> Tensor:
        mu_p, logvar_p = self.params(e)
        return gaussian_log_prob(z, mu_p, logvar_p)


def make_prior(kind: str, embed_dim: int, latent_dim: int, hidden: Sequence[int], activation: str) -> nn.Module:
    if kind == "standard":
        return StandardPrior(latent_dim)
    if kind == "conditional":
        return ConditionalPrior(embed_dim, latent_dim, hidden, activation)
    raise ValueError(f"unknown prior {kind!r}; use standard or conditional")
