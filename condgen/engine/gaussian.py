"""Diagonal Gaussians in closed form: log-densities and KL divergences.

Every distribution here is given by its mean and log-variance, ``(..., L)`` each; the
results sum over the last dimension, so they are per item.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

_LOG_2PI = math.log(2 * math.pi)


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL( N(mu, exp(logvar)) || N(0, I) ) per row: ``(B, L)`` -> ``(B,)``, closed form."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def gaussian_kl_between(mu_q: Tensor, logvar_q: Tensor, mu_p: Tensor, logvar_p: Tensor) -> Tensor:
    """KL( N(mu_q, exp(logvar_q)) || N(mu_p, exp(logvar_p)) ) per row: ``(B, L)`` each -> ``(B,)``."""
    return 0.5 * (
        logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) * torch.exp(-logvar_p) - 1.0
    ).sum(dim=-1)


def gaussian_log_prob(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, exp(logvar)) summed over the last dimension: ``(..., L)`` -> ``(...)``."""
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + _LOG_2PI).sum(dim=-1)


def standard_log_prob(z: Tensor) -> Tensor:
    """log N(z; 0, I) summed over the last dimension: ``(..., L)`` -> ``(...)``."""
    return -0.5 * (z.pow(2) + _LOG_2PI).sum(dim=-1)
