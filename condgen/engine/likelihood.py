"""Observation models p(x | z, c): the decoder outputs their parameters, ``params`` numbers per element of x
(``(..., params * D)``, parameter by parameter: all ``D`` of the first, then all ``D`` of the second, ...).

Each is a :class:`Likelihood`, known by its config name (``model.likelihood``) in :data:`LIKELIHOODS`; a name
may carry an argument after a colon (``logistic-mixture:5``), read by the class's
:meth:`~Likelihood.parse_argument`. :func:`make_likelihood` builds one from its full name.

``nll`` scores ``x`` element by element and sums over the last dimension. ``scored`` (same
shape as ``x``, 1 = score, 0 = skip) restricts the sum to the part of x that the condition
does not already give, e.g. the missing pixels of an inpainting condition; ``None`` scores all.

Which figures compare with which: a ``DISCRETE`` likelihood (``logistic``, ``logistic-mixture:K``) is a
probability of the 256 levels of 8-bit data, so its -log p is a code length and bits per dimension compare
with the literature's. The Bernoulli on pixels in [0, 1] is not a likelihood of 8-bit data, and the Gaussians
are densities (their nats shift with the data's units): compare their nats only with the same likelihood's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: The learned-variance Gaussians' std floor by default, in the data's units: one level of 8-bit data seen
#: in [0, 1]. With std >= 1/255 the density never exceeds 255 / sqrt(2 pi) ~ 0.4 / bin, so the density of a
#: pixel times its level's width stays below 1, as a probability of the level must: below it, the model would
#: be paid (in nats going to -inf) for a precision the 8-bit data cannot have, which is how an unbounded
#: per-pixel variance blows up on the constant background of MNIST-like images. It is close to the sigma-VAE's
#: own floor, a log-std of -6 (std 0.0025, Rybkin et al. 2021). On data of other units set
#: ``model.gaussian_min_std``.
DEFAULT_MIN_STD = 1 / 255


def _summed(elements: Tensor, scored: Tensor | None) -> Tensor:
    """Per-element terms ``(..., D)`` summed over the scored elements -> ``(...)``."""
    if scored is not None:
        elements = elements * scored
    return elements.sum(dim=-1)


def _min_std(min_std: float | None) -> float:
    """The std floor asked for, or :data:`DEFAULT_MIN_STD`; ValueError unless positive."""
    value = DEFAULT_MIN_STD if min_std is None else float(min_std)
    if not value > 0:
        raise ValueError(f"the std floor (min_std) must be above 0, got {min_std}")
    return value


class Likelihood(nn.Module):
    """The contract of a likelihood p(x | z, c) that the CVAE reads, and that a registry builds by name.

    Class attributes:

    - ``name``: its config name (``model.likelihood``), e.g. ``logistic-mixture``.
    - ``DISCRETE``: whether it is a probability of 8-bit images' 256 levels, its -log p a code length:
      evaluation then reports bits per dimension, and training refuses data not kept as levels (``uint8``).
      Such a likelihood scores x as levels / 255, in [0, 1].
    - ``ARGUMENT``: how a listing shows what follows the colon in its name (``"K"``), or None: it takes none.
    - ``SETTINGS``: the model config fields it reads besides its name (``gaussian_std``,
      ``gaussian_min_std``); the config refuses such a field given for a likelihood that does not list it.
    - ``params``: how many numbers per element of x the decoder gives it. A class attribute, or set by
      :meth:`setup` where the argument decides it (a mixture of K: 3K).

    Every likelihood is built the same way, ``cls(data_shape, argument, gaussian_std, min_std)``, with
    ``argument = cls.parse_argument(text)`` for ``name:text`` (``text`` None without a colon); a subclass
    makes what it needs in :meth:`setup` rather than taking other arguments. Methods:

    - ``nll(params (..., params * D), x (..., D), scored (..., D) | None) -> (...)``: -log p(x | params) in
      nats, summed over the scored elements of x; ``params`` may have leading dimensions that ``x`` and
      ``scored`` broadcast to (importance samples).
    - ``mean(params (..., params * D)) -> (..., D)``: each element's expected value, in the data's units (for
      a discrete one in [0, 1]): what samples and reconstructions show.
    """

    name: ClassVar[str] = ""
    DISCRETE: ClassVar[bool] = False
    ARGUMENT: ClassVar[str | None] = None
    SETTINGS: ClassVar[frozenset[str]] = frozenset()
    #: The std floor of a likelihood whose SETTINGS hold ``gaussian_min_std``, where the config gives none.
    DEFAULT_MIN_STD: ClassVar[float] = DEFAULT_MIN_STD
    params: int = 1

    def __init__(
        self,
        data_shape: Sequence[int] | int = (),
        argument: Any = None,
        gaussian_std: float | None = None,
        min_std: float | None = None,
    ) -> None:
        """``data_shape``: one item's shape (``(C, H, W)``, ``(D,)``, or ``D``); ``argument``: what
        :meth:`parse_argument` made of the name's argument; ``gaussian_std`` and ``min_std``: the model config's
        ``gaussian_std`` and ``gaussian_min_std``, for the likelihoods that read them (None: not given).

        It keeps them as ``data_shape``, ``dim`` (the number of elements, D), ``argument``, ``gaussian_std``,
        and ``min_std`` (:data:`DEFAULT_MIN_STD` where not given; checked above 0 for a likelihood whose
        ``SETTINGS`` hold ``gaussian_min_std``), then calls :meth:`setup`."""
        super().__init__()
        self.data_shape = (int(data_shape),) if isinstance(data_shape, int) else tuple(int(s) for s in data_shape)
        self.dim = math.prod(self.data_shape)
        self.argument, self.gaussian_std = argument, gaussian_std
        self.min_std = _min_std(min_std) if "gaussian_min_std" in self.SETTINGS else min_std
        self.setup()

    def setup(self) -> None:
        """What a likelihood makes of its settings once they are kept: its parameters (``nn.Parameter``), its
        ``params`` where the argument decides them. Nothing by default."""

    @classmethod
    def parse_argument(cls, text: str | None) -> Any:
        """What follows the colon in the config name (``None`` without one) -> the constructor's ``argument``.
        ValueError naming the value and the fix; by default any argument is refused."""
        if text is None:
            return None
        raise ValueError(f"likelihood {cls.name!r} takes no argument, got {cls.name}:{text}; use {cls.name}")

    @classmethod
    def usage(cls) -> str:
        """Its name as a listing shows it: ``logistic-mixture:K``, ``bernoulli``."""
        return cls.name if cls.ARGUMENT is None else f"{cls.name}:{cls.ARGUMENT}"

    def nll(self, params: Tensor, x: Tensor, scored: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def mean(self, params: Tensor) -> Tensor:
        raise NotImplementedError


class Bernoulli(Likelihood):
    """For data in [0, 1] (MNIST pixels): binary cross-entropy on logits, as the seed uses. Not a likelihood
    of 8-bit data: its nats are not comparable with a discrete likelihood's."""

    name = "bernoulli"
    params = 1

    def nll(self, params: Tensor, x: Tensor, scored: Tensor | None = None) -> Tensor:
        """``params`` logits ``(..., D)``, ``x`` ``(..., D)`` -> negative log-likelihood ``(...)`` in nats."""
        return F.binary_cross_entropy_with_logits(params, x, weight=scored, reduction="none").sum(dim=-1)

    def mean(self, params: Tensor) -> Tensor:
        return torch.sigmoid(params)


