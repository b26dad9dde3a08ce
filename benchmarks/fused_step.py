"""The fused MLP against the plain modules, and both against the floor, on one training step.

In one process, on one batch of the seed configuration already in place (label, latent 2, 512 hidden,
batch 50, fused Adam), alternated ``--repeats`` times in blocks of ``--steps`` steps, each block scaled to an
epoch of 1,200 steps:

- ``floor``: the matrix multiplications of the step (``scaling.matmul_step``: forward, and the gradient
  products autograd needs) and the fused Adam kernel over the model's parameters: the arithmetic and the
  update no implementation of this model avoids;
- ``plain``: condgen's training step (``condgen.Run.terms``, backward, the optimizer) with the plain modules;
- ``fused``: the same step with each MLP one fused autograd node (``fused_mlp.py``, a probe: the engine
  keeps the plain modules);
- ``fused_nll``: ``fused`` with the Bernoulli likelihood's -log p one node too.

Before timing, the fused step's gradients are checked against the plain step's on the same batch and noise.

Writes ``fused_step.json`` and ``FUSED_STEP.md`` (medians and ratios) to ``--out``::

    python benchmarks/fused_step.py --data-dir ../shared/data/mnist --repeats 7
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from fused_mlp import fuse, fuse_likelihood, unfuse  # noqa: E402
from profile_step import seed_run, train_step  # noqa: E402
from scaling import matmul_step  # noqa: E402

from condgen.data.splits import index_batch  # noqa: E402
from condgen.training.optimizer import stepper  # noqa: E402

EPOCH_STEPS = 1200


def timed(fn: Callable[[], None], steps: int) -> float:
    """Seconds of an epoch of ``fn`` steps, from ``steps`` of them."""
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) * EPOCH_STEPS / steps


def gradient_gap(run: object, batch: dict[str, torch.Tensor], kind: str, prepare: Callable[[str], None]) -> float:
    """The largest difference of any parameter's gradient between the ``kind`` step and the plain one, relative to
    that gradient's largest element, on one batch with the same noise; SystemExit above 1e-5."""
    grads = {}
    for k in ("plain", kind):
        prepare(k)
        run.model.zero_grad(set_to_none=True)
        run.terms(batch, generator=torch.Generator().manual_seed(1), dropout=True)["loss"].mean().backward()
        grads[k] = [p.grad.clone() for p in run.model.parameters() if p.grad is not None]
    gap = max(float((a - b).abs().max() / b.abs().max().clamp(min=1e-30)) for a, b in zip(grads[kind], grads["plain"]))
    if gap > 1e-5:
        raise SystemExit(f"the {kind} step's gradients differ from the plain step's by {gap:.2e}")
    run.model.zero_grad(set_to_none=True)
    return gap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("CONDGEN_DATA_DIR", "../shared/data/mnist"))
    parser.add_argument("--steps", type=int, default=300, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=str(HERE))
    args = parser.parse_args()
    run, opt, train = seed_run(args.data_dir)
    batch = index_batch(train, torch.arange(run.config.train.batch_size))
    step = train_step(run, opt, torch.Generator().manual_seed(0))

    def plain() -> None:
        step(batch)

    # the floor's optimizer: the same fused kernel over parameters of the model's sizes, with gradients in place
    params = [torch.nn.Parameter(p.detach().clone()) for p in run.model.parameters()]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    floor_opt = torch.optim.Adam(params, lr=1e-3, fused=True)
    update = stepper(floor_opt)
    floor_opt.step()  # makes the state, so ``update`` calls the kernel directly
    matmuls = matmul_step(batch=50, hidden=512, latent=2)  # the seed's one hidden layer

    def floor() -> None:
        matmuls()
        update()

    kinds: dict[str, Callable[[], None]] = {"floor": floor, "plain": plain, "fused": plain, "fused_nll": plain}

    def prepare(kind: str) -> None:
        unfuse(run.model)
        if kind.startswith("fused"):
            fuse(run.model)
        if kind == "fused_nll":
            fuse_likelihood(run.model)

    worst = max(gradient_gap(run, batch, kind, prepare) for kind in ("fused", "fused_nll"))
    print(f"largest gradient difference, fused against plain: {worst:.2e}")

    for kind in kinds:  # warm up each
        prepare(kind)
        timed(kinds[kind], 50)
    seconds: dict[str, list[float]] = {kind: [] for kind in kinds}
    for repeat in range(args.repeats):
        order = list(kinds) if repeat % 2 == 0 else list(reversed(kinds))
        for kind in order:
            prepare(kind)
            seconds[kind].append(timed(kinds[kind], args.steps))
        print(f"repeat {repeat + 1}/{args.repeats}: " + ", ".join(f"{k} {seconds[k][-1]:.2f}" for k in kinds),
              flush=True)
    median = {kind: statistics.median(v) for kind, v in seconds.items()}
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
               f"{torch.get_num_threads()} threads")
    result = {"date": dt.date.today().isoformat(), "machine": machine, "model": "seed",
              "steps_per_block": args.steps, "repeats": args.repeats, "median_epoch_seconds": median,
              "plain_over_fused": median["plain"] / median["fused"],
              "plain_over_fused_nll": median["plain"] / median["fused_nll"], "largest_gradient_gap": worst,
              "plain_over_floor": median["plain"] / median["floor"],
              "fused_over_floor": median["fused"] / median["floor"], "seconds": seconds}
    out = Path(args.out)
    (out / "fused_step.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# The fused MLP's training step against the plain modules' and the floor", "",
        f"`python benchmarks/fused_step.py --repeats {args.repeats} --steps {args.steps}` on {result['date']} "
        f"({machine}): one process, one batch in place, blocks of {args.steps} steps alternated, medians of "
        f"{args.repeats} blocks scaled to an epoch of {EPOCH_STEPS} steps.", "",
        "| step | median s/epoch | vs floor |", "|---|---:|---:|",
        *(f"| {kind} | {median[kind]:.2f} | {median[kind] / median['floor']:.2f}x |" for kind in kinds), "",
        f"The fused MLPs make the step **{result['plain_over_fused']:.3f}x** the plain step's speed, with the "
        f"likelihood fused too **{result['plain_over_fused_nll']:.3f}x** (the gradients agree to "
        f"{worst:.1e} of each one's largest element).", "",
    ]
    (out / "FUSED_STEP.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
