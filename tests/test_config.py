"""Configs: strict validation with errors naming the field and value; files; CLI flags."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

import condgen
from condgen.cli.options import train_config_from_args
from condgen.cli.parser import build_parser
from condgen.common.options import add_options
from condgen.runs.config import read_config_file
from condgen.common.errors import ConfigError

SEED_FLAGS = ["train", "--conditioner", "label", "--latent-dim", "2", "--hidden", "512", "--batch-size", "50",
              "--epochs", "20", "--seed", "0", "--data-dir", "DIR", "--out", "RUN_DIR"]


def test_seed_command_gives_exactly_the_seed_configuration():
    args = build_parser().parse_args(SEED_FLAGS)
    config = train_config_from_args(args, {})
    assert [c.name for c in config.conditioners] == ["label"]
    assert config.model.latent_dim == 2 and config.model.hidden == [512] and config.model.decoder_widths == [512]
    assert config.model.activation == "relu" and config.model.likelihood == "bernoulli"
    assert (config.train.optimizer, config.train.lr, config.train.batch_size) == ("adam", 1e-3, 50)
    assert config.train.epochs == 20 and config.train.seed == 0
    assert config.data.data_dir == str(Path.cwd() / "DIR")  # stored absolute


def test_unknown_field_is_named():
    with pytest.raises(ConfigError, match=r"model.latnet_dim: unknown field"):
        condgen.RunConfig.parse({"model": {"latnet_dim": 3}})


def test_bad_value_is_named_with_the_value():
    with pytest.raises(ConfigError, match=r"train.batch_size = 0: Input should be greater than or equal to 1"):
        condgen.RunConfig.parse({"train": {"batch_size": 0}})
    with pytest.raises(ConfigError, match=r"model.hidden = \[512, -1\]: .*every hidden width must be between 1 and 65536"):
        condgen.RunConfig.parse({"model": {"hidden": [512, -1]}})
    with pytest.raises(ConfigError, match=r"train.device = 'gpu': .*cpu, cuda, cuda:N or auto"):
        condgen.RunConfig.parse({"train": {"device": "gpu"}})
    with pytest.raises(ConfigError, match="conditioner 'label' is listed more than once"):
        condgen.RunConfig.parse({"conditioners": [{"name": "label"}, {"name": "label"}]})


def test_conditioner_config_errors_name_the_conditioner_and_field_when_parsed():
    with pytest.raises(ConfigError, match=r"conditioner 'label' config.num_clases: unknown field"):
        condgen.RunConfig.parse({"conditioners": [{"name": "label", "config": {"num_clases": 3}}]})
    with pytest.raises(ConfigError, match=r"conditioner 'label' config.num_classes = 1: Input should be greater"):
        condgen.RunConfig.parse({"conditioners": [{"name": "label", "config": {"num_classes": 1}}]})


@pytest.mark.parametrize(
    "name, text",
    [
        ("c.json", json.dumps({"model": {"latent_dim": 8}, "train": {"epochs": 3}})),
        ("c.yaml", "model:\n  latent_dim: 8\ntrain:\n  epochs: 3\n"),
        ("c.toml", "[model]\nlatent_dim = 8\n[train]\nepochs = 3\n"),
    ],
)
def test_config_files_in_three_formats_and_flags_override(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    args = build_parser().parse_args(
        ["train", "--config", str(path), "--epochs", "5", "--optimizer", "adamw", "--weight-decay", "0.01", "--out", "x"]
    )
    config = train_config_from_args(args, read_config_file(path))
    assert config.model.latent_dim == 8 and config.train.epochs == 5
    assert config.train.optimizer == "adamw" and config.train.weight_decay == 0.01


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        read_config_file(tmp_path / "nope.json")
    bad = tmp_path / "c.ini"
    bad.write_text("x")
    with pytest.raises(ConfigError, match="use .json, .yaml, .yml or .toml"):
        read_config_file(bad)
    broken = tmp_path / "c.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot parse config file"):
        read_config_file(broken)


# -- the option table: one declaration per flag, beside the config field it sets -------------------
def _config_fields() -> dict[str, list[str]]:
    from condgen.runs.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    sections = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}
    return {"run": [f for f in RunConfig.model_fields if f not in sections],
            **{name: list(model.model_fields) for name, model in sections.items()}}


def test_every_config_field_has_a_flag_or_is_marked_config_file_only():
    from condgen.cli.options import TRAIN_COMMAND
    from condgen.common.options import Option, coverage_problems

    fields = _config_fields()
    assert coverage_problems(TRAIN_COMMAND, fields) == []
    # the check fails for a field left out, an option naming no field, and a field declared twice
    without = [o for o in TRAIN_COMMAND if o.name != "eval_batch_size"]
    assert coverage_problems(without, fields) == ["train.eval_batch_size has neither a flag nor a config-file-only mark"]
    typo = Option("latnet_dim", "latent size", section="model", type=int)
    assert coverage_problems([*TRAIN_COMMAND, typo], fields) == [
        "option --latnet-dim sets model.latnet_dim, which does not exist"]
    twice = Option("lr", "learning rate", section="train", flag="--learning-rate", type=float)
    assert coverage_problems([*TRAIN_COMMAND, twice], fields) == ["train.lr is declared twice (--lr, --learning-rate)"]
    # a field may have no flag when it says so: it is covered, and the parser leaves it out
    marked = [Option(o.name, o.help, section=o.section, config_file_only=True) if o.name == "eval_batch_size" else o
              for o in TRAIN_COMMAND]
    assert coverage_problems(marked, fields) == []
    parser = argparse.ArgumentParser()
    add_options(parser, marked)
    assert "--eval-batch-size" not in parser.format_help() and "--batch-size" in parser.format_help()


def test_config_field_descriptions_are_their_flags_help():
    from condgen.cli.options import TRAIN_COMMAND
    from condgen.runs.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    models = {"run": RunConfig, "model": ModelConfig, "data": DataConfig, "train": TrainConfig}
    options = [o for o in TRAIN_COMMAND if o.section in models]
    own = [f for f in RunConfig.model_fields if f not in models]  # RunConfig's fields but its sections
    assert len(options) == len(own) + sum(len(m.model_fields) for s, m in models.items() if s != "run") == 33
    for o in options:
        assert models[o.section].model_fields[o.name].description == o.help, o.sets


#: A value for every flag that sets a config field, and what the field then holds; together, but for
#: gaussian_min_std (:data:`OTHER_LIKELIHOOD`), they make one valid config (gaussian_std needs likelihood gaussian,
#: gsnn_weight objective hybrid, prior_hidden prior conditional).
EVERY_FLAG = {
    "conditioners": (["label:num_classes=3"], [{"name": "label", "config": {"num_classes": 3, "field": "label",
                                                                            "embedding": "onehot", "embed_dim": None}}]),
    "latent_dim": (["3"], 3), "arch": (["conv"], "conv"), "channels": (["8", "16"], [8, 16]),
    "hidden": (["64", "32"], [64, 32]), "decoder_hidden": (["16"], [16]),
    "activation": (["gelu"], "gelu"), "likelihood": (["gaussian"], "gaussian"), "gaussian_std": (["0.25"], 0.25),
    "gaussian_min_std": (["0.01"], 0.01),  # with OTHER_LIKELIHOOD, in place of gaussian_std
    "prior": (["conditional"], "conditional"), "prior_hidden": (["8", "8"], [8, 8]),
    "epochs": (["3"], 3), "batch_size": (["7"], 7), "eval_batch_size": (["64"], 64), "lr": (["0.01"], 0.01),
    "optimizer": (["adamw"], "adamw"), "weight_decay": (["0.1"], 0.1), "lr_schedule": (["cosine"], "cosine"),
    "objective": (["hybrid"], "hybrid"), "gsnn_weight": (["0.3"], 0.3), "grad_clip": (["100"], 100.0),
    "precision": (["bf16"], "bf16"),
    "condition_dropout": (["label=0.2"], {"label": 0.2}), "seed": (["5"], 5), "device": (["cpu"], "cpu"),
    "log": (["tensorboard"], ["tensorboard"]),
    "dataset": (["image-folder"], "image-folder"), "data_dir": (["/d/photos"], "/d/photos"),
    "x_field": (["pixels"], "pixels"), "train_limit": (["9"], 9), "test_limit": (["4"], 4),
    "options": (["method=crop"], {"size": None, "method": "crop", "mode": "auto", "test_fraction": 0.1,
                                  "split_seed": 0, "bad_files": "refuse", "attributes": None, "file_column": "file",
                                  "missing": "refuse", "attribute_types": {}, "background": "white", "cache": True,
                                  "keep": "auto"}),  # with the data set's defaults
}


#: The likelihood of the second config, which holds gaussian_min_std (refused with likelihood gaussian).
OTHER_LIKELIHOOD = {"likelihood": (["gaussian-pixel"], "gaussian-pixel")}


def test_every_config_flag_reaches_its_field():
    from condgen.cli.options import TRAIN_COMMAND, flags_given

    options = [o for o in TRAIN_COMMAND if o.section is not None]
    assert {o.name for o in options} == set(EVERY_FLAG)  # a new flag needs its case here
    # gaussian_std and gaussian_min_std apply to different likelihoods: one config for each
    for flags, left_out in ((EVERY_FLAG, "gaussian_min_std"), ({**EVERY_FLAG, **OTHER_LIKELIHOOD}, "gaussian_std")):
        given = [o for o in options if o.name != left_out]
        argv = ["train", "--out", "RUN_DIR"]
        for o in given:
            argv += [o.option_string, *flags[o.name][0]]
        args = build_parser(["train"]).parse_args(argv)
        assert flags_given(args)
        config = train_config_from_args(args, {}).model_dump()
        for o in given:
            held = config[o.name] if o.section == "run" else config[o.section][o.name]
            assert held == flags[o.name][1], o.sets
    # over a config file, each flag replaces the file's value
    base = {"model": {"gaussian_std": 0.5, "likelihood": "gaussian"}, "train": {"eval_batch_size": 10, "epochs": 2}}
    args = build_parser(["train"]).parse_args(["train", "--gaussian-std", "0.1", "--eval-batch-size", "20", "--out", "x"])
    config = train_config_from_args(args, base)
    assert (config.model.gaussian_std, config.train.eval_batch_size, config.train.epochs) == (0.1, 20, 2)


def test_flags_given_counts_only_the_flags_that_set_a_config_field():
    from condgen.cli.options import flags_given

    parse = build_parser(["train"]).parse_args
    assert not flags_given(parse(["train", "--resume", "--no-pictures", "--config", "c.yaml", "--out", "x"]))
    assert flags_given(parse(["train", "--resume", "--eval-batch-size", "5", "--out", "x"]))
    assert flags_given(parse(["train", "--resume", "--conditioner", "label", "--out", "x"]))


def test_conditioner_flags_replace_the_files_list_keeping_its_settings():
    args = build_parser(["train"]).parse_args(["train", "--conditioner", "label:embedding=learned", "--out", "x"])
    base = {"conditioners": [{"name": "regression"}, {"name": "label", "config": {"num_classes": 4}}]}
    config = train_config_from_args(args, base)
    assert [(c.name, c.config["num_classes"], c.config["embedding"]) for c in config.conditioners] == [
        ("label", 4, "learned")]


def test_an_option_that_sets_a_config_field_takes_no_default():
    from condgen.common.options import Option

    with pytest.raises(ValueError, match="option 'epochs' sets a config field: it takes no default"):
        Option("epochs", "passes", section="train", type=int, default=20)
    with pytest.raises(ValueError, match="section 'optim' is not one of"):
        Option("lr", "learning rate", section="optim")
