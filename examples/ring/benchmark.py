"""A multimodal structured-output problem without images: points on a ring, given the sine of their angle.

A point's angle t is uniform on [0, 2 pi); the data is x = (cos t, sin t) plus a little noise, and the
condition is s = sin t, through the ``regression`` conditioner. For |s| < 1 two outputs are
valid, x = (+sqrt(1 - s^2), s) and (-sqrt(1 - s^2), s). A deterministic regressor (the engine's
``latent_dim 0``) can only predict their average, near (0, s); a CVAE's samples should fall on
both. For conditions with |s| <= 0.8 (where the modes are at least 1.2 apart) the script
measures the share of samples within 0.2 of the right mode, of the left mode, and of neither,
and draws ``modes.png``. Figures go to ``results.json`` and ``RESULTS.md`` beside this file::

    python examples/ring/benchmark.py                  # the recorded figures (a minute or two)
    python examples/ring/benchmark.py --work /tmp/ring --epochs 2 --results-dir /tmp/ring   # smoke check

The data is written as ``ring.npz`` into the work directory and trained on through the ``npz``
dataset; ``README.md`` beside this file gives the same training as a command line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

import condgen

HERE = Path(__file__).resolve().parent
NOISE = 0.05
NEAR = 0.2
MAX_ABS_S = 0.8
SAMPLES_PER_CONDITION = 200
CONDITIONS = 50


def make_ring(path: Path, n_train: int = 20_000, n_test: int = 2_000, seed: int = 0) -> None:
    """``ring.npz``: train_x/test_x ``(N, 2)``, train_s/test_s ``(N,)``."""
    rng = np.random.default_rng(seed)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        t = rng.uniform(0, 2 * math.pi, n)
        x = np.stack([np.cos(t), np.sin(t)], axis=1) + NOISE * rng.standard_normal((n, 2))
        return x.astype(np.float32), np.sin(t).astype(np.float32)

    (train_x, train_s), (test_x, test_s) = split(n_train), split(n_test)
    np.savez(path, train_x=train_x, train_s=train_s, test_x=test_x, test_s=test_s)


def config(data: Path, latent: int, epochs: int) -> condgen.RunConfig:
    return condgen.RunConfig.parse({
        "conditioners": [{"name": "regression", "config": {"targets": ["s"]}}],
        "model": {"latent_dim": latent, "hidden": [64, 64], "activation": "gelu", "likelihood": "gaussian",
                  **({"prior": "conditional"} if latent else {})},
        "data": {"dataset": "npz", "data_dir": str(data), "x_field": "x"},
        "train": {"epochs": epochs, "batch_size": 100, "lr": 3e-3, "lr_schedule": "cosine", "seed": 0,
                  "device": "cpu"},
    })


@torch.no_grad()
def mode_shares(run: condgen.Run, s_values: torch.Tensor) -> dict[str, float]:
    """Share of samples within NEAR of the right mode, of the left mode, and of neither."""
    s = s_values.repeat_interleave(SAMPLES_PER_CONDITION)
    x = run.sample({"regression": s.unsqueeze(1)}, num=s.shape[0], seed=0)
    width = torch.sqrt(1 - s**2)
    right = torch.linalg.vector_norm(x - torch.stack([width, s], 1), dim=1) < NEAR
    left = torch.linalg.vector_norm(x - torch.stack([-width, s], 1), dim=1) < NEAR
    return {"right": float(right.float().mean()), "left": float(left.float().mean()),
            "neither": float((~right & ~left).float().mean())}


@torch.no_grad()
def picture(runs: dict[str, condgen.Run], test: dict[str, np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 4.6), sharex=True, sharey=True)
    shown = {-0.6: "tab:blue", 0.0: "tab:green", 0.6: "tab:red"}
    for ax, (name, run) in zip(axes, runs.items()):
        ax.scatter(test["x"][:, 0], test["x"][:, 1], s=2, c="0.85", label="test data")
        for value, colour in shown.items():
            x = run.sample({"regression": value}, num=150, seed=1)
            ax.scatter(x[:, 0], x[:, 1], s=6, c=colour, label=f"samples given s = {value:g}")
        ax.set_title(name)
        ax.set_aspect("equal")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=8, markerscale=2)
    fig.suptitle("points on a ring given s = sin(angle): two valid outputs for each s")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=None, help="directory for the data and runs (default: a temporary one)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--results-dir", default=None, help="default: beside this file")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="condgen-ring-"))
    work.mkdir(parents=True, exist_ok=True)
    results_dir = Path(args.results_dir) if args.results_dir else HERE
    data = work / "ring.npz"
    make_ring(data)
    runs = {}
    for name, latent in (("CVAE (latent 2)", 2), ("regressor (latent 0)", 0)):
        run_dir = work / ("cvae" if latent else "regressor")
        runs[name] = condgen.train(config(data, latent, args.epochs), run_dir, progress=False, pictures=False,
                                   log=lambda s, name=name: print(f"[{name}] {s}", flush=True))
    s_values = torch.linspace(-MAX_ABS_S, MAX_ABS_S, CONDITIONS)
    shares = {name: mode_shares(run, s_values) for name, run in runs.items()}
    for name, share in shares.items():
        print(f"{name}: right {share['right']:.3f}, left {share['left']:.3f}, neither {share['neither']:.3f}")
    with np.load(data) as arrays:
        test = {"x": arrays["test_x"]}
    results_dir.mkdir(parents=True, exist_ok=True)
    picture(runs, test, results_dir / "modes.png")
    results = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu_count": os.cpu_count(), "torch": torch.__version__, "platform": platform.platform()},
        "epochs": args.epochs, "noise": NOISE, "near": NEAR, "max_abs_s": MAX_ABS_S, "shares": shares,
    }
    (results_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results, results_dir / "RESULTS.md")
    print(f"wrote results.json, RESULTS.md and modes.png to {results_dir}")
    return 0


def write_markdown(r: dict[str, Any], path: Path) -> None:
    lines = [
        "# Points on a ring given the sine of their angle: benchmark results", "",
        f"Written by `benchmark.py` on {r['date']} ({r['machine']['cpu_count']} CPU cores, torch "
        f"{r['machine']['torch']}), {r['epochs']} epochs each. {CONDITIONS} conditions s evenly spaced in "
        f"[-{r['max_abs_s']}, {r['max_abs_s']}], {SAMPLES_PER_CONDITION} samples each; a sample counts as near a "
        f"mode within {r['near']} of it.", "",
        "| model | near the right mode | near the left mode | near neither |", "|---|---|---|---|",
    ]
    for name, share in r["shares"].items():
        lines.append(f"| {name} | {100 * share['right']:.1f} % | {100 * share['left']:.1f} % | "
                     f"{100 * share['neither']:.1f} % |")
    path.write_text("\n".join(lines + [""]))


if __name__ == "__main__":
    sys.exit(main())
