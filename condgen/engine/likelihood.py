"""Observation models p(x | z, c): the decoder outputs their parameters, ``PARAMS`` per element of x
(``(..., PARAMS * D)``: one logit, one mean, or a location and a log-scale).

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
    """For data in [0, 1] (MNIST pixels): binary cross-entropy on logits, as the seed uses. Not a likelihood
    of 8-bit data: its nats are not comparable with a discrete likelihood's."""

    PARAMS = 1
    #: Whether it is a probability of 8-bit levels, whose -log is a code length (bits per dimension).
    DISCRETE = False

    def nll(self, params: Tensor, x: Tensor, scored: Tensor | None = None) -> Tensor:
        """``params`` logits ``(..., D)``, ``x`` ``(..., D)`` -> negative log-likelihood ``(...)`` in nats."""
        return F.binary_cross_entropy_with_logits(params, x, weight=scored, reduction="none").sum(dim=-1)

    def mean(self, params: Tensor) -> Tensor:
        return torch.sigmoid(params)


class Gaussian(nn.Module):
    """For real-valued data: diagonal Gaussian with a fixed std, or one learnt per feature."""

    PARAMS = 1
    DISCRETE = False

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


class DiscretizedLogistic(nn.Module):
    """For 8-bit images, seen as their levels / 255 in [0, 1]: each value's probability is the mass that a
    logistic (location ``mu``, scale ``s``) puts on its level's bin, ``[k - 1/2, k + 1/2] / 255``, the two end
    bins open to -inf and +inf (PixelCNN++, Salimans et al. 2017; VDVAE). A probability of the 256 levels,
    so -log p is a code length: bits per dimension = nats / (D ln 2).

    ``params`` ``(..., 2D)``: the locations, then the log-scales (kept above :data:`MIN_LOG_SCALE`).
    """

    PARAMS = 2
    DISCRETE = True
    #: Levels of the data; a bin is 1 / (LEVELS - 1) wide.
    LEVELS = 256
    #: The smallest log-scale: PixelCNN++'s -7 on data in [-1, 1], here on [0, 1]. A half bin is then 4.3
    #: scales wide, so a certain pixel costs 0.027 nats. A lower bound makes the loss of a sharp guess in
    #: the wrong place steeper: at -9, the MLP on Fashion-MNIST (Adam 2e-3) blew up at epoch 24.
    MIN_LOG_SCALE = -7.0 - math.log(2.0)
    #: The largest: a scale of e^7 already spreads the mass over far more than [0, 1] (and exp stays finite).
    MAX_LOG_SCALE = 7.0

    def _split(self, params: Tensor) -> tuple[Tensor, Tensor]:
        mu, log_scale = params.chunk(2, dim=-1)
        return mu, log_scale.clamp(self.MIN_LOG_SCALE, self.MAX_LOG_SCALE)

    def nll(self, params: Tensor, x: Tensor, scored: Tensor | None = None) -> Tensor:
        """``params`` ``(..., 2D)``, ``x`` ``(..., D)`` in [0, 1] (levels / 255) -> -log p ``(...)`` in nats."""
        mu, log_scale = self._split(params)
        half = 0.5 / (self.LEVELS - 1)
        inv = torch.exp(-log_scale)
        centred = x - mu
        upper, lower = inv * (centred + half), inv * (centred - half)
        log_cdf_upper = upper - F.softplus(upper)  # log sigmoid: the first bin's mass, (-inf, half]
        log_survival_lower = -F.softplus(lower)  # log (1 - sigmoid): the last bin's, [1 - half, inf)
        mass = torch.sigmoid(upper) - torch.sigmoid(lower)
        # a bin too narrow for the difference of two sigmoids in float: its density at the centre times its width
        mid = inv * centred
        log_density = mid - log_scale - 2 * F.softplus(mid) - math.log(self.LEVELS - 1)
        inner = torch.where(mass > 1e-5, torch.log(mass.clamp(min=1e-12)), log_density)
        log_p = torch.where(x < half, log_cdf_upper, torch.where(x > 1 - half, log_survival_lower, inner))
        elements = -log_p
        if scored is not None:
            elements = elements * scored
        return elements.sum(dim=-1)

    def mean(self, params: Tensor) -> Tensor:
        """The expected value of each element, in [0, 1]: what the pictures show, as a Bernoulli's mean is its
        probability. For Y logistic and x = Y clipped to [0, 1] (the binning aside),
        E[x] = integral over [0, 1] of P(Y > t) dt = s (softplus(mu / s) - softplus((mu - 1) / s))."""
        mu, log_scale = self._split(params)
        scale = torch.exp(log_scale)
        return (scale * (F.softplus(mu / scale) - F.softplus((mu - 1) / scale))).clamp(0.0, 1.0)


#: Each likelihood by its config name.
LIKELIHOODS = {"bernoulli": Bernoulli, "gaussian": Gaussian, "logistic": DiscretizedLogistic}


def make_likelihood(kind: str, dim: int, gaussian_std: float | None = None) -> nn.Module:
    if kind == "bernoulli":
        return Bernoulli()
    if kind == "gaussian":
        return Gaussian(dim, gaussian_std)
    if kind == "logistic":
        return DiscretizedLogistic()
    raise ValueError(f"unknown likelihood {kind!r}; use {', '.join(LIKELIHOODS)}")
