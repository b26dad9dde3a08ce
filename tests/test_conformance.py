"""The conformance kit (``condgen.testing``): the built-in plugins and the example plugin pass it, and it
catches each kind of broken conditioner it claims to."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from condgen_inpaint import InpaintConditioner
from condgen_label import LabelConditioner
from condgen_regression import RegressionConditioner
from helpers import SignConditioner
from torch import nn

import condgen
from condgen.testing import ConditionerContract, check_conditioner, check_state_round_trip, check_units

EXAMPLE_PLUGIN = Path(__file__).resolve().parents[1] / "examples" / "condgen-word" / "condgen_word.py"


def _example_module():
    """The example plugin's one module, from its source file: not as an installed plugin, and without
    putting its folder (where an editable install leaves metadata) on sys.path."""
    spec = importlib.util.spec_from_file_location("condgen_word_example", EXAMPLE_PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


condgen_word = _example_module()
WordConditioner, one_typo = condgen_word.WordConditioner, condgen_word.one_typo


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
    missing_items = (1, 3)

    def make_batch(self):
        return mnist_like()

    def make_missing_batch(self):  # items 1 and 3 have no label (an empty CSV cell)
        return {**mnist_like(), "label": torch.tensor([7, -1, 2, -1, 4, 5])}


class TestLearnedLabel(TestLabel):
    config = {"embedding": "learned", "embed_dim": 5}


class TestRegression(ConditionerContract):
    conditioner_class = RegressionConditioner
    config = {"targets": ["value", "ink"]}
    texts = ["value:1.5,ink:0.2", "value:-2,ink:0.1"]
    values = [{"value": 0.5, "ink": 0.25}]
    bad_texts = ["", "value:x,ink:0.2", "ink:0.2", "value:1e39,ink:0"]
    missing_items = (0, 4)

    def make_batch(self):
        return mnist_like()

    def make_missing_batch(self):  # items 0 and 4 have no value (ink, an attribute of the image, they have)
        batch = mnist_like()
        batch["value"][[0, 4]] = float("nan")
        return batch

    def test_units(self):
        batch = self.make_batch()
        ink = float(RegressionConditioner(self.config).target_values(batch)[0, 1])  # item 0's own ink
        check_units(RegressionConditioner, batch, [({"value": -2.0, "ink": ink}, 0), (f"value:-2,ink:{ink!r}", 0)],
                    self.config)


class TestInpaint(ConditionerContract):
    conditioner_class = InpaintConditioner
    config = {"embed_dim": 8, "hidden": 16, "masks": ["bottom-half"]}  # a fixed mask, so data item 0 can match
    values = [{"image": torch.rand(28, 28), "mask": "quadrants:2"}, {"image": torch.zeros(28, 28), "mask": "centre"}]
    bad_texts = ["anything"]  # no command-line form: the message points at `condgen inpaint`
    same_units = [({"image": mnist_like()["image"][0], "mask": "bottom-half"}, 0)]

    def make_batch(self):
        return mnist_like()


class TestInpaintRandomMasks(TestInpaint):
    config = {"embed_dim": 8, "hidden": 16}  # the default mix of masks, drawn at random
    same_units = ()  # data conditions are drawn at random: the units check is skipped, visibly


class TestInpaintSpatial(TestInpaint):
    config = {"embedding": "spatial", "masks": ["bottom-half"]}  # the condition itself, (2, 28, 28) maps


class TestWord(ConditionerContract):
    """Without typos, data conditions are the class's name itself: what a user types means the same."""

    conditioner_class = WordConditioner
    config = {"typo_rate": 0.0}
    texts = ["seven", "sevn,SEVEN,Seven", "all"]
    values = [["seven", "two"], "nine"]
    bad_texts = ["", "s3ven", "seven!", "a" * 13, "seven,,two"]
    same_units = [("SEVEN", 0), ("one", 1), (["seven"], 0)]

    def make_batch(self):
        return mnist_like()


