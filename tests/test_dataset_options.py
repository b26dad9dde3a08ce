"""A data set's own options: declared by its loader as a condgen.DatasetOptions model, given as data.options or
--data-option KEY=VALUE, validated when the run config is parsed, stored with their defaults filled in, handed
to the loader, and listed by ``condgen plugins DATASET``; every mistake is one line."""

from __future__ import annotations

import json
import re

import pytest
from pydantic import Field

import condgen
from condgen.cli import main
from condgen.plugin.registry import PluginWarning, list_plugins, registry

from helpers import make_toy_splits


class ToyOptions(condgen.DatasetOptions):
    brightness: float = Field(1.0, gt=0, le=1, description="the images are multiplied by it")
    size: list[int] = Field(default_factory=lambda: [6, 6], description="[H, W] of the images")


class ToyWithOptions:
    """A plugin giving the ``toy-opts`` data set: the toy data with its images scaled by ``brightness``."""

    def __init__(self) -> None:
        self.seen: list[dict] = []
        self.brightest: list[float] = []

    @condgen.hookimpl
    def condgen_register_datasets(self, register):
        def load(config: condgen.DataConfig) -> condgen.DataSplits:
            """The toy data, dimmed."""
            self.seen.append(dict(config.options))
            data = make_toy_splits(n_train=64, n_test=32)
            for split in (data.train, data.test):
                split["image"] = split["image"] * config.options["brightness"]
            self.brightest.append(float(data.train["image"].max()))
            return data

        load.options = ToyOptions
        register("toy-opts", load)


@pytest.fixture
def toy_opts(register_plugin) -> ToyWithOptions:
    plugin = ToyWithOptions()
    register_plugin(plugin, "toy-opts-plugin")
    return plugin


def one_line(capsys, *argv: str) -> str:
    assert main(list(argv)) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


TRAIN = ["train", "--dataset", "toy-opts", "--conditioner", "label", "--latent-dim", "2", "--hidden", "8",
         "--epochs", "1", "--device", "cpu", "--no-pictures"]


def test_flags_reach_the_loader_converted_and_are_stored_with_the_defaults(toy_opts, tmp_path, capsys):
    assert main([*TRAIN, "--data-option", "brightness=0.5", "--out", str(tmp_path / "run")]) == 0
    stored = json.loads((tmp_path / "run" / "config.json").read_text())["data"]["options"]
    assert stored == {"brightness": 0.5, "size": [6, 6]} and toy_opts.seen == [stored]  # text "0.5" is a number
    # the loader's options took effect: the images it gave were dimmed to half
    assert toy_opts.brightest == [pytest.approx(0.5 * float(make_toy_splits(64, 32).train["image"].max()))]
    run = condgen.load_run(tmp_path / "run")
    assert run.config.data.options == stored
    # a config file's options, a flag laid over one of them, JSON for a list
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"data": {"dataset": "toy-opts", "options": {"brightness": 0.25, "size": [6, 6]}}}))
    assert main([*TRAIN, "--config", str(config), "--data-option", "size=[3, 4]", "--out", str(tmp_path / "r2")]) == 0
    assert json.loads((tmp_path / "r2" / "config.json").read_text())["data"]["options"] == {
        "brightness": 0.25, "size": [3, 4]}


@pytest.mark.parametrize("flags, message", [
    (["--data-option", "colour=red"], "data.options.colour: unknown field (remove it or check its spelling) (the "
                                      "options of data set 'toy-opts': `condgen plugins toy-opts` lists them)"),
    (["--data-option", "brightness=2"], "data.options.brightness = '2': Input should be less than or equal to 1"),
    (["--data-option", "brightness=dim"], "data.options.brightness = 'dim': Input should be a valid number"),
    (["--data-option", "brightness"], "--data-option 'brightness': setting 'brightness' must look like KEY=VALUE "
                                      "(e.g. --data-option 'size=[32,32]'"),
    (["--data-option", "size=[3,"], "--data-option 'size=[3,': setting 'size' is not valid JSON"),
    (["--data-option", "brightness=0.5", "--data-option", "brightness=0.4"],
     "--data-option brightness=... is given twice; give it once"),
])
def test_a_bad_data_option_is_one_line_and_leaves_nothing(toy_opts, tmp_path, capsys, flags, message):
    line = one_line(capsys, *TRAIN, *flags, "--out", str(tmp_path / "run"))
    assert message in line, line
    assert not (tmp_path / "run").exists() and toy_opts.seen == []


