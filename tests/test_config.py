"""Configs: strict validation with errors naming the field and value; files; CLI flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import condgen
from condgen.cli import build_parser, train_config_from_args
from condgen.config import read_config_file
from condgen.errors import ConfigError

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
