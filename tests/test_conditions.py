"""Conditions from a user: Python values, the batch rule, command-line text, and units."""

from __future__ import annotations

import pytest
import torch

import condgen
from condgen import ConditionError

from helpers import make_toy_splits, toy_config


@pytest.fixture
def label_run(toy, tmp_path):
    return condgen.train(toy_config(epochs=1), tmp_path / "label", pictures=False)


@pytest.fixture
def left_run(toy, tmp_path):
    config = condgen.RunConfig.parse({"conditioners": [{"name": "left"}], "model": {"hidden": [8]},
                                      "data": {"dataset": "toy"}, "train": {"epochs": 1, "device": "cpu"}})
    return condgen.train(config, tmp_path / "left", pictures=False)


@pytest.mark.parametrize(
    "value, num, rows",
    [(1, 4, [1, 1, 1, 1]), ("1", 3, [1, 1, 1]), ("all", 2, [0, 1]), ("0,1", 2, [0, 1]), ([1, 0, 1], 3, [1, 0, 1]),
     (torch.tensor(0), 2, [0, 0]), (torch.tensor([1, 0]), 2, [1, 0])],
)
def test_python_values_follow_the_batch_rule(label_run, value, num, rows):
    conds = label_run.check_conditions({"label": value}, num)
    assert conds["label"].tolist() == rows
    assert label_run.sample({"label": value}, num=num, seed=0).shape == (num, 1, 6, 6)


@pytest.mark.parametrize(
    "value, num, message",
    [
        ([0, 1, 0], 2, "condition 'label' gives 3 conditions, but num is 2: give one condition"),
        ("seven", 1, "label='seven': 'seven' is not a class number"),
        (None, 1, "condition 'label' cannot be made from None"),
        ({"a": 1}, 1, "condition 'label' cannot be made from {'a': 1}"),
        (2, 1, "holds class 2, out of range: allowed are integers 0..1"),
    ],
)
def test_bad_python_values_raise_the_toolkits_error(label_run, value, num, message):
    with pytest.raises(ConditionError) as err:
        label_run.sample({"label": value}, num=num)
    assert message in str(err.value)


def test_sample_arguments_are_checked(label_run):
    from condgen import CondgenError

    with pytest.raises(CondgenError, match="num must be a whole number >= 1, got '3'"):
        label_run.sample({"label": 1}, num="3")
    with pytest.raises(CondgenError, match="num must be a whole number >= 1, got 0"):
        label_run.sample({"label": 1}, num=0)
    with pytest.raises(ConditionError, match="conditions must be a mapping of conditioner name to value"):
        label_run.sample(5)
    with pytest.raises(ConditionError, match="this model has no conditioner 'colour'"):
        label_run.sample({"label": 1, "colour": 2})
    with pytest.raises(ConditionError, match="a condition for 'label' is needed"):
        label_run.sample({})


def test_a_conditioner_whose_conditions_come_in_several_shapes_decides_the_batch(left_run):
    images = make_toy_splits().test["image"]
    stack = images[:8]  # (8, 1, 6, 6): eight conditions, not one
    out = left_run.sample({"left": stack}, num=8, seed=0)
    assert out.shape == (8, 1, 6, 6)
    one = left_run.check_conditions({"left": images[0, 0]}, 5)["left"]  # a (6, 6) image: one condition
    assert one.shape == (5, 1, 6, 6) and torch.equal(one[4], one[0])
    with pytest.raises(ConditionError, match="condition 'left' gives 3 conditions, but num is 5"):
        left_run.sample({"left": images[:3]}, num=5)


def test_data_typed_and_python_conditions_are_in_the_same_units(toy, tmp_path):
    config = condgen.RunConfig.parse({"conditioners": [{"name": "sign"}], "model": {"hidden": [8]},
                                      "data": {"dataset": "toy"}, "train": {"epochs": 1, "device": "cpu"}})
    run = condgen.train(config, tmp_path / "run", pictures=False)
    assert run.conditioners["sign"].scale == 4.0  # fitted: the embedding standardises, conditions stay raw
    batch = make_toy_splits().test
    from_data = run.conditions_from_batch(batch)["sign"]
    positive = from_data[batch["value"] > 0][:1]
    typed = run.parse_conditions(["sign=1"])["sign"]
    given = run.check_conditions({"sign": [1.0]}, 1)["sign"]  # one condition of shape (1,)
    assert positive.tolist() == typed.tolist() == given.tolist() == [[1.0]]
    embed = run.model.embeddings["sign"]
    assert torch.equal(embed(positive), embed(typed)) and torch.equal(embed(typed), embed(given))


def test_samples_keep_what_the_condition_gives_exactly(left_run):
    images = make_toy_splits().test["image"][:4]
    out = left_run.sample({"left": images}, num=4, seed=0)
    assert torch.equal(out[..., :3], images[..., :3])  # the given left half, pixel for pixel
    assert not torch.equal(out[..., 3:], images[..., 3:])  # the rest is generated
