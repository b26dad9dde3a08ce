"""The likelihoods of natural images beyond the discretised logistic: the Gaussian whose std the decoder gives
per element (floored smoothly), the sigma-VAE's calibrated Gaussian (one std per channel, the root of the batch's
mean squared error), and the mixture of K discretised logistics (a probability of the 256 levels, K = 1 the
logistic exactly); their names parsed with their argument, refused in one line; each one trained end to end."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch.distributions import Normal

import condgen
from condgen.cli import main
from condgen.engine import CVAE
from condgen.engine.likelihood import (
    DEFAULT_MIN_STD,
    LIKELIHOODS,
    DiscretizedLogistic,
    DiscretizedLogisticMixture,
    GaussianPixel,
    GaussianShared,
    Likelihood,
    make_likelihood,
    parse_likelihood,
)
from helpers import one_error_line, toy_config

LEVELS = torch.arange(256, dtype=torch.float64) / 255


def mixture_params(logits, mu, log_scale) -> torch.Tensor:
    """One element's mixture as the decoder lays it out: the K logits, the K locations, the K log-scales."""
    return torch.tensor([[*logits, *mu, *log_scale]], dtype=torch.float64)


# -- the mixture of discretised logistics -------------------------------------------------------------------
@pytest.mark.parametrize("logits, mu, log_scale", [
    ([0.0], [0.3], [-3.0]),
    ([0.5, -1.0, 2.0], [0.1, 0.5, 0.93], [-4.0, -2.0, -7.5]),
    ([3.0, 3.0], [-0.2, 1.4], [-1.0, -5.0]),  # locations beyond [0, 1]: the open end bins take the mass
    ([-2.0, 0.0, 1.0, 0.3, -0.7], [0.0, 0.25, 0.5, 0.75, 1.0], [-12.0, -6.0, -3.0, -1.0, 1.0]),
])
def test_the_mixture_is_a_probability_of_the_256_levels_and_its_mean_their_expectation(logits, mu, log_scale):
    lik = make_likelihood(f"logistic-mixture:{len(logits)}", 1)
    params = mixture_params(logits, mu, log_scale).repeat(256, 1)
    p = torch.exp(-lik.nll(params, LEVELS[:, None]))
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-5)
    assert float(lik.mean(params[:1])) == pytest.approx(float((p * LEVELS).sum()), abs=2e-3)
    # the mixture's probability is its components', weighted
    weights = torch.softmax(torch.tensor(logits, dtype=torch.float64), 0)
    parts = [torch.exp(-DiscretizedLogistic().nll(torch.tensor([[m, s]], dtype=torch.float64).repeat(256, 1),
                                                 LEVELS[:, None])) for m, s in zip(mu, log_scale)]
    assert torch.allclose(p, sum(w * q for w, q in zip(weights, parts)), atol=1e-9)


def test_a_mixture_of_one_is_the_logistic_exactly():
    gen = torch.Generator().manual_seed(0)
    d = 50
    x = torch.randint(0, 256, (3, 4, d), generator=gen) / 255
    located = torch.randn(3, 4, 2 * d, generator=gen) * 3  # locations and log-scales, beyond the bounds too
    with_logit = torch.cat([torch.randn(3, 4, d, generator=gen), located], dim=-1)
    scored = (torch.rand(4, d, generator=gen) > 0.3).float()
    one, logistic = make_likelihood("logistic-mixture:1", (d,)), DiscretizedLogistic()
    assert one.params == 3 and one.DISCRETE
    for s in (None, scored):
        assert torch.equal(one.nll(with_logit, x, s), logistic.nll(located, x, s))
    assert torch.equal(one.mean(with_logit), logistic.mean(located))


def test_the_mixtures_gradients_stay_finite_at_its_extremes():
    # K = 3 components of D = 2 elements: the 3 logits, the 3 locations, the 3 log-scales, D numbers each
    raw = torch.tensor([[30.0, -30.0, 0.0, 0.0, -30.0, 30.0,  # logits
                         -3.0, 1.0, 4.0, 0.5, 0.0, 1.0,  # locations
                         -30.0, 30.0, -9.0, 0.0, -7.0, -7.0]], requires_grad=True)  # log-scales
    x = torch.tensor([[0.0, 1.0]])
    lik = make_likelihood("logistic-mixture:3", 2)
    assert lik.params == 9
    lik.nll(raw, x).sum().backward()
    assert torch.isfinite(raw.grad).all()


