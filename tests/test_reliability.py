"""Bad input and faults, class by class (issue "Reliability"): each is one clear line from the
toolkit's own error types, never a silent wrong result, never an internal error.

The classes: run directories (locks, foreign files, empty paths, failed starts), MNIST files
swapped, values quietly turned into others, sizes that cannot fit, files that cannot be read,
checkpoints whose metadata is wrong, the Python API's arguments, and messages (plugin filter,
umask, SIGTERM). ``test_properties.py`` adds generated inputs for configs, conditions and
checkpoints.
"""

from __future__ import annotations

import errno
import json
import os
import re
import threading
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import condgen
from condgen import ArgumentError, CondgenError, ConfigError, DataError, PluginError
from condgen.plugin.registry import PluginWarning
from condgen.runs.checkpoint import CHECKPOINT_NAME, CheckpointError
from condgen.cli import main
from condgen.data import mnist
from condgen.common.files import FileAccessError, write_atomic
from condgen.common.memory import ResourceError
from condgen.runs.rundir import LOCK_NAME, MARKER_NAME, RunDirectoryBusy, claim_run_dir
from condgen.training.loop import NumericalError

from helpers import toy_config
from test_mnist import tiny_mnist, write_idx


def one_line(capsys, *args: str) -> str:
    """Run the CLI in-process; it must fail with exit 2 and one ``error:`` line, which is returned."""
    try:
        code = main(list(args))
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    return lines[0]


def toy_npz(path: Path, n: int = 256) -> Path:
    """The toy data as an ``npz`` file, for tests that run the CLI in a fresh process."""
    gen = torch.Generator().manual_seed(0)
    arrays = {}
    for split in ("train", "test"):
        label = torch.randint(0, 2, (n,), generator=gen)
        image = 0.1 * torch.rand(n, 1, 6, 6, generator=gen)
        image[label == 0, :, :, :3] += 0.8
        arrays[f"{split}_image"] = image.clamp(0, 1).numpy()
        arrays[f"{split}_label"] = label.numpy()
    np.savez(path, **arrays)
    return path


def npz_train_args(data: Path, out: Path, epochs: int = 2) -> list[str]:
    return ["train", "--dataset", "npz", "--data-dir", str(data), "--conditioner", "label:num_classes=2",
            "--hidden", "16", "--batch-size", "32", "--epochs", str(epochs), "--device", "cpu", "--no-pictures",
            "--out", str(out)]


def cli_process(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "condgen", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))


# -- run directories: one writer, nobody else's files, no empty path, nothing left by a failed start ----------
HOLD = """
import sys, time
from pathlib import Path
from condgen.runs.rundir import claim_run_dir
with claim_run_dir(Path(sys.argv[1]), resume=False):
    print("holding", flush=True)
    time.sleep(120)
"""


def test_a_second_writer_is_refused_naming_the_holder_and_a_dead_holders_lock_does_not_block(toy, tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(RunDirectoryBusy, match=rf"'{out}' is being written by process {holder.pid} on "):
            condgen.train(toy_config(epochs=1), out, pictures=False)
        with pytest.raises(RunDirectoryBusy, match=f"process {holder.pid}"):  # --resume of a run still going
            condgen.train(None, out, resume=True, pictures=False)
    finally:
        holder.kill()  # like kill -9: no clean-up runs, the lock file stays
        holder.wait()
    assert (out / LOCK_NAME).exists()
    run = condgen.train(toy_config(epochs=1), out, pictures=False)  # the OS dropped the dead process's lock
    assert run.epoch == 1


def test_a_writer_in_the_same_process_is_refused_too(toy, tmp_path):
    out = tmp_path / "run"
    with claim_run_dir(out, resume=False):
        with pytest.raises(RunDirectoryBusy, match=f"process {os.getpid()}"):
            condgen.train(toy_config(epochs=1), out, pictures=False)
    condgen.train(toy_config(epochs=1), out, pictures=False)


def test_concurrent_trains_on_one_directory_leave_one_clean_run(tmp_path):
    data, out = toy_npz(tmp_path / "toy.npz"), tmp_path / "run"
    procs = [cli_process(*npz_train_args(data, out, epochs=3)) for _ in range(2)]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    codes = sorted(r[2] for r in results)
    assert codes == [0, 2], results
    loser = next(r for r in results if r[2] == 2)
    assert "is being written by" in loser[1] or "already holds a run" in loser[1]
    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]
    assert condgen.load_run(out).epoch == 3
    assert not list(out.glob("*.tmp"))


def test_two_writers_never_share_a_temporary_file(tmp_path):
    seen = []

    def write(tmp: Path) -> None:
        seen.append(tmp)
        tmp.write_text(str(len(seen)))

    (tmp_path / "checkpoint.safetensors.tmp").write_text("another writer's")  # the old shared name
    write_atomic(tmp_path / "checkpoint.safetensors", write)
    write_atomic(tmp_path / "checkpoint.safetensors", write)
    assert seen[0] != seen[1] and seen[0].name != "checkpoint.safetensors.tmp"
    assert (tmp_path / "checkpoint.safetensors.tmp").read_text() == "another writer's"
    assert (tmp_path / "checkpoint.safetensors").read_text() == "2"


