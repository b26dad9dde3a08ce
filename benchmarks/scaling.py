"""How condgen's training epoch time on MNIST grows with the batch size, the hidden width and the latent size.

Three panels around the seed model (label one-hot, latent 2, one hidden layer of 512 ReLU, Adam 1e-3 fused,
batch 50): batch 50 to 1024; hidden width 128 to 2048 at batch 50; latent size 2 to 128 at batch 50. Each
point is measured two ways, each time in its own fresh process:

- ``condgen``: condgen's own epoch loop (``condgen.training.loop._train_epoch``: batches drawn with
  ``index_batch`` from a random permutation, forward, backward, fused Adam, the loss bookkeeping) over
  ``--steps`` steps after ``--warmup``, scaled to an epoch of ceil(60,000 / batch) steps; a whole real
  epoch where that has no more than ``--steps`` steps;
- ``floor``: only the matrix multiplications of those steps (:func:`matmul_step`), scaled the same way.

Points and the two kinds alternate, ``--repeats`` times, the order reversed every other repeat (a shared
machine drifts between runs, so only alternated medians compare). Writes ``scaling.json``, ``SCALING.md``
and ``scaling.png`` to ``--out``::

    python benchmarks/scaling.py --data-dir ../shared/data/mnist --steps 200 --repeats 3

``--quick`` checks the script in well under a minute (2 points a panel, 5 steps, into a temporary folder).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ITEMS = 60_000  # MNIST's training split
X_DIM, C_DIM = 784, 10  # a digit's pixels, and the one-hot label
SEED = {"batch": 50, "hidden": 512, "latent": 2}
PANELS = {"batch": [50, 100, 256, 512, 1024], "hidden": [128, 256, 512, 1024, 2048], "latent": [2, 8, 32, 128]}
QUICK_PANELS = {"batch": [50, 256], "hidden": [128, 512], "latent": [2, 8]}
TITLES = {"batch": "batch size", "hidden": "hidden width", "latent": "latent size"}
KINDS = ("condgen", "floor")


# -- helpers the other benchmarks share -----------------------------------------------------------
def in_child(function: str, module: str = "scaling", env: Mapping[str, str] | None = None,
             **kwargs: Any) -> dict[str, Any]:
    """``function(**kwargs)`` of ``benchmarks/<module>.py`` in a fresh Python process: its JSON result
    (the last line it prints)."""
    script = (f"import json, sys; sys.path.insert(0, {str(HERE)!r}); from {module} import {function}; "
              f"print(json.dumps({function}(**json.loads(sys.argv[1]))))")
    out = subprocess.run([sys.executable, "-c", script, json.dumps(kwargs)], capture_output=True, text=True,
                         cwd=HERE.parent, env={**(os.environ if env is None else env), "TQDM_DISABLE": "1"})
    if out.returncode != 0:
        raise SystemExit(f"{module}.{function}({kwargs}) failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def max_rss_bytes(who: int = resource.RUSAGE_SELF) -> int:
    """Peak resident memory of this process (or of its largest waited-for child, ``RUSAGE_CHILDREN``)."""
    return resource.getrusage(who).ru_maxrss * (1 if sys.platform == "darwin" else 1024)  # Linux counts KiB


def child_facts() -> dict[str, int]:
    """What a measuring child reports beside its times: torch's threads and its peak memory."""
    import torch

    return {"threads": torch.get_num_threads(), "max_rss_bytes": max_rss_bytes()}


def machine_info(threads: set[int]) -> dict[str, Any]:
    """The machine, its load and torch's version (without importing torch); ``threads`` as the children saw."""
    return {"date": dt.datetime.now().isoformat(timespec="minutes"), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "torch": importlib.metadata.version("torch"),
            "threads": sorted(threads), "load_average": [round(x, 2) for x in os.getloadavg()]}


def describe_machine(m: Mapping[str, Any]) -> str:
    threads = "/".join(map(str, m["threads"]))
    return f"{m['processor']}, {m['cpus']} CPUs, torch {m['torch']}, {threads} threads, {m['platform']}"


# -- the two measurements, each run in a child -----------------------------------------------------
def epoch_steps(batch: int) -> int:
    return math.ceil(ITEMS / batch)


