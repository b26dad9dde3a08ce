"""Several conditioners of one plugin in one model, each under its own instance name: the config and flag
syntax, the checks, and two label conditioners on two CSV columns of a real image folder, trained, sampled
and evaluated through the command line by their instance names."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import one_error_line, toy_config
from PIL import Image

import condgen
from condgen.cli import main
from condgen.runs.checkpoint import read_checkpoint
from condgen.runs.options import _lay_conditioners, parse_conditioner_option

#: Each MNIST digit's made-up colour and shape, the two CSV columns (classes sorted: blue, green, red; round, square).
COLOURS = {0: "red", 1: "green", 2: "blue"}
SHAPES = {0: "round", 1: "square", 2: "square"}


def csv_folder(root: Path, digits) -> Path:
    """A flat folder of the digits as PNGs and ``attributes.csv`` naming each one's colour and shape."""
    root.mkdir(parents=True)
    rows = ["file,colour,shape"]
    for d, images in digits.items():
        for i, image in enumerate(images.numpy()):
            Image.fromarray(image).save(root / f"{d}-{i:02d}.png")
            rows.append(f"{d}-{i:02d}.png,{COLOURS[d]},{SHAPES[d]}")
    (root / "attributes.csv").write_text("\n".join(rows) + "\n")
    return root


TWO_LABELS = ["--conditioner", "colour=label:field=colour,num_classes=3",
              "--conditioner", "shape=label:field=shape,num_classes=2"]


def train_flags(root: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--dataset", "image-folder", "--data-dir", str(root), "--data-option", "attributes=attributes.csv",
            "--latent-dim", "2", "--hidden", "32", "--epochs", "1", "--device", "cpu", *extra, "--out", str(out)]


def test_two_label_conditioners_on_two_columns_train_sample_and_evaluate_by_instance(tmp_path, digits, capsys):
    root, run_dir = csv_folder(tmp_path / "d", digits), tmp_path / "run"
    assert main(train_flags(root, run_dir, *TWO_LABELS, "--condition-dropout", "shape=0.2")) == 0
    assert "--condition colour=... --condition shape=..." in capsys.readouterr().out
    stored = json.loads((run_dir / "config.json").read_text())
    assert [(c["name"], c["instance"], c["config"]["field"]) for c in stored["conditioners"]] == [
        ("label", "colour", "colour"), ("label", "shape", "shape")]
    assert (run_dir / "samples.png").is_file() and (run_dir / "latent.png").is_file()

    # the instance names are what the command line names the conditioners by
    samples = tmp_path / "s.npy"
    assert main(["sample", str(run_dir), "--condition", "colour=red", "--condition", "shape=round", "--num", "3",
                 "--out", str(samples)]) == 0
    assert np.load(samples).shape == (3, 1, 28, 28)
    assert main(["sample", str(run_dir), "--condition", "colour=red,blue", "--num", "2", "--out", str(samples)]) == 0
    assert np.load(samples).shape == (4, 1, 28, 28)  # shape, trained with condition dropout, left out
    capsys.readouterr()
    assert main(["sample", str(run_dir), "--condition", "label=red", "--condition", "shape=round",
                 "--out", str(samples)]) == 2
    assert one_error_line(capsys) == ("error: --condition 'label=red': this model has no conditioner 'label'; its "
                                      "conditioners are ['colour', 'shape']")
    assert main(["sample", str(run_dir), "--condition", "colour=purple", "--out", str(samples)]) == 2
    assert one_error_line(capsys).startswith("error: colour='purple': 'purple' is not a class; the classes are "
                                             "'blue', 'green', 'red'")
    assert main(["sample", str(run_dir), "--condition", "shape=round", "--out", str(samples)]) == 2
    assert "a condition for 'colour' is needed" in one_error_line(capsys)

    run = condgen.load_run(run_dir, device="cpu")
    colour, shape = run.conditioners["colour"], run.conditioners["shape"]
    assert (colour.name, shape.name, type(colour).name) == ("colour", "shape", "label")
    assert colour.class_names == ("blue", "green", "red") and shape.class_names == ("round", "square")
    assert list(run.model.absent) == ["shape"] and run.optional == ["shape"]
    assert {k for k in run.model.state_dict() if k.startswith("absent.")} == {"absent.shape"}
    _, meta = read_checkpoint(run_dir / "checkpoint.safetensors", load_tensors=False)
    assert [(c["name"], c["instance"], c["state"]) for c in meta["conditioners"]] == [
        ("label", "colour", {"classes": ["blue", "green", "red"]}),
        ("label", "shape", {"classes": ["round", "square"]})]
    # the rows of a picture are labelled by instance, and Python takes the same names
    rows = condgen.SampleRows.from_texts(run, ["colour=red", "shape=round,square"])
    assert rows.labels == ["colour=red shape=round", "colour=red shape=square"]
    assert run.sample({"colour": "red", "shape": "square"}, num=2, seed=0).shape == (2, 1, 28, 28)
    with pytest.raises(condgen.ConditionError, match=r"no conditioner 'label'; its conditioners are \['colour', 'sh"):
        run.sample({"label": 2, "colour": 1})
    # evaluate's figures are keyed by instance: each label conditioner as a classifier of its own column
    result = condgen.evaluate(run, samples=0)
    assert {"colour_elbo_accuracy", "shape_elbo_accuracy"} <= set(result)
    assert all(0 <= result[k] <= 1 for k in ("colour_elbo_accuracy", "shape_elbo_accuracy"))
    assert math.isfinite(result["test_neg_elbo"])