@pytest.mark.parametrize("out", ["", " ", "\t"])
def test_an_empty_out_is_refused(toy, capsys, tmp_path, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    assert f"run directory (--out) {out!r}: name the directory to write" in one_line(capsys, "train", "--dataset", "toy",
                                                                                   "--out", out)
    with pytest.raises(ArgumentError, match="name the directory to write"):
        condgen.train(toy_config(epochs=1), out)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("files", [{"config.json": '{"mine": 1}'}, {"metrics.jsonl": "my own log\n"},
                                   {"notes.txt": "x", "data.csv": "1,2"}])
def test_a_directory_that_is_not_a_run_is_never_written(toy, capsys, tmp_path, files):
    out = tmp_path / "mine"
    out.mkdir()
    for name, text in files.items():
        (out / name).write_text(text)
    line = one_line(capsys, "train", "--dataset", "toy", "--conditioner", "label:num_classes=2", "--epochs", "1",
                    "--out", str(out))
    assert "holds files that are not a condgen run" in line and sorted(files)[0] in line
    assert {p.name: p.read_text() for p in out.iterdir()} == files


def test_out_that_is_a_file_and_resume_without_a_run(toy, capsys, tmp_path):
    (tmp_path / "f").write_text("x")
    assert "is a file, not a directory" in one_line(capsys, "train", "--dataset", "toy", "--out", str(tmp_path / "f"))
    assert "there is no checkpoint.safetensors" in one_line(capsys, "train", "--resume", "--out", str(tmp_path / "none"))


def test_a_run_whose_first_epoch_never_finished_may_be_started_again(toy, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / MARKER_NAME).write_text("{}\n")  # as a kill -9 in epoch 1 leaves it
    (out / "config.json").write_text("{}")
    (out / "metrics.jsonl").write_text('{"epoch": 1}\n{"epo')
    condgen.train(toy_config(epochs=2), out, pictures=False)
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]


@pytest.mark.parametrize("args,message", [
    (["--conditioner", "nope"], "unknown conditioner 'nope'"),
    (["--conditioner", "label:colour=red"], "conditioner 'label' config.colour: unknown field"),
    (["--conditioner", "label:num_classes=1"], "config.num_classes = '1': Input should be greater than or equal to 2"),
    (["--conditioner", "label", "--dataset", "mnist", "--data-dir", "/nowhere"],
     "MNIST directory '/nowhere' does not exist"),
    (["--conditioner", "label:num_classes=2", "--hidden", "65536", "65536", "65536"], "GiB of memory, but"),
    (["--conditioner", "label:num_classes=2", "--x-field", "label"], "data.x_field = 'label': the model generates"),
])
def test_a_failed_start_leaves_no_run_directory(toy, capsys, tmp_path, monkeypatch, args, message):
    from condgen.common import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 2**34)  # the same on any machine
    out = tmp_path / "run"
    assert message in one_line(capsys, "train", "--epochs", "1", "--dataset", "toy", *args, "--out", str(out))
    assert not out.exists()


def test_a_nan_in_the_first_epoch_says_nothing_was_written_and_leaves_nothing(toy, tmp_path):
    with pytest.raises(NumericalError, match="at epoch 1, step .*; no epoch had finished, so no checkpoint was written"):
        condgen.train(toy_config(lr=1e6, epochs=2), tmp_path / "run", pictures=False)
    assert not (tmp_path / "run").exists()


# -- MNIST files that claim the wrong split ---------------------------------------------------------
def swap(directory: Path, a: str, b: str) -> None:
    (directory / a).rename(directory / "tmp")
    (directory / b).rename(directory / a)
    (directory / "tmp").rename(directory / b)


