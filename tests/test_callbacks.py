"""Training callbacks (condgen.Callback, ``train.log``): the events and their order, a broken callback dropped
without losing the run, faults, the pictures callback, and the TensorBoard logger read back with TensorBoard's
own reader."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import one_error_line, toy_config

import condgen
from condgen.cli import main
from condgen.plugin.registry import PluginWarning
from condgen.runs.checkpoint import CHECKPOINT_NAME, read_checkpoint
from condgen.training import loop


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


class Recorder(condgen.Callback):
    """Records each event with the epoch the checkpoint on disk holds at that moment."""

    name = "recorder"
    events: list[tuple] = []

    def _saved(self, run):
        path = run.directory / CHECKPOINT_NAME
        return read_checkpoint(path, load_tensors=False)[1]["epoch"] if path.exists() else None

    def on_train_start(self, run, test):
        self.events.append(("start", run.epoch, self._saved(run), tuple(test["image"].shape)))

    def on_epoch_end(self, run, metrics):
        self.events.append(("epoch", metrics["epoch"], self._saved(run), metrics["test_neg_elbo"]))

    def on_train_end(self, run, test):
        self.events.append(("end", run.epoch, self._saved(run), run.model.training))

    def on_fault(self, run, fault):
        self.events.append(("fault", run.epoch, self._saved(run), type(fault).__name__))


class Broken(condgen.Callback):
    """Raises in the event named by ``fails``: a plugin's bug."""

    name = "broken"
    fails = "on_epoch_end"
    calls: list[str] = []

    def on_train_start(self, run, test):
        self._event("on_train_start")

    def on_epoch_end(self, run, metrics):
        self._event("on_epoch_end")

    def on_train_end(self, run, test):
        self._event("on_train_end")

    def _event(self, event):
        self.calls.append(event)
        if event == self.fails:
            raise RuntimeError("the dashboard's server is down")


class Interrupter(condgen.Callback):
    """Ctrl-C during the first epoch's callbacks."""

    name = "interrupter"

    def on_epoch_end(self, run, metrics):
        if metrics["epoch"] == 1:
            raise KeyboardInterrupt


class NeedsPackage(condgen.Callback):
    name = "needs-package"

    def __init__(self, log):
        raise condgen.ConfigError("--log needs-package needs the dashboard package; pip install dashboard")


class CrashesWhenBuilt(condgen.Callback):
    name = "crashes-when-built"

    def __init__(self, log):
        raise ZeroDivisionError("division by zero")


class CallbacksPlugin:
    @condgen.hookimpl
    def condgen_register_callbacks(self, register):
        for cls in (Recorder, Broken, Interrupter, NeedsPackage, CrashesWhenBuilt):
            register(cls)


@pytest.fixture
def callbacks(toy, register_plugin):
    register_plugin(CallbacksPlugin(), "callbacks-plugin")
    Recorder.events, Broken.calls, Broken.fails = [], [], "on_epoch_end"


def test_events_come_in_order_each_after_its_epoch_is_saved(callbacks, tmp_path):
    run = condgen.train(toy_config(epochs=2, log=["recorder"]), tmp_path / "run", pictures=False, log=lambda s: None)
    rows = metrics(tmp_path / "run")
    assert Recorder.events == [
        ("start", 0, None, (128, 1, 6, 6)),
        ("epoch", 1, 1, rows[0]["test_neg_elbo"]),  # the checkpoint already holds the epoch it hears of
        ("epoch", 2, 2, rows[1]["test_neg_elbo"]),
        ("end", 2, 2, False),
    ]
    assert run.epoch == 2
    # a resume starts where the checkpoint is, and one with nothing left to train still ends
    Recorder.events.clear()
    condgen.train(toy_config(epochs=3, log=["recorder"]), tmp_path / "run", resume=True, pictures=False,
                  log=lambda s: None)
    assert [e[:3] for e in Recorder.events] == [("start", 2, 2), ("epoch", 3, 3), ("end", 3, 3)]
    Recorder.events.clear()
    condgen.train(None, tmp_path / "run", resume=True, pictures=False, log=lambda s: None)
    assert [e[:3] for e in Recorder.events] == [("start", 3, 3), ("end", 3, 3)]


def test_the_loop_alone_draws_nothing_and_condgen_train_adds_the_pictures(callbacks, tmp_path):
    loop.train(toy_config(epochs=1), tmp_path / "bare", log=lambda s: None)
    assert not list((tmp_path / "bare").glob("*.png"))
    condgen.train(toy_config(epochs=1), tmp_path / "drawn", log=lambda s: None)
    assert {"samples.png", "reconstructions.png", "latent.png"} <= {p.name for p in (tmp_path / "drawn").iterdir()}


