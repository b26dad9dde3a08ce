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
    lik = Gaussian(3, gaussian_std=0.5)
    mean, x = torch.randn(4, 3), torch.randn(4, 3)
    expected = -torch.distributions.Normal(mean, 0.5).log_prob(x).sum(1)
    assert torch.allclose(lik.nll(mean, x), expected, atol=1e-5)
    learnt = Gaussian(3)
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


# -- priors, the scored part, the deterministic baseline, the objective -------------------------
from condgen.engine import ConditionalPrior, gaussian_kl_between, gaussian_log_prob, make_objective  # noqa: E402


def test_kl_between_gaussians_and_log_prob_match_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    mu_q, lv_q, mu_p, lv_p = (torch.randn(5, 3, generator=gen) for _ in range(4))
    q = torch.distributions.Normal(mu_q, torch.exp(0.5 * lv_q))
    p = torch.distributions.Normal(mu_p, torch.exp(0.5 * lv_p))
    expected = torch.distributions.kl_divergence(q, p).sum(1)
    assert torch.allclose(gaussian_kl_between(mu_q, lv_q, mu_p, lv_p), expected, atol=1e-5)
    z = torch.randn(7, 5, 3, generator=gen)
    assert torch.allclose(gaussian_log_prob(z, mu_q, lv_q), q.log_prob(z).sum(-1), atol=1e-5)
    # against N(0, I) the general form is the seed's closed form
    zeros = torch.zeros(5, 3)
    assert torch.allclose(gaussian_kl_between(mu_q, lv_q, zeros, zeros), gaussian_kl(mu_q, lv_q), atol=1e-6)


def _conditional_model(latent: int = 2) -> CVAE:
    config = ModelConfig(latent_dim=latent, hidden=[8], prior="conditional", prior_hidden=[])
    return CVAE((4,), config, {"c": nn.Identity()}, {"c": 2})


def test_conditional_prior_gives_the_kl_and_the_samples():
    model = _conditional_model()
    assert isinstance(model.prior, ConditionalPrior)
    net = model.prior.net[0]  # prior_hidden [] is one linear layer: e (2) -> mean, log-variance (2 + 2)
    with torch.no_grad():
        net.weight.zero_()
        net.weight[0, 0] = 1.0  # the prior mean of z_1 is the condition's first entry
        net.bias.copy_(torch.tensor([0.0, -2.0, math.log(0.25), math.log(4.0)]))
    c = torch.tensor([[3.0, 0.0], [-1.0, 0.0]])
    mu_p, logvar_p = model.prior.params(c)
    assert mu_p.tolist() == [[3.0, -2.0], [-1.0, -2.0]]
    x = torch.rand(2, 4)
    terms = model(x, {"c": c}, generator=torch.Generator().manual_seed(0))
    expected = gaussian_kl_between(terms.mu, terms.logvar, mu_p, logvar_p)
    assert torch.allclose(terms.kl, expected) and not torch.allclose(terms.kl, gaussian_kl(terms.mu, terms.logvar))
    # generation draws z from p(z|c): N((3, -2), diag(0.25, 4)) for the first condition
    z = model.sample_prior(c[:1].expand(20000, 2), torch.Generator().manual_seed(1))
    assert z.mean(0).tolist() == pytest.approx([3.0, -2.0], abs=0.05)
    assert z.std(0).tolist() == pytest.approx([0.5, 2.0], rel=0.03)


def test_conditional_prior_needs_a_condition():
    with pytest.raises(ValueError, match="needs at least one conditioner"):
        CVAE((4,), ModelConfig(latent_dim=2, hidden=[8], prior="conditional"))


def test_latent_dim_0_is_the_deterministic_decoder():
    model = CVAE((4,), ModelConfig(latent_dim=0, hidden=[8]), {"c": nn.Identity()}, {"c": 2})
    assert model.encoder is None and model.prior is None and model.decoder[0].in_features == 2
    x, conds = torch.rand(3, 4), {"c": torch.randn(3, 2)}
    terms = model(x, conds, generator=torch.Generator().manual_seed(0))
    assert terms.kl.tolist() == [0.0, 0.0, 0.0] and terms.mu.shape == (3, 0)
    expected = Bernoulli().nll(model.decode(torch.zeros(3, 0), conds["c"]), x)
    assert torch.equal(terms.recon_nll, expected) and torch.equal(terms.neg_elbo, expected)
    assert torch.equal(model.log_likelihood(x, conds, samples=10), -expected)  # exact: nothing to sample
    a = model.generate(conds, 3, torch.Generator().manual_seed(1))
    b = model.generate(conds, 3, torch.Generator().manual_seed(2))
    assert torch.equal(a, b)  # the mean of p(x|c): no randomness left


def test_the_scored_part_leaves_given_elements_out():
    logits = torch.tensor([[0.0, 2.0, -1.0]])
    x = torch.tensor([[1.0, 0.0, 1.0]])
    scored = torch.tensor([[1.0, 0.0, 1.0]])  # the middle element is given by the condition
    by_hand = math.log(2) + math.log(1 + math.exp(1))  # -log sigmoid(0) - log sigmoid(-1)
    assert Bernoulli().nll(logits, x, scored).item() == pytest.approx(by_hand, rel=1e-6)
    assert Bernoulli().nll(logits, x).item() == pytest.approx(by_hand + math.log(1 + math.exp(2)), rel=1e-6)
    lik = Gaussian(3, gaussian_std=1.0)
    per_element = -torch.distributions.Normal(logits, 1.0).log_prob(x)
    assert lik.nll(logits, x, scored).item() == pytest.approx((per_element[0, 0] + per_element[0, 2]).item(), rel=1e-6)


def test_hybrid_objective_weighs_the_named_terms():
    terms = {"recon_nll": torch.tensor([10.0, 20.0]), "kl": torch.tensor([1.0, 2.0]),
             "gsnn_nll": torch.tensor([30.0, 40.0])}
    assert make_objective("elbo").loss(terms).tolist() == [11.0, 22.0]
    hybrid = make_objective("hybrid", 0.25)
    assert hybrid.needs_gsnn and not make_objective("elbo").needs_gsnn
    assert hybrid.loss(terms).tolist() == pytest.approx([0.75 * 11 + 0.25 * 30, 0.75 * 22 + 0.25 * 40])
    assert make_objective("hybrid").weights["gsnn_nll"] == 0.5
    with pytest.raises(ValueError, match="gsnn_weight must be in"):
        make_objective("hybrid", 1.5)


def test_gsnn_term_decodes_a_z_from_the_prior():
    model = CVAE((6,), ModelConfig(latent_dim=2, hidden=[8]))
    x = torch.rand(4, 6)
    terms = model(x, {}, generator=torch.Generator().manual_seed(0), gsnn=True)
    gen = torch.Generator().manual_seed(0)
    torch.randn(4, 2, generator=gen)  # the encoder's noise comes first
    z_prior = torch.randn(4, 2, generator=gen)
    expected = Bernoulli().nll(model.decode(z_prior, torch.zeros(4, 0)), x)
    assert torch.allclose(terms.gsnn_nll, expected)
    assert model(x, {}).gsnn_nll is None  # computed only when asked for
