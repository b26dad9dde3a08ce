"""The Python API is as strict as the CLI, for every conditioner (issue "Reliability 2", class 4).

A user's Python value passes through the core's conversion (:func:`condgen.tensor_from_value`, and the rules of
:func:`condgen.runs.conditions.conditions_from_values` that every conditioner gets); values no conditioner takes
(None, text where numbers are meant, bools among numbers, complex numbers, ragged lists, meta tensors, empty
batches) are a :class:`condgen.ConditionError` naming the value, from ``run.sample`` and
``condgen_inpaint.inpaint`` alike, and on the CLI one line. The conformance kit holds third-party conditioners to
the same values (``check_bad_conditions``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from condgen_inpaint import inpaint, quadrant_mask
from helpers import inpaint_config, train_with_toy_data
from test_reliability import one_line

import condgen
from condgen import Conditioner, ConditionError
from condgen.testing import check_bad_conditions


@pytest.fixture(scope="module")
def inpaint_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("api-values") / "run"
    return condgen.load_run(train_with_toy_data(inpaint_config({"name": "label", "config": {"num_classes": 2}}),
                                                out, "toy-data-api-values"))


MASK = quadrant_mask(1, 6, 6, 2)[0]


@pytest.mark.parametrize("image, message", [
    (None, r"^the image cannot be made from None: None is no condition$"),
    ("digit.png", r"^the image cannot be made from the text 'digit.png': give numbers .*a file must be read first$"),
    ([[0.0] * 6, [0.0] * 5], r"^the image cannot be made from \[\[0.0.*\(list\): expected sequence of length 6"),
    (torch.empty(1, 1, 6, 6, device="meta"), r"a tensor on the meta device holds no values"),
    (torch.zeros(1, 1, 6, 6, dtype=torch.complex64), r"it holds complex numbers \(torch.complex64\)"),
    (np.zeros((1, 1, 6, 6), np.complex128), r"it holds complex numbers \(complex128\)"),
    (torch.zeros(0, 1, 6, 6), r"it is an empty batch, shape \(0, 1, 6, 6\): give at least one condition"),
    (torch.zeros(1, 1, 6, 6, dtype=torch.bool), r"it holds bools"),
])
def test_inpaint_refuses_what_is_no_image_with_the_toolkits_error(inpaint_run, image, message):
    with pytest.raises(ConditionError, match=message):
        inpaint(inpaint_run, image, MASK, num=2, conditions={"label": 1})


@pytest.mark.parametrize("mask, message", [
    (None, r"^the mask cannot be made from None"),
    (torch.zeros(6, 6, dtype=torch.complex64), r"^the mask cannot be made from .*complex numbers"),
    ([[1, 0], [1]], r"^the mask cannot be made from .*\(list\)"),
])
def test_inpaint_refuses_what_is_no_mask(inpaint_run, mask, message):
    with pytest.raises(ConditionError, match=message):
        inpaint(inpaint_run, torch.rand(6, 6), mask, num=2, conditions={"label": 1})


def test_a_bool_mask_is_a_mask_and_the_other_conditions_must_be_a_mapping(inpaint_run):
    image = torch.rand(6, 6, generator=torch.Generator().manual_seed(0))
    floats = inpaint(inpaint_run, image, MASK, num=2, conditions={"label": 1}, seed=0)
    assert floats.shape == (2, 1, 6, 6)
    assert torch.equal(floats, inpaint(inpaint_run, image, MASK.bool(), num=2, conditions={"label": 1}, seed=0))
    with pytest.raises(ConditionError, match=r"^conditions must be a mapping of the run's other conditioners to "
                                             r"values, e.g. \{'label': 3\}, got 'label=3'$"):
        inpaint(inpaint_run, image, MASK, conditions="label=3")


def test_an_empty_stack_through_the_inpaint_command_is_one_line(inpaint_run, capsys, tmp_path):
    np.save(tmp_path / "none.npy", np.zeros((0, 1, 6, 6), np.float32))
    line = one_line(capsys, "inpaint", str(inpaint_run.directory), "--image", str(tmp_path / "none.npy"), "--mask",
                    "quadrants:2", "--condition", "label=1", "--out", str(tmp_path / "out.png"))
    assert "it is an empty batch, shape (0, 1, 6, 6)" in line, line
    assert not (tmp_path / "out.png").exists()


# -- run.sample: the same rules for every conditioner -----------------------------------------------------
@pytest.mark.parametrize("value, message", [
    ([1, True], r"^condition 'label' cannot be made from \[1, True\]: True is a bool, not a number here"),
    ([True], r"True is a bool, not a number here"),
    (np.array([True, False]), r"it holds bools \(bool\)"),
    (None, r"None is no condition"),
    (1 + 2j, r"\(1\+2j\) is a complex number; a condition is real"),
    ([], r"it is an empty list: give at least one condition"),
    (torch.zeros(0, dtype=torch.long), r"it is an empty batch"),
    (torch.ones(1, device="meta", dtype=torch.long), r"a tensor on the meta device holds no values"),
    ([[0], [0, 1]], r"\(list\): expected sequence of length 1"),
])
def test_sample_refuses_what_no_conditioner_takes(inpaint_run, value, message):
    x = torch.rand(1, 1, 6, 6)
    cond = inpaint_run.conditioners["inpaint"].condition(x, MASK[None])
    with pytest.raises(ConditionError, match=message):
        inpaint_run.sample({"inpaint": cond, "label": value}, num=1)


class Careless(Conditioner):
    """A third-party conditioner whose conditions_from_value converts with torch itself, and checks nothing."""

    name = "careless"

    @property
    def condition_shape(self):
        return (1,)

    def condition_from_batch(self, batch, generator=None):
        return self.require_field(batch, "value").float().unsqueeze(1)

    def check_condition(self, c):
        if c.dim() != 2 or c.shape[1] != 1:
            raise ConditionError(f"careless condition must be (B, 1), got {tuple(c.shape)}")
        return c.float()

    def parse_condition(self, text):
        try:
            return torch.tensor([[float(text)]])
        except ValueError:
            raise ConditionError(f"careless={text!r} must be a number") from None

    def conditions_from_value(self, value):
        return torch.as_tensor(value, dtype=torch.float32).reshape(-1, 1)

    @property
    def embed_dim(self):
        return 2

    def build_embedding(self):
        return torch.nn.Linear(1, 2)


def test_the_core_holds_a_careless_conditioner_to_the_rules_and_the_kit_says_so():
    cond = Careless()
    for value, said in ((None, "None is no condition"), (torch.zeros(1, 1, dtype=torch.complex64), "complex numbers"),
                        ([torch.empty(1, device="meta")], "a tensor on the meta device")):
        with pytest.raises(ConditionError, match=rf"^condition 'careless' cannot be made from .*{said}"):
            condgen.runs.conditions.conditions_from_values({"careless": cond}, {"careless": value})
    with pytest.raises(ConditionError, match=r"condition 'careless' cannot be made from 'x' \(str\): its conditioner "
                                             r"raised (ValueError|TypeError)"):
        condgen.runs.conditions.conditions_from_values({"careless": cond}, {"careless": "x"})
    batch = {"value": torch.tensor([0.5, -0.5, 1.0])}
    with pytest.raises(AssertionError, match=r"careless: conditions_from_value\(None\) raised TypeError: .*raise "
                                             "condgen.ConditionError"):
        check_bad_conditions(Careless, batch)

    class BoolBlind(Careless):  # None refused, but a bool among numbers taken as 1: the kit names it
        def conditions_from_value(self, value):
            if value is None:
                raise ConditionError("careless: no value")
            return torch.as_tensor(value, dtype=torch.float32).reshape(-1, 1)

    with pytest.raises(AssertionError, match=r"careless: conditions_from_value\(True \(a bool\)\) was accepted"):
        check_bad_conditions(BoolBlind, batch)


def test_the_default_conversion_reads_numbers_and_refuses_bools(inpaint_run):
    label = inpaint_run.conditioners["label"]
    assert label.conditions_from_value([0, 1]).tolist() == [0, 1]
    assert label.conditions_from_value(np.int64(1)).tolist() == [1]
    with pytest.raises(ConditionError, match=r"^condition 'label' cannot be made from \[10, True\]: True is a bool"):
        label.conditions_from_value([10, True])
    with pytest.raises(ConditionError, match=r"^condition 'label' cannot be made from True: True is a bool"):
        label.conditions_from_value(True)


def test_a_mask_of_bools_inside_the_conditions_value_is_a_mask(inpaint_run):
    image = torch.rand(1, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    as_bools = MASK.bool().tolist()  # Python True/False in a list: a mask's values, not numbers
    pair = inpaint_run.sample({"inpaint": (image, as_bools), "label": 1}, num=2, seed=0)
    floats = inpaint_run.sample({"inpaint": {"image": image, "mask": MASK}, "label": 1}, num=2, seed=0)
    assert torch.equal(pair, floats)
