"""The conditional VAE of Sohn et al. (2015): an MLP or convolutional encoder and decoder
(``model.arch``, :mod:`condgen.engine.conv`), and an MLP prior network.

Shapes: ``B`` batch, ``D`` flattened data size, ``E`` total embedding width (sum over
conditioners, in config order), ``L`` latent size, ``S`` importance samples.
With ``L = 0`` there is no latent: the model is the deterministic decoder p(x | c), the
baseline Sohn et al. compare against, with no encoder and no KL.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn

from .conv import ConvDecoder, ConvEncoder
from .gaussian import gaussian_log_prob
from .likelihood import LIKELIHOODS, make_likelihood
from .networks import MLPDecoder, MLPEncoder, mlp
from .prior import make_prior


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


class CVAE(nn.Module):
    """Encoder q(z|x, c), decoder p(x|z, c), prior p(z|c), reparameterised diagonal Gaussian latent.

    ``embeddings`` maps each conditioner's name to its embedding module, in the order their
    outputs are concatenated; with none, this is a plain VAE. Each conditioner named in
    ``absent`` also gets a learned "absent" embedding, which stands in for its condition where
    that is left out: dropped in training (condition dropout), or not given when generating.
    """

    def __init__(
        self,
        data_shape: Sequence[int],
        config: ModelSpec,
        embeddings: Mapping[str, nn.Module] | None = None,
        embed_dims: Mapping[str, int] | None = None,
        absent: Sequence[str] = (),
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
        x_dim = math.prod(self.data_shape)
        e_dim = sum(embed_dims.values())
        self.x_dim, self.e_dim, self.latent_dim = x_dim, e_dim, config.latent_dim
        latent = config.latent_dim
        # PARAMS numbers per element of x: a logit, a mean, or a location and a log-scale
        params = LIKELIHOODS[config.likelihood].PARAMS
        self.encoder: nn.Module | None
        if config.arch == "conv":
            self.encoder = (ConvEncoder(self.data_shape, e_dim, config.channels, config.hidden, 2 * latent,
                                        config.activation) if latent else None)
            self.decoder: nn.Module = ConvDecoder(self.data_shape, latent + e_dim, e_dim, config.channels,
                                                  config.decoder_widths, params, config.activation)
        else:  # the seed's MLPs, made in the seed's order: the same initial weights
            self.encoder = (MLPEncoder(*mlp(x_dim + e_dim, config.hidden, 2 * latent, config.activation))
                            if latent else None)
            self.decoder = MLPDecoder(*mlp(latent + e_dim, config.decoder_widths, params * x_dim, config.activation))
        self.likelihood = make_likelihood(config.likelihood, x_dim, config.gaussian_std)
        # built after the decoder, so the seed's weights draw the same initial values as before priors existed
        self.prior = (
            make_prior(config.prior, e_dim, latent, config.prior_widths, config.activation) if latent else None
        )
        self.absent = nn.ParameterDict({n: nn.Parameter(torch.zeros(embed_dims[n])) for n in absent})

    @property
    def row_width(self) -> int:
        """The most numbers one row (an item, or one of its importance samples) holds at once in the decoder:
        its widest layer, a conv stage's maps (channels x H x W), or the likelihood's parameters."""
        widths = [LIKELIHOODS[self.config.likelihood].PARAMS * self.x_dim, self.x_dim]
        for layer in self.decoder.modules():
            if isinstance(layer, nn.Linear):
                widths.append(layer.out_features)
        if isinstance(self.decoder, ConvDecoder):
            widths.append(self.decoder.widest_maps)
        return max(widths)

    def embed(
        self, conditions: Mapping[str, Tensor], batch_size: int, drop: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        """Concatenated embeddings ``(B, E)`` of ``conditions`` (name -> ``(B, ...)``).

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
                parts.append(self.absent[n].expand(batch_size, -1))
                continue
            e = self.embeddings[n](conditions[n])
            if drop is not None and n in drop:
                e = torch.where(drop[n].unsqueeze(1), self.absent[n].to(e.dtype), e)
            parts.append(e)
        return torch.cat(parts, dim=1)

    def encode(self, x: Tensor, e: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` ``(B, *data_shape)``, ``e`` ``(B, E)`` -> posterior mean and log-variance ``(B, L)`` each."""
        if self.encoder is None:
            empty = e.new_zeros(x.shape[0], 0)
            return empty, empty
        mu, logvar = self.encoder(x, e).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: Tensor, e: Tensor) -> Tensor:
        """``z`` ``(..., B, L)``, ``e`` ``(B, E)`` -> likelihood parameters ``(..., B, PARAMS * D)`` (logits, means,
        or locations and log-scales)."""
        return self.decoder(z, e)

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
            recon = self.likelihood.nll(self.decode(mu, e), target, scored)
            return ELBOTerms(recon, torch.zeros_like(recon), mu, logvar, recon if gsnn else None)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + eps * torch.exp(0.5 * logvar)
        recon = self.likelihood.nll(self.decode(z, e), target, scored)
        terms = ELBOTerms(recon, self.prior.kl(mu, logvar, e), mu, logvar)
        if gsnn:
            terms.gsnn_nll = self.likelihood.nll(self.decode(self.prior.sample(e, generator), e), target, scored)
        return terms

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
