"""The CVAE engine: shapes, the closed-form KL, likelihoods, conditioning, learning."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from condgen import ModelConfig
from condgen.engine import CVAE, gaussian_kl
from condgen.engine.likelihood import Bernoulli, Gaussian


def test_shapes_with_two_conditioners_in_order():
    model = CVAE(
        (1, 6, 6),
        ModelConfig(latent_dim=3, hidden=[16, 8]),
        embeddings={"a": nn.Linear(2, 4), "b": nn.Embedding(5, 2)},
        embed_dims={"a": 4, "b": 2},
    )
    assert model.order == ["a", "b"]
    assert model.e_dim == 6
    assert model.encoder[0].in_features == 36 + 6
    assert model.decoder[0].in_features == 3 + 6
    assert [m.out_features for m in model.decoder if isinstance(m, nn.Linear)] == [8, 16, 36]
    x = torch.rand(7, 1, 6, 6)
    conds = {"a": torch.randn(7, 2), "b": torch.randint(0, 5, (7,))}
    terms = model(x, conds)
    assert terms.recon_nll.shape == (7,) and terms.kl.shape == (7,)
    assert terms.mu.shape == (7, 3) and terms.logvar.shape == (7, 3)
    assert model.generate(conds, 7).shape == (7, 1, 6, 6)
    assert model.reconstruct(x, conds).shape == (7, 1, 6, 6)
    # the embedding order matters: swapping which net sees which input changes the result
    e = model.embed(conds, 7)
    assert torch.equal(e[:, :4], model.embeddings["a"](conds["a"]))


def test_plain_vae_has_no_condition_inputs():
    model = CVAE((10,), ModelConfig(latent_dim=2, hidden=[8]))
    assert model.e_dim == 0 and model.encoder[0].in_features == 10 and model.decoder[0].in_features == 2
    terms = model(torch.rand(4, 10), {})
    assert torch.isfinite(terms.neg_elbo).all()
    assert model.generate({}, 5).shape == (5, 10)


def test_missing_condition_is_named():
    model = CVAE((4,), ModelConfig(hidden=[4]), {"a": nn.Identity()}, {"a": 2})
    with pytest.raises(KeyError, match="'a'"):
        model(torch.rand(2, 4), {})


def test_kl_closed_form_matches_monte_carlo():
    gen = torch.Generator().manual_seed(0)
    mu = torch.tensor([[0.5, -1.0, 2.0]])
    logvar = torch.tensor([[0.2, -0.7, 0.9]])
    closed = gaussian_kl(mu, logvar).item()
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    z = mu + torch.exp(0.5 * logvar) * torch.randn(200_000, 3, generator=gen)
    mc = (q.log_prob(z) - p.log_prob(z)).sum(1).mean().item()
    assert closed == pytest.approx(mc, abs=0.02)
    assert closed == pytest.approx(torch.distributions.kl_divergence(q, p).sum().item(), rel=1e-5)
    assert gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4)).tolist() == [0.0, 0.0]


def test_bernoulli_nll_is_binary_cross_entropy_in_nats():
    logits = torch.tensor([[0.0, 2.0]])
    x = torch.tensor([[1.0, 0.0]])
    expected = math.log(2) + math.log(1 + math.exp(2))
    assert Bernoulli().nll(logits, x).item() == pytest.approx(expected, rel=1e-6)


def test_gaussian_nll_matches_torch_distributions():
    lik = Gaussian(3, std=0.5)
    mean, x = torch.randn(4, 3), torch.randn(4, 3)
    expected = -torch.distributions.Normal(mean, 0.5).log_prob(x).sum(1)
    assert torch.allclose(lik.nll(mean, x), expected, atol=1e-5)
    learnt = Gaussian(3, std=None)
    assert learnt.log_std.requires_grad and not lik.log_std.requires_grad


def test_training_steps_lower_the_negative_elbo():
    torch.manual_seed(0)
    prototypes = (torch.rand(4, 20) > 0.5).float()
    flips = (torch.rand(256, 20) < 0.05).float()
    x = (prototypes[torch.randint(0, 4, (256,))] - flips).abs()
    model = CVAE((20,), ModelConfig(latent_dim=2, hidden=[32]))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(1)
    start = model(x, {}, generator=gen).neg_elbo.mean().item()
    for _ in range(300):
        loss = model(x, {}, generator=gen).neg_elbo.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    end = model(x, {}, generator=gen).neg_elbo.mean().item()
    # four prototypes with 5% flipped bits: about log(4) + 20 * H(0.05) = 5.4 nats is reachable,
    # while an untrained model pays about 20 * log(2) = 13.9
    assert start > 13
    assert end < 8
