"""The label conditioner: parsing, validation, embeddings, config."""

from __future__ import annotations

import pytest
import torch
from condgen_label import LabelConditioner, OneHot

from condgen import ConditionError, ConfigError


@pytest.fixture
def label() -> LabelConditioner:
    return LabelConditioner()


def test_parses_one_several_and_all(label):
    assert label.parse_condition("5").tolist() == [5]
    assert label.parse_condition("0, 1,2").tolist() == [0, 1, 2]
    assert label.parse_condition("all").tolist() == list(range(10))
    assert label.parse_condition("ALL").dtype == torch.int64


@pytest.mark.parametrize(
    "text, message",
    [
        ("12", "label='12': class 12 is out of range; allowed are integers 0..9"),
        ("-1", "class -1 is out of range"),
        ("five", "'five' is not a class number; allowed are integers 0..9, a comma list such as 0,1,2, or all"),
        ("1,,2", "'' is not a class number"),
        ("2.5", "'2.5' is not a class number"),
    ],
)
def test_parse_errors_name_the_value_and_range(label, text, message):
    with pytest.raises(ConditionError) as err:
        label.parse_condition(text)
    assert message in str(err.value)


def test_check_condition_accepts_indices_and_whole_floats(label):
    assert label.check_condition(torch.tensor([0, 9])).tolist() == [0, 9]
    out = label.check_condition(torch.tensor([3.0, 4.0]))
    assert out.dtype == torch.int64 and out.tolist() == [3, 4]


@pytest.mark.parametrize(
    "tensor, message",
    [
        (torch.zeros(4, 3), "shape (B,) with integers 0..9; got a float32 tensor of shape (4, 3)"),
        (torch.tensor(5), "got a int64 tensor of shape ()"),
        (torch.tensor([1, 10]), "holds class 10, out of range: allowed are integers 0..9"),
        (torch.tensor([0.5]), "must hold whole numbers (integers 0..9); got 0.5"),
        (torch.tensor([float("nan")]), "must hold whole numbers"),
        (torch.tensor([True]), "got a bool tensor"),
    ],
)
def test_check_condition_errors(label, tensor, message):
    with pytest.raises(ConditionError) as err:
        label.check_condition(tensor)
    assert message in str(err.value)


def test_onehot_embedding_is_the_seeds(label):
    emb = label.build_embedding()
    assert isinstance(emb, OneHot) and label.embed_dim == 10
    out = emb(torch.tensor([2, 7]))
    assert out.shape == (2, 10) and out.dtype == torch.float32
    assert out[0].tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 0, 0] and out[1, 7] == 1
    assert not list(emb.parameters())


def test_learned_embedding_of_chosen_width():
    label = LabelConditioner({"embedding": "learned", "embed_dim": 6, "num_classes": 4})
    emb = label.build_embedding()
    assert label.embed_dim == 6 and emb(torch.tensor([0, 3])).shape == (2, 6)
    assert sum(p.numel() for p in emb.parameters()) == 24


def test_config_errors():
    with pytest.raises(ConfigError, match=r"num_classes = 1: Input should be greater than or equal to 2"):
        LabelConditioner({"num_classes": 1})
    with pytest.raises(ConfigError, match=r"embed_dim = 4 does not apply to embedding 'onehot'"):
        LabelConditioner({"embed_dim": 4})
    with pytest.raises(ConfigError, match=r"embedding = 'word2vec'"):
        LabelConditioner({"embedding": "word2vec"})


def test_condition_from_batch_reads_the_configured_field():
    label = LabelConditioner({"field": "digit"})
    assert label.condition_from_batch({"digit": torch.tensor([1, 2], dtype=torch.uint8)}).dtype == torch.int64
    with pytest.raises(ConditionError, match=r"needs data field 'digit', but the data has \['image', 'label'\]"):
        label.condition_from_batch({"image": torch.zeros(1), "label": torch.zeros(1)})


def test_fit_rejects_labels_beyond_num_classes():
    with pytest.raises(ConditionError, match="training data field 'label' holds class 9, out of range"):
        LabelConditioner({"num_classes": 5}).fit({"label": torch.tensor([0, 9])})


@pytest.mark.parametrize(
    "value, expected",
    [(5, [5]), ("5", [5]), ("all", list(range(10))), ("1,2", [1, 2]), ([3, 4], [3, 4]), (torch.tensor(7), [7]),
     (torch.tensor([0, 9]), [0, 9]), (2.0, [2])],
)
def test_python_values_become_conditions(label, value, expected):
    c = label.conditions_from_value(value)
    assert c.dtype == torch.int64 and c.tolist() == expected


@pytest.mark.parametrize("value, message", [("12", "class 12 is out of range"), (None, "cannot be made from None"),
                                            (2.5, "must hold whole numbers"), ([[1, 2]], "shape (B,)")])
def test_bad_python_values_are_condition_errors(label, value, message):
    with pytest.raises(ConditionError) as err:
        label.conditions_from_value(value)
    assert message in str(err.value)


def test_examples_colours_and_row_labels(label):
    assert label.example_conditions({}, torch.Generator()).tolist() == list(range(10))
    classes = torch.tensor([3, 1, 3])
    assert torch.equal(label.latent_colour(classes), classes) and not label.latent_colour(classes).is_floating_point()
    assert label.describe_condition(torch.tensor(4)) == "4"
