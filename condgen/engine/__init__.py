"""The CVAE engine: networks, latent, likelihoods and the ELBO."""

from .likelihood import make_likelihood
from .model import CVAE, ELBOTerms, gaussian_kl

__all__ = ["CVAE", "ELBOTerms", "gaussian_kl", "make_likelihood"]
