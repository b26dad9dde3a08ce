"""Where a seed-model training step spends its time: torch.profiler over condgen's own step.

Builds the seed configuration's run on MNIST (label conditioner, latent 2, 512 hidden, batch 50),
then profiles ``--steps`` training steps (forward, backward, fused Adam) on batches drawn as
training draws them, and writes the operators by self CPU time, with their share of the total,
to ``PROFILE.md`` (and the raw table to ``profile.txt``) in ``--out``::

    python benchmarks/profile_step.py --data-dir ../shared/data/mnist --steps 300
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

import condgen
from condgen.runs.build import create_run
from condgen.runs.datasets import load_dataset
from condgen.data.splits import index_batch
from condgen.training.optimizer import make_optimizer, stepper

HERE = Path(__file__).resolve().parent
#: Operators that do the arithmetic of the linear layers (the floor); the rest is overhead.
MATMUL = {"aten::addmm", "aten::mm", "aten::bmm", "aten::matmul", "aten::linear"}


def seed_config(data_dir: str, model: Mapping[str, Any] | None = None, train: Mapping[str, Any] | None = None,
                data: Mapping[str, Any] | None = None) -> condgen.RunConfig:
    """The seed configuration on MNIST in ``data_dir`` (label, latent 2, 512 hidden, batch 50, Adam 1e-3,
    1 epoch, seed 0), with the fields in ``model``, ``train`` and ``data`` changed."""
    return condgen.RunConfig.parse({
        "conditioners": [{"name": "label"}], "model": {"latent_dim": 2, "hidden": [512], **(model or {})},
        "data": {"data_dir": data_dir, **(data or {})},
        "train": {"epochs": 1, "batch_size": 50, "seed": 0, **(train or {})},
    })


def seed_run(data_dir: str, model: Mapping[str, Any] | None = None, train: Mapping[str, Any] | None = None
             ) -> tuple[condgen.Run, torch.optim.Optimizer, dict[str, torch.Tensor]]:
    """A fresh run of the seed configuration on MNIST (or with the ``model`` and ``train`` fields changed, as
    :func:`seed_config`), its optimizer, and the training split."""
    cfg = seed_config(data_dir, model, train)
    data = load_dataset(cfg.data)
    torch.manual_seed(0)
    run = create_run(cfg, data.train, torch.device("cpu"))
    return run, make_optimizer(cfg, run.model), data.train


def train_step(run: condgen.Run, opt: torch.optim.Optimizer, gen: torch.Generator
               ) -> Callable[[dict[str, torch.Tensor]], None]:
    """One training step as ``condgen.training.loop`` takes it (forward, backward, the fused Adam kernel
    through ``condgen.training.optimizer.stepper``), as a function of the batch."""
    step_optimizer = stepper(opt)

    def step(batch: dict[str, torch.Tensor]) -> None:
        loss = run.terms(batch, generator=gen, dropout=True)["loss"].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        step_optimizer()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("CONDGEN_DATA_DIR", "../shared/data/mnist"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", default=str(HERE))
    args = parser.parse_args()

    run, opt, train = seed_run(args.data_dir)
    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(train["image"]), generator=gen)
    one_step = train_step(run, opt, gen)

    def step(i: int) -> None:
        one_step(index_batch(train, perm[i * 50:(i + 1) * 50]))

    for i in range(50):  # warm up
        step(i)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(args.steps):
            step(50 + i)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    rows = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)
    matmul = sum(e.self_cpu_time_total for e in events if e.key in MATMUL)
    calls = sum(e.count for e in events)
    out = Path(args.out)
    (out / "profile.txt").write_text(events.table(sort_by="self_cpu_time_total", row_limit=60) + "\n")
    lines = [
        "# Where a seed-model training step spends its time", "",
        f"`python benchmarks/profile_step.py --steps {args.steps}` on {dt.date.today().isoformat()} "
        f"({platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} "
        f"threads): torch.profiler over {args.steps} steps of condgen's training step (seed configuration, "
        "batch 50; forward, backward, fused Adam, and the batch indexing).", "",
        f"Per step: {total / args.steps / 1000:.2f} ms of operator self time in {calls / args.steps:.0f} operator "
        f"calls; the matrix multiplications ({', '.join(sorted(MATMUL))}) are {matmul / total:.0%} of it, "
        f"the other {1 - matmul / total:.0%} is {calls / args.steps - sum(e.count for e in events if e.key in MATMUL) / args.steps:.0f} "
        "small operators per step.", "",
        "| operator | calls per step | self CPU per step (µs) | share |", "|---|---:|---:|---:|",
        *(f"| `{e.key}` | {e.count / args.steps:.1f} | {e.self_cpu_time_total / args.steps:.0f} | "
          f"{e.self_cpu_time_total / total:.1%} |" for e in rows[:args.top]), "",
    ]
    (out / "PROFILE.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
