"""Class names end to end: data that names its classes (``DataSplits.classes``) gives a run whose label
conditioner takes and shows the names, kept in its checkpoint; data without names works as before."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from condgen_label import LabelConditioner

import condgen
from condgen.cli import main
from condgen.pictures import drawing, grid
from condgen.plugin.registry import get_plugin_manager
from condgen.runs.store import read_run
from condgen.testing import check_state_round_trip
from helpers import TOY_CLASS_NAMES, NamedToyData, SignPlugin, ToyData, make_toy_splits

NAMED_TEST = make_toy_splits(classes=TOY_CLASS_NAMES).test


def named_config(dataset: str = "toy-named", epochs: int = 12, **label: object) -> condgen.RunConfig:
    """The label conditioner over a toy data set (by default the one whose classes are named)."""
    return condgen.RunConfig.parse({
        "conditioners": [{"name": "label", "config": {"num_classes": 2, **label}}],
        "model": {"latent_dim": 2, "hidden": [32]},
        "data": {"dataset": dataset},
        "train": {"epochs": epochs, "batch_size": 32, "device": "cpu"},
    })


@pytest.fixture(scope="module")
def plugins():
    """The toy data sets, with and without class names, and the ``sign`` conditioner, for this module."""
    pm = get_plugin_manager()
    added = {"toy-named-data": NamedToyData(), "toy-data": ToyData(), "sign-plugin": SignPlugin()}
    for name, plugin in added.items():
        pm.register(plugin, name=name)
    yield
    for name in added:
        pm.unregister(name=name)


@pytest.fixture(scope="module")
def named_run(plugins, tmp_path_factory):
    """A run trained on the named toy data with its pictures, the row labels of samples.png and the legend of
    latent.png as they were drawn (the pictures are written too)."""
    out = tmp_path_factory.mktemp("named") / "run"
    drawn: dict = {}
    real_grid, real_figure = drawing.save_grid, drawing.save_figure

    def save_grid(images, path, per_row, row_labels=None, row_heads=None):
        drawn[Path(path).name] = row_labels
        real_grid(images, path, per_row, row_labels, row_heads=row_heads)

    def save_figure(fig, path):
        legend = fig.axes[0].get_legend()
        drawn[Path(path).name] = (legend.get_title().get_text(), [t.get_text() for t in legend.get_texts()])
        real_figure(fig, path)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(drawing, "save_grid", save_grid)
        mp.setattr(drawing, "save_figure", save_figure)
        run = condgen.train(named_config(), out, progress=False, log=lambda line: None)
    return run, out, drawn


def test_samples_asked_for_by_name_are_those_of_the_class(named_run):
    run, _, _ = named_run
    assert run.conditioners["label"].class_names == ("left", "right")
    by_name = run.sample({"label": "Right"}, num=20, seed=3)
    assert torch.equal(by_name, run.sample({"label": 1}, num=20, seed=3))  # a name means its class index
    # and the model learnt the classes: "right" is bright on the right (data: 0.85 against 0.05), "left" on the left
    left = run.sample({"label": "LEFT"}, num=20, seed=3)
    assert float(by_name[..., 3:].mean() - by_name[..., :3].mean()) > 0.15  # 0 for a model that ignores it
    assert float(left[..., :3].mean() - left[..., 3:].mean()) > 0.15
    # a list mixing names and numbers: one condition per sample
    assert torch.equal(run.sample({"label": ["right", 0]}, num=2, seed=3), run.sample({"label": [1, 0]}, num=2, seed=3))


def test_run_pictures_are_labelled_by_name(named_run):
    _, out, drawn = named_run
    assert drawn["samples.png"] == ["label=left", "label=right"]
    assert drawn["latent.png"] == ("label", ["left", "right"])
    assert (out / "samples.png").stat().st_size > 1000 and (out / "latent.png").stat().st_size > 1000


def test_the_checkpoint_keeps_the_names(named_run):
    _, out, _ = named_run
    (stored,) = read_run(out / "checkpoint.safetensors").meta.conditioners
    assert stored.name == "label" and stored.state == {"classes": ["left", "right"]}
    loaded = condgen.load_run(out)  # without the data: the names come from the checkpoint
    label = loaded.conditioners["label"]
    assert label.parse_condition("Left,right").tolist() == [0, 1]
    assert label.describe_condition(torch.tensor(1)) == "right"


def test_a_loaded_runs_latent_legend_has_the_names(named_run, tmp_path, monkeypatch):
    loaded = condgen.load_run(named_run[1])
    legends = []
    monkeypatch.setattr(drawing, "save_figure", lambda fig, path: legends.append(fig.axes[0].get_legend()))
    assert drawing.write_latent(loaded, NAMED_TEST, tmp_path / "latent.png")
    assert [t.get_text() for t in legends[0].get_texts()] == ["left", "right"]


def test_cli_samples_by_name_with_rows_labelled_by_name(named_run, tmp_path, monkeypatch, capsys):
    out = named_run[1]
    written = []
    real_save_grid = grid.save_grid

    def save_grid(images, path, per_row, row_labels=None, row_heads=None):
        written.append((tuple(images.shape), row_labels))
        real_save_grid(images, path, per_row, row_labels, row_heads=row_heads)

    monkeypatch.setattr(grid, "save_grid", save_grid)  # SampleFile.write takes it from grid when it writes
    png = tmp_path / "names.png"
    assert main(["sample", str(out), "--condition", "label=left,right", "--num", "4", "--out", str(png)]) == 0
    assert written == [((8, 1, 6, 6), ["label=left", "label=right"])]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run = condgen.load_run(out)
    rows = condgen.SampleFile(tmp_path / "x.png", 4).rows(run, ["label=RIGHT,0"])
    assert rows.labels == ["label=right", "label=left"] and rows.conditions["label"].tolist() == [1, 0]
    capsys.readouterr()


def test_cli_unknown_name_is_one_line_listing_the_names(named_run, tmp_path, capsys):
    code = main(["sample", str(named_run[1]), "--condition", "label=middle", "--out", str(tmp_path / "x.png")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == ("error: label='middle': 'middle' is not a class; the classes are 'left', 'right'; "
                                 "give a class by name (any case) or by number 0..1, a comma list of them, or all")
    assert not (tmp_path / "x.png").exists()


def test_names_and_num_classes_that_disagree_are_one_condition_error(plugins, tmp_path):
    with pytest.raises(condgen.ConditionError) as err:
        condgen.train(named_config(num_classes=3), tmp_path / "run", progress=False, log=lambda line: None)
    assert str(err.value) == (
        "the data's field 'label' names 2 classes ('left', 'right'), but conditioner 'label' has num_classes = 3; "
        "set --conditioner label:num_classes=2 (in a config file, the label conditioner's num_classes)")


def test_data_without_names_keeps_classes_by_number(plugins, tmp_path):
    run = condgen.train(named_config(dataset="toy", epochs=1), tmp_path / "run", progress=False, log=lambda line: None)
    (stored,) = read_run(tmp_path / "run" / "checkpoint.safetensors").meta.conditioners
    assert stored.state == {}  # what a checkpoint held before names: such checkpoints load as before
    label = condgen.load_run(tmp_path / "run").conditioners["label"]
    assert label.class_names is None and label.describe_condition(torch.tensor(1)) == "1"
    assert label.parse_condition("1,0").tolist() == [1, 0]
    with pytest.raises(condgen.ConditionError, match="'right' is not a class number; allowed are integers 0..1"):
        run.sample({"label": "right"})


class Unnamed(condgen.Conditioner):
    """A third-party conditioner of condgen before names: it has no learn_class_names of its own."""

    name = "unnamed"

    @property
    def condition_shape(self):
        return ()

    def condition_from_batch(self, batch, generator=None):
        return self.require_field(batch, "label").long()

    def check_condition(self, c):
        return c.long()

    def parse_condition(self, text):
        return torch.tensor([int(text)])

    @property
    def embed_dim(self):
        return 2

    def build_embedding(self):
        return torch.nn.Embedding(2, 2)


class Broken(Unnamed):
    name = "broken_names"

    def learn_class_names(self, classes):
        raise KeyError("names")


class ConditionersPlugin:
    @condgen.hookimpl
    def condgen_register_conditioners(self, register):
        register(Unnamed)
        register(Broken)


def test_conditioners_without_learn_class_names_train_on_named_data(plugins, register_plugin, tmp_path):
    register_plugin(ConditionersPlugin(), "names-plugin")
    config = condgen.RunConfig.parse({"conditioners": [{"name": "unnamed"}, {"name": "sign"}],
                                      "model": {"hidden": [8]}, "data": {"dataset": "toy-named"},
                                      "train": {"epochs": 1, "device": "cpu"}})
    run = condgen.train(config, tmp_path / "ok", progress=False, log=lambda line: None)
    assert run.sample({"unnamed": 1, "sign": [0.5]}, num=3).shape == (3, 1, 6, 6)
    broken = condgen.RunConfig.parse({"conditioners": [{"name": "broken_names"}], "model": {"hidden": [8]},
                                      "data": {"dataset": "toy-named"}, "train": {"epochs": 1, "device": "cpu"}})
    with pytest.raises(condgen.PluginError) as err:
        condgen.train(broken, tmp_path / "broken", progress=False, log=lambda line: None)
    assert str(err.value) == "conditioner 'broken_names''s learn_class_names raised KeyError: 'names' (a bug in its plugin)"


def test_latent_categories_are_named_only_where_a_colour_is_one_condition():
    categories = drawing._Categories()
    categories.add(torch.tensor([0, 1, 0]), torch.tensor([[5.0], [7.0], [6.0]]))  # colour 0: two conditions
    categories.add(torch.tensor([1, 2]), torch.tensor([[7.0], [8.0]]))
    assert categories.condition(0) is None
    assert categories.condition(1).tolist() == [7.0] and categories.condition(2).tolist() == [8.0]
    categories.add(torch.tensor([2]), torch.tensor([[9.0]]))  # colour 2 differs in a later batch
    assert categories.condition(2) is None


class Forgetful(LabelConditioner):
    """A label conditioner whose state leaves the class names out."""

    def state(self):
        return {}


def test_the_kit_catches_names_left_out_of_the_state():
    batch = {"label": torch.tensor([1, 0, 1])}
    check_state_round_trip(LabelConditioner, batch, {"num_classes": 2}, classes={"label": ["left", "right"]})
    with pytest.raises(AssertionError, match="describes data item 0's condition as '1', the fitted one as 'right'"):
        check_state_round_trip(Forgetful, batch, {"num_classes": 2}, classes={"label": ["left", "right"]})


class ThreeNamedClasses:
    """A plugin giving the ``toy-three`` data set: the toy data with a third class (``middle``, label 2)."""

    @condgen.hookimpl
    def condgen_register_datasets(self, register):
        def load(config):
            data = make_toy_splits(n_train=96, n_test=32, classes={"label": ["left", "right", "middle"]})
            for split in (data.train, data.test):
                split["label"][::3] = 2
            return data

        register("toy-three", load)


def test_more_named_classes_than_num_classes_is_the_names_count_error_with_its_fix(register_plugin, tmp_path, capsys):
    # the names are learnt before fit, so this is not fit's "holds class 2, out of range"
    register_plugin(ThreeNamedClasses(), "toy-three-plugin")
    message = ("the data's field 'label' names 3 classes ('left', 'right', 'middle'), but conditioner 'label' has "
               "num_classes = 2; set --conditioner label:num_classes=3 (in a config file, the label conditioner's "
               "num_classes)")
    with pytest.raises(condgen.ConditionError) as err:
        condgen.train(named_config(dataset="toy-three"), tmp_path / "run", progress=False, log=lambda line: None)
    assert str(err.value) == message
    assert main(["train", "--dataset", "toy-three", "--conditioner", "label:num_classes=2", "--hidden", "8",
                 "--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "cli")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"
    assert not (tmp_path / "run").exists() and not (tmp_path / "cli").exists()


class FitFirst(LabelConditioner):
    """A label conditioner that records the order the engine calls it in."""

    calls: list[str] = []

    def learn_class_names(self, classes):
        self.calls.append("learn_class_names")
        super().learn_class_names(classes)

    def fit(self, train):
        self.calls.append("fit")
        super().fit(train)


def test_the_kit_tells_the_names_before_fit_as_the_engine_does():
    FitFirst.calls = []
    check_state_round_trip(FitFirst, {"label": torch.tensor([1, 0, 1])}, {"num_classes": 2},
                           classes={"label": ["left", "right"]})
    assert FitFirst.calls[:2] == ["learn_class_names", "fit"]


def test_data_splits_take_a_tuple_of_class_names_as_a_list():
    train = {"label": torch.tensor([0, 1, 2])}
    given = {"label": ("cat", "dog", "bird")}
    splits = condgen.DataSplits(train=train, test=train, classes=given)
    assert splits.classes == {"label": ["cat", "dog", "bird"]} and type(splits.classes["label"]) is list
    assert given == {"label": ("cat", "dog", "bird")}  # the caller's mapping is left as it was
    assert splits.limited(2, 1).classes == {"label": ["cat", "dog", "bird"]}


@pytest.mark.parametrize("names, pair", [(["Cat", "dog", "cat"], "'Cat' and 'cat'"),
                                         (("dog", "cat", " DOG "), "'dog' and ' DOG '"),
                                         (["cat", "cat", "dog"], "'cat' and 'cat'")])
def test_data_splits_name_both_classes_whose_names_clash(names, pair):
    train = {"label": torch.tensor([0, 1, 2])}
    with pytest.raises(condgen.DataError) as err:
        condgen.DataSplits(train=train, test=train, classes={"label": names})
    assert str(err.value) == (f"field 'label' names two classes {pair} (names are matched without regard to case): "
                              "give each class its own name")