class TestWordWithTypos(TestWord):
    config = {}  # half the data conditions are random misspellings: the units check is skipped, visibly
    same_units = ()


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
    for bad in (torch.tensor([10]), torch.tensor([[7]]), torch.tensor([7.5]), torch.tensor([True]), torch.tensor(7)):
        with pytest.raises(condgen.ConditionError, match=r"must hold class numbers 0..9 of shape \(N,\)"):
            word.condition_from_batch({"label": bad}, gen)
    with pytest.raises(condgen.ConditionError, match="must hold class numbers"):
        word.fit({"label": torch.tensor([[1], [2]])})  # (N, 1) labels from an npz file: refused before training
    for bad, problem in [(torch.tensor([[-1] + [0] * 11]), "holds code -1"), (torch.zeros(1, 12, dtype=torch.long),
                         "one or more letter codes"), (torch.tensor([[1, 0, 2] + [0] * 9]), "followed only by 0s"),
                         (torch.ones(1, 12, dtype=torch.complex64), "integers; got torch.complex64")]:
        with pytest.raises(condgen.ConditionError, match=problem):
            word.check_condition(bad)
    assert word.conditions_from_value(["seven", "SEVN"]).tolist() == word.parse_condition("seven,sevn").tolist()
    pets = WordConditioner({"words": ["cat", "bat"]})
    assert "bat" not in {pets.decode(s) for s in pets.spellings[0, 1:]}  # no typo of cat is another class's name


# -- the kit catches what it claims to ------------------------------------------------------------


class Broken(SignConditioner):
    name = "broken"


class WideEmbedding(Broken):
    def build_embedding(self) -> nn.Module:
        return nn.Linear(1, 4)  # embed_dim says 3


class Float64Embedding(Broken):
    def build_embedding(self) -> nn.Module:
        return super().build_embedding().double()

    def check_condition(self, c):
        return super().check_condition(c).double()

    def condition_from_batch(self, batch, generator=None):
        return super().condition_from_batch(batch).double()

    def parse_condition(self, text):
        return super().parse_condition(text).double()


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
        (WideEmbedding, r"expected torch.float32 \(the model's dtype\) of shape \(6, 3\)"),
        (Float64Embedding, r"gave torch.float64 of shape \(6, 3\) for 6 conditions; expected torch.float32"),
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


def test_the_kit_passes_the_unbroken_one_and_wants_the_units_rule_checked():
    check_conditioner(Broken, mnist_like(), texts=["1.5", "-1,0"], bad_texts=["x"], same_units=[("-2", 0)])
    with pytest.raises(AssertionError, match="give at least one same_units pair"):
        check_conditioner(Broken, mnist_like(), texts=["1.5"], same_units=[])


class DropoutEmbedding(Broken):
    def build_embedding(self) -> nn.Module:
        return nn.Sequential(super().build_embedding(), nn.Dropout(0.5))


def test_the_state_check_compares_embeddings_without_dropout_noise():
    check_state_round_trip(DropoutEmbedding, mnist_like())


@pytest.mark.parametrize("arch, shape, model", [
    ("mlp", (1, 6, 6), {"hidden": [16]}), ("mlp", (5,), {"hidden": [8, 8]}),
    ("conv", (1, 6, 6), {"channels": [4, 8], "hidden": [16]}), ("conv", (3, 12, 10), {"channels": [4], "hidden": []}),
])
def test_the_built_in_architectures_keep_the_contract(arch, shape, model):
    from condgen.plugin.registry import registry
    from condgen.testing import check_architecture

    check_architecture(registry().architecture_class(arch), shape, model)


def test_an_architecture_that_drops_a_spatial_embedding_fails_the_kit():
    from condgen.engine.networks import MLP
    from condgen.testing import check_architecture

    class FlatOnly(MLP):
        """Keeps the flat embeddings and zeroes the maps: the kit must see the decoder ignore them."""

        name = "flat-only"

        def build_decoder(self, shapes):
            decoder = super().build_decoder(shapes)
            flat = shapes.embeddings.flat_width
            forward = decoder.forward
            decoder.forward = lambda z, e: forward(z, torch.cat([e[:, :flat], torch.zeros_like(e[:, flat:])], 1))
            return decoder

    check_architecture(FlatOnly, (1, 6, 6), {"hidden": [8]}, spatial=False)  # flat embeddings only: it passes
    with pytest.raises(AssertionError, match=r"the decoder's output ignores the embedding of shape \[2, 3, 3\]"):
        check_architecture(FlatOnly, (1, 6, 6), {"hidden": [8]})
