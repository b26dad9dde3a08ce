"""Faults of the disk lose nothing and are one line (issue "Reliability 2", class 1).

A full disk while a checkpoint, its line of metrics or a picture is written is the toolkit's one ``error:``
line, exit 2, naming the file and the cause; the previous checkpoint, the user's existing picture and the
metrics that agree with the checkpoint survive, and no temporary file is left behind.

The faults are planted twice: on a real, small file system (a tmpfs mounted for the test, which needs root;
the tests say why they skip where it cannot be mounted) and with mocks of the libraries we write through
(safetensors, matplotlib), whose failures come in their own exception types.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import toy_config
from safetensors import safe_open
from test_reliability import one_line

import condgen
from condgen.cli import main
from condgen.common.files import FileAccessError, write_atomic, write_failure_cause
from condgen.runs.checkpoint import CHECKPOINT_NAME
from condgen.runs.rundir import METRICS_NAME

FILLER = "filler.bin"


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A real 4 MiB file system (tmpfs), mounted for one test and unmounted after it."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8); the mock tests below cover the same faults")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); the mock tests cover the same faults")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int = 0) -> None:
    """Fill the file system but about ``leave`` bytes: the next write bigger than that runs out of space."""
    stat = os.statvfs(disk)
    with open(disk / FILLER, "ab") as fh:
        fh.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave))
    stat = os.statvfs(disk)
    assert stat.f_bavail * stat.f_frsize <= leave


def free_space(disk: Path) -> None:
    (disk / FILLER).unlink(missing_ok=True)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*.tmp"))


def agree(out: Path, epoch: int) -> None:
    """The checkpoint is at ``epoch`` and ``metrics.jsonl`` holds exactly the lines of epochs 1 .. ``epoch``."""
    with safe_open(str(out / CHECKPOINT_NAME), framework="pt") as fh:
        meta = json.loads(fh.metadata()["meta"])
    lines = [json.loads(line) for line in (out / METRICS_NAME).read_text().splitlines()]
    assert meta["epoch"] == epoch and [m["epoch"] for m in lines] == list(range(1, epoch + 1)), (meta, lines)
    assert meta["metrics"] == lines[-1]  # the header keeps the checkpoint's own line


def train_args(out: Path, epochs: int, *extra: str) -> list[str]:
    return ["train", "--dataset", "toy", "--conditioner", "label:num_classes=2", "--hidden", "32", "--latent-dim",
            "2", "--batch-size", "32", "--epochs", str(epochs), "--device", "cpu", "--no-pictures", "--out", str(out),
            *extra]


# -- a real full file system ---------------------------------------------------------------------------------
def test_a_full_disk_at_the_first_checkpoint_is_one_line_and_leaves_nothing(toy, small_disk, capsys):
    out = small_disk / "run"
    fill(small_disk, leave=16384)  # room for the small files of a new run, not for its checkpoint
    message = one_line(capsys, *train_args(out, 2))
    assert message == (f"error: cannot write checkpoint {str(out / CHECKPOINT_NAME)!r}: no space left on the device"), \
        message
    assert not out.exists()  # the run made the directory; a run that never saved an epoch leaves nothing
    assert leftovers(small_disk) == []


def test_a_full_disk_at_a_later_checkpoint_keeps_the_epoch_before_and_resumes(toy, small_disk, capsys):
    out = small_disk / "run"

    def log(line: str) -> None:  # training logs an epoch once it is saved: the disk fills after epoch 1
        if line.startswith("epoch 1/"):
            fill(small_disk, leave=8192)

    with pytest.raises(FileAccessError, match=rf"^cannot write checkpoint '{out / CHECKPOINT_NAME}': no space left"):
        condgen.train(toy_config(epochs=3), out, pictures=False, log=log)
    agree(out, 1)
    assert leftovers(small_disk) == []

    message = one_line(capsys, *train_args(out, 3), "--resume")  # still full: resume fails the same way
    assert "cannot write checkpoint" in message and "no space left on the device" in message
    agree(out, 1)
    assert leftovers(small_disk) == []

    free_space(small_disk)
    run = condgen.train(None, out, resume=True, pictures=False)
    assert run.epoch == 3
    agree(out, 3)


def test_a_full_disk_when_the_metrics_are_written_changes_neither_file(toy, small_disk):
    out = small_disk / "run"
    saved = {}

    def log(line: str) -> None:  # not a page left after epoch 1: the new metrics file, prepared first, fails
        if line.startswith("epoch 1/"):
            saved["checkpoint"] = (out / CHECKPOINT_NAME).read_bytes()
            fill(small_disk)

    with pytest.raises(FileAccessError, match=rf"^cannot write metrics file '{out / METRICS_NAME}': "
                                              "no space left on the device$"):
        condgen.train(toy_config(epochs=2), out, pictures=False, log=log)
    assert (out / CHECKPOINT_NAME).read_bytes() == saved["checkpoint"]
    agree(out, 1)
    assert leftovers(small_disk) == []


def test_sample_onto_a_full_disk_keeps_the_existing_picture_whole_and_writes_no_empty_one(toy, small_disk, capsys,
                                                                                          tmp_path):
    run = tmp_path / "run"
    condgen.train(toy_config(epochs=1), run, pictures=False)
    keep = small_disk / "keep.png"
    assert main(["sample", str(run), "--condition", "label=1", "--num", "4", "--out", str(keep)]) == 0
    capsys.readouterr()
    picture = keep.read_bytes()
    assert picture.startswith(b"\x89PNG") and len(picture) > 100
    fill(small_disk)

    message = one_line(capsys, "sample", str(run), "--condition", "label=0", "--num", "8", "--out", str(keep))
    assert message == f"error: cannot write picture {str(keep)!r}: no space left on the device"
    assert keep.read_bytes() == picture  # whole, not cut to the pages that fitted
    new = small_disk / "new.png"
    message = one_line(capsys, "sample", str(run), "--condition", "label=0", "--num", "8", "--out", str(new))
    assert "cannot write picture" in message and "no space left on the device" in message
    assert not new.exists()  # no 0-byte picture
    message = one_line(capsys, "sample", str(run), "--condition", "label=0", "--num", "8", "--out",
                       str(small_disk / "new.npy"))
    assert "no space left on the device" in message and not (small_disk / "new.npy").exists()
    assert leftovers(small_disk) == []


# -- the same faults, mocked: each library's own exception type ------------------------------------------------
def test_a_safetensors_error_naming_a_full_disk_is_the_toolkits_error(toy, tmp_path, monkeypatch, capsys):
    from safetensors import SafetensorError

    import condgen.runs.checkpoint as checkpoint

    out = tmp_path / "run"
    condgen.train(toy_config(epochs=1), out, pictures=False)

    def full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\0" * 4096)  # part of the file made it to disk
        raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
                              'message: "No space left on device" })')

    monkeypatch.setattr(checkpoint, "save_file", full)
    message = one_line(capsys, *train_args(out, 2), "--resume")
    assert message == f"error: cannot write checkpoint {str(out / CHECKPOINT_NAME)!r}: no space left on the device"
    agree(out, 1)
    assert leftovers(out) == []


def test_a_bug_in_a_writer_is_not_dressed_as_a_disk_fault(tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")

    def broken(tmp: Path) -> None:
        raise ValueError("shape mismatch in a writer")

    with pytest.raises(ValueError, match="shape mismatch"):  # a bug stays a bug (an internal error on the CLI)
        write_atomic(target, broken)
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []
    assert write_failure_cause(ValueError("shape mismatch")) is None
    assert write_failure_cause(RuntimeError("Input/output error while writing")) == "input/output error"
    assert write_failure_cause(OSError(errno.EROFS, "Read-only file system")) == "the file system is read-only"


@pytest.mark.parametrize("cause, words", [
    (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), "no space left on the device"),
    (OSError(errno.EDQUOT, os.strerror(errno.EDQUOT)), os.strerror(errno.EDQUOT).lower()),
    (RuntimeError(f"libpng error: Write Error: {os.strerror(errno.ENOSPC)}"), "no space left on the device"),
])
def test_a_picture_that_cannot_be_written_keeps_the_old_one(toy, tmp_path, monkeypatch, capsys, cause, words):
    from matplotlib.figure import Figure

    run = tmp_path / "run"
    condgen.train(toy_config(epochs=1), run, pictures=False)
    keep = tmp_path / "keep.png"
    keep.write_bytes(b"the user's picture")

    def savefig(self, fname, **kwargs):
        Path(fname).write_bytes(b"\x89PNG half")
        raise cause

    monkeypatch.setattr(Figure, "savefig", savefig)
    message = one_line(capsys, "sample", str(run), "--condition", "label=1", "--num", "4", "--out", str(keep))
    assert message == f"error: cannot write picture {str(keep)!r}: {words}"
    assert keep.read_bytes() == b"the user's picture" and leftovers(tmp_path) == []


def test_a_picture_format_matplotlib_does_not_write_is_refused_before_anything_is_written(tmp_path):
    from condgen.common.errors import ArgumentError
    from condgen.pictures.grid import pyplot, save_figure

    fig = pyplot().figure()
    with pytest.raises(ArgumentError, match=r"'xyz' is not a picture format matplotlib writes; name a \.png file"):
        save_figure(fig, tmp_path / "a.xyz")
    assert list(tmp_path.iterdir()) == []


# -- a crash between the checkpoint and its line of metrics ---------------------------------------------------
def test_resume_puts_back_the_checkpoints_line_of_metrics_where_a_crash_lost_it(toy, tmp_path):
    out = tmp_path / "run"
    condgen.train(toy_config(epochs=2), out, pictures=False)
    lines = (out / METRICS_NAME).read_text().splitlines()
    (out / METRICS_NAME).write_text(lines[0] + "\n")  # killed after the checkpoint's rename, before the metrics'
    run = condgen.train(toy_config(epochs=3), out, resume=True, pictures=False)
    assert run.epoch == 3
    agree(out, 3)
    assert (out / METRICS_NAME).read_text().splitlines()[1] == lines[1]  # epoch 2's own line, not a new one


def test_every_new_run_has_an_identity_in_its_marker_and_checkpoint(toy, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    condgen.train(toy_config(epochs=1), a, pictures=False)
    condgen.train(toy_config(epochs=1), b, pictures=False)
    ids = []
    for out in (a, b):
        marker = json.loads((out / ".condgen-run").read_text())
        with safe_open(str(out / CHECKPOINT_NAME), framework="pt") as fh:
            meta = json.loads(fh.metadata()["meta"])
        assert marker["run_id"] == meta["run_id"]
        uuid.UUID(hex=meta["run_id"])
        ids.append(meta["run_id"])
    assert ids[0] != ids[1]


def test_a_link_is_written_through_and_a_device_is_refused(tmp_path):
    real = tmp_path / "real.bin"
    real.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    write_atomic(link, lambda tmp: tmp.write_bytes(b"new"))
    assert link.is_symlink() and real.read_bytes() == b"new"
    with pytest.raises(FileAccessError, match=r"^cannot write file '/dev/null': it is not a regular file \(a device "
                                              r"or a pipe: a rename would replace it\); name a file$"):
        write_atomic("/dev/null", lambda tmp: tmp.write_bytes(b"x"))
    assert Path("/dev/null").is_char_device() and leftovers(tmp_path) == []