def matmul_step(batch: int, hidden: int, latent: int) -> Callable[[], None]:
    """The matrix multiplications of one training step of the one-hidden-layer CVAE of these sizes, on tensors
    in place: encoder (784 + 10) -> hidden -> 2 x latent and decoder (latent + 10) -> hidden -> 784; forward,
    and backward the grad-weight products of all four layers and the grad-input products of all but the first."""
    import torch

    g = torch.Generator().manual_seed(0)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g)

    x, w1, h1, w2 = r(batch, X_DIM + C_DIM), r(X_DIM + C_DIM, hidden), r(batch, hidden), r(hidden, 2 * latent)
    z, w3, h3, w4 = r(batch, latent + C_DIM), r(latent + C_DIM, hidden), r(batch, hidden), r(hidden, X_DIM)
    # the gradients at each layer's output
    g1, g2, g3, g4 = r(batch, hidden), r(batch, 2 * latent), r(batch, hidden), r(batch, X_DIM)

    def step() -> None:
        x @ w1; h1 @ w2; z @ w3; h3 @ w4  # noqa: E702  forward
        h3.T @ g4; g4 @ w4.T; z.T @ g3; g3 @ w3.T  # noqa: E702  backward: decoder (z needs its gradient)
        h1.T @ g2; g2 @ w2.T; x.T @ g1  # noqa: E702  backward: encoder (no gradient of the input)

    return step


def floor_epoch(batch: int, hidden: int, latent: int, steps: int, warmup: int) -> dict[str, Any]:
    """Seconds of :func:`matmul_step` for an epoch: ``steps`` of them (at most an epoch's) after ``warmup``, scaled."""
    step = matmul_step(batch, hidden, latent)
    for _ in range(warmup):
        step()
    timed = min(steps, epoch_steps(batch))
    start = time.perf_counter()
    for _ in range(timed):
        step()
    seconds = time.perf_counter() - start
    return {"steps": timed, "seconds": seconds, "epoch_seconds": seconds * epoch_steps(batch) / timed, **child_facts()}


def condgen_epoch(data_dir: str, batch: int, hidden: int, latent: int, steps: int, warmup: int) -> dict[str, Any]:
    """Seconds of condgen's training epoch for the seed model with these sizes: its epoch loop over ``steps``
    batches (after ``warmup``) of a random subset of the training split, scaled; or over all of it when an
    epoch has at most ``steps`` steps."""
    import torch

    from condgen.data.splits import index_batch, split_size
    from condgen.training.loop import _train_epoch  # condgen's own loop: whatever its step does, this times
    from profile_step import seed_run

    run, opt, train = seed_run(data_dir, model={"latent_dim": latent, "hidden": [hidden]},
                               train={"batch_size": batch})
    gen = torch.Generator().manual_seed(0)

    def subset(k: int) -> dict[str, torch.Tensor]:  # k batches' worth, drawn from a random permutation
        return index_batch(train, torch.randperm(split_size(train), generator=gen)[:k * batch])

    if warmup:
        _train_epoch(run, opt, subset(warmup), gen, 1, False, HERE)
    per_epoch = math.ceil(split_size(train) / batch)
    timed = min(steps, per_epoch)
    part = train if timed == per_epoch else subset(timed)
    start = time.perf_counter()
    _train_epoch(run, opt, part, gen, 1, False, HERE)
    seconds = time.perf_counter() - start
    return {"steps": timed, "seconds": seconds, "epoch_seconds": seconds * per_epoch / timed, **child_facts()}


# -- the parent: alternate, take medians, write ---------------------------------------------------------
def point_key(p: Mapping[str, int]) -> str:
    return f"batch {p['batch']}, hidden {p['hidden']}, latent {p['latent']}"


def panel_points(panels: Mapping[str, list[int]]) -> list[dict[str, int]]:
    """Every point of every panel once (the seed point is in all three)."""
    points: dict[str, dict[str, int]] = {}
    for panel, values in panels.items():
        for value in values:
            p = {**SEED, panel: value}
            points.setdefault(point_key(p), p)
    return list(points.values())