def test_mnist_train_and_test_swapped_by_name_is_an_error(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    images = bytes(range(256)) * 40
    for split, n in (("train", 6), ("t10k", 3)):  # like MNIST: more training items than test items
        write_idx(d / f"{split}-images-idx3-ubyte.gz", 0x803, (n, 28, 28), images[n : n + n * 784])
        write_idx(d / f"{split}-labels-idx1-ubyte.gz", 0x801, (n,), bytes(range(n)))
    assert mnist.read_mnist_dir(d).train["image"].shape[0] == 6
    swap(d, "train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz")
    swap(d, "train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DataError, match="look swapped: the train files hold 3 items, fewer than the t10k .* 6"):
        mnist.read_mnist_dir(d)
    swap(d, "train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz")  # only the images swapped now
    with pytest.raises(DataError, match=r"has 3 images \(train-images-idx3-ubyte\) but 6 labels .* swapped\?"):
        mnist.read_mnist_dir(d)


def test_mnist_test_files_copied_over_the_training_files_is_an_error(tmp_path):
    d = tiny_mnist(tmp_path / "m")
    (d / "train-images-idx3-ubyte.gz").write_bytes((d / "t10k-images-idx3-ubyte.gz").read_bytes())
    with pytest.raises(DataError, match="the train and t10k images are the same file's contents"):
        mnist.read_mnist_dir(d)


def test_real_mnist_swapped_is_refused_through_the_cli(mnist_dir, tmp_path, capsys):
    d = tmp_path / "m"
    d.mkdir()
    for name in mnist.FILES.values():
        (d / f"{name}.gz").symlink_to(mnist_dir / f"{name}.gz")
    swap(d, "train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz")
    swap(d, "train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    line = one_line(capsys, "train", "--conditioner", "label", "--data-dir", str(d), "--out", str(tmp_path / "r"))
    assert "look swapped: the train files hold 10000 items, fewer than the t10k (test) files' 60000" in line


# -- values quietly turned into others ----------------------------------------------------------------
@pytest.mark.parametrize("section,field,value,message", [
    ("train", "batch_size", True, "train.batch_size = True: a whole number is wanted, not the bool true"),
    ("train", "epochs", False, "train.epochs = False: a whole number is wanted, not the bool false"),
    ("train", "lr", True, "train.lr = True: a number is wanted, not the bool true"),
    ("train", "batch_size", "50", "train.batch_size = '50': a whole number is wanted, not the text '50'"),
    ("train", "lr", "1e-3", "train.lr = '1e-3': a number is wanted, not the text"),
    ("train", "lr", float("inf"), "train.lr = inf: a number is wanted, not inf"),
    ("train", "lr", float("nan"), "train.lr = nan: a number is wanted, not nan"),
    ("train", "weight_decay", float("-inf"), "a number is wanted, not -inf"),
    ("train", "condition_dropout", {"label": float("nan")}, "a number is wanted, not nan"),
    ("train", "seed", 2**70, "train.seed = 1180591620717411303424: Input should be less than or equal to"),
    ("model", "hidden", [True, 8], "model.hidden = [True, 8]: a whole number is wanted, not the bool true"),
    ("model", "latent_dim", 2.5, "model.latent_dim = 2.5"),
    ("model", "hidden", [10**9], "every hidden width must be between 1 and 65536"),
])
def test_a_config_takes_only_real_finite_numbers(section, field, value, message):
    data = {"conditioners": [{"name": "label"}], section: {field: value}}
    with pytest.raises(ConfigError, match="invalid config: .*" + message.replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(").replace(")", r"\)")):
        condgen.RunConfig.parse(data)


def test_plugin_configs_take_only_numbers_from_files_but_text_from_the_command_line():
    with pytest.raises(ConfigError, match=r"conditioner 'label' config.num_classes = True: a whole number"):
        condgen.RunConfig.parse({"conditioners": [{"name": "label", "config": {"num_classes": True}}]})
    with pytest.raises(ConfigError, match=r"config.num_classes = '3': a whole number is wanted, not the text"):
        condgen.RunConfig.parse({"conditioners": [{"name": "label", "config": {"num_classes": "3"}}]})
    from condgen.runs.config import parse_conditioner_option

    typed = condgen.RunConfig.parse({"conditioners": [parse_conditioner_option("label:num_classes=3")]})
    assert typed.conditioners[0].config["num_classes"] == 3
    assert json.loads(typed.model_dump_json())["conditioners"][0]["config"]["num_classes"] == 3


@pytest.mark.parametrize("flag,value,message", [
    ("--lr", "inf", "train.lr = inf: a number is wanted, not inf"),
    ("--lr", "nan", "train.lr = nan: a number is wanted, not nan"),
    ("--seed", str(2**70), "train.seed = 1180591620717411303424"),
    ("--seed", "-1", "train.seed = -1: Input should be greater than or equal to 0"),
    ("--hidden", "1e9", "argument --hidden: invalid int value: '1e9' (see: condgen train --help)"),
    ("--hidden", "1000000000", "every hidden width must be between 1 and 65536"),
    ("--condition-dropout", "inf", "a number is wanted, not inf"),
    ("--epochs", "true", "argument --epochs: invalid int value: 'true'"),
])
def test_command_line_numbers(capsys, tmp_path, flag, value, message):
    out = tmp_path / "run"
    assert message in one_line(capsys, "train", "--conditioner", "label", flag, value, "--out", str(out))
    assert not out.exists()


# -- sizes that cannot fit ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def label_run(tmp_path_factory):
    from helpers import train_with_toy_data

    yield train_with_toy_data(toy_config(epochs=1), tmp_path_factory.mktemp("reliability") / "run",
                              "toy-data-reliability")


def test_a_sample_too_big_for_memory_is_refused_up_front(label_run, capsys, tmp_path):
    run = condgen.load_run(label_run)
    start = time.perf_counter()
    with pytest.raises(ResourceError, match=r"1,000,000,000,000 samples of shape \(1, 6, 6\) needs .* GiB of memory, "
                                            r"but .* is available; ask for fewer at a time"):
        run.sample({"label": 1}, num=10**12)
    line = one_line(capsys, "sample", str(label_run), "--condition", "label=all", "--num", str(10**11),
                    "--out", str(tmp_path / "x.npy"))
    assert "200,000,000,000 samples" in line and "ask for fewer" in line
    assert time.perf_counter() - start < 10
    line = one_line(capsys, "sample", str(label_run), "--condition", "label=" + ",".join("01" * 6), "--num", "1000",
                    "--out", str(tmp_path / "x.png"))
    assert "a picture holds at most 10,000 samples, and 12 row(s) of --num 1000 make 12,000" in line


def test_sampling_in_chunks_gives_the_same_samples_for_the_same_seed(label_run, monkeypatch):
    import condgen.runs.run as run_module

    run = condgen.load_run(label_run)
    whole = run.sample({"label": [0, 1] * 25}, num=50, seed=3)
    monkeypatch.setattr(run_module, "SAMPLE_CHUNK", 16)
    chunked = run.sample({"label": [0, 1] * 25}, num=50, seed=3)
    assert chunked.shape == whole.shape == (50, 1, 6, 6)
    assert torch.allclose(chunked[:16], whole[:16])  # the first chunk draws the same z's
    assert torch.equal(chunked, run.sample({"label": [0, 1] * 25}, num=50, seed=3))


def test_a_model_too_big_for_memory_is_refused_before_any_weight_is_made(monkeypatch):
    from condgen.common import memory
    from condgen.runs.build import build_model, engine_parameters

    monkeypatch.setattr(memory, "available_bytes", lambda: 2**29)
    config = condgen.RunConfig.parse({"model": {"hidden": [4096, 4096]}})
    count = engine_parameters(config, (1, 28, 28), [])
    assert count == (785 * 4096 + 4097 * 4096 + 4097 * 4) + (3 * 4096 + 4097 * 4096 + 4097 * 784)
    assert build_model(config, (1, 28, 28), {}, copies=1)  # 0.15 GiB of weights fit in 0.5 GiB
    with pytest.raises(ResourceError, match=rf"a model of {count:,} weights \(x 4: weights, gradients and optimizer "
                                            r"state\) needs 610.6 MiB of memory, but 512.0 MiB is available; make it smaller"):
        build_model(config, (1, 28, 28), {}, copies=4)


# -- files that cannot be read ----------------------------------------------------------------------
def deny(monkeypatch, target: Path) -> None:
    """Make opening ``target`` fail with EACCES, as for another user's 0600 file (tests run as root here)."""
    import builtins
    import pathlib

    real_open, real_read = builtins.open, pathlib.Path.read_bytes

    def guarded_open(file, *args, **kwargs):
        if Path(os.fspath(file)) == target:
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    def guarded_read(self):
        if self == target:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(pathlib.Path, "read_bytes", guarded_read)


def test_unreadable_files_name_the_file_and_the_cause(label_run, tmp_path, monkeypatch, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("train: {epochs: 1}\n")
    checkpoint = label_run / CHECKPOINT_NAME
    d = tiny_mnist(tmp_path / "m")
    deny(monkeypatch, config)
    deny(monkeypatch, checkpoint)
    deny(monkeypatch, d / "train-labels-idx1-ubyte.gz")
    line = one_line(capsys, "train", "--config", str(config), "--out", str(tmp_path / "r"))
    assert line == f"error: cannot read config file '{config}': permission denied (check its mode and owner, and " \
                   "those of the directories above it)"
    line = one_line(capsys, "sample", str(label_run), "--condition", "label=1", "--out", str(tmp_path / "s.png"))
    assert f"cannot read checkpoint '{checkpoint}': permission denied" in line
    with pytest.raises(FileAccessError, match="cannot read MNIST file .*train-labels-idx1-ubyte.gz': permission denied"):
        mnist.read_mnist_dir(d)


def test_a_directory_that_cannot_be_searched_is_permission_not_missing(tmp_path, monkeypatch):
    import pathlib

    real = pathlib.Path.is_file

    def is_file(self):
        if self.parent == tmp_path / "locked":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)

    (tmp_path / "locked").mkdir()
    monkeypatch.setattr(pathlib.Path, "is_file", is_file)
    with pytest.raises(FileAccessError, match="cannot look for checkpoint .*locked/checkpoint.safetensors': permission denied"):
        condgen.load_run(tmp_path / "locked")
    with pytest.raises(FileAccessError, match="cannot look for MNIST file .*: permission denied"):
        mnist.read_mnist_dir(tmp_path / "locked")


@pytest.mark.parametrize("content,message", [
    (b"\xff\xfe{\x00}\x00", "is not UTF-8 text (byte 0xff at offset 0); save it as UTF-8"),
    (b"train:\n  epochs: \xe9\n", "is not UTF-8 text (byte 0xe9 at offset 17)"),
])
def test_a_config_file_that_is_not_utf8(capsys, tmp_path, content, message):
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    assert message in one_line(capsys, "train", "--config", str(path), "--out", str(tmp_path / "r"))


def test_a_config_path_that_is_a_directory(capsys, tmp_path):
    (tmp_path / "c.json").mkdir()
    assert "is a directory; give the file" in one_line(capsys, "train", "--config", str(tmp_path / "c.json"),
                                                       "--out", str(tmp_path / "r"))


# -- checkpoints whose metadata parses but is wrong ---------------------------------------------------
def rewrite(source: Path, target: Path, meta_change=None, tensor_change=None) -> Path:
    with safe_open(str(source), "pt") as fh:
        header = fh.metadata()
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    meta = json.loads(header["meta"])
    if meta_change:
        meta_change(meta)
    if tensor_change:
        tensor_change(tensors)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(target), metadata={**header, "meta": json.dumps(meta)})
    return target


@pytest.mark.parametrize("meta_change,tensor_change,message", [
    (lambda m: m.pop("conditioners"), None, "has bad metadata: conditioners: required field is missing"),
    (lambda m: m.pop("config"), None, "has bad metadata: config: required field is missing"),
    (lambda m: m.update(data_shape=[1, 0, 6]), None, "data_shape.1 = 0: Input should be greater than or equal to 1"),
    (lambda m: m.update(data_shape="1x6x6"), None, "data_shape = '1x6x6': a whole number is wanted, not the text '1x6x6'"),
    (lambda m: m.update(data_shape=[]), None, "data_shape = []: List should have at least 1 item"),
    (lambda m: m.update(data_shape=[1, 7, 6]), None, "weight model.encoder.0.weight has shape (32, 38), but its "
                                                     "config builds (32, 44)"),
    (lambda m: m.update(epoch=-3), None, "epoch = -3: Input should be greater than or equal to 0"),
    (lambda m: m.update(conditioners=[{"name": "label", "state": "x"}]), None, "conditioners.0.state = 'x'"),
    (lambda m: m.update(conditioners=[]), None, "its conditioners [] differ from its config's ['label']"),
    (lambda m: m["config"]["train"].update(lr=True), None, "checkpoint .*: invalid config: train.lr = True"),
    (None, lambda t: t.update({"model.decoder.0.weight": torch.zeros(3, 3)}),
     "weight model.decoder.0.weight has shape (3, 3), but its config builds"),
    (None, lambda t: t.pop("model.decoder.0.bias"), "lacks the weight model.decoder.0.bias"),
    (None, lambda t: t.update({"model.extra": torch.zeros(1)}), "holds weight model.extra, which its config's model"),
])
def test_wrong_checkpoint_metadata_is_one_line_naming_file_and_field(label_run, tmp_path, capsys, meta_change,
                                                                    tensor_change, message):
    bad = rewrite(label_run / CHECKPOINT_NAME, tmp_path / "bad" / CHECKPOINT_NAME, meta_change, tensor_change)
    line = one_line(capsys, "sample", str(bad.parent), "--condition", "label=1", "--out", str(tmp_path / "s.png"))
    assert f"checkpoint '{bad}'" in line
    import re

    assert re.search(re.escape(message).replace(r"\.\*", ".*"), line), line


def test_a_checkpoint_without_optimizer_state_samples_but_does_not_resume(label_run, toy, tmp_path, capsys):
    bad = rewrite(label_run / CHECKPOINT_NAME, tmp_path / "run" / CHECKPOINT_NAME, lambda m: m.pop("optimizer"))
    assert condgen.load_run(bad.parent).sample({"label": 1}, num=2).shape == (2, 1, 6, 6)
    # label_run's data set came from another plugin object than the `toy` fixture's: said, then the refusal
    with pytest.warns(PluginWarning, match="from plugin 'toy-data-reliability'.*check that it is the same data"), \
            pytest.raises(CheckpointError, match="its optimizer or generator state cannot be restored .*; it can be sampled"):
        condgen.train(None, bad.parent, resume=True, pictures=False)


def test_the_checkpoint_header_is_one_type_written_read_once_and_held(label_run, tmp_path, monkeypatch):
    from condgen.runs import store
    from condgen.runs.checkpoint import read_checkpoint

    _, raw = read_checkpoint(label_run / CHECKPOINT_NAME, load_tensors=False)
    # the keys a one-process training run writes: no world_size, nothing unset; since 0.3 the data's class names
    assert sorted(raw) == ["classes", "complete", "condgen_version", "conditioners", "config", "data_shape", "dataset",
                           "epoch", "metrics", "optimizer", "run_id"] and raw["classes"] == {}
    # the run's identity is its marker's; the data set's provider is recorded as the conditioners' are
    assert raw["run_id"] == json.loads((label_run / ".condgen-run").read_text())["run_id"] and len(raw["run_id"]) == 32
    assert raw["dataset"]["name"] == raw["config"]["data"]["dataset"] and raw["dataset"]["plugin"]
    # the epoch's line of metrics.jsonl, kept with the checkpoint it belongs to
    assert raw["metrics"]["epoch"] == raw["epoch"] == 1
    assert json.loads((label_run / "metrics.jsonl").read_text().splitlines()[-1]) == raw["metrics"]
    parses = []
    real = store.CheckpointMeta.parse.__func__
    monkeypatch.setattr(store.CheckpointMeta, "parse", classmethod(lambda cls, *a: parses.append(a) or real(cls, *a)))
    stored = store.read_run(label_run)
    run = store.run_from_stored(stored, torch.device("cpu"))
    assert len(parses) == 1 and isinstance(stored.meta, store.CheckpointMeta)
    assert (stored.meta.epoch, stored.meta.complete, stored.meta.world_size, run.epoch) == (1, True, 1, 1)
    assert stored.meta.to_json() == raw  # what was read is what is written
    # the toy data set's plugin is registered only while label_run trains: the provider is the run's record of it
    assert run.trained_on.model_dump() == raw["dataset"]
    assert store.CheckpointMeta.of_run(run, optimizer=raw["optimizer"], complete=True, metrics=raw["metrics"],
                                       run_id=raw["run_id"]).to_json() == raw

    def from_a_later_condgen(meta):
        meta["provenance"] = {"host": "x"}
        meta["conditioners"][0]["fingerprint"] = "abc"

    later = rewrite(label_run / CHECKPOINT_NAME, tmp_path / "later" / CHECKPOINT_NAME, from_a_later_condgen)
    assert condgen.load_run(later.parent).sample({"label": 1}, num=2).shape == (2, 1, 6, 6)  # unknown keys ignored
    assert store.read_run(later.parent).meta.to_json() == raw


class _StateOf:
    """A plugin registering a ``sign`` conditioner whose ``state()`` adds ``extra`` to its fitted scale."""

    def __init__(self, extra: object) -> None:
        from helpers import SignConditioner

        class Odd(SignConditioner):
            def state(self) -> dict:
                return {"scale": self.scale, "extra": extra}

        self.cls = Odd

    @condgen.hookimpl
    def condgen_register_conditioners(self, register):
        register(self.cls)


def _sign_run_config() -> condgen.RunConfig:
    return condgen.RunConfig.parse({"conditioners": [{"name": "sign"}], "model": {"latent_dim": 2, "hidden": [8]},
                                    "data": {"dataset": "toy"}, "train": {"epochs": 1, "device": "cpu"}})


def test_a_conditioner_state_is_stored_as_json_gives_it_back(register_plugin, tmp_path):
    from helpers import ToyData

    from condgen.runs.store import read_run

    register_plugin(ToyData(), "toy-data")
    register_plugin(_StateOf({0: float("nan"), "inf": float("inf"), "pair": (1, 2)}), "odd-state")
    condgen.train(_sign_run_config(), tmp_path / "run", pictures=False, log=lambda s: None)
    extra = read_run(tmp_path / "run").meta.conditioners[0].state["extra"]
    assert sorted(extra) == ["0", "inf", "pair"]  # JSON's keys are text, as json.dumps writes them
    assert np.isnan(extra["0"]) and extra["inf"] == float("inf") and extra["pair"] == [1, 2]  # not null


def test_a_conditioner_state_that_is_not_json_is_one_line_and_leaves_nothing(register_plugin, tmp_path):
    from helpers import ToyData

    register_plugin(ToyData(), "toy-data")
    register_plugin(_StateOf(torch.ones(2)), "tensor-state")
    with pytest.raises(PluginError, match=r"conditioner 'sign' gave a state\(\) that is not JSON \(Object of type "
                                          r"Tensor is not JSON serializable\); the checkpoint cannot hold it"):
        condgen.train(_sign_run_config(), tmp_path / "run", pictures=False, log=lambda s: None)
    assert not (tmp_path / "run").exists()  # a start that failed before its first checkpoint leaves nothing


# -- the Python API's arguments ---------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,message", [
    ({"num": "3"}, "num must be a whole number >= 1, got '3'"),
    ({"num": None}, "num must be a whole number >= 1, got None"),
    ({"num": 2.0}, "num must be a whole number >= 1, got 2.0"),
    ({"num": True}, "num must be a whole number >= 1, got True"),
    ({"num": -5}, "num must be a whole number >= 1, got -5"),
    ({"seed": "0"}, "seed must be a whole number between 0 and 18446744073709551615, got '0'"),
    ({"seed": 2**70}, "seed must be a whole number between 0 and 18446744073709551615, got 1180591620717411303424"),
    ({"seed": -1}, "seed must be a whole number between 0"),
    ({"seed": 1.5}, "seed must be a whole number between 0"),
])
def test_sample_arguments_raise_the_toolkits_error_naming_the_argument(label_run, kwargs, message):
    run = condgen.load_run(label_run)
    with pytest.raises(ArgumentError) as err:
        run.sample({"label": 1}, **{"num": 2, **kwargs})
    assert message in str(err.value)


