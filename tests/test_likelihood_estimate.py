"""The importance-sampled log-likelihood on a linear-Gaussian model, where log p(x|c) is exact.

With z ~ p(z|c) = N(m(c), diag(v(c))) and x = W z + V c + b + noise (std s), p(x|c) is the Gaussian
N(W m(c) + V c + b, W diag(v(c)) W^T + s^2 I). A CVAE with linear networks and a Gaussian likelihood
of fixed std is exactly this model, and its encoder is a (deliberately imperfect) proposal.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from condgen import ModelConfig
from condgen.engine import CVAE

D, L, E, STD = 5, 2, 2, 0.5


def linear_gaussian(prior: str) -> CVAE:
    """Random linear decoder and prior; the encoder is the exact posterior's mean with twice the
    posterior's marginal variances: a good but imperfect (diagonal, wider) proposal."""
    config = ModelConfig(latent_dim=L, hidden=[], decoder_hidden=[], likelihood="gaussian", gaussian_std=STD,
                         prior=prior, prior_hidden=[] if prior == "conditional" else None)
    model = CVAE((D,), config, {"c": nn.Identity()}, {"c": E}).double()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.7 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        a, a0, v = torch.zeros(L, E, dtype=torch.float64), torch.zeros(L, dtype=torch.float64), torch.ones(L)
        if prior == "conditional":  # mean linear in c, variance constant: the posterior stays affine in (x, c)
            net = model.prior.net[0]
            net.weight[L:] = 0.0
            net.bias[L:] = torch.tensor([math.log(0.7), math.log(1.5)])
            a, a0, v = net.weight[:L], net.bias[:L], net.bias[L:].exp()
        w, vc, b = model.decoder[0].weight[:, :L], model.decoder[0].weight[:, L:], model.decoder[0].bias
        cov = torch.linalg.inv(torch.diag(1 / v.double()) + w.T @ w / STD**2)
        enc = model.encoder[0]
        enc.weight[:L, :D] = cov @ w.T / STD**2
        enc.weight[:L, D:] = cov @ (-w.T @ vc / STD**2 + torch.diag(1 / v.double()) @ a)
        enc.bias[:L] = cov @ (-w.T @ b / STD**2 + a0 / v.double())
        enc.weight[L:] = 0.0
        enc.bias[L:] = torch.log(2 * torch.diag(cov))
    return model


def exact_log_p(model: CVAE, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    dec = model.decoder[0]  # x mean = W z + V c + b with dec.weight = [W | V]
    w, v, b = dec.weight[:, :L], dec.weight[:, L:], dec.bias
    if model.config.prior == "conditional":
        m, logvar = model.prior.params(c)
    else:
        m, logvar = torch.zeros(c.shape[0], L, dtype=c.dtype), torch.zeros(c.shape[0], L, dtype=c.dtype)
    out = []
    for i in range(x.shape[0]):
        cov = w @ torch.diag(logvar[i].exp()) @ w.T + STD**2 * torch.eye(D, dtype=x.dtype)
        mean = w @ m[i] + v @ c[i] + b
        out.append(torch.distributions.MultivariateNormal(mean, cov).log_prob(x[i]))
    return torch.stack(out)


def data(model: CVAE, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` pairs (x, c) drawn from the model itself."""
    gen = torch.Generator().manual_seed(seed)
    c = torch.randn(n, E, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        z = model.sample_prior(c, gen)
        x = model.decode(z, c) + STD * torch.randn(n, D, generator=gen, dtype=torch.float64)
    return x, c


@pytest.mark.parametrize("prior", ["standard", "conditional"])
def test_estimate_converges_to_the_exact_log_likelihood_and_stays_below_it(prior):
    model = linear_gaussian(prior)
    x, c = data(model, 40, seed=1)
    exact = exact_log_p(model, x, c).detach()

    errors = {}
    for samples in (1, 10, 100, 2000):
        est = model.log_likelihood(x, {"c": c}, samples, torch.Generator().manual_seed(2))
        errors[samples] = (exact - est).abs().mean().item()
        # a lower bound in expectation: the mean estimate does not exceed the truth beyond noise
        assert (est - exact).mean().item() < 0.02
    assert errors[1] > errors[10] > errors[100] > errors[2000]
    assert errors[1] > 0.3 and errors[2000] < 0.03  # nats per item: 0.65 at S = 1, 0.014 at S = 2000
    # S = 1 is the ELBO in expectation: the IS estimate with S = 100 beats the bound on average
    elbo = -model(x, {"c": c}, torch.Generator().manual_seed(3)).neg_elbo.detach()
    est100 = model.log_likelihood(x, {"c": c}, 100, torch.Generator().manual_seed(4))
    assert est100.mean() > elbo.mean() + 0.05


def test_estimate_is_batched_in_chunks(monkeypatch):
    import condgen.engine.model as engine_model

    model = linear_gaussian("standard")
    x, c = data(model, 30, seed=5)
    exact = exact_log_p(model, x, c).detach()
    monkeypatch.setattr(engine_model, "IS_CHUNK_ROWS", 7 * 500)  # 7 items a chunk: five chunks, the last of 2
    chunked = model.log_likelihood(x, {"c": c}, 500, torch.Generator().manual_seed(6))
    assert chunked.shape == (30,)
    error = (chunked - exact).abs()
    assert error.mean().item() < 0.05 and error[-2:].max().item() < 0.1  # the last chunk's two items too