# -- the Gaussian with the decoder's std per element --------------------------------------------------------
def test_gaussian_pixel_is_a_normal_of_the_decoders_mean_and_floored_std():
    gen = torch.Generator().manual_seed(1)
    lik = make_likelihood("gaussian-pixel", (3, 2, 2), min_std=0.01)
    assert isinstance(lik, GaussianPixel) and lik.params == 2 and not lik.DISCRETE
    mean, raw = torch.randn(5, 12, generator=gen), torch.randn(5, 12, generator=gen) * 3 - 2
    x = torch.randn(5, 12, generator=gen)
    std = torch.exp(  # the floor, smooth: log std = log m + softplus(r - log m)
        math.log(0.01) + torch.nn.functional.softplus(raw - math.log(0.01)))
    params = torch.cat([mean, raw], dim=1)
    assert torch.allclose(lik.nll(params, x), -Normal(mean, std).log_prob(x).sum(1), rtol=1e-5)
    assert torch.equal(lik.mean(params), mean)
    # well above the floor (log 0.01 = -4.6) the decoder's number is the log-std itself
    assert float(lik.log_std(torch.tensor([[0.0, 3.0]]))) == pytest.approx(3.0, abs=1e-3)
    scored = torch.zeros(5, 12)
    scored[:, :4] = 1
    assert torch.allclose(lik.nll(params, x, scored), -Normal(mean, std).log_prob(x)[:, :4].sum(1), rtol=1e-5)


def test_gaussian_pixels_std_never_falls_below_its_floor_and_keeps_a_gradient_there():
    lik = GaussianPixel(4, min_std=0.05)
    raw = torch.tensor([[0.0, 0.0, 0.0, 0.0, -1e4, -50.0, math.log(0.05), 5.0]], requires_grad=True)
    std = torch.exp(lik.log_std(raw)).detach()
    assert (std >= 0.05 * (1 - 1e-6)).all() and float(std[0, -1]) == pytest.approx(math.exp(5.0), rel=1e-3)
    assert float(std[0, 2]) == pytest.approx(0.05 * 2, rel=1e-6)  # at r = log m: m e^softplus(0) = 2m
    x = torch.tensor([[0.0, 0.0, 0.0, 0.0]])
    lik.nll(raw, x).sum().backward()
    # a perfect mean wants a smaller std: the gradient pushes r down, however close to the floor it is
    assert (raw.grad[0, 5:] > 0).all() and torch.isfinite(raw.grad).all()
    assert GaussianPixel(4).min_std == DEFAULT_MIN_STD == 1 / 255
    with pytest.raises(ValueError, match="must be above 0, got 0"):
        GaussianPixel(4, min_std=0)


# -- the sigma-VAE's calibrated Gaussian ----------------------------------------------------------------------
def test_gaussian_shareds_std_is_the_root_of_each_channels_mean_squared_error():
    gen = torch.Generator().manual_seed(2)
    lik = make_likelihood("gaussian-shared", (3, 4, 4), min_std=1e-3)
    assert isinstance(lik, GaussianShared) and lik.params == 1 and lik.channels == 3
    x, mean = torch.rand(6, 48, generator=gen), torch.rand(6, 48, generator=gen)
    mean[:, 16:32] = x[:, 16:32] * 0.9  # channel 1 fits well, the others not
    err = (x - mean).pow(2).reshape(6, 3, 16)
    sigma = err.mean(dim=(0, 2)).sqrt()
    assert torch.allclose(lik.std(mean, x), sigma, rtol=1e-6)
    per_element = sigma.repeat_interleave(16)
    assert torch.allclose(lik.nll(mean, x), -Normal(mean, per_element).log_prob(x).sum(1), rtol=1e-5)
    # with sigma^2 the MSE, each scored element costs 1/2 + log sigma_c + log(2 pi)/2 on average
    expected = 16 * (1.5 * math.log(2 * math.pi) + 1.5 + float(sigma.log().sum()))
    assert float(lik.nll(mean, x).mean()) == pytest.approx(expected, rel=1e-5)
    # a part of x left unscored neither counts nor calibrates
    scored = torch.ones(6, 48)
    scored[:, :8] = 0
    sigma0 = err[:, 0, 8:].mean().sqrt()
    assert float(lik.std(mean, x, scored)[0]) == pytest.approx(float(sigma0), rel=1e-6)
    # calibrated, not learned: no gradient through sigma, so d nll / d mean = (mean - x) / sigma^2
    mean.requires_grad_(True)
    lik.nll(mean, x).sum().backward()
    assert torch.allclose(mean.grad, (mean - x).detach() / per_element**2, rtol=1e-5)