def test_other_public_functions_check_their_arguments(label_run, tmp_path):
    run = condgen.load_run(label_run)
    for bad in (None, "", 5):
        with pytest.raises(ArgumentError, match="path must name a run directory"):
            condgen.load_run(bad)
    with pytest.raises(ArgumentError, match="device must be"):
        condgen.load_run(label_run, device=0)
    with pytest.raises(CondgenError, match="unknown device 'gpu'"):
        condgen.load_run(label_run, device="gpu")
    with pytest.raises(ArgumentError, match="config must be a condgen.RunConfig .* got dict"):
        condgen.train({"train": {}}, tmp_path / "r")
    with pytest.raises(ArgumentError, match="per_row must be a whole number >= 1, got 0"):
        condgen.SampleRows.from_texts(run, ["label=1"]).sample(run, 0)
    with pytest.raises(ArgumentError, match="samples must be a whole number >= 1, got 'many'"):
        run.log_likelihood({"image": torch.zeros(1, 1, 6, 6), "label": torch.zeros(1, dtype=torch.long)},
                           samples="many")
    with pytest.raises(ArgumentError, match="device must be a torch device .* got 'gpu'"):
        condgen.seeded_generator("gpu", 0)
    with pytest.raises(ArgumentError, match="seed must be a whole number"):
        condgen.seeded_generator("cpu", "0")
    with pytest.raises(ArgumentError, match="run must be a condgen.Run .* got str"):
        condgen.evaluate(str(label_run))
    with pytest.raises(ArgumentError, match="batch_size must be a whole number >= 1, got 0"):
        list(condgen.iter_batches({"x": torch.zeros(3)}, 0))
    with pytest.raises(ArgumentError, match=r"save_grid: images must be a tensor \(N, C, H, W\) with N >= 1, got \(3, 6\)"):
        condgen.save_grid(torch.zeros(3, 6), tmp_path / "g.png", per_row=2)
    with pytest.raises(ArgumentError, match="save_grid: per_row must be a whole number >= 1, got 0"):
        condgen.save_grid(torch.zeros(3, 1, 6, 6), tmp_path / "g.png", per_row=0)
    for texts in ("label=1", 5, [1]):
        with pytest.raises(CondgenError, match="conditions must be a list of NAME=VALUE strings"):
            run.parse_conditions(texts)
    assert not (tmp_path / "r").exists() and not (tmp_path / "g.png").exists()


