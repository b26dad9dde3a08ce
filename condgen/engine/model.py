"""The conditional VAE of Sohn et al. (2015): an encoder and a decoder built by an architecture
(``model.arch``: :mod:`condgen.engine.architecture`; the MLP and conv ones are the engine's own), and an MLP
prior network.

Shapes: ``B`` batch, ``D`` flattened data size, ``E`` total embedding width (sum over
conditioners, in config order), ``L`` latent size, ``S`` importance samples.
With ``L = 0`` there is no latent: the model is the deterministic decoder p(x | c), the
baseline Sohn et al. compare against, with no encoder and no KL.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn

from .architecture import Architecture, EmbeddingLayout, NetworkShapes
from .conv import Conv
from .gaussian import gaussian_log_prob
from .likelihood import Likelihood, make_likelihood
from .networks import MLP, full_precision
from .prior import make_prior

#: The engine's own architectures by name, for a CVAE built without one (the toolkit registers the same classes
#: through the plugin hook, and passes the registered one).
ARCHITECTURES: dict[str, type[Architecture]] = {"mlp": MLP, "conv": Conv}


class ModelSpec(Protocol):
    """What the engine reads of a model's config (``condgen.ModelConfig`` is one): the engine imports
    nothing else of condgen, so it names the fields it needs here."""

    latent_dim: int
    arch: str
    channels: Sequence[int]
    hidden: Sequence[int]
    activation: str
    likelihood: str
    gaussian_std: float | None
    gaussian_min_std: float | None
    prior: str

    @property
    def decoder_widths(self) -> Sequence[int]: ...

    @property
    def prior_widths(self) -> Sequence[int]: ...


#: Rows (items x importance samples) decoded at once by :meth:`CVAE.log_likelihood`, fewer where a row's widest
#: activation (:attr:`CVAE.row_width`) would make them take more than IS_CHUNK_BYTES.
IS_CHUNK_ROWS = 10_000
IS_CHUNK_BYTES = 2**28


@dataclass
class ELBOTerms:
    """Per-item terms ``(B,)`` in nats and the posterior ``(B, L)`` (see :mod:`condgen.engine.objective`).

    ``gsnn_nll`` is computed only when asked for; ``mu`` and ``logvar`` are ``(B, 0)`` without a latent.
    """

    recon_nll: Tensor
    kl: Tensor
    mu: Tensor
    logvar: Tensor
    gsnn_nll: Tensor | None = None

    @property
    def neg_elbo(self) -> Tensor:
        return self.recon_nll + self.kl

    def named(self) -> dict[str, Tensor]:
        """``{"recon_nll", "kl", "neg_elbo"[, "gsnn_nll"]}``, each ``(B,)``."""
        out = {"recon_nll": self.recon_nll, "kl": self.kl, "neg_elbo": self.neg_elbo}
        if self.gsnn_nll is not None:
            out["gsnn_nll"] = self.gsnn_nll
        return out


def _no_autocast(t: Tensor) -> contextlib.AbstractContextManager:
    """Autocast switched off on ``t``'s device where it is on: the likelihood and the KL are computed in the
    dtype of their inputs (fp32) even in a bf16 training step, only the networks in bf16."""
    if torch.is_autocast_enabled(t.device.type):
        return torch.autocast(t.device.type, enabled=False)
    return contextlib.nullcontext()


class CVAE(nn.Module):
    """Encoder q(z|x, c), decoder p(x|z, c), prior p(z|c), reparameterised diagonal Gaussian latent.

    ``embeddings`` maps each conditioner's name to its embedding module, in the order their
    outputs are concatenated; with none, this is a plain VAE. Each conditioner named in
    ``absent`` also gets a learned "absent" embedding, which stands in for its condition where
    that is left out: dropped in training (condition dropout), or not given when generating.
    ``embed_dims`` gives each embedding's width, or its shape ``(E_i, H_i, W_i)`` for a spatial one.

    ``architecture`` builds the encoder and decoder, and ``likelihood`` is p(x | z, c); by default the engine's
    own of ``config.arch`` and ``config.likelihood`` (the toolkit passes the ones its plugins register).
    """

    def __init__(
        self,
        data_shape: Sequence[int],
        config: ModelSpec,
        embeddings: Mapping[str, nn.Module] | None = None,
        embed_dims: Mapping[str, int | Sequence[int]] | None = None,
        absent: Sequence[str] = (),
        architecture: Architecture | None = None,
        likelihood: Likelihood | None = None,
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
        # each embedding's shape: (E_i,) flat, or (E_i, H_i, W_i) spatial
        self.embed_shapes = {n: (int(d),) if isinstance(d, int) else tuple(int(s) for s in d)
                             for n, d in embed_dims.items()}
        self.layout = EmbeddingLayout(tuple(self.embed_shapes.values()))
        x_dim = math.prod(self.data_shape)
        e_dim = self.layout.width
        self.x_dim, self.e_dim, self.latent_dim = x_dim, e_dim, config.latent_dim
        latent = config.latent_dim
        # the likelihood's numbers per element of x (its params): a logit, a mean, a mean and a log-std, ...; made
        # here, with no random numbers drawn, and held as a module after the decoder, in the seed's order
        likelihood = (make_likelihood(config.likelihood, self.data_shape, config.gaussian_std,
                                      config.gaussian_min_std) if likelihood is None else likelihood)
        params = likelihood.params
        self.params = params
        self.architecture = architecture if architecture is not None else ARCHITECTURES[config.arch](config)
        shapes = NetworkShapes(self.data_shape, self.layout, latent, params)
        # made in the seed's order (encoder, decoder, likelihood, prior): an MLP draws the seed's initial weights
        self.encoder: nn.Module | None = self.architecture.build_encoder(shapes) if latent else None
        self.decoder: nn.Module = self.architecture.build_decoder(shapes)
        self.likelihood = likelihood
        self.prior = (
            make_prior(config.prior, e_dim, latent, config.prior_widths, config.activation) if latent else None
        )
        self.absent = nn.ParameterDict({n: nn.Parameter(torch.zeros(self.embed_shapes[n])) for n in absent})

    @property
    def row_width(self) -> int:
        """The most numbers one row (an item, or one of its importance samples) holds at once in the decoder:
        its widest layer, its own ``row_width`` (a conv stage's maps), or the likelihood's parameters."""
        widths = [self.likelihood.params * self.x_dim, self.x_dim, self.e_dim,
                  int(getattr(self.decoder, "row_width", 0))]
        for layer in self.decoder.modules():
            if isinstance(layer, nn.Linear):
                widths.append(layer.out_features)
        return max(widths)

    def embed(
        self, conditions: Mapping[str, Tensor], batch_size: int, drop: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        """Concatenated embeddings ``(B, E)`` of ``conditions`` (name -> ``(B, ...)``), each flattened: a spatial
        one ``(B, E_i, H_i, W_i)`` takes ``E_i * H_i * W_i`` numbers (:attr:`layout` says where each lies).

        A conditioner with an absent embedding may be left out of ``conditions``; ``drop`` (name ->
        ``(B,)`` bool) puts its absent embedding in place of the items marked True.
        """
        if not self.order:
            return torch.zeros(batch_size, 0, device=self._device())
        missing = [n for n in self.order if n not in conditions and n not in self.absent]
        if missing:
            raise KeyError(f"conditions for {missing} are missing; the model needs {self.order}")
        parts = []
        for n in self.order:
            if n not in conditions:
                parts.append(self.absent[n].reshape(1, -1).expand(batch_size, -1))
                continue
            e = self.embeddings[n](conditions[n]).flatten(1)
            if drop is not None and n in drop:
                e = torch.where(drop[n].unsqueeze(1), self.absent[n].reshape(1, -1).to(e.dtype), e)
            parts.append(e)
        return torch.cat(parts, dim=1)

    def encode(self, x: Tensor, e: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` ``(B, *data_shape)``, ``e`` ``(B, E)`` -> posterior mean and log-variance ``(B, L)`` each."""
        if self.encoder is None:
            empty = e.new_zeros(x.shape[0], 0)
            return empty, empty
        mu, logvar = self.encoder(x, e)
        return full_precision(mu), full_precision(logvar)  # under autocast (bf16) the KL is still taken in fp32

    def decode(self, z: Tensor, e: Tensor) -> Tensor:
        """``z`` ``(..., B, L)``, ``e`` ``(B, E)`` -> likelihood parameters ``(..., B, PARAMS * D)`` (logits, means,
        or locations and log-scales, parameter by parameter), from the decoder's ``(N, PARAMS, *data_shape)``."""
        lead = z.shape[:-1]
        if z.dim() > 2:  # importance samples (S, B, L): the decoder takes rows, each with its item's embedding
            e = e.expand(*lead, e.shape[-1])
        n = math.prod(lead)  # not -1: z or e may be empty (no latent, no conditioner)
        out = self.decoder(z.reshape(n, z.shape[-1]), e.reshape(n, e.shape[-1]))
        return full_precision(out.reshape(*lead, math.prod(out.shape[1:])))  # the likelihood in fp32 under autocast

    def sample_prior(self, e: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """z ~ p(z | c) for each row of ``e`` ``(B, E)``: ``(B, L)`` (``(B, 0)`` without a latent)."""
        if self.prior is None:
            return e.new_zeros(e.shape[0], 0)
        return self.prior.sample(e, generator)

    def forward(
        self,
        x: Tensor,
        conditions: Mapping[str, Tensor],
        generator: torch.Generator | None = None,
        *,
        scored: Tensor | None = None,
        gsnn: bool = False,
        drop: Mapping[str, Tensor] | None = None,
    ) -> ELBOTerms:
        """Per-item terms for a batch ``x`` ``(B, *data_shape)`` with one reparameterised z each.

        ``scored`` ``(B, D)`` (1 = score) limits the likelihood terms to part of x; ``gsnn`` adds
        the GSNN term, for which z is drawn from the prior; ``drop`` is condition dropout
        (see :meth:`embed`).
        """
        e = self.embed(conditions, x.shape[0], drop)
        target = x.flatten(1)
        mu, logvar = self.encode(x, e)
        if self.prior is None:
            recon = self._nll(self.decode(mu, e), target, scored)
            return ELBOTerms(recon, torch.zeros_like(recon), mu, logvar, recon if gsnn else None)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + eps * torch.exp(0.5 * logvar)
        recon = self._nll(self.decode(z, e), target, scored)
        with _no_autocast(mu):
            kl = self.prior.kl(mu, logvar, e)
        terms = ELBOTerms(recon, kl, mu, logvar)
        if gsnn:
            terms.gsnn_nll = self._nll(self.decode(self.prior.sample(e, generator), e), target, scored)
        return terms

    def _nll(self, params: Tensor, target: Tensor, scored: Tensor | None) -> Tensor:
        """The likelihood's -log p, in full precision even under autocast (``train.precision: bf16``)."""
        with _no_autocast(params):
            return self.likelihood.nll(params, target, scored)

    @torch.no_grad()
    def log_likelihood(
        self,
        x: Tensor,
        conditions: Mapping[str, Tensor],
        samples: int,
        generator: torch.Generator | None = None,
        *,
        scored: Tensor | None = None,
        drop: Mapping[str, Tensor] | None = None,
    ) -> Tensor:
        """Importance-sampled log p(x | c) per item ``(B,)``, in nats, with q(z | x, c) as the proposal.

        log p(x|c) ~= logsumexp_s [log p(x|z_s,c) + log p(z_s|c) - log q(z_s|x,c)] - log S, z_s ~ q(z|x,c).
        It is a stochastic lower bound on log p(x|c) (in expectation) that tightens as ``samples`` (S) grows;
        S = 1 is a one-sample estimate of the ELBO. Without a latent it is exact: -log p(x|c). ``scored`` restricts
        it to part of x; ``drop`` gives items the absent embedding (see :meth:`embed`).
        """
        if samples < 1:
            raise ValueError(f"samples must be at least 1, got {samples}")
        e = self.embed(conditions, x.shape[0], drop)
        target = x.flatten(1)
        mu, logvar = self.encode(x, e)
        if self.prior is None:
            return -self.likelihood.nll(self.decode(mu, e), target, scored)
        out = []
        rows = max(1, min(IS_CHUNK_ROWS, IS_CHUNK_BYTES // (4 * self.row_width)))
        step = max(1, rows // samples)
        for start in range(0, x.shape[0], step):
            sl = slice(start, start + step)
            m, lv, ei, t = mu[sl], logvar[sl], e[sl], target[sl]
            eps = torch.randn((samples, *m.shape), generator=generator, device=m.device, dtype=m.dtype)
            z = m + eps * torch.exp(0.5 * lv)  # (S, b, L)
            log_w = (
                -self.likelihood.nll(self.decode(z, ei), t.expand(samples, *t.shape),
                                     None if scored is None else scored[sl])
                + self.prior.log_prob(z, ei)
                - gaussian_log_prob(z, m, lv)
            )
            out.append(torch.logsumexp(log_w, dim=0) - math.log(samples))
        return torch.cat(out)

    @torch.no_grad()
    def generate(
        self, conditions: Mapping[str, Tensor], num: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """Mean of p(x|z, c) for ``z ~ p(z|c)``: ``(num, *data_shape)``; conditions are ``(num, ...)``."""
        e = self.embed(conditions, num)
        z = self.sample_prior(e, generator)
        return self.likelihood.mean(self.decode(z, e)).reshape(num, *self.data_shape)

    @torch.no_grad()
    def reconstruct(
        self, x: Tensor, conditions: Mapping[str, Tensor], drop: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        """Mean of p(x|z=E[q(z|x,c)], c): ``(B, *data_shape)``; ``drop`` as in :meth:`embed`."""
        e = self.embed(conditions, x.shape[0], drop)
        mu, _ = self.encode(x, e)
        return self.likelihood.mean(self.decode(mu, e)).reshape(x.shape[0], *self.data_shape)

    def _device(self) -> torch.device:
        return next(self.parameters()).device
