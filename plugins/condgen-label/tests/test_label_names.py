"""The label conditioner with class names (``learn_class_names``): parsing, Python values, row labels,
state, and the errors of names that do not fit."""

from __future__ import annotations

import json

import pytest
import torch
from condgen_label import LabelConditioner

from condgen import ConditionError
from condgen.testing import ConditionerContract

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def named(names: list[str] = FASHION, **config: object) -> LabelConditioner:
    label = LabelConditioner({"num_classes": len(names), **config})
    label.learn_class_names({"label": names})
    return label


@pytest.fixture
def fashion() -> LabelConditioner:
    return named()


@pytest.mark.parametrize("text, expected", [
    ("Sneaker", [7]), ("sneaker", [7]), ("SNEAKER", [7]), (" ankle BOOT ", [9]), ("t-shirt/TOP", [0]),
    ("sneaker,Bag", [7, 8]), ("Bag, sneaker ,bag", [8, 7, 8]), ("Sneaker,3", [7, 3]), ("7", [7]), ("0,9", [0, 9]),
    ("all", list(range(10))), ("ALL", list(range(10))),
])
def test_names_parse_without_regard_to_case_beside_numbers(fashion, text, expected):
    c = fashion.parse_condition(text)
    assert c.dtype == torch.int64 and c.tolist() == expected


def test_a_name_with_a_comma_is_one_class():
    label = named(["a,b", "c"])
    assert label.parse_condition("A,B").tolist() == [0]
    assert label.parse_condition("c,1").tolist() == [1, 1]


def test_unknown_names_list_the_classes(fashion):
    with pytest.raises(ConditionError) as err:
        fashion.parse_condition("Sneaker,Boot")
    assert str(err.value) == (
        "label='Sneaker,Boot': 'Boot' is not a class; the classes are 'T-shirt/top', 'Trouser', 'Pullover', 'Dress', "
        "'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'; give a class by name (any case) or by number 0..9, "
        "a comma list of them, or all")
    with pytest.raises(ConditionError, match=r"label='12': class 12 is out of range; allowed are integers 0..9"):
        fashion.parse_condition("12")


def test_among_many_names_an_unknown_one_gets_the_closest():
    label = named([f"species {i:02d}" for i in range(24)] + ["Sneaker"])
    with pytest.raises(ConditionError) as err:
        label.parse_condition("snaeker")
    assert str(err.value) == ("label='snaeker': 'snaeker' is not a class; did you mean 'Sneaker'? Give a class by "
                              "name (any case) or by number 0..24, a comma list of them, or all")
    with pytest.raises(ConditionError) as err:
        label.parse_condition("species 3")
    assert "did you mean 'species 23', 'species 13' or 'species 03'?" in str(err.value)  # the 3 best, equally close
    with pytest.raises(ConditionError) as err:
        label.parse_condition("zebra")
    assert str(err.value).startswith("label='zebra': 'zebra' is not a class; no name of the 25 classes ('species 00', "
                                     "'species 01', 'species 02', 'species 03', 'species 04', ...) is close to it; ")


@pytest.mark.parametrize("value, expected", [
    ("Sneaker", [7]), ("bag,0", [8, 0]), (["Bag", 3], [8, 3]), (("sneaker", torch.tensor(1), "all"), [7, 1, *range(10)]),
    (5, [5]), ([1, 2], [1, 2]),
])
def test_python_values_may_name_classes(fashion, value, expected):
    c = fashion.conditions_from_value(value)
    assert c.dtype == torch.int64 and c.tolist() == expected


@pytest.mark.parametrize("value, message", [
    (["Bag", None], "cannot be made from None"), (["Bag", 10], "holds class 10, out of range"),
    (["Bga"], "'Bga' is not a class; the classes are 'T-shirt/top'"),
])
def test_bad_python_values_with_names(fashion, value, message):
    with pytest.raises(ConditionError) as err:
        fashion.conditions_from_value(value)
    assert message in str(err.value)


def test_rows_are_described_by_name(fashion):
    assert [fashion.describe_condition(c) for c in fashion.example_conditions({}, torch.Generator())] == FASHION
    assert fashion.describe_condition(torch.tensor(9)) == "Ankle boot"


def test_the_names_are_state_and_come_back_without_the_data(fashion):
    state = json.loads(json.dumps(fashion.state()))
    assert state == {"classes": FASHION}
    restored = LabelConditioner({"num_classes": 10})
    restored.load_state(state)
    assert restored.class_names == tuple(FASHION)
    assert restored.parse_condition("sneaker,bag").tolist() == [7, 8]
    assert restored.describe_condition(torch.tensor(0)) == "T-shirt/top"


