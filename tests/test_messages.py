"""Repeated and degenerate inputs, and messages that point to the fix (issue "Reliability 2", class 5)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch
from condgen_inpaint import inpaint
from helpers import inpaint_config, train_with_toy_data
from test_reliability import one_line

import condgen
from condgen import ConditionError
from condgen.cli import main


def test_a_conditioner_given_twice_in_condition_dropout_is_refused(capsys, tmp_path):
    line = one_line(capsys, "train", "--conditioner", "label", "--condition-dropout", "label=0.1,label=0.2", "--out",
                    str(tmp_path / "run"))
    assert line == ("error: argument --condition-dropout: 'label=0.1,label=0.2' gives conditioner 'label' twice; give "
                    "each once (see: condgen train --help)")
    assert not (tmp_path / "run").exists()


# -- masks that hide nothing or observe nothing ------------------------------------------------------------
@pytest.fixture(scope="module")
def inpaint_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("messages") / "run"
    return condgen.load_run(train_with_toy_data(inpaint_config(), out, "toy-data-messages"))


@pytest.mark.parametrize("mask, what", [
    ("dropout:1e-300", "hides no pixel (nothing to generate)"),
    ("dropout:0.9999999", "observes no pixel (nothing to condition on)"),
    ("dropout:1e-9", "hides no pixel (nothing to generate)"),
])
def test_a_named_mask_that_hides_or_observes_nothing_is_refused_like_a_file(inpaint_run, mask, what):
    shown = str(condgen_mask(mask))
    with pytest.raises(ConditionError, match="^" + re.escape(f"mask '{shown}' {what} of a 6x6 image; allowed are "
                                                             "masks with at least one observed and one missing pixel")
                       + "$"):
        inpaint(inpaint_run, torch.rand(6, 6), mask, num=2)
    file_mask = torch.ones(6, 6) if "hides" in what else torch.zeros(6, 6)
    with pytest.raises(ConditionError, match=r"^mask item 0 (observes every pixel|observes no pixel)"):
        inpaint(inpaint_run, torch.rand(6, 6), file_mask, num=2)


def condgen_mask(text: str):
    from condgen_inpaint import parse_mask_spec

    return parse_mask_spec(text)


def test_a_training_mask_that_hides_nothing_is_refused_before_the_run_starts(toy, capsys, tmp_path):
    line = one_line(capsys, "train", "--dataset", "toy", "--conditioner", 'inpaint:masks=["quadrants:2","dropout:1e-300"]',
                    "--epochs", "1", "--no-pictures", "--out", str(tmp_path / "run"))
    assert "mask 'dropout:1e-300' hides no pixel (nothing to generate) of a 6x6 image" in line, line
    assert not (tmp_path / "run").exists()


def test_a_usable_dropout_mask_still_completes(inpaint_run):
    out = inpaint(inpaint_run, torch.rand(6, 6), "dropout:0.5", num=3, seed=0)
    assert out.shape == (3, 1, 6, 6) and bool(torch.isfinite(out).all())


# -- messages that say the fix -------------------------------------------------------------------------------
def cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "condgen", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


@pytest.mark.parametrize("variable, value, says", [
    ("CONDGEN_BLOCK_PLUGINS", "inpaint", "CONDGEN_BLOCK_PLUGINS='inpaint' blocks it; remove inpaint from "
                                         "CONDGEN_BLOCK_PLUGINS or unset it"),
    ("CONDGEN_PLUGINS", "label", "CONDGEN_PLUGINS='label' leaves it out; add inpaint to CONDGEN_PLUGINS or unset it"),
])
def test_a_command_of_a_plugin_left_out_names_the_plugin_and_the_variable(variable, value, says):
    done = cli("inpaint", "RUN", "--image", "x.png", "--mask", "quadrants:2", **{variable: value})
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"error: no command 'inpaint': the plugin of that name, 'inpaint' (condgen-inpaint), is installed but not "
        f"loaded: {says} (see: condgen --help)"], done.stderr
    # a typo, or a command no left-out plugin is named for: argparse's own list of commands
    for args, env in ((("inpaintt", "RUN"), {}), (("inpaintt", "RUN"), {variable: value})):
        unknown = cli(*args, **env)
        assert unknown.returncode == 2 and "invalid choice: 'inpaintt' (choose from" in unknown.stderr, unknown.stderr


def test_after_training_an_inpaint_run_the_hint_is_its_own_command(toy, capsys, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "toy", "--conditioner", "inpaint:hidden=8,embed_dim=4", "--conditioner",
                 "label:num_classes=2", "--hidden", "16", "--epochs", "1", "--no-pictures", "--out", str(out)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == (f"run directory: {out} (sample with: condgen inpaint {out} --image FILE --mask quadrants:2 "
                    "--condition label=... --out completions.png)")
    assert main(["train", "--dataset", "toy", "--conditioner", "label:num_classes=2", "--hidden", "16", "--epochs", "1",
                 "--no-pictures", "--out", str(tmp_path / "label")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].endswith(
        f"(sample with: condgen sample {tmp_path / 'label'} --condition label=... --out samples.png)")


@pytest.mark.parametrize("flag, example", [
    ("regression:targets=ink,slant", 'a comma separates settings, so give a list as JSON: '
                                     'regression:targets=["ink","slant"]'),
    ("regression:targets", "(e.g. regression:targets=...,image_field=image; `condgen plugins regression` lists"),
    ("label:=3", "(e.g. label:num_classes=10,field=label; `condgen plugins label` lists the settings)"),
])
def test_a_short_form_mistake_shows_the_conditioners_own_settings(capsys, tmp_path, flag, example):
    line = one_line(capsys, "train", "--conditioner", flag, "--out", str(tmp_path / "run"))
    assert example in line, line
    assert "embedding=learned,embed_dim=16" not in line


def test_condgen_plugins_of_a_plugin_name_says_what_it_provides(capsys):
    assert main(["plugins", "condgen.builtins.datasets"]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0].startswith("plugin 'condgen.builtins.datasets' (condgen ") and said[0].endswith(
        "provides datasets mnist, npz, fashion-mnist, image-folder")
    assert "  condgen plugins mnist: its settings" in said
    assert "pip install" not in "\n".join(said)
    line = one_line(capsys, "plugins", "condgen.no.such")
    assert "unknown conditioner 'condgen.no.such'" in line


def test_a_sampling_command_hook_that_fails_falls_back_to_condgen_sample(tmp_path):
    from types import SimpleNamespace

    from condgen.cli.commands import _sampling_command

    class Broken:
        def sampling_command(self, run_dir, conditions):
            raise RuntimeError("a bug in a plugin")

    class Blank:
        def sampling_command(self, run_dir, conditions):
            return "  "

    run = SimpleNamespace(directory=tmp_path / "run", conditioners={"broken": Broken(), "blank": Blank()})
    assert _sampling_command(run) == (f"condgen sample {tmp_path / 'run'} --condition broken=... --condition "
                                      "blank=... --out samples.png")
