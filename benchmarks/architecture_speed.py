"""Seconds per epoch of each architecture on this CPU, and as a multiple of its convolution and matmul floor.

The runs of ``examples/fashion_mnist/architectures.py`` (Fashion-MNIST, the label conditioner, latent 16, GELU,
the conditional prior, the discretised logistic, batch 100): the MLP (hidden [512, 512]) and the conv net
(channels [32, 64], a dense layer of 512), each also with the conv net's maps in channels-last memory and with
``train.precision: bf16``, and the conv net without its decoder's FiLM (the cost of the modulation by the
label's embedding). For each, condgen's own training step (forward, backward, fused Adam, as
``benchmarks/profile_step.py`` takes it) on batches drawn as training draws them:

- ``s/epoch``: the median time of ``--steps`` steps, times the 600 steps of an epoch;
- ``floor``: the self time torch.profiler gives the convolution and matmul operators (forward and backward)
  inside those steps, per epoch: the arithmetic no implementation of the same network avoids, as
  ``benchmarks/side_by_side.py``'s matmul floor is for the seed;
- their ratio: how much of a step is not that arithmetic.

The cases are alternated ``--repeats`` times in one process (these shared machines drift by a third, and torch
slows down many times over when another job shares the two cores: run it on a quiet machine), and medians are
taken. Writes ``architecture_speed.json`` and ``ARCHITECTURE_SPEED.md`` to ``--out``::

    python benchmarks/architecture_speed.py --data-dir /usr/share/datasets/fashion-mnist --repeats 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

import condgen
from condgen.data.fashion import CLASSES, locate_fashion_mnist
from condgen.data.splits import index_batch
from condgen.runs.build import create_run
from condgen.training.loop import precision_context
from condgen.training.optimizer import make_optimizer

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "examples" / "fashion_mnist"))
sys.path.insert(0, str(HERE))
from architectures import config_of  # noqa: E402  (the runs of the equal-time benchmark)
from profile_step import MATMUL, train_step  # noqa: E402

#: The operators of the convolutions, forward and backward; with MATMUL, the floor.
CONVOLUTION = {"aten::mkldnn_convolution", "aten::convolution_backward", "aten::_convolution", "aten::convolution",
               "aten::conv2d", "aten::conv_transpose2d", "aten::_slow_conv2d_forward", "aten::_slow_conv2d_backward",
               "aten::slow_conv_transpose2d", "aten::mkldnn_convolution_backward"}
STEPS_PER_EPOCH = 600  # 60,000 items, batch 100
#: name -> (architecture, channels-last, precision, the conv decoder's FiLM kept)
CASES = {
    "mlp": ("mlp", False, "fp32", True),
    "mlp bf16": ("mlp", False, "bf16", True),
    "conv": ("conv", False, "fp32", True),
    "conv without FiLM": ("conv", False, "fp32", False),
    "conv channels-last": ("conv", True, "fp32", True),
    "conv bf16": ("conv", False, "bf16", True),
}


def make_case(name: str, data_dir: Path, train: dict[str, torch.Tensor]) -> dict[str, Any]:
    arch, channels_last, precision, film = CASES[name]
    config = config_of(arch, data_dir, 1)
    config = config.model_copy(update={"train": config.train.model_copy(update={"precision": precision})})
    torch.manual_seed(0)
    run = create_run(config, train, torch.device("cpu"))
    if not film:  # what the modulation by the flat embeddings costs: the decoder without it
        run.model.decoder.film = torch.nn.ModuleList()
    if channels_last:
        for net in (run.model.encoder, run.model.decoder):
            net.memory_format = torch.channels_last
            net.to(memory_format=torch.channels_last)
    opt = make_optimizer(config, run.model)
    gen = torch.Generator().manual_seed(0)
    step = train_step(run, opt, gen)
    order = torch.randperm(len(train["image"]), generator=torch.Generator().manual_seed(1))
    return {"run": run, "step": step, "order": order, "precision": precision, "next": 0,
            "weights": sum(p.numel() for p in run.model.parameters())}


def timed_steps(case: dict[str, Any], train: dict[str, torch.Tensor], steps: int, profiled: bool
                ) -> tuple[float, float]:
    """Seconds per step over ``steps`` steps, and (if ``profiled``) the conv and matmul operators' self seconds
    per step."""
    batches = []
    for _ in range(steps):
        start = case["next"] % (len(case["order"]) - 100)
        batches.append(index_batch(train, case["order"][start:start + 100]))
        case["next"] += 100
    device = case["run"].device

    def go() -> float:
        begin = time.perf_counter()
        for batch in batches:
            with precision_context(case["precision"], device):
                case["step"](batch)
        return (time.perf_counter() - begin) / steps

    if not profiled:
        return go(), float("nan")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        seconds = go()
    floor = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in MATMUL | CONVOLUTION) / 1e6 / steps
    return seconds, floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST's IDX files (default: found as the data set "
                        "finds them)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--out", default=str(HERE))
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    data_dir = Path(args.data_dir) if args.data_dir else locate_fashion_mnist(None)
    train = condgen.read_idx_dir(data_dir, name="Fashion-MNIST", classes=CLASSES, levels=True).train
    cases = {name: make_case(name, data_dir, train) for name in args.cases}
    for case in cases.values():  # warm up: the first steps allocate and pick kernels
        timed_steps(case, train, 3, profiled=False)
    seconds: dict[str, list[float]] = {n: [] for n in cases}
    floors: dict[str, list[float]] = {n: [] for n in cases}
    for r in range(args.repeats):
        for name, case in cases.items():
            s, _ = timed_steps(case, train, args.steps, profiled=False)
            seconds[name].append(s)
            _, floor = timed_steps(case, train, args.steps, profiled=True)
            floors[name].append(floor)
            print(f"repeat {r + 1}: {name}: {s * STEPS_PER_EPOCH:.1f} s/epoch, floor "
                  f"{floor * STEPS_PER_EPOCH:.1f} s/epoch", flush=True)
    rows = {}
    for name in cases:
        step, floor = statistics.median(seconds[name]), statistics.median(floors[name])
        rows[name] = {"seconds_per_epoch": step * STEPS_PER_EPOCH, "floor_seconds_per_epoch": floor * STEPS_PER_EPOCH,
                      "times_floor": step / floor, "weights": cases[name]["weights"],
                      "step_seconds_all": seconds[name], "floor_seconds_all": floors[name]}
    record = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "machine": platform.machine(),
              "processor": platform.processor(), "threads": torch.get_num_threads(), "torch": torch.__version__,
              "steps": args.steps, "repeats": args.repeats, "cases": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "architecture_speed.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        "# Seconds per epoch of each architecture, and its convolution and matmul floor",
        "",
        f"Recorded by `python benchmarks/architecture_speed.py --repeats {args.repeats}` on {record['date'][:10]} "
        f"({record['machine']}, {record['threads']} threads, torch {record['torch']}), on a quiet machine. "
        "Fashion-MNIST, the runs of `examples/fashion_mnist/architectures.py` (batch 100, 600 steps an epoch: "
        "latent 16, GELU, the conditional prior, the discretised logistic; MLP hidden [512, 512]; conv channels "
        f"[32, 64] and a dense layer of 512). Medians of {args.repeats} alternated repeats of {args.steps} steps; "
        "the floor is the self time torch.profiler gives the convolution and matmul operators inside the same "
        "steps.",
        "",
        "| case | weights | s/epoch | floor s/epoch | x floor |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['weights']:,} | {row['seconds_per_epoch']:.1f} | "
                     f"{row['floor_seconds_per_epoch']:.1f} | {row['times_floor']:.2f} |")
    (out / "ARCHITECTURE_SPEED.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
