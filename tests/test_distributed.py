"""Training across processes (issue #15): two CPU processes under torchrun train one model on a
real-MNIST subset into one ordinary run directory, which ``condgen sample`` reads and ``--resume``
continues: under torchrun again (bit for bit the uninterrupted run) and as one process.

Two torchrun launches, shared by the tests (each starts three Pythons that import torch, which is
most of the time): ``condgen train`` itself, then tests/distributed_worker.py through the Python API.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

import condgen
from condgen.cli import main as condgen_main
from condgen.runs.store import read_run

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="this torch lacks torch.distributed's gloo backend, which CPU processes need")

WORKER = Path(__file__).with_name("distributed_worker.py")
#: The shared run: 1001 items, so each process trains on 500 a epoch (10 steps of 50) and one sits out.
FLAGS = ["--conditioner", "label", "--latent-dim", "2", "--hidden", "64", "--batch-size", "50", "--epochs", "2",
         "--train-limit", "1001", "--test-limit", "500", "--seed", "0", "--device", "cpu"]
#: -ELBO of a model that gives every pixel probability 1/2: 784 ln 2 = 543.4 nats.
COIN_FLIPS = 784 * math.log(2)
TIMINGS = ("train_seconds", "eval_seconds")


def torchrun(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Two processes on this machine (``--standalone``: a free port), the way a user starts them."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone", *args]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # SIGTERM, not SIGKILL: torchrun then stops its workers, which run in sessions of their own
            # and would outlive it (holding the output pipes open)
            proc.terminate()
            stdout, stderr = proc.communicate(timeout=60)
            pytest.fail(f"torchrun {' '.join(args)} did not end within {timeout} s:\n{stderr[-4000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def without_timings(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMINGS} for row in rows]


@pytest.fixture(scope="module")
def cli_run(mnist_dir, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """``torchrun --nproc_per_node 2 -m condgen train ... --log tensorboard``: two epochs."""
    out = tmp_path_factory.mktemp("distributed") / "run"
    # `--` ends torchrun's options: its parser takes --log for an abbreviation of its --log-dir (docs/distributed.md)
    result = torchrun("-m", "condgen", "--", "train", *FLAGS, "--log", "tensorboard", "--data-dir", str(mnist_dir),
                      "--out", str(out))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return out, result


@pytest.fixture(scope="module")
def worker(cli_run, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """One launch of the worker: a new run into someone else's directory (refused), one whose loss is NaN
    on rank 1 alone, the CLI's run resumed to three epochs, and the same config trained for three epochs
    in one go."""
    out, _ = cli_run
    base = tmp_path_factory.mktemp("worker")
    foreign = base / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not a run\n")
    spec = {"config": json.loads((out / "config.json").read_text()), "results": str(base), "jobs": [
        {"name": "foreign", "out": str(foreign), "resume": False, "epochs": 3},
        {"name": "nan", "out": str(base / "nan"), "resume": False, "epochs": 3, "nan_on_rank": 1},
        {"name": "resumed", "out": str(out), "resume": True, "epochs": 3},
        {"name": "straight", "out": str(base / "straight"), "resume": False, "epochs": 3},
    ]}
    (base / "spec.json").write_text(json.dumps(spec))
    result = torchrun(str(WORKER), str(base / "spec.json"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return base, result


def test_torchrun_condgen_train_writes_one_complete_run_directory(cli_run):
    out, result = cli_run
    # rank 0 speaks for both: each epoch's line and the closing line once
    assert [result.stdout.count(text) for text in ("epoch 1/2 ", "epoch 2/2 ", "run directory: ")] == [1, 1, 1]
    assert sorted(p.name for p in out.iterdir()) == [
        ".condgen-run", ".condgen.lock", "checkpoint.safetensors", "config.json", "latent.png", "metrics.jsonl",
        "reconstructions.png", "samples.png", "tensorboard"]
    # callbacks run on rank 0 alone: one writer of events, each epoch once
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert len(list((out / "tensorboard").iterdir())) == 1
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("test/neg_elbo")] == [1, 2]
    rows = metrics(out)
    assert [row["epoch"] for row in rows] == [1, 2]
    assert [e.value for e in events.Scalars("test/neg_elbo")] == pytest.approx([r["test_neg_elbo"] for r in rows])
    # one model learned from both shares: better than coin flips after an epoch, better again after two
    assert rows[1]["test_neg_elbo"] < rows[0]["test_neg_elbo"] < COIN_FLIPS
    assert rows[1]["train_loss"] < rows[0]["train_loss"] < COIN_FLIPS + 20
    assert json.loads((out / "config.json").read_text())["train"]["batch_size"] == 50  # per process, as given
    stored = read_run(out)
    assert (stored.meta.epoch, stored.meta.complete, stored.meta.world_size) == (2, True, 2)
    # each process's generator is kept for --resume, and the two drew different noise
    assert not torch.equal(stored.tensors["rng.train"], stored.tensors["rng.train.rank1"])


def test_condgen_sample_reads_the_run(cli_run, tmp_path):
    out, _ = cli_run
    for name in ("threes.npy", "again.npy"):
        assert condgen_main(["sample", str(out), "--condition", "label=3", "--num", "4", "--device", "cpu",
                             "--out", str(tmp_path / name)]) == 0
    images = np.load(tmp_path / "threes.npy")
    assert images.shape == (4, 1, 28, 28) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert np.array_equal(images, np.load(tmp_path / "again.npy"))  # the same seed, the same samples
    assert not np.allclose(images[0], images[1], atol=1e-3)  # each from its own z


def test_a_mistake_only_rank_0_can_see_stops_both_processes_with_one_line(worker):
    base, _ = worker
    outcomes = [json.loads((base / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    mistake = f"--out {str(base / 'foreign')!r} holds files that are not a condgen run (notes.txt)"
    assert outcomes[0]["foreign"].startswith(mistake)
    assert outcomes[1]["foreign"].startswith(f"process 0 of 2 stopped: {mistake}")
    assert [p.name for p in (base / "foreign").iterdir()] == ["notes.txt"]  # untouched; rank 1 made nothing either


def test_a_nan_loss_on_one_process_stops_both_at_the_same_step(worker):
    base, _ = worker
    outcomes = [json.loads((base / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    # rank 0's own loss was finite: it stops because the loss checked is the mean over the processes
    for outcome in outcomes:
        assert outcome["nan"].startswith("the loss became nan at epoch 1, step 1; no epoch had finished")
    assert not (base / "nan").exists()  # a failed start leaves nothing


def test_processes_agree_and_resuming_under_torchrun_is_the_uninterrupted_run(worker, cli_run):
    base, result = worker
    out, _ = cli_run
    weights = {job: [torch.load(base / f"{job}-rank{rank}.pt") for rank in (0, 1)] for job in ("resumed", "straight")}
    for job, (rank0, rank1) in weights.items():
        assert rank0.keys() == rank1.keys()
        assert all(torch.equal(rank0[k], rank1[k]) for k in rank0), f"{job}: the processes' weights differ"
    resumed, straight = weights["resumed"][0], weights["straight"][0]
    assert all(torch.equal(resumed[k], straight[k]) for k in resumed)
    assert [row["epoch"] for row in metrics(out)] == [1, 2, 3]
    assert without_timings(metrics(out)) == without_timings(metrics(base / "straight"))
    assert "[1] " not in result.stdout and result.stdout.count("[0] epoch 3/3 ") == 2  # rank 0 logs, alone


def test_one_process_resumes_it_too(worker, cli_run):
    out, _ = cli_run
    stored = json.loads((out / "config.json").read_text())
    config = condgen.RunConfig.parse({**stored, "train": {**stored["train"], "epochs": 4}})
    lines: list[str] = []
    run = condgen.train(config, out, resume=True, progress=False, pictures=False, log=lines.append)
    assert run.epoch == 4
    assert any("trained by 2 process(es) and continues with 1: a step now takes 1 x 50 items instead of 2 x 50"
               in line for line in lines)
    rows = metrics(out)
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4]
    assert rows[3]["test_neg_elbo"] < rows[0]["test_neg_elbo"]
    checkpoint = read_run(out)
    assert checkpoint.meta.world_size == 1 and "rng.train.rank1" not in checkpoint.tensors