def plot(result: Mapping[str, Any], path: Path) -> None:
    """Three panels: s/epoch of condgen and of its matmul floor (x log), and their ratio on a twin axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(result["panels"]), figsize=(5 * len(result["panels"]), 4.4))
    twins = []
    for ax, (panel, rows) in zip(axes, result["panels"].items()):
        xs = [r["value"] for r in rows]
        ax.plot(xs, [r["condgen_s"] for r in rows], "o-", label="condgen epoch")
        ax.plot(xs, [r["floor_s"] for r in rows], "s-", label="matmul floor")
        ax.set_xscale("log")
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.minorticks_off()
        ax.set_ylim(bottom=0)
        ax.set_xlabel(TITLES[panel])
        ax.set_ylabel("seconds per epoch (60,000 items)")
        fixed = ", ".join(f"{k} {v}" for k, v in SEED.items() if k != panel)
        ax.set_title(f"{TITLES[panel]} ({fixed})", fontsize=10)
        twins.append(ax.twinx())
        twins[-1].plot(xs, [r["ratio"] for r in rows], "^--", color="grey", label="condgen / floor (right axis)")
        twins[-1].set_ylim(0, 1.15 * max(r["ratio"] for r in rows))
        twins[-1].set_ylabel("condgen / floor", color="grey")
    handles = axes[0].get_legend_handles_labels()[0] + twins[0].get_legend_handles_labels()[0]
    fig.legend(handles, [h.get_label() for h in handles], loc="lower center", ncol=3, fontsize=9)
    m = result["machine"]
    fig.suptitle(f"condgen training epoch on MNIST: {describe_machine(m)}; {m['date']}", fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(result: Mapping[str, Any], command: str) -> str:
    m = result["machine"]
    lines = [
        "# How condgen's training epoch grows with the batch, the width and the latent size", "",
        f"`{command}` on {m['date']} ({describe_machine(m)}; load average {m['load_average']}): condgen's own "
        f"epoch loop over {result['steps']} steps after {result['warmup']} (a whole real epoch where an epoch has "
        "no more steps), scaled to ceil(60,000 / batch) steps, against the matrix multiplications alone of those "
        f"steps (the floor); each measurement in a fresh process, alternated, medians of {result['repeats']}. "
        "The seed model: label one-hot, ReLU, Adam 1e-3 (fused).", "",
    ]
    for panel, rows in result["panels"].items():
        fixed = ", ".join(f"{k} {v}" for k, v in SEED.items() if k != panel)
        head = f"| {panel} | s/epoch | floor s/epoch | ratio |" + (" items/s |" if panel == "batch" else "")
        lines += [f"## {TITLES[panel].capitalize()} ({fixed})", "", head,
                  "|---:|---:|---:|---:|" + ("---:|" if panel == "batch" else "")]
        for r in rows:
            lines.append(f"| {r['value']} | {r['condgen_s']:.2f} | {r['floor_s']:.2f} | {r['ratio']:.2f}x |"
                         + (f" {r['items_per_s']:,.0f} |" if panel == "batch" else ""))
        lines.append("")
    lines += ["![condgen epoch and matmul floor against batch, width and latent size](scaling.png)", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("CONDGEN_DATA_DIR", "../shared/data/mnist"))
    parser.add_argument("--steps", type=int, default=200, help="timed steps per point (at most an epoch's)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps before them")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="folder for the results (default: benchmarks/; with --quick a temporary one)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 points a panel, 5 steps, 1 repeat")
    args = parser.parse_args()
    panels = QUICK_PANELS if args.quick else PANELS
    if args.quick:
        args.steps, args.warmup, args.repeats = 5, 2, 1
    out = Path(args.out or (tempfile.mkdtemp(prefix="condgen-scaling-") if args.quick else HERE))
    data_dir = str(Path(args.data_dir).expanduser().resolve())

    points = panel_points(panels)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {point_key(p): {k: [] for k in KINDS} for p in points}
    for repeat in range(args.repeats):
        order = points if repeat % 2 == 0 else points[::-1]
        for i, p in enumerate(order):
            for kind in (KINDS if (repeat + i) % 2 == 0 else KINDS[::-1]):  # who goes first alternates too
                common = {**p, "steps": args.steps, "warmup": args.warmup}
                r = (in_child("condgen_epoch", data_dir=data_dir, **common) if kind == "condgen"
                     else in_child("floor_epoch", **common))
                runs[point_key(p)][kind].append(r)
                print(f"repeat {repeat + 1}/{args.repeats}  {point_key(p):32s} {kind:8s} "
                      f"{r['epoch_seconds']:.2f} s/epoch ({r['steps']} steps in {r['seconds']:.2f} s)", flush=True)

    medians = {key: {k: statistics.median(r["epoch_seconds"] for r in rs) for k, rs in per.items()}
               for key, per in runs.items()}

    def row(panel: str, value: int) -> dict[str, float]:
        m = medians[point_key({**SEED, panel: value})]
        extra = {"items_per_s": ITEMS / m["condgen"]} if panel == "batch" else {}
        return {"value": value, "condgen_s": m["condgen"], "floor_s": m["floor"],
                "ratio": m["condgen"] / m["floor"], **extra}

    result: dict[str, Any] = {
        "machine": machine_info({r["threads"] for per in runs.values() for rs in per.values() for r in rs}),
        "items": ITEMS, "steps": args.steps, "warmup": args.warmup, "repeats": args.repeats, "seed": SEED,
        "panels": {panel: [row(panel, v) for v in values] for panel, values in panels.items()},
        "runs": runs,
    }
    command = (f"python benchmarks/scaling.py --steps {args.steps} --repeats {args.repeats}"
               + (" --quick" if args.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "SCALING.md").write_text(markdown(result, command))
    plot(result, out / "scaling.png")
    print(markdown(result, command))
    print(f"wrote {out / 'scaling.json'}, {out / 'SCALING.md'}, {out / 'scaling.png'}")


if __name__ == "__main__":
    main()
