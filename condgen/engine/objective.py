"""The training objective as a weighted sum of named per-item terms.

The terms a model computes for each item, in nats (see :class:`condgen.engine.ELBOTerms`):

- ``recon_nll``: -log p(x | z, c) with z drawn from the encoder q(z | x, c);
- ``kl``: KL( q(z | x, c) || p(z | c) ), in closed form;
- ``gsnn_nll``: -log p(x | z, c) with z drawn from the prior p(z | c) instead: the Gaussian
  stochastic neural network (GSNN) term of Sohn et al. (2015), which scores the model the way
  it is used at test time.

``elbo`` is the negative ELBO, ``recon_nll + kl``. ``hybrid`` is Sohn et al.'s hybrid
objective, ``(1 - w) * (recon_nll + kl) + w * gsnn_nll`` with ``w = gsnn_weight``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from torch import Tensor


@dataclass(frozen=True)
class Objective:
    """``loss = sum(weight * term)`` per item, over the named terms with a weight."""

    name: str
    weights: Mapping[str, float] = field(default_factory=dict)

    @property
    def needs_gsnn(self) -> bool:
        return "gsnn_nll" in self.weights

    def loss(self, terms: Mapping[str, Tensor]) -> Tensor:
        """The per-item loss ``(B,)`` from per-item terms ``{name: (B,)}``."""
        total: Tensor | None = None
        for name, weight in self.weights.items():
            # a weight of 1 is left out, not multiplied: the seed's loss stays bit for bit what it was
            term = terms[name] if weight == 1.0 else weight * terms[name]
            total = term if total is None else total + term
        assert total is not None, "an objective has at least one term"
        return total


def make_objective(kind: str, gsnn_weight: float | None = None) -> Objective:
    """``elbo`` (the default) or ``hybrid`` with ``gsnn_weight`` in (0, 1]."""
    if kind == "elbo":
        return Objective("elbo", {"recon_nll": 1.0, "kl": 1.0})
    if kind == "hybrid":
        w = 0.5 if gsnn_weight is None else float(gsnn_weight)
        if not 0.0 < w <= 1.0:
            raise ValueError(f"gsnn_weight must be in (0, 1], got {w}")
        return Objective("hybrid", {"recon_nll": 1.0 - w, "kl": 1.0 - w, "gsnn_nll": w})
    raise ValueError(f"unknown objective {kind!r}; use elbo or hybrid")
