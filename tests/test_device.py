"""Device logic, tested on the CPU: ``auto`` picks CUDA where there is one, and a training epoch
keeps its work on the device, with a host round trip only every CHECK_EVERY steps."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import condgen
from condgen import training
from condgen.data.loading import load_dataset
from condgen.device import resolve_device
from condgen.run import Run

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


class HostReads(TorchDispatchMode):
    """Counts reads of a tensor's value by the host (``.item()``, ``float()``, ``bool()``, ``.tolist()``):
    each is a round trip that waits for the device on a GPU. Also records every device an op touched."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.devices: set[torch.device] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.reads += 1
        for a in (*args, *(kwargs or {}).values()):
            if isinstance(a, torch.Tensor):
                self.devices.add(a.device)
        return func(*args, **(kwargs or {}))


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
    assert mode.devices == {torch.device("cpu")}


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