def test_a_plugins_own_messages_and_fixes_name_the_instance(tmp_path, digits, capsys):
    root = csv_folder(tmp_path / "d", digits)
    assert main(train_flags(root, tmp_path / "run", "--conditioner", "colour=label:field=colour")) == 2
    assert one_error_line(capsys) == (
        "error: the data's field 'colour' names 3 classes ('blue', 'green', 'red'), but conditioner 'colour' has "
        "num_classes = 10; set --conditioner colour=label:num_classes=3 (in a config file, the colour conditioner's "
        "num_classes)")
    assert not (tmp_path / "run").exists()


def test_one_plugin_twice_without_instance_names_is_one_line_with_the_fix(tmp_path, capsys):
    flags = ["train", "--conditioner", "label:field=colour", "--conditioner", "label:field=shape",
             "--out", str(tmp_path / "run")]
    assert main(flags) == 2
    assert one_error_line(capsys) == (
        "error: invalid config: conditioners = [{'name': 'label', 'config': {'field': 'colour'}}, {'name': 'label', "
        "'config': {'field': 'shape'}}]: conditioner 'label' is listed more than once; give each an instance name: "
        "--conditioner INSTANCE=label:... (in a config file, \"instance\": \"INSTANCE\"), e.g. --conditioner "
        "label_a=label:... --conditioner label_b=label:...")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("conditioners, message", [
    ([{"name": "label", "instance": "colour"}, {"name": "label", "instance": "colour"}],
     "instance name 'colour' is given to more than one conditioner; give each its own"),
    ([{"name": "label"}, {"name": "regression", "instance": "label", "config": {"targets": ["ink"]}}],
     "instance name 'label' is given to more than one conditioner; give each its own"),
    ([{"name": "label", "instance": "Colour"}], "conditioners.0.instance = 'Colour': an instance name must match "
                                                "^[a-z][a-z0-9_]*$"),
    ([{"name": "label", "instance": ""}], "conditioners.0.instance = '': an instance name must match"),
    ([{"name": "label", "instance": "training"}], "instance name 'training' is reserved (an attribute of "
                                                  "torch.nn.Module); choose another"),
    ([{"name": "label", "instance": "colour", "config": {"num_classes": 1}}],
     "conditioner 'colour' config.num_classes = 1: Input should be greater than or equal to 2"),
    ([{"name": "label", "instance": "colour", "colour": 3}], "conditioners.0.colour: unknown field"),
])
def test_bad_instances_in_a_config_are_one_config_error_naming_them(conditioners, message):
    with pytest.raises(condgen.ConfigError) as err:
        condgen.RunConfig.parse({"conditioners": conditioners})
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_condition_dropout_names_instances_not_plugins():
    specs = [{"name": "label", "instance": "colour"}, {"name": "label", "instance": "shape"}]
    config = condgen.RunConfig.parse({"conditioners": specs, "train": {"condition_dropout": {"shape": 0.3}}})
    assert config.dropout_probabilities() == {"shape": 0.3} and config.absent_conditioners() == ["shape"]
    assert condgen.RunConfig.parse({"conditioners": specs, "train": {"condition_dropout": 0.1}}).absent_conditioners() \
        == ["colour", "shape"]
    with pytest.raises(condgen.ConfigError, match=r"train.condition_dropout names 'label', which is not one of this "
                                                  r"model's conditioners \(colour, shape\)"):
        condgen.RunConfig.parse({"conditioners": specs, "train": {"condition_dropout": {"label": 0.3}}})


