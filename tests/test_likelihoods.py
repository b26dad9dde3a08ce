"""The discretised logistic likelihood of 8-bit images: a probability of the 256 levels (it sums to 1), its
mean the expected level, finite gradients at its extremes; trained and evaluated through the command line on
real MNIST with bits per dimension; refused, in one line, for data that are not levels."""

from __future__ import annotations

import json
import math

import pytest
import torch

import condgen
from condgen.cli import main
from condgen.engine.likelihood import DiscretizedLogistic
from helpers import toy_config

LEVELS = torch.arange(256, dtype=torch.float64) / 255


@pytest.mark.parametrize("mu, log_scale", [(0.3, -3.0), (0.0, -1.5), (1.0, -2.0), (0.5, 1.0), (0.77, -7.5),
                                           (-0.4, -1.0), (1.3, -5.0), (0.2, -12.0)])
def test_the_logistic_is_a_probability_of_the_256_levels_and_its_mean_their_expectation(mu, log_scale):
    lik = DiscretizedLogistic()
    params = torch.tensor([[mu, log_scale]], dtype=torch.float64).repeat(256, 1)
    p = torch.exp(-lik.nll(params, LEVELS[:, None]))
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-5)
    expected = float((p * LEVELS).sum())
    assert float(lik.mean(params[:1])) == pytest.approx(expected, abs=2e-3)


def test_the_logistic_scores_a_sharp_guess_near_zero_nats_and_a_wrong_one_high():
    lik = DiscretizedLogistic()
    x = torch.tensor([[0.0, 100 / 255, 1.0]])
    sharp = torch.tensor([[0.0, 100 / 255, 1.0, -9.0, -9.0, -9.0]])  # locations on the levels, scales at the bound
    # a half bin 4.3 scales wide: 0.027 nats inside, half that at an open end
    half = torch.sigmoid(torch.tensor(0.5 / 255 * math.exp(7 + math.log(2)), dtype=torch.float64)).item()
    inner, end = -math.log(2 * half - 1), -math.log(half)
    assert float(lik.nll(sharp, x)) == pytest.approx(inner + 2 * end, rel=1e-4) and 0.02 < inner < 0.03
    wrong = torch.tensor([[0.5, 0.9, 0.1, -9.0, -9.0, -9.0]])
    assert float(lik.nll(wrong, x)) > 100
    scored = torch.tensor([[0.0, 1.0, 0.0]])  # only the middle element counts
    assert float(lik.nll(wrong, x, scored)) == pytest.approx(float(lik.nll(wrong[:, [1, 4]], x[:, 1:2])), rel=1e-6)


def test_the_logistics_gradients_stay_finite_at_its_extremes():
    raw = torch.tensor([[-3.0, 0.0, 0.5, 1.0, 4.0, -30.0, -30.0, 3.0, 0.0, 30.0]], requires_grad=True)
    x = torch.tensor([[0.0, 0.0, 128 / 255, 1.0, 1.0]])
    DiscretizedLogistic().nll(raw, x).sum().backward()
    assert torch.isfinite(raw.grad).all()


def test_logistic_trains_on_mnist_levels_and_evaluate_reports_bits_per_dimension(mnist_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--conditioner", "label", "--data-dir", str(mnist_dir), "--likelihood", "logistic",
                 "--train-limit", "1000", "--test-limit", "200", "--epochs", "2", "--hidden", "64",
                 "--latent-dim", "4", "--device", "cpu", "--out", str(run)]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # the data are levels: at most 8 bits a pixel, 784 * ln 256 = 4347 nats for a uniform guess
    assert rows[-1]["test_neg_elbo"] < rows[0]["test_neg_elbo"] < 784 * math.log(256)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--samples", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["test_is_nll_bits_per_dim"] == pytest.approx(result["test_is_nll"] / (784 * math.log(2)), rel=1e-9)
    assert 0 < result["test_is_nll_bits_per_dim"] < 8
    loaded = condgen.load_run(run)
    samples = loaded.sample({"label": 3}, num=4, seed=0)
    assert samples.shape == (4, 1, 28, 28) and 0 <= float(samples.min()) and float(samples.max()) <= 1


def test_a_bernoulli_runs_figures_have_no_bits_per_dimension(toy, tmp_path):
    run = condgen.train(toy_config(epochs=1), tmp_path / "run", progress=False, pictures=False)
    figures = condgen.evaluate(run, samples=3)
    assert "test_is_nll" in figures and "test_is_nll_bits_per_dim" not in figures


def test_logistic_on_data_that_are_not_levels_is_one_config_error_with_the_fix(toy, tmp_path):
    config = condgen.RunConfig.parse({**toy_config().model_dump(), "model": {"likelihood": "logistic",
                                                                             "hidden": [16]}})
    with pytest.raises(condgen.ConfigError) as err:
        condgen.train(config, tmp_path / "run", progress=False)
    message = str(err.value)
    assert "\n" not in message and "model.likelihood = 'logistic'" in message and "float32" in message
    assert "--likelihood bernoulli or gaussian" in message


def test_bernoulli_on_values_outside_0_1_is_one_config_error_with_the_fix(tmp_path):
    import numpy as np

    x = np.random.default_rng(0).normal(size=(40, 1, 2, 2)).astype(np.float32)
    np.savez(tmp_path / "d.npz", train_x=x, test_x=x[:8], train_y=np.zeros(40, np.int64), test_y=np.zeros(8, np.int64))
    config = condgen.RunConfig.parse({"data": {"dataset": "npz", "data_dir": str(tmp_path / "d.npz"), "x_field": "x"},
                                      "model": {"hidden": [8]}, "train": {"epochs": 1, "device": "cpu"}})
    with pytest.raises(condgen.ConfigError) as err:
        condgen.train(config, tmp_path / "run", progress=False)
    message = str(err.value)
    assert "\n" not in message and "'bernoulli' scores values in [0, 1]" in message
    assert f"from {x.min():.4g} to {x.max():.4g}" in message and "--likelihood gaussian" in message
    assert not (tmp_path / "run").exists()