# -- messages that mislead --------------------------------------------------------------------------
def test_a_conditioner_of_a_filtered_out_plugin_says_so(label_run, tmp_path):
    env = {**os.environ, "CONDGEN_PLUGINS": "inpaint"}
    run = subprocess.run([sys.executable, "-m", "condgen", "train", "--conditioner", "label", "--out",
                          str(tmp_path / "r")], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2
    assert re.search(r"unknown conditioner 'label'; loaded conditioners: inpaint; CONDGEN_PLUGINS='inpaint' leaves out "
                     r"the installed plugins (.*, )?label(, .*)? \(add the one that provides 'label' to CONDGEN_PLUGINS, "
                     r"or unset it\)", run.stderr), run.stderr
    run = subprocess.run([sys.executable, "-m", "condgen", "sample", str(label_run), "--condition", "label=1",
                          "--out", str(tmp_path / "s.png")], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2 and "which is installed but not loaded: CONDGEN_PLUGINS='inpaint' leaves it out; " \
                                  "add label to CONDGEN_PLUGINS or unset it" in run.stderr


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_run_files_follow_the_umask(toy, tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        condgen.train(toy_config(epochs=1), tmp_path / "run", pictures=False)
    finally:
        os.umask(old)
    for name in (CHECKPOINT_NAME, "config.json", "metrics.jsonl", MARKER_NAME):
        assert (tmp_path / "run" / name).stat().st_mode & 0o777 == mode, name


def test_sigterm_keeps_the_last_epoch_and_says_how_to_resume(tmp_path):
    data, out = toy_npz(tmp_path / "toy.npz", n=4096), tmp_path / "run"
    proc = cli_process(*npz_train_args(data, out, epochs=500))
    for line in proc.stdout:
        if line.startswith("epoch 2/500"):
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert f"terminated (SIGTERM); the run keeps its last complete epoch: continue it with condgen train --resume " \
           f"--out {out}" in err and "Traceback" not in err
    done = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    # the metrics line is written just before the checkpoint: a signal between the two leaves one line more
    assert condgen.load_run(out).epoch in (len(done), len(done) - 1) and len(done) >= 2
    assert not list(out.glob(".*.tmp")) and not (out / ".condgen-owner").exists()


def test_sigterm_before_the_first_epoch_leaves_nothing(tmp_path):
    data, out = toy_npz(tmp_path / "toy.npz", n=60000), tmp_path / "run"
    proc = cli_process(*npz_train_args(data, out, epochs=5))
    for _ in range(600):
        if (out / ".condgen-owner").exists():
            break
        time.sleep(0.05)
    assert (out / ".condgen-owner").exists(), "the run never started"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "terminated (SIGTERM) before the first epoch ended; nothing was kept" in err, err
    assert not out.exists()


def test_argparse_mistakes_are_one_line_too(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--epochs", "x", "--out", "r"])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and err == "error: argument --epochs: invalid int value: 'x' (see: condgen train --help)"


def test_plugin_errors_stay_plugin_errors():
    with pytest.raises(PluginError):
        condgen.RunConfig.parse({"conditioners": [{"name": "nope"}]})


# -- found in review: each was an internal error, a wrong refusal or a leftover before --------------
def test_yaml_numbers_written_without_a_dot_are_numbers(tmp_path):
    from condgen.runs.config import read_config_file

    path = tmp_path / "c.yaml"
    path.write_text("train: {lr: 1e-3, weight_decay: 5E-4}\nmodel: {gaussian_std: -2.5e+1}\n")
    assert read_config_file(path) == {"train": {"lr": 0.001, "weight_decay": 0.0005}, "model": {"gaussian_std": -25.0}}
    assert condgen.RunConfig.parse({**read_config_file(path), "model": {}}).train.lr == 0.001


def test_bools_are_refused_in_unions_and_abstract_sequences_too():
    from collections.abc import Sequence
    from typing import Literal, Union

    from condgen.common.schema import StrictModel

    class Settings(StrictModel):
        scale: Union[float, Literal["auto"]] = "auto"
        sizes: Sequence[int] = (1,)
        flag: bool = False

    with pytest.raises(ValueError, match="a number is wanted, not the bool true"):
        Settings(scale=True)
    with pytest.raises(ValueError, match="a whole number is wanted, not the bool false"):
        Settings(sizes=[2, False])
    assert Settings(scale=0.5, sizes=[2, 3], flag=True).flag is True
    assert Settings(scale="auto").scale == "auto"


def test_a_conditioners_own_size_is_counted_before_anything_is_made(toy, capsys, tmp_path, monkeypatch):
    from condgen.common import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 2**33)
    line = one_line(capsys, "train", "--dataset", "toy", "--conditioner",
                    "label:num_classes=1000000000,embedding=learned", "--out", str(tmp_path / "r"))
    assert re.search(r"a model of 16,000,\d{3},\d{3} weights .* GiB of memory, but 8.0 GiB is available", line), line
    assert not (tmp_path / "r").exists()


def test_inpainting_and_evaluation_sizes_are_refused_up_front(label_run, tmp_path, monkeypatch):
    from condgen.common import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 2**30)
    run = condgen.load_run(label_run)
    split = {"image": torch.rand(4, 1, 6, 6), "label": torch.tensor([0, 1, 0, 1])}
    with pytest.raises(ResourceError, match="1,000,000,000 importance samples for each of 4 items needs .* GiB"):
        run.log_likelihood(split, samples=10**9)
    assert run.log_likelihood(split, samples=3).shape == (4,)
    with pytest.raises(ResourceError, match="1,000,000,000 samples .* but 1.0 GiB is available"):
        run.check_sample_memory(10**6 * 1000)  # what condgen_inpaint.inpaint checks before repeating its conditions
    with pytest.raises(ArgumentError, match="a picture holds at most 10,000 images, not 10,001"):
        condgen.save_grid(torch.zeros(10_001, 1, 2, 2), tmp_path / "g.png", per_row=100)


def test_wide_models_sample_in_smaller_chunks(label_run):
    import condgen.runs.run as run_module

    run = condgen.load_run(label_run)
    assert run._chunk_rows() == run_module.SAMPLE_CHUNK  # 32 wide: full chunks
    run.config.model.hidden = [65536]
    assert run._chunk_rows() == run_module.CHUNK_BYTES // (65536 * 4) == 1024


def test_checkpoint_states_and_shapes_are_checked(label_run, tmp_path, capsys):
    none_state = rewrite(label_run / CHECKPOINT_NAME, tmp_path / "none" / CHECKPOINT_NAME,
                         lambda m: m["conditioners"][0].update(state=None))
    assert condgen.load_run(none_state.parent).sample({"label": 0}, num=1).shape == (1, 1, 6, 6)
    huge = rewrite(label_run / CHECKPOINT_NAME, tmp_path / "huge" / CHECKPOINT_NAME,
                   lambda m: m.update(data_shape=[1, 2**40, 1]))
    line = one_line(capsys, "sample", str(huge.parent), "--condition", "label=1", "--out", str(tmp_path / "s.png"))
    assert f"checkpoint '{huge}' (data_shape [1, 1099511627776, 1]): a model of" in line


def test_resuming_on_data_of_another_shape_is_refused(toy, tmp_path, register_plugin):
    condgen.train(toy_config(epochs=1), tmp_path / "run", pictures=False)
    rewrite(tmp_path / "run" / CHECKPOINT_NAME, tmp_path / "run" / CHECKPOINT_NAME,
            lambda m: m.update(data_shape=[6, 6, 1]))  # the same size, another shape
    with pytest.raises(CheckpointError, match=r"has data_shape \[6, 6, 1\], but its data's 'image' items are \[1, 6, 6\]"):
        condgen.train(toy_config(epochs=2), tmp_path / "run", resume=True, pictures=False)


def test_integer_types_other_than_int_are_whole_numbers_too(label_run):
    run = condgen.load_run(label_run)
    a = run.sample({"label": 1}, num=np.int64(3), seed=np.uint32(5))
    b = run.sample({"label": 1}, num=3, seed=5)
    assert torch.equal(a, b) and torch.equal(run.sample({"label": 1}, num=3, seed=torch.tensor(5)), b)


def test_more_api_arguments_are_checked(label_run, tmp_path, monkeypatch):
    run = condgen.load_run(label_run)
    with pytest.raises(ArgumentError, match=r"test must be a split \{field: tensor \(N, ...\)\}.* got list"):
        condgen.evaluate(run, [1, 2])
    with pytest.raises(ArgumentError, match="data_dir must be a directory .* got 5"):
        condgen.evaluate(run, data_dir=5)
    with pytest.raises(ArgumentError, match=r"samples must be a whole number >= 0 \(0 skips the IS estimate\), got 2.0"):
        condgen.evaluate(run, samples=2.0)
    with pytest.raises(ArgumentError, match="limit must be a whole number >= 0, got 'x'"):
        list(condgen.iter_batches({"x": torch.zeros(3)}, 2, limit="x"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ArgumentError, match="save_grid: path must name the PNG file to write, got None"):
        condgen.save_grid(torch.zeros(2, 1, 6, 6), None, per_row=2)
    with pytest.raises(ArgumentError, match="resume must be True, False or a StoredRun, got 'no'"):
        condgen.train(None, tmp_path / "r", resume="no")
    assert list(tmp_path.iterdir()) == []


def test_the_cli_runs_off_the_main_thread(capsys):
    codes = []
    worker = threading.Thread(target=lambda: codes.append(main(["plugins", "--json"])))
    worker.start()
    worker.join()
    assert codes == [0] and json.loads(capsys.readouterr().out)


def test_a_directory_left_by_an_older_condgens_failed_start_is_a_run_directory(toy, tmp_path, capsys):
    out = tmp_path / "old"
    out.mkdir()
    stored = toy_config(epochs=1).model_dump(mode="json")
    (out / "config.json").write_text(json.dumps(stored))  # what 0.2.0 left when its data failed to load
    condgen.train(toy_config(epochs=1), out, pictures=False)
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model": {}}))  # a user's own config.json: not ours
    assert "holds files that are not a condgen run (config.json)" in one_line(
        capsys, "train", "--dataset", "toy", "--conditioner", "label:num_classes=2", "--out", str(other))


def test_a_failed_start_removes_only_what_it_made(toy, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    nested = tmp_path / "p" / "q" / "r"
    for out in (empty, nested):
        with pytest.raises(NumericalError):
            condgen.train(toy_config(lr=1e9), out, pictures=False)
    assert list(empty.iterdir()) == []
    assert not (tmp_path / "p").exists()


def test_an_interrupt_while_claiming_leaves_nothing(tmp_path, monkeypatch):
    import condgen.runs.rundir as rundir

    real = rundir.write_text_atomic

    def interrupted(path, text, what="file"):
        real(path, text, what)
        if path.name == MARKER_NAME:
            raise KeyboardInterrupt

    monkeypatch.setattr(rundir, "write_text_atomic", interrupted)
    with pytest.raises(KeyboardInterrupt):
        with claim_run_dir(tmp_path / "run", resume=False, own_files=("config.json",)):
            pass
    assert not (tmp_path / "run").exists()


def test_an_array_is_written_exactly_where_asked(label_run, tmp_path, capsys):
    assert main(["sample", str(label_run), "--condition", "label=1", "--num", "3", "--out", str(tmp_path / "up.NPY")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["up.NPY"]  # numpy.save alone writes up.NPY.npy
    assert np.load(tmp_path / "up.NPY").shape == (3, 1, 6, 6)
    line = one_line(capsys, "sample", str(label_run), "--condition", "label=1", "--num", "3000",
                    "--out", str(tmp_path / "wide.png"))
    assert "a picture's rows hold at most 1,000 samples, not --num 3000" in line
    assert not (tmp_path / "wide.png").exists()