def test_a_data_set_without_options_takes_none_and_the_python_api_says_the_same(toy_opts, tmp_path, capsys):
    line = one_line(capsys, "train", "--conditioner", "label", "--data-option", "size=[3,3]", "--out",
                    str(tmp_path / "run"))
    assert line == ("error: data.options: data set 'mnist' takes no options, got ['size']; remove them (`condgen "
                    "plugins DATASET` lists a data set's options)")
    with pytest.raises(condgen.ConfigError, match=r"data.options.brightness = 0: Input should be greater than 0"):
        condgen.RunConfig.parse({"data": {"dataset": "toy-opts", "options": {"brightness": 0}}})
    with pytest.raises(condgen.ConfigError, match=r"data.options = 'big': Input should be a valid dictionary"):
        condgen.RunConfig.parse({"data": {"dataset": "toy-opts", "options": "big"}})
    # a data set this process does not have is named when its data are loaded, not when a stored config is read
    assert condgen.RunConfig.parse({"data": {"dataset": "elsewhere", "options": {"x": 1}}}).data.options == {"x": 1}


def test_condgen_plugins_lists_a_data_sets_options(toy_opts, capsys):
    assert main(["plugins", "toy-opts"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == ["data set 'toy-opts' from plugin 'toy-opts-plugin' (not from a distribution)",
                       "  The toy data, dimmed.",
                       "settings (--data-option KEY=VALUE or data.options in a config file, with --dataset toy-opts):"]
    assert out[3].split() == ["brightness", "float,", "default", "1.0:", "the", "images", "are", "multiplied", "by", "it"]
    assert main(["plugins", "toy-opts", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["dataset"] == "toy-opts" and [s["default"] for s in listed["settings"]] == [1.0, [6, 6]]
    assert main(["plugins", "mnist"]) == 0 and "  no settings" in capsys.readouterr().out
    line = one_line(capsys, "plugins", "nosuch")
    assert re.search(r"unknown conditioner 'nosuch'; .*; nor is 'nosuch' a data set \(registered datasets: "
                     r"[a-z, -]*mnist, npz, toy-opts\)$", line), line


class BadOptions:
    @condgen.hookimpl
    def condgen_register_datasets(self, register):
        def load(config):
            return make_toy_splits()

        load.options = {"brightness": 1.0}
        register("bad-opts", load)


def test_a_loader_whose_options_are_not_a_model_marks_its_plugin_broken(register_plugin):
    register_plugin(BadOptions(), "bad-opts-plugin")
    with pytest.warns(PluginWarning, match="dataset 'bad-opts': its loader's options must be a subclass of "
                                           "condgen.DatasetOptions"):
        info = {p.name: p for p in list_plugins()}["bad-opts-plugin"]
    assert not info.ok and "bad-opts" not in registry().datasets


class LooseOptions:
    """A data set whose options model is a plain pydantic model (unknown options would pass unseen)."""

    @condgen.hookimpl
    def condgen_register_datasets(self, register):
        from pydantic import BaseModel

        class Loose(BaseModel):
            brightness: float = 1.0

        def load(config):
            return make_toy_splits()

        load.options = Loose
        register("loose", load)


class RaisingOptions:
    """A data set whose options model raises an error of its own while it validates."""

    @condgen.hookimpl
    def condgen_register_datasets(self, register):
        from pydantic import field_validator

        class Raising(condgen.DatasetOptions):
            level: int = 1

            @field_validator("level")
            @classmethod
            def _boom(cls, v):
                raise TypeError("the plugin's own bug")

        def load(config):
            return make_toy_splits()

        load.options = Raising
        register("raising", load)


def test_an_options_model_must_refuse_unknown_options_and_its_own_bug_is_one_plugin_error(register_plugin):
    register_plugin(LooseOptions(), "loose-plugin")
    register_plugin(RaisingOptions(), "raising-plugin")
    with pytest.warns(PluginWarning, match=r"dataset 'loose': its loader's options must be a subclass of "
                                           r"condgen.DatasetOptions \(which refuses unknown options\)"):
        assert "loose" not in registry().datasets and "raising" in registry().datasets
    with pytest.raises(condgen.PluginError, match=r"data set 'raising': its options model Raising raised TypeError: "
                                                  r"the plugin's own bug \(a bug in plugin 'raising-plugin'"):
        condgen.RunConfig.parse({"data": {"dataset": "raising", "options": {"level": 2}}})


def test_a_stored_run_samples_where_its_data_sets_options_changed_and_trains_only_with_valid_ones(
        toy_opts, tmp_path, capsys):
    assert main([*TRAIN, "--data-option", "brightness=0.5", "--out", str(tmp_path / "run")]) == 0
    # a later release of the plugin renames the option: sampling the stored run does not need its data

    class Renamed(condgen.DatasetOptions):
        shade: float = Field(1.0, gt=0, le=1)

    registry().dataset_loader("toy-opts").options = Renamed
    try:
        run = condgen.load_run(tmp_path / "run")
        assert run.config.data.options == {"brightness": 0.5, "size": [6, 6]}
        assert run.sample({"label": 1}, num=2).shape == (2, 1, 6, 6)
        line = one_line(capsys, "train", "--resume", "--epochs", "2", "--out", str(tmp_path / "run"))
        assert "data.options.brightness: unknown field" in line  # loading its data checks them
    finally:
        registry().dataset_loader("toy-opts").options = ToyOptions


class Twin:
    """A plugin giving the ``twin`` data set, which two plugins of this class register."""

    @condgen.hookimpl
    def condgen_register_datasets(self, register):
        register("twin", lambda config: make_toy_splits())


def test_condgen_plugins_on_a_data_set_two_plugins_register_names_both(register_plugin, capsys):
    register_plugin(Twin(), "twin-one")
    register_plugin(Twin(), "twin-two")
    assert main(["plugins", "twin"]) == 2
    conflict = ("dataset 'twin' is registered by both plugin 'twin-one' (not from a distribution) and plugin "
                "'twin-two' (not from a distribution), so neither is used; uninstall one, or block one with "
                "CONDGEN_BLOCK_PLUGINS=NAME")
    # the registry's warning as the plugins load, then its error: not "unknown conditioner ... nor is it a data set"
    assert capsys.readouterr().err.splitlines() == [f"warning: {conflict}", f"error: {conflict}"]


class Marked:
    """A plugin giving the ``marked`` data set, whose loader's docstring has reST markup over several lines."""

    @condgen.hookimpl
    def condgen_register_datasets(self, register):
        def load(config):
            """Toy pictures (``(N, 1, 6, 6)``) as a :class:`condgen.DataSplits`, with
            :meth:`~condgen.Conditioner.fit` and :ref:`the names <class-names>` of `left` and **right**.

            A second paragraph, not shown.
            """
            return make_toy_splits()

        register("marked", load)


def test_the_summary_is_the_first_paragraph_in_one_line_without_markup(register_plugin, capsys):
    register_plugin(Marked(), "marked-plugin")
    assert main(["plugins", "marked"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == (
        "  Toy pictures ((N, 1, 6, 6)) as a DataSplits, with fit and the names of left and right.")
    assert main(["plugins", "fashion-mnist", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"] == (
        "Zalando's Fashion-MNIST: 28 x 28 grey pictures of clothes in 10 named classes (T-shirt/top to Ankle boot), "
        "60,000 to train on and 10,000 to test.")
    assert main(["plugins", "label"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == (
        "  Condition on an integer class label in 0 .. num_classes - 1; a condition is (B,) int64.")


class TwinSign:
    """A plugin registering the ``sign`` conditioner, as the test helpers' SignPlugin does too."""

    @condgen.hookimpl
    def condgen_register_conditioners(self, register):
        from helpers import SignConditioner

        register(SignConditioner)


def test_condgen_plugins_on_a_conditioner_two_plugins_register_is_their_conflict_alone(register_plugin, capsys):
    from helpers import SignPlugin

    register_plugin(SignPlugin(), "sign-one")
    register_plugin(TwinSign(), "sign-two")
    assert main(["plugins", "sign"]) == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == ("error: conditioner 'sign' is registered by both plugin 'sign-one' (not from a distribution) and "
                    "plugin 'sign-two' (not from a distribution), so neither is used; uninstall one, or block one "
                    "with CONDGEN_BLOCK_PLUGINS=NAME")  # no "nor is 'sign' a data set": it is a conditioner


def test_a_config_files_options_that_are_not_a_mapping_are_refused_with_a_flag_too(toy_opts, tmp_path, capsys):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"data": {"dataset": "toy-opts", "options": ["brightness", 0.5]}}))
    line = one_line(capsys, *TRAIN, "--config", str(config), "--data-option", "brightness=0.5", "--out",
                    str(tmp_path / "run"))
    assert line == "error: data.options must be a mapping of option names to values, got ['brightness', 0.5]"
