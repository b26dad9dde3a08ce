"""Device logic, tested on the CPU: ``auto`` picks CUDA where there is one, and a training epoch
keeps its work on the device, with a host round trip only every CHECK_EVERY steps."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import condgen
from condgen.training import distributed
from condgen.training import loop as training
from condgen.runs.datasets import load_dataset
from condgen.common.device import resolve_device
from condgen.runs.run import Run

from helpers import toy_config


def test_auto_picks_cuda_where_there_is_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(condgen.CondgenError, match=r"--device cuda:2: there are only 2 CUDA devices \(0..1\)"):
        resolve_device("cuda:2")


#: Ops that wait for the device on a GPU: reading a value (``.item()``, ``float()``, ``bool()``,
#: ``.tolist()``), and ops whose output size depends on the values.
SYNCING = {torch.ops.aten._local_scalar_dense.default, torch.ops.aten.nonzero.default,
           torch.ops.aten.masked_select.default, torch.ops.aten.unique_consecutive.default,
           torch.ops.aten._unique2.default}


class HostReads(TorchDispatchMode):
    """Counts the ops of :data:`SYNCING` and the copies to the CPU from another device."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        to_cpu = (func is torch.ops.aten._to_copy.default and str(kwargs.get("device", "")) == "cpu"
                  and isinstance(args[0], torch.Tensor) and args[0].device.type != "cpu")
        if func in SYNCING or to_cpu:
            self.reads += 1
        return func(*args, **kwargs)


def test_a_training_epoch_reads_the_device_only_every_check(toy, tmp_path):
    config = toy_config(epochs=1, batch_size=2)  # 256 steps
    run = condgen.train(config, tmp_path / "run", pictures=False, progress=False, log=lambda s: None)
    data = load_dataset(config.data)
    opt = training.make_optimizer(config, run.model)
    gen = torch.Generator().manual_seed(0)
    steps = math.ceil(len(data.train["image"]) / 2)
    with HostReads() as mode:
        training._train_epoch(run, opt, data.train, gen, 1, False, tmp_path / "run")
    checks = math.ceil(steps / training.CHECK_EVERY) + 1  # every CHECK_EVERY steps, and the last
    # per check: whether any loss is not finite, and the loss for the progress bar; at the end the means
    assert steps == 256 and mode.reads <= 2 * checks + 2, mode.reads


def test_each_torchrun_process_takes_its_own_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: None)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.device_for("auto") == torch.device("cuda", 1)
    assert distributed.device_for("cpu") == torch.device("cpu")
    with pytest.raises(condgen.CondgenError, match="--device cuda:0 names one GPU, but under torchrun each process"):
        distributed.device_for("cuda:0")
    monkeypatch.setenv("LOCAL_RANK", "2")
    with pytest.raises(condgen.CondgenError, match=r"process 2 \(LOCAL_RANK\) on this node, which has only 2 CUDA"):
        distributed.device_for("cuda")


@pytest.mark.parametrize("n, world", [(10, 2), (11, 2), (7, 3)])
def test_the_processes_share_an_epoch_without_overlap(monkeypatch, n, world):
    gen = torch.Generator().manual_seed(5)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(5))
    monkeypatch.setattr(distributed, "broadcast_from_main", lambda t: perm.clone())  # rank 0's permutation
    monkeypatch.setenv("WORLD_SIZE", str(world))
    shards = []
    for rank in range(world):
        monkeypatch.setenv("RANK", str(rank))
        shards.append(training._epoch_order(n, gen))
    assert len({len(s) for s in shards}) == 1 and len(shards[0]) == n // world  # as many steps each
    together = torch.stack(shards, dim=1).flatten()  # step by step, rank by rank
    assert torch.equal(together, perm[: n - n % world])  # one slice of the permutation, nothing twice


def test_a_loss_that_is_not_finite_between_checks_is_named_by_its_step(toy, tmp_path, monkeypatch):
    calls = {"n": 0}
    real_terms = Run.terms

    def terms(self, *args, **kwargs):
        out = real_terms(self, *args, **kwargs)
        if kwargs.get("dropout"):  # training steps only
            calls["n"] += 1
            if calls["n"] == 150:
                out["loss"] = out["loss"] * float("inf")
        return out

    monkeypatch.setattr(Run, "terms", terms)
    with pytest.raises(training.NumericalError, match=r"became inf at epoch 1, step 150; no epoch had finished"):
        condgen.train(toy_config(epochs=1, batch_size=2), tmp_path / "run", pictures=False, progress=False)
    assert not (tmp_path / "run").exists()
