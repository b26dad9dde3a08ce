"""The CVAE engine: networks, latent, priors, likelihoods, the objective and the likelihood estimate."""

from .gaussian import gaussian_kl, gaussian_kl_between, gaussian_log_prob
from .likelihood import LIKELIHOODS, Likelihood, make_likelihood, parse_likelihood
from .model import CVAE, ELBOTerms
from .objective import Objective, make_objective
from .prior import ConditionalPrior, StandardPrior, make_prior

__all__ = [
    "CVAE",
    "ConditionalPrior",
    "ELBOTerms",
    "LIKELIHOODS",
    "Likelihood",
    "Objective",
    "StandardPrior",
    "gaussian_kl",
    "gaussian_kl_between",
    "gaussian_log_prob",
    "make_likelihood",
    "make_objective",
    "make_prior",
    "parse_likelihood",
]