def test_gaussian_shareds_std_is_floored_and_shared_over_importance_samples():
    lik = GaussianShared((2,), min_std=0.02)  # flat data: one std for all of it
    x = torch.tensor([[0.3, 0.7], [0.1, 0.2]])
    assert lik.channels == 1 and torch.equal(lik.std(x, x), torch.tensor([0.02]))
    assert torch.allclose(lik.nll(x, x), -Normal(x, 0.02).log_prob(x).sum(1))
    # (S, B, D) params against x (B, D), with the scored part (B, D): one sigma over every row
    params = x + torch.tensor([0.1, -0.2, 0.3]).reshape(3, 1, 1)
    sigma = math.sqrt((0.01 + 0.04 + 0.09) / 3)
    scored = torch.ones(2, 2)
    assert float(lik.std(params, x.expand(3, 2, 2), scored)) == pytest.approx(sigma, rel=1e-6)
    assert torch.allclose(lik.nll(params, x, scored), -Normal(params, sigma).log_prob(x).sum(-1), rtol=1e-5)


@pytest.mark.parametrize("likelihood", ["gaussian-pixel", "gaussian-shared", "logistic-mixture:3"])
def test_the_cvae_decodes_each_new_likelihoods_parameters_and_estimates_its_likelihood(likelihood):
    torch.manual_seed(0)
    for arch in ("mlp", "conv"):
        config = condgen.ModelConfig.model_validate({"arch": arch, "latent_dim": 3, "hidden": [16], "channels": [4],
                                                     "likelihood": likelihood})
        model = CVAE((1, 6, 6), config)
        x = torch.randint(0, 256, (5, 1, 6, 6)) / 255
        params = model.decode(torch.randn(2, 5, 3), torch.zeros(5, 0))
        assert params.shape == (2, 5, model.likelihood.params * 36)
        assert model.row_width >= model.likelihood.params * 36
        log_p = model.log_likelihood(x, {}, samples=4)
        assert log_p.shape == (5,) and torch.isfinite(log_p).all()
        assert model.reconstruct(x, {}).shape == (5, 1, 6, 6)


# -- names, arguments and the config ---------------------------------------------------------------------------
def test_every_likelihood_is_built_the_same_way_and_keeps_the_contract():
    for name, cls in LIKELIHOODS.items():
        spec = name if cls.ARGUMENT is None else f"{name}:2"
        lik = make_likelihood(spec, (2, 3, 3))
        assert isinstance(lik, Likelihood) and cls.name == name and type(lik) is cls
        params = torch.zeros(4, lik.params * 18)
        x = torch.rand(4, 18) if not cls.DISCRETE else torch.randint(0, 256, (4, 18)) / 255
        assert lik.nll(params, x).shape == (4,) and lik.mean(params).shape == (4, 18)
    assert parse_likelihood("logistic-mixture:7") == (DiscretizedLogisticMixture, 7)
    assert parse_likelihood("gaussian") == (LIKELIHOODS["gaussian"], None)
    assert {n for n, c in LIKELIHOODS.items() if c.DISCRETE} == {"logistic", "logistic-mixture"}


@pytest.mark.parametrize("spec, message", [
    ("logistic-mixture:0", "likelihood 'logistic-mixture' takes K from 1 to 10 components, got logistic-mixture:0; "
                           "e.g. logistic-mixture:5"),
    ("logistic-mixture:x", "got logistic-mixture:x; e.g. logistic-mixture:5"),
    ("logistic-mixture:11", "got logistic-mixture:11"),
    ("logistic-mixture:", "got logistic-mixture:; e.g."),
    ("logistic-mixture", "needs its number of components after a colon; e.g. logistic-mixture:5"),
    ("bernoulli:2", "likelihood 'bernoulli' takes no argument, got bernoulli:2; use bernoulli"),
    ("poisson", "unknown likelihood 'poisson'"),
    ("poisson:3", "unknown likelihood 'poisson'"),
])
def test_a_bad_likelihood_name_is_refused_naming_the_value_and_the_fix(spec, message):
    with pytest.raises(ValueError) as err:
        make_likelihood(spec, 4)
    assert message in str(err.value)
    with pytest.raises(condgen.ConfigError) as err:
        condgen.RunConfig.parse({"model": {"likelihood": spec}})
    text = str(err.value)
    assert "\n" not in text and f"model.likelihood = {spec!r}: " in text and message in text


