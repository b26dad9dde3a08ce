"""Condition dropout: a learned 'absent' embedding, trained in, that lets a condition be left out."""

from __future__ import annotations

import pytest
import torch

import condgen
from condgen import ConditionError, ConfigError
from condgen.cli import main

from helpers import make_toy_splits


def composed(tmp_path, dropout, name="run", epochs=1, first="label"):
    first_spec = {"name": "label", "config": {"num_classes": 2}} if first == "label" else {"name": first}
    config = condgen.RunConfig.parse({
        "conditioners": [first_spec, {"name": "sign"}],
        "model": {"latent_dim": 2, "hidden": [32]}, "data": {"dataset": "toy"},
        "train": {"epochs": epochs, "batch_size": 32, "device": "cpu", "condition_dropout": dropout}})
    return condgen.train(config, tmp_path / name, pictures=False, log=lambda s: None)


def left_bright(images: torch.Tensor) -> torch.Tensor:
    """Which toy images ``(N, 1, 6, 6)`` look like class 0 (bright on the left)."""
    return images[..., :3].mean((1, 2, 3)) > images[..., 3:].mean((1, 2, 3))


def test_a_left_out_condition_is_sampled_over_all_its_values(toy, tmp_path):
    config = condgen.RunConfig.parse({
        "conditioners": [{"name": "label", "config": {"num_classes": 2}}],
        "model": {"latent_dim": 2, "hidden": [32], "prior": "conditional"},
        "data": {"dataset": "toy"}, "train": {"epochs": 30, "batch_size": 32, "device": "cpu",
                                              "condition_dropout": 0.3}})
    run = condgen.train(config, tmp_path / "run", pictures=False, log=lambda s: None)
    assert list(run.model.absent) == ["label"] and run.model.absent["label"].abs().sum() > 0  # learnt
    assert float(left_bright(run.sample({"label": 0}, num=400, seed=0)).float().mean()) > 0.9
    assert float(left_bright(run.sample({"label": 1}, num=400, seed=0)).float().mean()) < 0.1
    share = float(left_bright(run.sample({}, num=400, seed=0)).float().mean())  # label left out: both classes
    assert 0.25 < share < 0.75
    loaded = condgen.load_run(tmp_path / "run")
    assert torch.equal(loaded.sample({}, num=5, seed=1), run.sample({}, num=5, seed=1))


def test_only_the_conditions_trained_with_dropout_may_be_left_out(toy, tmp_path):
    run = composed(tmp_path, {"label": 0.3})
    assert run.sample({"sign": [-1.0]}, num=3, seed=0).shape == (3, 1, 6, 6)
    with pytest.raises(ConditionError, match="a condition for 'sign' is needed .* only 'label' may be left out"):
        run.sample({"label": 1}, num=2)


def test_a_model_trained_without_dropout_refuses_a_left_out_condition(toy, tmp_path):
    run = composed(tmp_path, 0.0)
    assert len(run.model.absent) == 0 and "absent" not in "".join(run.model.state_dict())
    with pytest.raises(ConditionError) as err:
        run.sample({"sign": [1.0]}, num=2)
    assert "a condition for 'label' is needed" in str(err.value)
    assert "may be left out only in a model trained with condition dropout for it" in str(err.value)


def test_dropout_replaces_the_embedding_of_the_drawn_items_and_stops_scoring_what_they_gave(toy, tmp_path):
    run = composed(tmp_path, 0.25, first="left")
    assert run.dropout == {"left": 0.25, "sign": 0.25}
    drawn = run.draw_dropout(40_000, torch.Generator().manual_seed(0))
    assert abs(float(drawn["left"].float().mean()) - 0.25) < 0.01 and not torch.equal(drawn["left"], drawn["sign"])
    batch = {k: v[:4] for k, v in make_toy_splits().test.items()}
    conds = run.conditions_from_batch(batch)
    drop = {"left": torch.tensor([True, False, False, True]), "sign": torch.tensor([False, True, False, False])}
    with torch.no_grad():
        e = run.model.embed(conds, 4, drop)
        plain = run.model.embed(conds, 4)
    absent_left, absent_sign = run.model.absent["left"], run.model.absent["sign"]
    assert torch.equal(e[0, :4], absent_left) and torch.equal(e[3, :4], absent_left)
    assert torch.equal(e[1, 4:], absent_sign) and torch.equal(e[2], plain[2])
    scored = run.scored_part(conds, drop)
    assert scored[0].sum() == 36 and scored[3].sum() == 36  # the left half was dropped: all of x is scored
    assert scored[1].sum() == 18 and scored[2].sum() == 18  # the left half is given: only the right is


def test_condition_dropout_config_errors(toy):
    base = {"conditioners": [{"name": "label"}], "data": {"dataset": "toy"}}
    for dropout, message in [
        (1.0, "train.condition_dropout = 1.0: a condition dropout probability must be in [0, 1), got 1.0"),
        ({"label": -0.1}, "must be in [0, 1), got -0.1"),
        ({"sign": 0.1}, "train.condition_dropout names 'sign', which is not one of this model's conditioners (label)"),
    ]:
        with pytest.raises(ConfigError) as err:
            condgen.RunConfig.parse({**base, "train": {"condition_dropout": dropout}})
        assert message in str(err.value)
    with pytest.raises(ConfigError, match="condition_dropout needs a conditioner to drop"):
        condgen.RunConfig.parse({"train": {"condition_dropout": 0.1}})


def test_the_cli_trains_with_dropout_and_samples_with_a_condition_left_out(toy, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "toy", "--conditioner", "label:num_classes=2", "--conditioner", "sign",
                 "--hidden", "16", "--epochs", "1", "--device", "cpu", "--no-pictures",
                 "--condition-dropout", "label=0.2", "--out", str(out)]) == 0
    assert condgen.load_run(out).config.train.condition_dropout == {"label": 0.2}
    assert main(["sample", str(out), "--condition", "sign=-1,1", "--num", "3", "--out", str(tmp_path / "s.npy")]) == 0
    assert main(["sample", str(out), "--condition", "label=1", "--num", "3", "--out", str(tmp_path / "t.npy")]) == 2
    err = capsys.readouterr().err
    assert "a condition for 'sign' is needed" in err and len(err.strip().splitlines()) == 1
    code = main(["train", "--dataset", "toy", "--conditioner", "sign", "--condition-dropout", "lots",
                 "--device", "cpu", "--out", str(tmp_path / "bad")])
    assert code == 2 and "train.condition_dropout = 'lots'" in capsys.readouterr().err
