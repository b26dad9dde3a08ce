"""A run directory's checkpoint is its own (issue "Reliability 2", class 2).

Every run has an identity, kept in its directory's marker and in each checkpoint it writes; ``--resume`` of a
checkpoint that is another run's is refused, naming the two runs and how their configs differ. The plugins
recorded for a run (conditioners and data set) are compared with those installed, and stored state is checked
in the dtype it is used in, so a sample never turns into a silent NaN picture.
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

import pytest
from helpers import toy_config
from safetensors import safe_open
from test_reliability import one_line, rewrite

import condgen
from condgen import PluginError
from condgen.plugin.registry import PluginWarning
from condgen.runs.checkpoint import CHECKPOINT_NAME, CheckpointError
from condgen.runs.rundir import CONFIG_NAME, MARKER_NAME, METRICS_NAME


def header(out: Path) -> dict:
    with safe_open(str(out / CHECKPOINT_NAME), framework="pt") as fh:
        return json.loads(fh.metadata()["meta"])


def sign_config(epochs: int = 1) -> condgen.RunConfig:
    return condgen.RunConfig.parse({"conditioners": [{"name": "sign"}], "model": {"latent_dim": 2, "hidden": [32]},
                                    "data": {"dataset": "toy"},
                                    "train": {"epochs": epochs, "batch_size": 32, "device": "cpu"}})


@pytest.fixture
def two_runs(toy, tmp_path) -> tuple[Path, Path]:
    a, b = tmp_path / "a", tmp_path / "b"
    condgen.train(toy_config(epochs=1), a, pictures=False)
    condgen.train(sign_config(epochs=1), b, pictures=False)
    return a, b


def test_resume_of_another_runs_checkpoint_is_refused_saying_what_differs(two_runs, capsys):
    a, b = two_runs
    before = (b / METRICS_NAME).read_text()
    shutil.copy(a / CHECKPOINT_NAME, b / CHECKPOINT_NAME)  # a run with other conditioners, copied over b's
    ids = header(a)["run_id"], json.loads((b / MARKER_NAME).read_text())["run_id"]
    line = one_line(capsys, "train", "--out", str(b), "--resume", "--epochs", "2", "--no-pictures")
    assert line.startswith(f"error: checkpoint '{b / CHECKPOINT_NAME}' is run {ids[0][:12]}'s, not this "
                           f"directory's run {ids[1][:12]} (its marker {MARKER_NAME}), with another config: "
                           "conditioners ['label'] (this run: ['sign']): it was copied from another run"), line
    assert len(line) < 400
    assert line.endswith("resume that run in its own directory, or put this run's checkpoint back")
    assert (b / METRICS_NAME).read_text() == before  # nothing of b's was touched
    assert json.loads((b / MARKER_NAME).read_text())["run_id"] == ids[1]


def test_a_copy_of_a_run_with_the_same_config_is_refused_too(toy, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    condgen.train(toy_config(epochs=1), a, pictures=False)
    condgen.train(toy_config(epochs=1), b, pictures=False)
    shutil.copy(a / CHECKPOINT_NAME, b / CHECKPOINT_NAME)
    with pytest.raises(CheckpointError, match=r"is run [0-9a-f]{12}'s, not this directory's run [0-9a-f]{12} .*with "
                                              r"the same config: it was copied from another run"):
        condgen.train(toy_config(epochs=2), b, resume=True, pictures=False)


def test_a_whole_run_directory_moved_elsewhere_resumes(two_runs, tmp_path):
    a, _ = two_runs
    moved = tmp_path / "moved"
    shutil.copytree(a, moved)
    run = condgen.train(None, moved, resume=True, pictures=False)
    assert run.epoch == 1  # nothing more asked; the run is its own
    run = condgen.train(toy_config(epochs=2), moved, resume=True, pictures=False)
    assert run.epoch == 2 and header(moved)["run_id"] == header(a)["run_id"]


@pytest.mark.parametrize("legacy", ["marker without an identity", "no marker", "checkpoint without an identity"])
def test_runs_from_before_identities_resume_and_take_one(two_runs, legacy):
    a, _ = two_runs
    if legacy == "marker without an identity":
        (a / MARKER_NAME).write_text(json.dumps({"condgen_version": "0.3.0"}) + "\n")
    elif legacy == "no marker":
        (a / MARKER_NAME).unlink()
    else:
        rewrite(a / CHECKPOINT_NAME, a / CHECKPOINT_NAME, lambda m: m.pop("run_id"))
        (a / MARKER_NAME).write_text(json.dumps({"condgen_version": "0.3.0"}) + "\n")
    kept = header(a).get("run_id")
    run = condgen.train(toy_config(epochs=2), a, resume=True, pictures=False)
    assert run.epoch == 2
    marker, meta = json.loads((a / MARKER_NAME).read_text()), header(a)
    assert marker["run_id"] == meta["run_id"] and len(meta["run_id"]) == 32
    if kept:
        assert meta["run_id"] == kept  # the checkpoint's identity, not a new one


@pytest.mark.parametrize("marker", ["with an identity", "from before identities", "damaged"])
def test_a_copied_checkpoint_from_before_identities_is_refused_by_its_config(two_runs, marker):
    a, b = two_runs
    before = (b / METRICS_NAME).read_text()
    rewrite(a / CHECKPOINT_NAME, b / CHECKPOINT_NAME, lambda m: m.pop("run_id"))  # an older condgen's checkpoint
    if marker == "from before identities":
        (b / MARKER_NAME).write_text(json.dumps({"condgen_version": "0.3.0"}) + "\n")
    elif marker == "damaged":
        (b / MARKER_NAME).write_text('{"condgen_version": "0.')
    with pytest.raises(CheckpointError, match=rf"^checkpoint '{b / CHECKPOINT_NAME}' is not this directory's run: its "
                                              rf"config differs from the directory's {CONFIG_NAME}: "
                                              r"conditioners \['label'\] \(this run: \['sign'\]\); it was copied "
                                              "from another run"):
        condgen.train(toy_config(epochs=2), b, resume=True, pictures=False)
    assert (b / METRICS_NAME).read_text() == before


def test_the_config_file_stays_a_config_the_cli_takes(two_runs, tmp_path):
    a, _ = two_runs
    config = condgen.RunConfig.parse(json.loads((a / CONFIG_NAME).read_text()))
    assert config.conditioners[0].name == "label"


# -- the plugins a run recorded, compared with those installed ---------------------------------------------
@pytest.mark.parametrize("change, words", [
    ({"distribution": "nosuch-dist"}, "from plugin 'label' (distribution nosuch-dist"),
    ({"plugin": "someone-elses-label", "distribution": "other-label", "version": "9.9"},
     "from plugin 'someone-elses-label' (distribution other-label 9.9)"),
])
def test_a_conditioner_from_another_provider_is_a_warning_naming_both(two_runs, tmp_path, change, words):
    a, _ = two_runs
    stored = header(a)["conditioners"][0]
    bad = rewrite(a / CHECKPOINT_NAME, tmp_path / "other" / CHECKPOINT_NAME,
                  lambda m: m["conditioners"][0].update(change))
    with pytest.warns(PluginWarning) as said:
        run = condgen.load_run(bad.parent)
    text = str(said[0].message)
    assert f"was written with conditioner 'label' {words}" in text, text
    assert f"the installed one is from plugin {stored['plugin']!r} (distribution {stored['distribution']}" in text
    assert text.endswith("check that it is the same conditioner")
    assert run.sample({"label": 1}, num=2).shape == (2, 1, 6, 6)


def test_a_data_set_from_another_provider_is_a_warning_on_resume(two_runs):
    a, _ = two_runs
    rewrite(a / CHECKPOINT_NAME, a / CHECKPOINT_NAME,
            lambda m: m["dataset"].update(plugin="someone-elses-toy", distribution="toy-data", version="2.0"))
    with pytest.warns(PluginWarning, match=r"was trained on data set 'toy' from plugin 'someone-elses-toy' "
                                           r"\(distribution toy-data 2.0\); the installed one is from plugin 'toy-data' "
                                           r"\(no distribution\): check that it is the same data"):
        condgen.train(toy_config(epochs=2), a, resume=True, pictures=False)
    assert header(a)["dataset"]["plugin"] == "toy-data"  # the provider it was resumed with is recorded


def test_the_same_provider_loads_without_a_warning(two_runs):
    a, _ = two_runs
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)
        condgen.load_run(a)


def test_a_removed_data_set_plugin_says_what_to_install(two_runs, tmp_path, capsys):
    a, _ = two_runs
    assert header(a)["dataset"]["name"] == "toy"

    def gone(meta: dict) -> None:
        meta["config"]["data"]["dataset"] = "faces"
        meta["dataset"] = {"name": "faces", "plugin": "condgen_faces", "distribution": "condgen-faces",
                           "version": "1.2"}

    bad = rewrite(a / CHECKPOINT_NAME, tmp_path / "run" / CHECKPOINT_NAME, gone)
    shutil.copy(a / MARKER_NAME, bad.parent / MARKER_NAME)
    line = one_line(capsys, "train", "--out", str(bad.parent), "--resume", "--epochs", "2", "--no-pictures")
    assert line == (f"error: checkpoint '{bad}' was trained on data set 'faces' from plugin 'condgen_faces' "
                    "(distribution condgen-faces 1.2), which is not installed; install it: pip install condgen-faces")
    with pytest.raises(PluginError, match="install it: pip install condgen-faces"):
        condgen.evaluate(condgen.load_run(bad.parent), samples=0)


# -- stored state that would poison sampling ----------------------------------------------------------------
def test_a_conditioners_state_that_makes_samples_nan_is_an_error_naming_it(two_runs, tmp_path, capsys):
    _, b = two_runs
    bad = rewrite(b / CHECKPOINT_NAME, tmp_path / "zero" / CHECKPOINT_NAME,
                  lambda m: m["conditioners"][0].update(state={"scale": 0.0}))  # a plugin that does not check it
    with pytest.raises(condgen.NumericalError, match=r"^the samples hold NaN or inf: conditioner 'sign''s embedding "
                                                     r"of these conditions is not finite: its stored state "
                                                     r"\{'scale': 0.0\}"):
        condgen.load_run(bad.parent).sample({"sign": [[0.5]]}, num=1)
    out = tmp_path / "s.png"
    line = one_line(capsys, "sample", str(bad.parent), "--condition", "sign=0.5", "--out", str(out))
    assert "conditioner 'sign''s embedding" in line and not out.exists()
    with pytest.raises(condgen.NumericalError, match=r"^test_neg_elbo = nan.*conditioner 'sign''s embedding"):
        condgen.evaluate(condgen.load_run(bad.parent), samples=0)


def test_weights_that_are_not_finite_are_named(two_runs, tmp_path):
    a, _ = two_runs

    def poison(tensors: dict) -> None:
        tensors["model.decoder.0.weight"][0, 0] = float("nan")

    bad = rewrite(a / CHECKPOINT_NAME, tmp_path / "inf" / CHECKPOINT_NAME, tensor_change=poison)
    with pytest.raises(condgen.NumericalError, match=r"^the samples hold NaN or inf: run '.*''s weights "
                                                     r"decoder.0.weight are not finite: the checkpoint was damaged"):
        condgen.load_run(bad.parent).sample({"label": 1}, num=2)


@pytest.mark.parametrize("change, named", [
    ({"std": [1e-45]}, "std 1e-45"),
    ({"std": [1e-39]}, "std 1e-39"),  # a float32, but 1/std is not
    ({"mean": [1e39]}, "mean 1e+39"),
    ({"std": [1e39]}, "std 1e+39"),
])
def test_a_regression_state_is_checked_in_float32(change, named):
    from condgen_regression import RegressionConditioner

    cond = RegressionConditioner({"targets": ["value"]})
    state = {"sources": {"value": "field"}, "mean": [0.0], "std": [1.0]}
    cond.load_state(state)
    with pytest.raises(condgen.CondgenError, match=rf"stored state holds {re.escape(named)} for targets \['value'\], which "
                                                   r"float32 .* cannot hold or invert"):
        cond.load_state({**state, **change})


def test_a_regression_state_beyond_float32_is_refused_by_condgen_sample(toy, tmp_path, capsys):
    run = tmp_path / "reg"
    config = condgen.RunConfig.parse({"conditioners": [{"name": "regression", "config": {"targets": ["value"]}}],
                                      "model": {"latent_dim": 2, "hidden": [16]}, "data": {"dataset": "toy"},
                                      "train": {"epochs": 1, "batch_size": 32, "device": "cpu"}})
    condgen.train(config, run, pictures=False)
    bad = rewrite(run / CHECKPOINT_NAME, tmp_path / "bad" / CHECKPOINT_NAME,
                  lambda m: m["conditioners"][0]["state"].update(std=[1e-45]))
    out = tmp_path / "s.png"
    line = one_line(capsys, "sample", str(bad.parent), "--condition", "regression=0.5", "--out", str(out))
    assert "std 1e-45" in line and "float32" in line and not out.exists(), line


def test_test_figures_that_become_nan_stop_the_run_before_the_epoch_is_saved(two_runs, monkeypatch):
    import condgen.training.loop as loop

    a, _ = two_runs
    real = loop.evaluate_split

    def overflowing(run, split, batch_size=1000, samples=0, progress=False):
        return {**real(run, split, batch_size, samples, progress), "neg_elbo": float("inf")}

    monkeypatch.setattr(loop, "evaluate_split", overflowing)
    with pytest.raises(condgen.NumericalError, match=r"^the test split's neg_elbo became inf at epoch 2 .*the "
                                                     r"checkpoint of epoch 1 in .* is intact"):
        condgen.train(toy_config(epochs=2), a, resume=True, pictures=False)
    assert header(a)["epoch"] == 1 and len((a / METRICS_NAME).read_text().splitlines()) == 1