def test_an_old_style_config_round_trips_unchanged_and_an_instance_of_its_own_name_is_the_default():
    old = {"conditioners": [{"name": "label", "config": {"num_classes": 3}}], "data": {"dataset": "toy"}}
    dumped = condgen.RunConfig.parse(old).model_dump(mode="json")
    assert dumped["conditioners"] == [{"name": "label", "config": {"num_classes": 3, "field": "label",
                                                                   "embedding": "onehot", "embed_dim": None}}]
    assert condgen.RunConfig.parse(dumped).model_dump(mode="json") == dumped
    said = {**old, "conditioners": [{"name": "label", "instance": "label", "config": {"num_classes": 3}}]}
    assert condgen.RunConfig.parse(said).model_dump(mode="json") == dumped
    named = condgen.RunConfig.parse({**old, "conditioners": [{"name": "label", "instance": "digit"}]})
    assert named.model_dump(mode="json")["conditioners"][0]["instance"] == "digit"
    assert named.conditioners[0].instance_name == "digit" and condgen.RunConfig.parse(dumped).conditioners[0]\
        .instance_name == "label"


def test_a_run_without_instance_names_is_stored_as_before(toy, tmp_path):
    run = condgen.train(toy_config(epochs=1, condition_dropout=0.2), tmp_path / "run", pictures=False,
                        log=lambda s: None)
    _, meta = read_checkpoint(tmp_path / "run" / "checkpoint.safetensors", load_tensors=False)
    assert [sorted(c) for c in meta["conditioners"]] == [["distribution", "name", "plugin", "state", "version"]]
    assert meta["config"]["conditioners"] == [{"name": "label", "config": {"num_classes": 2, "field": "label",
                                                                           "embedding": "onehot", "embed_dim": None}}]
    assert "absent.label" in run.model.state_dict() and run.conditioners["label"].name == "label"


def test_the_conditioner_flag_reads_an_instance_name_and_lays_over_the_config_files_same_instance():
    assert parse_conditioner_option("colour=label:field=colour,num_classes=3") == {
        "name": "label", "instance": "colour", "config": {"field": "colour", "num_classes": "3"}}
    assert parse_conditioner_option(" shape = label ") == {"name": "label", "instance": "shape", "config": {}}
    assert parse_conditioner_option("label:field=a") == {"name": "label", "config": {"field": "a"}}
    for bad in ("=label", "colour=", "colour=:field=a"):
        with pytest.raises(condgen.ConfigError, match="give a conditioner name"):
            parse_conditioner_option(bad)
    listed = [{"name": "label", "instance": "colour", "config": {"field": "colour", "embedding": "learned"}},
              {"name": "label", "config": {"field": "digit"}}]
    laid = _lay_conditioners(listed, ["colour=label:num_classes=3", "label:num_classes=4", "shape=label"])
    assert laid == [{"name": "label", "instance": "colour", "config": {"field": "colour", "embedding": "learned",
                                                                       "num_classes": "3"}},
                    {"name": "label", "config": {"field": "digit", "num_classes": "4"}},
                    {"name": "label", "instance": "shape", "config": {}}]  # a new instance takes nothing of another


def test_an_inpaint_conditioner_under_an_instance_name_is_found_by_its_plugin(toy):
    from condgen_inpaint import inpaint
    from condgen_inpaint.completion import inpaint_conditioner
    from helpers import make_toy_splits

    from condgen.runs.build import create_run

    config = condgen.RunConfig.parse({
        "conditioners": [{"name": "inpaint", "instance": "hole", "config": {"hidden": 8, "embed_dim": 4}}],
        "model": {"latent_dim": 2, "hidden": [16]}, "data": {"dataset": "toy"}, "train": {"device": "cpu"}})
    run = create_run(config, make_toy_splits(64, 8).train, torch.device("cpu"))
    assert inpaint_conditioner(run) is run.conditioners["hole"]
    image = torch.rand(1, 6, 6)
    out = inpaint(run, image, "bottom-half", num=2, seed=0)
    assert out.shape == (2, 1, 6, 6) and torch.equal(out[:, :, :3], image[:, :3].expand(2, 1, 3, 6))