def test_a_callback_that_raises_is_reported_once_and_dropped_and_the_run_is_the_same(callbacks, tmp_path):
    with pytest.warns(PluginWarning) as caught:
        run = condgen.train(toy_config(epochs=3, log=["broken", "recorder"]), tmp_path / "run", pictures=False,
                            log=lambda s: None)
    assert [str(w.message) for w in caught] == [
        "callback 'broken' (plugin 'callbacks-plugin' (not from a distribution)) raised RuntimeError in "
        "on_epoch_end: the dashboard's server is down; it is dropped for the rest of this training (the run "
        "itself is saved)"]
    assert Broken.calls == ["on_train_start", "on_epoch_end"]  # never called again
    assert [e[0] for e in Recorder.events] == ["start", "epoch", "epoch", "epoch", "end"]  # the others go on
    plain = condgen.train(toy_config(epochs=3), tmp_path / "plain", pictures=False, log=lambda s: None)
    for key, value in plain.model.state_dict().items():
        assert torch.equal(run.model.state_dict()[key], value), key
    # the same at the end: the run is complete
    Broken.fails, Broken.calls = "on_train_end", []
    with pytest.warns(PluginWarning, match="raised RuntimeError in on_train_end"):
        condgen.train(toy_config(epochs=1, log=["broken"]), tmp_path / "end", pictures=False, log=lambda s: None)
    assert read_checkpoint(tmp_path / "end" / CHECKPOINT_NAME, load_tensors=False)[1]["complete"] is True


