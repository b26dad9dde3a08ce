"""The ink and slant attributes on known images, and reading targets as users type them."""

from __future__ import annotations

import pytest
import torch

import condgen
from condgen import ConditionError
from condgen_regression import ink, parse_targets, parse_values, slant
from condgen_regression.attributes import ATTRIBUTES


def bar(shear: float = 0.0, size: int = 28) -> torch.Tensor:
    """A one-pixel-wide vertical stroke through the middle of a ``(1, 1, size, size)`` image, its column
    shifted by ``shear`` pixels for every row above the centre (so shear > 0 leans its top right)."""
    image = torch.zeros(1, 1, size, size)
    for row in range(4, size - 4):
        col = round(size / 2 + shear * (size / 2 - row))
        image[0, 0, row, col] = 1.0
    return image


def test_ink_is_the_mean_pixel_value():
    assert ink(torch.zeros(2, 1, 28, 28)).tolist() == [0.0, 0.0]
    image = torch.zeros(1, 1, 4, 4)
    image[0, 0, 0, :2] = 1.0  # 2 of 16 pixels
    assert ink(image).item() == pytest.approx(2 / 16)
    assert ink(image[:, 0]).item() == pytest.approx(2 / 16)  # (B, H, W) works too


def test_slant_of_known_strokes():
    assert slant(torch.zeros(1, 1, 28, 28)).item() == 0.0  # blank: no ink, slant 0, not NaN
    assert slant(bar(0.0)).item() == pytest.approx(0.0, abs=1e-6)  # upright
    right, left = slant(bar(0.5)).item(), slant(bar(-0.5)).item()
    assert right == pytest.approx(-0.5, abs=0.05) and left == pytest.approx(0.5, abs=0.05)  # -d col / d row
    assert slant(torch.cat([bar(0.5), bar(-0.5)])).tolist() == pytest.approx([right, left])  # per image


def test_the_plugin_registers_its_attributes():
    registered = condgen.attributes()
    assert registered["ink"] is ATTRIBUTES["ink"] and registered["slant"] is ATTRIBUTES["slant"]


def test_targets_and_sweeps_are_parsed_in_the_models_order():
    assert parse_targets("slant:-0.3,ink:0.25", ["ink", "slant"]).tolist()[0] == pytest.approx([0.25, -0.3])
    rows = parse_targets("ink:0.1..0.4/4, slant:0", ["ink", "slant"])
    assert rows[:, 0].tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4]) and rows[:, 1].tolist() == [0.0] * 4
    assert parse_targets("ink:0..1/2,slant:-1..1/3", ["ink", "slant"]).shape == (6, 2)  # every combination
    assert parse_values("1e-2", "x") == [0.01]


@pytest.mark.parametrize(
    "text, message",
    [
        ("ink:0.2", "no value for target 'slant'; give every target: ink:VALUE,slant:VALUE"),
        ("ink:0.2,slant:0,width:3", "unknown target 'width'; this model's targets are ink, slant"),
        ("ink:0.2,ink:0.3,slant:0", "target 'ink' is given twice"),
        ("ink=0.2,slant:0", "'ink=0.2' must look like NAME:VALUE"),
        ("ink:thick,slant:0", "'thick' is not a number"),
        ("ink:nan,slant:0", "'nan' is not a finite number"),
        ("ink:inf,slant:0", "'inf' is not a finite number"),
        ("ink:0.1..0.4,slant:0", "needs a count, e.g. 0.1..0.4/5"),
        ("ink:0.1..0.4/1,slant:0", "gives 1 values; give 2 to 100"),
        ("ink:0.1..0.4/x,slant:0", "must be a whole number"),
    ],
)
def test_bad_targets_are_one_line_errors(text, message):
    with pytest.raises(ConditionError) as err:
        parse_targets(text, ["ink", "slant"])
    assert message in str(err.value) and "\n" not in str(err.value)
