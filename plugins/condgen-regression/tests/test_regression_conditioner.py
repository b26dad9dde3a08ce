"""The regression conditioner: units, standardisation through a checkpoint, sources, errors, the CLI."""

from __future__ import annotations

import json

import pytest
import torch

import condgen
from condgen import ConditionError
from condgen_regression import RegressionConditioner, ink
from helpers import condgen_cli, make_toy_splits


def toy_run(tmp_path, targets, name="run", model=None, **extra):
    config = condgen.RunConfig.parse({
        "conditioners": [{"name": "regression", "config": {"targets": targets, "hidden": 8, "embed_dim": 4}}],
        "model": {"latent_dim": 2, "hidden": [16], **(model or {})}, "data": {"dataset": "toy"},
        "train": {"epochs": 1, "device": "cpu", **extra}})
    return condgen.train(config, tmp_path / name, pictures=False, log=lambda s: None)


def test_standardisation_is_fitted_on_train_and_survives_a_checkpoint(toy, tmp_path):
    run = toy_run(tmp_path, ["value", "ink"])
    cond = run.conditioners["regression"]
    train = make_toy_splits().train
    assert cond.sources == {"value": "field", "ink": "attribute"}
    assert cond.mean == pytest.approx([float(train["value"].mean()), float(ink(train["image"]).mean())], rel=1e-5)
    assert cond.std == pytest.approx([float(train["value"].std()), float(ink(train["image"]).std())], rel=1e-5)
    loaded = condgen.load_run(tmp_path / "run")
    assert loaded.conditioners["regression"].state() == cond.state()
    raw = torch.tensor([[1.0, 0.3], [-1.0, 0.5]])  # the user's units
    with torch.no_grad():
        assert torch.equal(run.model.embed({"regression": raw}, 2), loaded.model.embed({"regression": raw}, 2))
        standardised = run.model.embeddings["regression"][0](raw)
    mean, std = torch.tensor(cond.mean), torch.tensor(cond.std)
    assert torch.allclose(standardised, (raw - mean) / std)
    # data, typed text and Python values for the same targets give the same condition
    batch = {k: v[:1] for k, v in train.items()}
    from_data = cond.condition_from_batch(batch)
    value, amount = from_data[0].tolist()
    assert torch.allclose(cond.conditions_from_value({"value": value, "ink": amount}), from_data)
    assert torch.allclose(cond.parse_condition(f"ink:{amount!r},value:{value!r}"), from_data)
    assert torch.allclose(cond.conditions_from_value([value, amount]), from_data)


def test_samples_follow_the_condition_in_the_users_units(toy, tmp_path):
    run = toy_run(tmp_path, ["value"], model={"hidden": [32], "prior": "conditional"}, epochs=30, batch_size=32)
    left, right = run.sample({"regression": -1.0}, num=200, seed=0), run.sample({"regression": 1.0}, num=200, seed=0)
    # toy class 0 (value -1) is bright on the left, class 1 (value +1) on the right
    assert left[..., :3].mean() > left[..., 3:].mean() + 0.3 and right[..., 3:].mean() > right[..., :3].mean() + 0.3


def test_where_a_target_cannot_come_from_is_an_error_listing_both(toy, tmp_path):
    with pytest.raises(ConditionError) as err:
        toy_run(tmp_path, ["width"])
    assert "regression target 'width' is neither a data field (the data has ['image', 'label', 'value'])" in str(err.value)
    assert "'ink'" in str(err.value) and "'slant'" in str(err.value)


def test_bad_conditions_and_configs(toy, tmp_path):
    cond = toy_run(tmp_path, ["value", "ink"]).conditioners["regression"]
    with pytest.raises(ConditionError, match=r"shape \(B, 2\), one column per target \(value, ink\); got a float32 "
                       r"tensor of shape \(3, 1\)"):
        cond.check_condition(torch.zeros(3, 1))
    with pytest.raises(ConditionError, match="target 'ink' must be a finite number, got nan"):
        cond.check_condition(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ConditionError, match="no value for target 'ink'"):
        cond.conditions_from_value({"value": 1.0})
    with pytest.raises(ConditionError, match="True is not a number"):
        cond.conditions_from_value({"value": True, "ink": 0.2})
    with pytest.raises(condgen.ConfigError, match="target 'ink' is listed twice"):
        RegressionConditioner({"targets": ["ink", "ink"]})
    with pytest.raises(condgen.ConfigError, match="targets: required field is missing"):
        RegressionConditioner({})
    assert RegressionConditioner({"targets": "ink"}).targets == ["ink"]  # --conditioner regression:targets=ink
    assert torch.equal(cond.conditions_from_value({"value": torch.tensor([1.0, -1.0]), "ink": 0.2}),
                       torch.tensor([[1.0, 0.2], [-1.0, 0.2]]))  # a tensor of values for one target
    with pytest.raises(ConditionError, match=r"regression condition, target 'value': a dict is not a number$"):
        cond.conditions_from_value({"value": [{}], "ink": 0.2})


def test_a_broken_attribute_function_is_named(register_plugin, toy, tmp_path):
    class Wide:
        @condgen.hookimpl
        def condgen_register_attributes(self, register):
            register("wide", lambda images: images.flatten(1)[:, :2])

    register_plugin(Wide(), "wide")
    with pytest.raises(condgen.PluginError, match=r"attribute function 'wide' returned \(512, 2\) for 512 images"):
        toy_run(tmp_path, ["wide"])
    with pytest.raises(ConditionError, match="set the regression conditioner's image_field to an image field"):
        RegressionConditioner({"targets": ["ink"], "image_field": "value"}).fit(make_toy_splits().train)


def test_a_constant_target_is_refused(register_plugin, tmp_path):
    class Flat:
        @condgen.hookimpl
        def condgen_register_datasets(self, register):
            def load(config):
                splits = make_toy_splits()
                for split in (splits.train, splits.test):
                    split["value"] = torch.ones_like(split["value"])
                return splits

            register("flat", load)

    register_plugin(Flat(), "flat")
    config = condgen.RunConfig.parse({"conditioners": [{"name": "regression", "config": {"targets": ["value"]}}],
                                      "data": {"dataset": "flat"}, "train": {"epochs": 1, "device": "cpu"}})
    with pytest.raises(ConditionError, match="'value' has the same value for every training item"):
        condgen.train(config, tmp_path / "run", pictures=False, log=lambda s: None)


def test_a_composed_label_and_attributes_run_through_the_cli(mnist_dir, tmp_path):
    run = tmp_path / "run"
    condgen_cli("train", "--conditioner", "label", "--conditioner", 'regression:targets=["ink","slant"]',
                "--latent-dim", "4", "--hidden", "256", "--epochs", "2", "--data-dir", str(mnist_dir),
                "--train-limit", "5000", "--test-limit", "500", "--out", str(run))
    assert (run / "samples.png").stat().st_size > 10_000
    condgen_cli("sample", str(run), "--condition", "label=3", "--condition", "regression=ink:0.08..0.2/3,slant:0",
                "--num", "4", "--out", str(tmp_path / "s.png"))
    assert (tmp_path / "s.png").stat().st_size > 5_000
    figures = json.loads(condgen_cli("evaluate", str(run), "--samples", "0", "--json").stdout)
    assert figures["regression_ink_r"] > 0.5  # even two short epochs follow the requested ink
    bad = condgen_cli("sample", str(run), "--condition", "label=3", "--condition", "regression=ink:0.1",
                      "--out", str(tmp_path / "bad.png"), ok=False)
    assert bad.returncode == 2 and "no value for target 'slant'" in bad.stderr and len(bad.stderr.splitlines()) == 1