def test_on_the_command_line_a_broken_callback_is_one_warning_line_and_the_command_succeeds(callbacks, tmp_path,
                                                                                              capsys):
    assert main(["train", "--dataset", "toy", "--conditioner", "label:num_classes=2", "--epochs", "2",
                 "--log", "broken", "--no-pictures", "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == ["warning: callback 'broken' (plugin 'callbacks-plugin' (not from a distribution)) raised "
                   "RuntimeError in on_epoch_end: the dashboard's server is down; it is dropped for the rest of this "
                   "training (the run itself is saved)"]
    assert [r["epoch"] for r in metrics(tmp_path / "run")] == [1, 2]


def test_a_constructor_error_of_the_toolkits_kind_stops_before_anything_is_made(callbacks, tmp_path, capsys):
    with pytest.raises(condgen.ConfigError, match="pip install dashboard"):
        condgen.train(toy_config(epochs=1, log=["needs-package"]), tmp_path / "run", log=lambda s: None)
    assert not (tmp_path / "run").exists()
    # any other exception is the plugin's bug: reported, skipped, the run trains
    with pytest.warns(PluginWarning) as caught:
        condgen.train(toy_config(epochs=1, log=["crashes-when-built", "recorder"]), tmp_path / "ok", pictures=False,
                      log=lambda s: None)
    assert [str(w.message) for w in caught] == [
        "callback 'crashes-when-built' (plugin 'callbacks-plugin' (not from a distribution)) raised "
        "ZeroDivisionError in its constructor: division by zero; it is dropped for the rest of this training (the "
        "run itself is saved)"]
    assert [e[0] for e in Recorder.events] == ["start", "epoch", "end"]


def test_faults_reach_the_callbacks_and_are_raised_again(callbacks, tmp_path):
    with pytest.raises(condgen.NumericalError):
        condgen.train(toy_config(epochs=2, lr=1e30, log=["recorder"]), tmp_path / "nan", pictures=False,
                      log=lambda s: None)
    assert Recorder.events[-1] == ("fault", 0, None, "NumericalError")
    Recorder.events.clear()
    with pytest.raises(KeyboardInterrupt):
        condgen.train(toy_config(epochs=3, log=["interrupter", "recorder"]), tmp_path / "run", pictures=False,
                      log=lambda s: None)
    assert [e[:3] for e in Recorder.events][-1] == ("fault", 1, 1)  # epoch 1 is saved
    assert Recorder.events[-1][3] == "KeyboardInterrupt"
    run = condgen.train(None, tmp_path / "run", resume=True, pictures=False, log=lambda s: None)
    assert run.epoch == 3 and [r["epoch"] for r in metrics(tmp_path / "run")] == [1, 2, 3]


def test_train_log_is_checked_and_an_unknown_callback_is_one_line(callbacks, tmp_path, capsys):
    for bad, message in ((["pictures"], "the pictures callback runs unless --no-pictures"),
                         (["recorder", "recorder"], "callback 'recorder' is listed twice"),
                         (["Tensor Board"], "a callback name matches")):
        with pytest.raises(condgen.ConfigError, match=message):
            toy_config(log=bad)
    assert main(["train", "--dataset", "toy", "--conditioner", "label:num_classes=2", "--epochs", "1",
                 "--log", "tensorbord", "--out", str(tmp_path / "run")]) == 2
    assert one_error_line(capsys).startswith("error: train.log names callback 'tensorbord': unknown callback "
                                             "'tensorbord'; installed callbacks: broken, crashes-when-built, ")
    assert not (tmp_path / "run").exists()
    # a stored run loads where the callback's plugin is gone: only training needs it
    config = toy_config(epochs=1, log=["recorder"])
    condgen.train(config, tmp_path / "kept", pictures=False, log=lambda s: None)
    assert condgen.load_run(tmp_path / "kept").config.train.log == ["recorder"]
    # --resume may change the callbacks
    condgen.train(toy_config(epochs=2), tmp_path / "kept", resume=True, pictures=False, log=lambda s: None)


# -- the TensorBoard logger ------------------------------------------------------------------------------------
def read_events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_tensorboard_writes_every_term_each_epoch_a_grid_and_the_config(toy, tmp_path):
    run = condgen.train(toy_config(epochs=3, log=["tensorboard"]), tmp_path / "run", pictures=False,
                        log=lambda s: None)
    rows = metrics(tmp_path / "run")
    acc = read_events(tmp_path / "run")
    scalars = acc.Tags()["scalars"]
    for key in ("train_loss", "train_neg_elbo", "train_kl", "test_neg_elbo", "test_recon_nll", "test_kl"):
        tag = key.replace("_", "/", 1)
        assert [e.step for e in acc.Scalars(tag)] == [1, 2, 3], tag
        assert [e.value for e in acc.Scalars(tag)] == pytest.approx([r[key] for r in rows], rel=1e-6), tag
    assert {"lr", "seconds/train", "seconds/eval"} <= set(scalars)
    assert not [t for t in scalars if "epoch" in t]
    # the untrained model's grid, then one an epoch: 2 rows (the toy labels) of 8 samples of 6x6
    images = acc.Images("samples")
    assert [e.step for e in images] == [0, 1, 2, 3]
    assert (images[0].width, images[0].height) == (8 * 8 + 2, 2 * 8 + 2)
    assert images[1].encoded_image_string != images[3].encoded_image_string  # the model changed
    text = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert '"epochs": 3' in text and '"tensorboard"' in text
    # sampling each epoch takes nothing from the training: the weights are those of a run without the logger
    plain = condgen.train(toy_config(epochs=3), tmp_path / "plain", pictures=False, log=lambda s: None)
    for key, value in plain.model.state_dict().items():
        assert torch.equal(run.model.state_dict()[key], value), key


def test_tensorboard_after_resume_hides_the_epochs_the_checkpoint_lost(toy, tmp_path):
    run_dir = tmp_path / "run"
    condgen.train(toy_config(epochs=1, log=["tensorboard"]), run_dir, pictures=False, log=lambda s: None)
    epoch_1 = (run_dir / CHECKPOINT_NAME).read_bytes()
    condgen.train(toy_config(epochs=2, log=["tensorboard"]), run_dir, resume=True, pictures=False, log=lambda s: None)
    # a crash after epoch 2's events but before its checkpoint: the run's checkpoint of epoch 1 is what a resume has
    (run_dir / CHECKPOINT_NAME).write_bytes(epoch_1)
    condgen.train(toy_config(epochs=3, log=["tensorboard"]), run_dir, resume=True, pictures=False,
                  log=lambda s: None)
    acc = read_events(run_dir)
    steps = [e.step for e in acc.Scalars("test/neg_elbo")]
    assert steps == [1, 2, 3]  # epoch 2 once: the resumed run's
    assert [e.value for e in acc.Scalars("test/neg_elbo")] == pytest.approx(
        [r["test_neg_elbo"] for r in metrics(run_dir)], rel=1e-6)


def test_tensorboard_without_its_package_is_one_line_naming_the_extra(toy, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails, as where it is not installed
    assert main(["train", "--dataset", "toy", "--conditioner", "label:num_classes=2", "--epochs", "1",
                 "--log", "tensorboard", "--out", str(tmp_path / "run")]) == 2
    line = one_error_line(capsys)
    assert line.startswith("error: --log tensorboard needs the tensorboard package")
    assert line.endswith("install it with: pip install 'condgen[tensorboard]'")
    assert not (tmp_path / "run").exists()


def test_tensorboard_writes_nothing_for_a_training_that_fails_before_its_first_epoch(toy, tmp_path):
    with pytest.raises(condgen.NumericalError):
        condgen.train(toy_config(epochs=2, lr=1e30, log=["tensorboard"]), tmp_path / "nan", log=lambda s: None)
    assert not (tmp_path / "nan").exists()  # the failed start's directory is removed whole