def test_no_names_is_todays_behaviour():
    label = LabelConditioner({"num_classes": 3})
    label.learn_class_names({})
    label.learn_class_names({"species": ["a", "b"]})  # another field's names are not this conditioner's
    assert label.class_names is None and label.state() == {}
    label.load_state({})  # a checkpoint of a run from before names
    assert label.parse_condition("2,0").tolist() == [2, 0] and label.describe_condition(torch.tensor(2)) == "2"
    with pytest.raises(ConditionError, match=r"'Sneaker' is not a class number; allowed are integers 0..2, a comma list"):
        label.parse_condition("Sneaker")


def test_the_configured_field_names_the_classes():
    label = LabelConditioner({"field": "kind", "num_classes": 2})
    label.learn_class_names({"label": ["x", "y", "z"], "kind": ["cat", "dog"]})
    assert label.parse_condition("DOG").tolist() == [1]


def test_names_and_num_classes_that_disagree():
    with pytest.raises(ConditionError) as err:
        LabelConditioner().learn_class_names({"label": ["cat", "dog", "bird"]})
    assert str(err.value) == (
        "the data's field 'label' names 3 classes ('cat', 'dog', 'bird'), but conditioner 'label' has "
        "num_classes = 10; set --conditioner label:num_classes=3 (in a config file, the label conditioner's num_classes)")
    with pytest.raises(ValueError, match=r"the stored state names 3 classes \('cat', 'dog', 'bird'\), but conditioner "
                                         r"'label' has num_classes = 10$"):
        LabelConditioner().load_state({"classes": ["cat", "dog", "bird"]})


@pytest.mark.parametrize("names, message", [
    (["cat", "CAT "], "gives two classes one name (names match without regard to case): ['cat', 'CAT ']"),
    (["cat", ""], "has class names that are not a list of non-empty strings: ['cat', '']"),
    ("cd", "has class names that are not a list of non-empty strings: 'cd'"),
])
def test_names_that_cannot_be_told_apart_are_refused(names, message):
    with pytest.raises(ConditionError) as err:
        LabelConditioner({"num_classes": 2}).learn_class_names({"label": names})
    assert str(err.value) == f"the data's field 'label' {message}"


class TestNamedLabel(ConditionerContract):
    """The conformance kit on a label conditioner of named classes."""

    conditioner_class = LabelConditioner
    classes = {"label": FASHION}
    texts = ["Sneaker", "sneaker,BAG", "all", "7,Bag", "Ankle boot", "#7,Bag"]
    values = [["Bag", 3], "trouser"]
    bad_texts = ["", "Snaeker", "10", "Sneaker,,Bag"]
    same_units = [("Sneaker", 0), ("TROUSER", 1), (["Sneaker"], 0), (7, 0), ("#7", 0)]

    def make_batch(self):
        return {"image": torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(0)),
                "label": torch.tensor([7, 1, 2, 3, 4, 5])}


#: Class folders 0 .. 11 with their names sorted as text: class 2 is named "10", class 4 "2".
AS_TEXT = sorted(map(str, range(12)))


@pytest.mark.parametrize("given", ["2", " 2", "0,2", "1, 2", ["2"], ("1", "2")])
def test_a_number_that_names_another_class_is_refused_with_both_readings(given):
    label = named(AS_TEXT)
    with pytest.raises(ConditionError) as err:
        label.conditions_from_value(given)
    text = given if isinstance(given, str) else "2"
    assert str(err.value) == (
        f"label={text!r}: '2' is both the number of class 2 ('10') and the name of class 4 ('2'); give #2 for "
        "class 2 or #4 for class 4 (#N is always class number N)")


def test_a_number_that_names_its_own_class_or_none_in_range_is_that_class():
    label = named(AS_TEXT)
    assert AS_TEXT[:2] == ["0", "1"] and label.parse_condition("0,1").tolist() == [0, 1]  # the same class either way
    assert label.conditions_from_value([4, 2]).tolist() == [4, 2]  # an int is always a number
    numeric = named([str(i) for i in range(12)])  # sorted as numbers: every number names its own class
    assert numeric.parse_condition("2,10,11").tolist() == [2, 10, 11]
    assert named(["5", "12", "cat"]).parse_condition("12,2").tolist() == [1, 2]  # 12 is no class number here


def test_hash_n_is_always_the_class_number():
    label = named(AS_TEXT)
    assert label.parse_condition("#2,#4, #11").tolist() == [2, 4, 11]
    assert label.conditions_from_value(["#4", 0]).tolist() == [4, 0]
    assert named(["#1", "b"]).parse_condition("#1").tolist() == [1]  # even where a name looks like #N
    assert LabelConditioner({"num_classes": 3}).parse_condition("#2").tolist() == [2]  # and without names
    with pytest.raises(ConditionError, match=r"^label='#12': class 12 is out of range; allowed are integers 0..11$"):
        label.parse_condition("#12")
    with pytest.raises(ConditionError, match=r"^label='#two': '#two' is not a class number; after # give a number "
                                             r"0..11$"):
        label.parse_condition("#two")
