"""Observation models p(x | z, c): the decoder outputs their parameters.

``nll`` scores ``x`` element by element and sums over the last dimension. ``scored`` (same
shape as ``x``, 1 = score, 0 = skip) restricts the sum to the part of x that the condition
does not already give, e.g. the missing pixels of an inpainting condition; ``None`` scores all.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Bernoulli(nn.Module):
    """For data in [0, 1] (MNIST pixels): binary cross-entropy on logits, as the seed uses."""

    def nll(self, params: Tensor, x: Tensor, scored: Tensor | None = None) -> Tensor:
        """``params`` logits ``(..., D)``, ``x`` ``(..., D)`` -> negative log-likelihood ``(...)`` in nats."""
        return F.binary_cross_entropy_with_logits(params, x, weight=scored, reduction="none").sum(dim=-1)

    def mean(self, params: Tensor) -> Tensor:
        return torch.sigmoid(params)


class Gaussian(nn.Module):
    """For real-valued data: diagonal Gaussian with a fixed std, or one learnt per feature."""

    def __init__(self, dim: int, std: float | None) -> None:
        super().__init__()
        self.fixed_log_std = None if std is None else math.log(std)
        # a learnt log-std per feature; unused (and left at 0) when the std is fixed
        self.log_std = nn.Parameter(torch.zeros(dim), requires_grad=std is None)

    def _log_std(self) -> Tensor:
        if self.fixed_log_std is not None:
            return torch.full_like(self.log_std, self.fixed_log_std)
        return self.log_std

    def nll(self, params: Tensor, x: Tensor, scored: Tensor | None = None) -> Tensor:
        """``params`` means ``(..., D)``, ``x`` ``(..., D)`` -> negative log-likelihood ``(...)`` in nats."""
        log_std = self._log_std()
        z = (x - params) * torch.exp(-log_std)
        elements = 0.5 * z.pow(2) + log_std + 0.5 * math.log(2 * math.pi)
        if scored is not None:
            elements = elements * scored
        return elements.sum(dim=-1)

    def mean(self, params: Tensor) -> Tensor:
        return params


def make_likelihood(kind: str, dim: int, gaussian_std: float | None = None) -> nn.Module:
    if kind == "bernoulli":
        return Bernoulli()
    if kind == "gaussian":
        return Gaussian(dim, gaussian_std)
    raise ValueError(f"unknown likelihood {kind!r}; use bernoulli or gaussian")
