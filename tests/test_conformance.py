"""The conformance kit (``condgen.testing``): the built-in plugins and the example plugin pass it, and it
catches each kind of broken conditioner it claims to."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from condgen_inpaint import InpaintConditioner
from condgen_label import LabelConditioner
from condgen_regression import RegressionConditioner
from helpers import SignConditioner
from torch import nn

import condgen
from condgen.testing import ConditionerContract, check_conditioner

EXAMPLE_PLUGIN = Path(__file__).resolve().parents[1] / "examples" / "condgen-word"
sys.path.insert(0, str(EXAMPLE_PLUGIN))  # the example plugin is one module, imported from its source
from condgen_word import WordConditioner, one_typo  # noqa: E402


def mnist_like(n: int = 6, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        "image": (torch.rand(n, 1, 28, 28, generator=gen) > 0.7).float(),
        "label": torch.tensor([7, 1, 2, 3, 4, 5][:n]),
        "value": torch.linspace(-2.0, 3.0, n),
    }


class TestLabel(ConditionerContract):
    conditioner_class = LabelConditioner
    texts = ["3", "0,1,2", "all"]
    bad_texts = ["", "ten", "10", "-1", "3.5"]
    same_units = [("7", 0), (1, 1)]

    def make_batch(self):
        return mnist_like()


class TestLearnedLabel(TestLabel):
    config = {"embedding": "learned", "embed_dim": 5}


class TestRegression(ConditionerContract):
    conditioner_class = RegressionConditioner
    config = {"targets": ["value", "ink"]}
    texts = ["value:1.5,ink:0.2", "value:-2,ink:0.1"]
    values = [{"value": 0.5, "ink": 0.25}]
    bad_texts = ["", "value:x,ink:0.2", "ink:0.2", "value:1e39,ink:0"]
    same_units = [("value:-2,ink:0", None)]  # filled in by make_batch: the ink of item 0

    def make_batch(self):
        return mnist_like()

    def test_parsing_and_units(self):
        batch = self.make_batch()
        conditioner = RegressionConditioner(self.config)
        ink = float(conditioner.target_values(batch)[0, 1])
        condgen.testing.check_parsing(RegressionConditioner, batch, self.texts, [({"value": -2.0, "ink": ink}, 0)],
                                      self.config, self.values)


class TestInpaint(ConditionerContract):
    conditioner_class = InpaintConditioner
    config = {"embed_dim": 8, "hidden": 16}
    values = [{"image": torch.rand(28, 28), "mask": "quadrants:2"}, {"image": torch.zeros(28, 28), "mask": "centre"}]
    bad_texts = ["anything"]  # no command-line form: the message points at `condgen inpaint`

    def make_batch(self):
        return mnist_like()


class TestWord(ConditionerContract):
    conditioner_class = WordConditioner
    texts = ["seven", "sevn,SEVEN,Seven", "all"]
    bad_texts = ["", "s3ven", "seven!", "a" * 13, "seven,,two"]

    def make_batch(self):
        return mnist_like()


class TestWordWithoutTypos(TestWord):
    """Without typos, data conditions are the class's name itself: what a user types means the same."""

    config = {"typo_rate": 0.0}
    same_units = [("SEVEN", 0), ("one", 1)]


class TestToySign(ConditionerContract):
    """The tests' own minimal conditioner passes too."""

    conditioner_class = SignConditioner
    texts = ["1.5", "-1,0,2"]
    bad_texts = ["x"]
    same_units = [("-2", 0)]

    def make_batch(self):
        return mnist_like()


def test_the_word_plugin_reads_typos_as_their_digit_and_draws_them_from_the_generator():
    word = WordConditioner()
    typo = word.parse_condition("SEVN")
    assert word.describe_condition(typo[0]) == "sevn"
    assert "sevn" in {word.describe_condition(s) for s in word.spellings[7, 1:]}  # seen in training
    gen = torch.Generator().manual_seed(0)
    drawn = word.condition_from_batch({"label": torch.full((2000,), 7)}, gen)
    words = [word.describe_condition(c) for c in drawn]
    assert 0.45 < words.count("seven") / 2000 < 0.55  # typo_rate 0.5
    typos = set(words) - {"seven"}
    assert typos <= set(one_typo("seven")) and len(one_typo("seven")) == 285
    assert len(typos) > 250  # ~1000 typo draws cover nearly all 285 misspellings
    with pytest.raises(condgen.ConditionError, match="classes outside 0..9"):
        word.condition_from_batch({"label": torch.tensor([10])}, gen)


# -- the kit catches what it claims to ------------------------------------------------------------


class Broken(SignConditioner):
    name = "broken"


class WideEmbedding(Broken):
    def build_embedding(self) -> nn.Module:
        return nn.Linear(1, 4)  # embed_dim says 3


class ParsesFloat64(Broken):
    def parse_condition(self, text):
        return super().parse_condition(text).double()


class TypedMeansOther(Broken):
    def parse_condition(self, text):
        return super().parse_condition(text) * 2  # not the data's units


class ForgetsItsState(Broken):
    def load_state(self, state):
        pass


class StateNotJson(Broken):
    def state(self):
        return {"scale": torch.tensor(self.scale)}


class RaisesValueError(Broken):
    def parse_condition(self, text):
        return torch.tensor([[float(v)] for v in text.split(",")])  # ValueError escapes


class AcceptsAnyShape(Broken):
    def check_condition(self, c):
        return c.float()


class UsesGlobalRandom(Broken):
    def condition_from_batch(self, batch, generator=None):
        return super().condition_from_batch(batch) + 0 * torch.rand(1)


class IgnoresTheGenerator(Broken):
    def condition_from_batch(self, batch, generator=None):
        own = torch.Generator()
        own.seed()  # from the OS: not reproducible
        return super().condition_from_batch(batch) + torch.randn(len(batch["value"]), 1, generator=own)


class LooseConfig(Broken):
    class Config(condgen.ConditionerConfig):
        model_config = {"extra": "ignore"}


@pytest.mark.parametrize(
    "cls, problem",
    [
        (WideEmbedding, r"expected floats of shape \(6, 3\)"),
        (ParsesFloat64, "must be in the same units"),
        (TypedMeansOther, "must mean what the data's does"),
        (ForgetsItsState, "embeds the same conditions differently"),
        (StateNotJson, "not JSON-serialisable"),
        (RaisesValueError, "raised ValueError"),
        (AcceptsAnyShape, "was accepted"),
        (UsesGlobalRandom, "global random state"),
        (IgnoresTheGenerator, "differs under equally seeded generators"),
        (LooseConfig, "accepted the unknown field"),
    ],
)
def test_the_kit_catches_a_broken_conditioner(cls, problem):
    same_units = [] if cls is IgnoresTheGenerator else [("-2", 0)]  # its noise would fail the units check first
    with pytest.raises(AssertionError, match=problem):
        check_conditioner(cls, mnist_like(), texts=["1.5", "-1,0"], bad_texts=["x"], same_units=same_units)


def test_the_kit_passes_the_unbroken_one():
    check_conditioner(Broken, mnist_like(), texts=["1.5", "-1,0"], bad_texts=["x"], same_units=[("-2", 0)])