def _normal_nll(x: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    """-log N(x; mean, exp(log_std)^2) element by element, in nats."""
    z = (x - mean) * torch.exp(-log_std)
    return 0.5 * z.pow(2) + log_std + 0.5 * math.log(2 * math.pi)


class Gaussian(Likelihood):
    """For real-valued data: diagonal Gaussian with a fixed std (``model.gaussian_std``), or one learnt per
    feature (a parameter of the model, the same for every item). The decoder gives the means."""

    name = "gaussian"
    params = 1
    SETTINGS = frozenset({"gaussian_std"})

    def setup(self) -> None:
        self.fixed_log_std = None if self.gaussian_std is None else math.log(self.gaussian_std)
        # a learnt log-std per feature; unused (and left at 0) when the std is fixed
        self.log_std = nn.Parameter(torch.zeros(self.dim), requires_grad=self.gaussian_std is None)

    def _log_std(self) -> Tensor:
        if self.fixed_log_std is not None:
            return torch.full_like(self.log_std, self.fixed_log_std)
        return self.log_std

    def nll(self, params: Tensor, x: Tensor, scored: Tensor | None = None) -> Tensor:
        """``params`` means ``(..., D)``, ``x`` ``(..., D)`` -> negative log-likelihood ``(...)`` in nats."""
        return _summed(_normal_nll(x, params, self._log_std()), scored)

    def mean(self, params: Tensor) -> Tensor:
        return params


class GaussianPixel(Likelihood):
    """``gaussian-pixel``: a diagonal Gaussian whose std the decoder gives for every element of every item
    (a learned, heteroscedastic variance per pixel), bounded below by ``model.gaussian_min_std``.

    ``params`` ``(..., 2D)``: the means, then the log-stds ``r``, floored smoothly rather than clamped (the
    sigma-VAE's "softclip"): log std = log m + softplus(r - log m), m the floor. So std > m always, the
    log-std is ``r`` itself once ``r`` is a few units above log m, and a gradient reaches ``r`` wherever it
    is (a clamp would leave a decoder stuck below the floor with none).
    """

    name = "gaussian-pixel"
    params = 2
    SETTINGS = frozenset({"gaussian_min_std"})

    def log_std(self, params: Tensor) -> Tensor:
        """Each element's floored log-std ``(..., D)``."""
        floor = math.log(self.min_std)
        return floor + F.softplus(params.chunk(2, dim=-1)[1] - floor)

    def nll(self, params: Tensor, x: Tensor, scored: Tensor | None = None) -> Tensor:
        """``params`` ``(..., 2D)``, ``x`` ``(..., D)`` -> negative log-likelihood ``(...)`` in nats."""
        return _summed(_normal_nll(x, self.mean(params), self.log_std(params)), scored)

    def mean(self, params: Tensor) -> Tensor:
        return params.chunk(2, dim=-1)[0]


class GaussianShared(Likelihood):
    """``gaussian-shared``: the calibrated decoder of the sigma-VAE (Rybkin, Daniilidis and Levine 2021,
    "Simple and effective VAE training with calibrated decoders"): one std per channel, shared by the channel's
    elements and by every item, not learned but set to its optimum, the root of the mean squared error.

    The decoder gives the means (``params`` 1). At each call the std of channel c is
    sigma_c = max(sqrt(mean squared error of channel c), m), over the scored elements of every row scored
    together (all leading dimensions: the batch, and the importance samples), detached: no gradient flows
    through it, so the hard floor m (``model.gaussian_min_std``) costs none. Sigma-VAE shares one std over
    the whole image; per channel, each colour gets its own. Images ``(C, H, W)`` (three or more dimensions) have
    C channels; flat data ``(D,)`` and two-dimensional items one, a std for all of it.

    Its nll therefore depends on the batch, as sigma-VAE's does: in training the batch, in evaluation the
    items scored together (an evaluation batch; for the importance-sampled likelihood the rows
    :meth:`condgen.engine.CVAE.log_likelihood` decodes at once), the sigma calibrated on the data being scored,
    as sigma-VAE evaluates. Its figures compare only with its own at the same batching. ``mean`` is the means.
    """

    name = "gaussian-shared"
    params = 1
    SETTINGS = frozenset({"gaussian_min_std"})

    def setup(self) -> None:
        self.channels = self.data_shape[0] if len(self.data_shape) >= 3 else 1

    def std(self, params: Tensor, x: Tensor, scored: Tensor | None = None) -> Tensor:
        """The calibrated std of each channel ``(C,)`` for this batch: the root of its scored elements' mean
        squared error over every row, at least ``min_std``; detached."""
        shape = (-1, self.channels, x.shape[-1] // self.channels)  # rows, channels, each channel's elements
        err = (x - params).detach().pow(2)
        if scored is None:
            mse = err.reshape(shape).mean(dim=(0, 2))
        else:
            weight = scored.to(err.dtype).expand_as(err).reshape(shape)
            mse = (err.reshape(shape) * weight).sum(dim=(0, 2)) / weight.sum(dim=(0, 2)).clamp(min=1)
        return mse.sqrt().clamp(min=self.min_std)

    def nll(self, params: Tensor, x: Tensor, scored: Tensor | None = None) -> Tensor:
        """``params`` means ``(..., D)``, ``x`` ``(..., D)`` -> negative log-likelihood ``(...)`` in nats, with
        the std calibrated on these rows (:meth:`std`)."""
        params, x = torch.broadcast_tensors(params, x)
        log_std = self.std(params, x, scored).log().repeat_interleave(x.shape[-1] // self.channels)
        return _summed(_normal_nll(x, params, log_std), scored)

    def mean(self, params: Tensor) -> Tensor:
        return params


#: Levels of 8-bit data; a bin is 1 / (LEVELS - 1) wide.
LEVELS = 256
#: The smallest log-scale of a discretised logistic: PixelCNN++'s -7 on data in [-1, 1], here on [0, 1]. A
#: half bin is then 4.3 scales wide, so a certain pixel costs 0.027 nats. A lower bound makes the loss of a
#: sharp guess in the wrong place steeper: at -9, the MLP on Fashion-MNIST (Adam 2e-3) blew up at epoch 24.
MIN_LOG_SCALE = -7.0 - math.log(2.0)
#: The largest: a scale of e^7 already spreads the mass over far more than [0, 1] (and exp stays finite).
MAX_LOG_SCALE = 7.0


def discretized_logistic_log_prob(x: Tensor, mu: Tensor, log_scale: Tensor) -> Tensor:
    """log P(x) element by element (broadcast) for x in [0, 1] (levels / 255): the mass that a logistic of
    location ``mu`` and scale exp(``log_scale``) (bounded to [MIN_LOG_SCALE, MAX_LOG_SCALE]) puts on x's bin,
    ``[k - 1/2, k + 1/2] / 255``, the two end bins open to -inf and +inf."""
    log_scale = log_scale.clamp(MIN_LOG_SCALE, MAX_LOG_SCALE)
    half = 0.5 / (LEVELS - 1)
    inv = torch.exp(-log_scale)
    centred = x - mu
    upper, lower = inv * (centred + half), inv * (centred - half)
    log_cdf_upper = upper - F.softplus(upper)  # log sigmoid: the first bin's mass, (-inf, half]
    log_survival_lower = -F.softplus(lower)  # log (1 - sigmoid): the last bin's, [1 - half, inf)
    mass = torch.sigmoid(upper) - torch.sigmoid(lower)
    # a bin too narrow for the difference of two sigmoids in float: its density at the centre times its width
    mid = inv * centred
    log_density = mid - log_scale - 2 * F.softplus(mid) - math.log(LEVELS - 1)
    inner = torch.where(mass > 1e-5, torch.log(mass.clamp(min=1e-12)), log_density)
    return torch.where(x < half, log_cdf_upper, torch.where(x > 1 - half, log_survival_lower, inner))


def discretized_logistic_mean(mu: Tensor, log_scale: Tensor) -> Tensor:
    """The expected value in [0, 1] of a discretised logistic (``log_scale`` bounded as in
    :func:`discretized_logistic_log_prob`). For Y logistic and x = Y clipped to [0, 1] (the binning aside),
    E[x] = integral over [0, 1] of P(Y > t) dt = s (softplus(mu / s) - softplus((mu - 1) / s))."""
    scale = torch.exp(log_scale.clamp(MIN_LOG_SCALE, MAX_LOG_SCALE))
    return (scale * (F.softplus(mu / scale) - F.softplus((mu - 1) / scale))).clamp(0.0, 1.0)


class DiscretizedLogistic(Likelihood):
    """For 8-bit images, seen as their levels / 255 in [0, 1]: each value's probability is the mass that a
    logistic (location ``mu``, scale ``s``) puts on its level's bin, ``[k - 1/2, k + 1/2] / 255``, the two end
    bins open to -inf and +inf (PixelCNN++, Salimans et al. 2017; VDVAE). A probability of the 256 levels,
    so -log p is a code length: bits per dimension = nats / (D ln 2).

    ``params`` ``(..., 2D)``: the locations, then the log-scales (kept above :data:`MIN_LOG_SCALE`).
    """

    name = "logistic"
    params = 2
    DISCRETE = True
    LEVELS = LEVELS
    MIN_LOG_SCALE = MIN_LOG_SCALE
    MAX_LOG_SCALE = MAX_LOG_SCALE

    def nll(self, params: Tensor, x: Tensor, scored: Tensor | None = None) -> Tensor:
        """``params`` ``(..., 2D)``, ``x`` ``(..., D)`` in [0, 1] (levels / 255) -> -log p ``(...)`` in nats."""
        mu, log_scale = params.chunk(2, dim=-1)
        return _summed(-discretized_logistic_log_prob(x, mu, log_scale), scored)

    def mean(self, params: Tensor) -> Tensor:
        """The expected value of each element, in [0, 1] (:func:`discretized_logistic_mean`): what the pictures
        show, as a Bernoulli's mean is its probability."""
        mu, log_scale = params.chunk(2, dim=-1)
        return discretized_logistic_mean(mu, log_scale)


class DiscretizedLogisticMixture(Likelihood):
    """``logistic-mixture:K``: each element's probability is a mixture of K discretised logistics (the
    components of :class:`DiscretizedLogistic`), as PixelCNN++'s and VDVAE's output distributions, over 8-bit
    levels / 255 in [0, 1]. A probability of the 256 levels (``DISCRETE``); K = 1 is ``logistic`` exactly.

    Each element has its own mixture, independent of the others given z and c: PixelCNN++ and VDVAE couple an
    RGB pixel's channels (each channel's location shifted by the ones before); this does not, and treats every
    channel as its own element.

    ``params`` ``(..., 3KD)``, parameter by parameter: the K mixture logits, then the K locations, then the K
    log-scales, each ``D`` numbers. ``mean`` is the mixture-weighted expected value of its components.
    """

    name = "logistic-mixture"
    DISCRETE = True
    ARGUMENT = "K"
    #: The most components a mixture may have (PixelCNN++ uses 5 to 10, VDVAE 10).
    MAX_COMPONENTS = 10

    def setup(self) -> None:
        # K, from parse_argument (checked again, for a mixture built from Python)
        self.components = self.parse_argument(None if self.argument is None else str(self.argument))
        self.params = 3 * self.components

    @classmethod
    def parse_argument(cls, text: str | None) -> int:
        """``"5"`` -> 5 components; anything but a whole number from 1 to MAX_COMPONENTS is a ValueError."""
        fix = f"e.g. {cls.name}:5 (K, the number of components, from 1 to {cls.MAX_COMPONENTS})"
        if text is None:
            raise ValueError(f"likelihood {cls.name!r} needs its number of components after a colon; {fix}")
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= cls.MAX_COMPONENTS:
            raise ValueError(f"likelihood {cls.name!r} takes K from 1 to {cls.MAX_COMPONENTS} components, got "
                             f"{cls.name}:{text}; {fix}")
        return int(text)

    def _split(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(..., 3KD)`` -> the logits, locations and log-scales, each ``(..., K, D)``."""
        k = self.components
        by_parameter = params.unflatten(-1, (3 * k, -1))
        return by_parameter[..., :k, :], by_parameter[..., k:2 * k, :], by_parameter[..., 2 * k:, :]

    def nll(self, params: Tensor, x: Tensor, scored: Tensor | None = None) -> Tensor:
        """``params`` ``(..., 3KD)``, ``x`` ``(..., D)`` in [0, 1] (levels / 255) -> -log p ``(...)`` in nats."""
        logits, mu, log_scale = self._split(params)
        log_p = F.log_softmax(logits, dim=-2) + discretized_logistic_log_prob(x.unsqueeze(-2), mu, log_scale)
        return _summed(-torch.logsumexp(log_p, dim=-2), scored)

    def mean(self, params: Tensor) -> Tensor:
        """Each element's expected value in [0, 1]: the components' (:func:`discretized_logistic_mean`),
        weighted by the mixture's probabilities."""
        logits, mu, log_scale = self._split(params)
        weights = torch.softmax(logits, dim=-2)
        return (weights * discretized_logistic_mean(mu, log_scale)).sum(dim=-2).clamp(0.0, 1.0)


#: Each likelihood class by its config name (the part before any colon).
LIKELIHOODS: dict[str, type[Likelihood]] = {
    cls.name: cls for cls in (Bernoulli, Gaussian, GaussianPixel, GaussianShared, DiscretizedLogistic,
                              DiscretizedLogisticMixture)
}


def parse_likelihood(spec: str, known: Mapping[str, type[Likelihood]] | None = None) -> tuple[type[Likelihood], Any]:
    """``"name[:argument]"`` -> (the class ``known`` (default :data:`LIKELIHOODS`) has under ``name``, its
    parsed argument). ValueError naming the value and the known names, or the class's own for a bad argument."""
    known = LIKELIHOODS if known is None else known
    name, colon, text = spec.partition(":")
    if name not in known:
        shown = repr(name) if not colon else f"{name!r} (in {spec!r})"
        raise ValueError(f"unknown likelihood {shown}; use one of "
                         f"{', '.join(cls.usage() for cls in known.values())}")
    cls = known[name]
    return cls, cls.parse_argument(text if colon else None)


def make_likelihood(
    spec: str,
    data_shape: Sequence[int] | int,
    gaussian_std: float | None = None,
    min_std: float | None = None,
    known: Mapping[str, type[Likelihood]] | None = None,
) -> Likelihood:
    """The likelihood named ``spec`` (``"logistic"``, ``"logistic-mixture:5"``) for items of ``data_shape``;
    ``gaussian_std`` and ``min_std`` are the model config's ``gaussian_std`` and ``gaussian_min_std``."""
    cls, argument = parse_likelihood(spec, known)
    return cls(data_shape, argument, gaussian_std, min_std)