def test_the_std_floor_is_a_setting_of_the_learned_std_gaussians_only():
    assert condgen.ModelConfig(likelihood="gaussian-pixel").gaussian_min_std == 1 / 255  # stored filled in
    assert condgen.ModelConfig(likelihood="gaussian-shared", gaussian_min_std=0.1).gaussian_min_std == 0.1
    assert condgen.ModelConfig(likelihood="logistic-mixture:2").gaussian_min_std is None
    for likelihood in ("bernoulli", "gaussian", "logistic-mixture:4"):
        with pytest.raises(condgen.ConfigError) as err:
            condgen.RunConfig.parse({"model": {"likelihood": likelihood, "gaussian_min_std": 0.01}})
        assert str(err.value) == (f"invalid config: model.gaussian_min_std applies only to model.likelihood: "
                                  f"gaussian-pixel or gaussian-shared (it is {likelihood!r}); remove it")
    with pytest.raises(condgen.ConfigError, match="model.gaussian_std applies only to model.likelihood: gaussian "
                                                  r"\(it is 'gaussian-pixel'\)"):
        condgen.RunConfig.parse({"model": {"likelihood": "gaussian-pixel", "gaussian_std": 0.1}})


def test_the_command_line_refuses_a_bad_floor_in_one_line(toy, capsys, tmp_path):
    for flags, message in [
        (["--gaussian-min-std", "0.01"], "model.gaussian_min_std applies only to model.likelihood: gaussian-pixel "
                                         "or gaussian-shared (it is 'bernoulli'); remove it"),
        (["--likelihood", "gaussian-pixel", "--gaussian-min-std", "0"],
         "model.gaussian_min_std = 0.0: Input should be greater than 0"),
        (["--likelihood", "logistic-mixture:0"], "model.likelihood = 'logistic-mixture:0': likelihood "
                                                 "'logistic-mixture' takes K from 1 to 10"),
    ]:
        assert main(["train", "--dataset", "toy", "--conditioner", "label:num_classes=2", *flags,
                     "--out", str(tmp_path / "run")]) == 2
        assert message in one_error_line(capsys)
        assert not (tmp_path / "run").exists()


# -- end to end ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("likelihood, min_std", [("gaussian-pixel", 0.02), ("gaussian-shared", None)])
def test_the_learned_std_gaussians_train_and_evaluate(toy, tmp_path, likelihood, min_std):
    base = toy_config(epochs=1).model_dump()
    base["model"].update(likelihood=likelihood, **({"gaussian_min_std": min_std} if min_std else {}))
    run = condgen.train(condgen.RunConfig.parse(base), tmp_path / "run", progress=False, pictures=False)
    assert run.config.model.gaussian_min_std == (min_std or 1 / 255)
    figures = condgen.evaluate(run, samples=3)
    assert math.isfinite(figures["test_neg_elbo"]) and math.isfinite(figures["test_is_nll"])
    assert "test_is_nll_bits_per_dim" not in figures  # a density: no code length
    stored = json.loads((tmp_path / "run" / "config.json").read_text())["model"]
    assert stored["likelihood"] == likelihood and stored["gaussian_min_std"] == (min_std or 1 / 255)
    samples = condgen.load_run(tmp_path / "run").sample({"label": 1}, num=3, seed=0)
    assert samples.shape == (3, 1, 6, 6) and torch.isfinite(samples).all()


def test_a_logistic_mixture_trains_on_mnist_levels_and_evaluate_prints_bits_per_dimension(mnist_dir, tmp_path,
                                                                                          capsys):
    run = tmp_path / "run"
    assert main(["train", "--conditioner", "label", "--data-dir", str(mnist_dir), "--likelihood",
                 "logistic-mixture:3", "--train-limit", "300", "--test-limit", "100", "--epochs", "1",
                 "--hidden", "32", "--latent-dim", "4", "--device", "cpu", "--no-pictures", "--out", str(run)]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert 0 < rows[-1]["test_neg_elbo"] < 784 * math.log(256)  # below a uniform guess over the levels
    capsys.readouterr()
    assert main(["evaluate", str(run), "--samples", "3"]) == 0
    assert "bits_per_dim" in capsys.readouterr().out
    assert main(["evaluate", str(run), "--samples", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["test_is_nll_bits_per_dim"] == pytest.approx(result["test_is_nll"] / (784 * math.log(2)), rel=1e-9)
    assert 0 < result["test_is_nll_bits_per_dim"] < 8
    samples = condgen.load_run(run).sample({"label": 3}, num=2, seed=0)
    assert samples.shape == (2, 1, 28, 28) and 0 <= float(samples.min()) and float(samples.max()) <= 1


def test_an_unknown_likelihood_in_a_config_lists_the_registered_ones_and_how_to_add_one():
    with pytest.raises(condgen.ConfigError) as err:
        condgen.RunConfig.parse({"model": {"likelihood": "poisson:3"}})
    assert str(err.value) == (
        "invalid config: model.likelihood = 'poisson:3': unknown likelihood 'poisson'; installed likelihoods: "
        "bernoulli, gaussian, gaussian-pixel, gaussian-shared, logistic, logistic-mixture (`condgen plugins` lists "
        "plugins; `pip install` one that provides 'poisson')")
