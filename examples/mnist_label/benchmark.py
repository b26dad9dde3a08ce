"""Benchmark of the label-conditioned CVAE on MNIST: the seed configuration, the recommended one, and
the recommended one with Sohn et al.'s conditional prior network.

For each configuration this trains a run through ``condgen.train`` (into ``--work``), then
records the final test negative ELBO (nats per image, from the run's metrics.jsonl), the
importance-sampled negative log-likelihood -log p(x|c) with S = 100 (``condgen.evaluate``) and
the seconds it took, the mean
training seconds per epoch, the total wall time, and the conditional accuracy: 1000 samples
per label k = 0..9 from ``run.sample({"label": k}, ...)``, judged by the small CNN of
``classifier.py``. The figures go to ``results.json`` and ``RESULTS.md`` next to this file::

    python examples/mnist_label/benchmark.py --data-dir DIR             # all three, 20 epochs (~12 min)
    python examples/mnist_label/benchmark.py --only seed --epochs 1     # a quick smoke check

A run with ``--epochs`` or ``--only`` writes its results into the work directory unless
``--results-dir`` is given, so a smoke check never overwrites the recorded figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import condgen

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from classifier import EPOCHS as CLASSIFIER_EPOCHS  # noqa: E402
from classifier import classify, default_cache_dir, load_or_train_classifier  # noqa: E402

#: The seed: one-hot label, latent 2, one hidden layer of 512 ReLU, Adam 1e-3, batch 50, 20 epochs.
SEED_CONFIG: dict[str, Any] = {
    "conditioners": [{"name": "label", "config": {"embedding": "onehot"}}],
    "model": {"latent_dim": 2, "hidden": [512], "activation": "relu"},
    "train": {"batch_size": 50, "lr": 1e-3, "optimizer": "adam", "lr_schedule": "constant", "epochs": 20, "seed": 0},
}
SEED_CLI = (
    "condgen train --conditioner label --latent-dim 2 --hidden 512 --batch-size 50 --epochs 20 --seed 0 "
    "--data-dir DIR --out RUN_DIR"
)
RECOMMENDED_FILE = HERE / "recommended.json"
RECOMMENDED_CLI = "condgen train --config examples/mnist_label/recommended.json --data-dir DIR --out RUN_DIR"
CONDITIONAL_CLI = RECOMMENDED_CLI + " --prior conditional"

TARGETS = {"seed": 131.9, "recommended": 95.0, "recommended-conditional-prior": 95.0}
IS_SAMPLES = 100
ACCURACY_TARGET = 0.95
SAMPLES_PER_LABEL = 1000
SAMPLE_SEED = 0  # label k is drawn with seed SAMPLE_SEED + k


def configs() -> dict[str, tuple[dict[str, Any], str]]:
    recommended = json.loads(RECOMMENDED_FILE.read_text())
    conditional = json.loads(json.dumps(recommended))
    conditional["model"]["prior"] = "conditional"
    return {
        "seed": (SEED_CONFIG, SEED_CLI),
        "recommended": (recommended, RECOMMENDED_CLI),
        "recommended-conditional-prior": (conditional, CONDITIONAL_CLI),
    }


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines() if ln.strip()]


@torch.no_grad()
def conditional_accuracy(run: condgen.Run, classifier: torch.nn.Module) -> dict[str, Any]:
    """Fraction of ``SAMPLES_PER_LABEL`` samples of each label that the classifier gives that label."""
    per_label, confused = {}, {}
    for k in range(10):
        images = run.sample({"label": k}, num=SAMPLES_PER_LABEL, seed=SAMPLE_SEED + k).cpu()
        predicted = classify(classifier, images)
        per_label[str(k)] = float((predicted == k).float().mean())
        wrong = predicted[predicted != k]
        if wrong.numel():
            counts = torch.bincount(wrong, minlength=10)
            confused[str(k)] = {"as": int(counts.argmax()), "fraction": float(counts.max()) / SAMPLES_PER_LABEL}
    return {
        "per_label": per_label,
        "mean": sum(per_label.values()) / 10,
        "min": min(per_label.values()),
        "most_common_mistake": confused,
    }


def benchmark_one(name: str, raw: dict[str, Any], cli: str, args: argparse.Namespace, classifier) -> dict[str, Any]:
    raw = json.loads(json.dumps(raw))
    if args.epochs is not None:
        raw["train"]["epochs"] = args.epochs
    raw.setdefault("data", {})["data_dir"] = args.data_dir
    config = condgen.RunConfig.parse(raw)
    run_dir = Path(args.work) / name
    print(f"== {name}: training into {run_dir}", flush=True)
    start = time.perf_counter()
    run = condgen.train(config, run_dir, progress=False, pictures=True, log=lambda s: print(f"[{name}] {s}", flush=True))
    wall = time.perf_counter() - start
    metrics = read_metrics(run_dir)
    final = metrics[-1]
    train_seconds = [m["train_seconds"] for m in metrics]
    start = time.perf_counter()
    figures = condgen.evaluate(run, samples=IS_SAMPLES)  # as `condgen evaluate` does: data, bound, IS, label figures
    is_seconds = time.perf_counter() - start
    cond = conditional_accuracy(run, classifier)
    recorded = config.model_dump(mode="json")
    recorded["data"]["data_dir"] = None  # machine-specific; given with --data-dir
    target = TARGETS[name]
    result = {
        "config": recorded,
        "cli": cli,
        "run_dir": str(run_dir),
        "epochs": final["epoch"],
        "final_test_neg_elbo": final["test_neg_elbo"],
        "final_test_recon_nll": final["test_recon_nll"],
        "final_test_kl": final["test_kl"],
        "best_test_neg_elbo": min(m["test_neg_elbo"] for m in metrics),
        "test_is_nll": figures["test_is_nll"],
        "is_samples": IS_SAMPLES,
        "is_seconds": is_seconds,
        "evaluate": figures,
        "final_train_loss": final["train_loss"],
        "test_neg_elbo_per_epoch": [round(m["test_neg_elbo"], 3) for m in metrics],
        "mean_train_seconds_per_epoch": sum(train_seconds) / len(train_seconds),
        "total_train_seconds": sum(train_seconds),
        "total_wall_seconds": wall,
        "parameters": sum(p.numel() for p in run.model.parameters()),
        "conditional_accuracy": cond,
        "target_test_neg_elbo": target,
        "meets_elbo_target": final["test_neg_elbo"] <= target,
        "meets_accuracy_target": cond["mean"] >= ACCURACY_TARGET,
    }
    print(
        f"== {name}: test -ELBO {result['final_test_neg_elbo']:.2f} nats (target <= {target}), "
        f"IS-NLL (S={IS_SAMPLES}) {result['test_is_nll']:.2f} nats in {is_seconds:.0f} s, "
        f"{result['mean_train_seconds_per_epoch']:.1f} s/epoch, wall {wall / 60:.1f} min, "
        f"conditional accuracy {cond['mean']:.4f}",
        flush=True,
    )
    return result


def machine_info() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu": _cpu_name(),
        "device": "cpu" if not torch.cuda.is_available() else torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "condgen": condgen.__version__,
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def write_markdown(results: dict[str, Any], path: Path) -> None:
    m, c = results["machine"], results["configs"]
    lines = [
        "# MNIST label-conditioned CVAE: benchmark results",
        "",
        f"Written by `benchmark.py` on {results['date']} ({m['cpu_count']} CPU cores, {m['cpu']}, "
        f"torch {m['torch']}, {m['torch_threads']} threads). Test negative ELBO is in nats per image "
        "(Bernoulli likelihood on [0, 1] pixels, one z sample per test image); IS-NLL is the importance-sampled "
        f"-log p(x|c) with S = {IS_SAMPLES} samples of q(z|x,c) per test image (`condgen evaluate --samples "
        f"{IS_SAMPLES}`), with the seconds that whole evaluation took on all 10,000 test images (reading the "
        "data, the bound, the IS estimate and the label's ELBO accuracy); conditional accuracy is the "
        f"fraction of {SAMPLES_PER_LABEL} samples per label that the CNN classifier "
        f"(test accuracy {pct(results['classifier']['test_accuracy'])}) assigns to the label asked for.",
        "",
        "| config | model | test −ELBO (nats) | target | IS-NLL (nats) | evaluate time | s/epoch | wall "
        "| cond. accuracy (mean / min) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in c.items():
        mc, tc = r["config"]["model"], r["config"]["train"]
        model = (
            f"latent {mc['latent_dim']}, hidden {mc['hidden']} {mc['activation']}, {mc['prior']} prior, "
            f"{tc['optimizer']} {tc['lr']:g} {tc['lr_schedule']}, batch {tc['batch_size']}, {r['epochs']} epochs"
        )
        ok = "✓" if r["meets_elbo_target"] else "✗"
        acc = r["conditional_accuracy"]
        lines.append(
            f"| {name} | {model} | **{r['final_test_neg_elbo']:.2f}** | ≤ {r['target_test_neg_elbo']} {ok} | "
            f"**{r['test_is_nll']:.2f}** | {r['is_seconds']:.0f} s | "
            f"{r['mean_train_seconds_per_epoch']:.1f} | {r['total_wall_seconds'] / 60:.1f} min | "
            f"{pct(acc['mean'])} / {pct(acc['min'])} |"
        )
    lines += ["", "Conditional accuracy per label:", ""]
    names = list(c)
    lines += ["| label | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for k in range(10):
        lines.append(f"| {k} | " + " | ".join(pct(c[n]["conditional_accuracy"]["per_label"][str(k)]) for n in names) + " |")
    lines += ["", "Commands (DIR holds the four MNIST .gz files):", ""]
    for name, r in c.items():
        lines.append(f"- {name}: `{r['cli']}`")
    lines += ["", "Reproduce: `python examples/mnist_label/benchmark.py --data-dir DIR` (see README.md).", ""]
    path.write_text("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark the seed, the recommended and the conditional-prior "
                                     "MNIST label CVAE.")
    parser.add_argument("--data-dir", default=os.environ.get("CONDGEN_DATA_DIR"),
                        help="directory of the four MNIST IDX files (default $CONDGEN_DATA_DIR)")
    parser.add_argument("--work", default=None,
                        help="directory for the run dirs (must not hold them yet; default: a new temporary directory)")
    parser.add_argument("--only", choices=list(configs()), help="benchmark one configuration only")
    parser.add_argument("--epochs", type=int, help="override the number of epochs (quick smoke check)")
    parser.add_argument("--classifier-cache", default=None, help=f"classifier weights (default {default_cache_dir()})")
    parser.add_argument("--results-dir", default=None,
                        help=f"where to write results.json and RESULTS.md (default {HERE} for a full run, "
                        "the work directory with --epochs or --only)")
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("give --data-dir DIR (the four MNIST .gz files) or set CONDGEN_DATA_DIR")
    args.work = args.work or tempfile.mkdtemp(prefix="condgen-mnist-label-")
    Path(args.work).mkdir(parents=True, exist_ok=True)
    partial = args.epochs is not None or args.only is not None
    results_dir = Path(args.results_dir) if args.results_dir else (Path(args.work) if partial else HERE)

    classifier, classifier_accuracy = load_or_train_classifier(args.data_dir, args.classifier_cache)
    print(f"classifier test accuracy {classifier_accuracy:.4f}", flush=True)

    started = time.perf_counter()
    out = {}
    for name, (raw, cli) in configs().items():
        if args.only and name != args.only:
            continue
        out[name] = benchmark_one(name, raw, cli, args, classifier)
    results = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "classifier": {
            "test_accuracy": classifier_accuracy,
            "architecture": "conv3x3(16)-pool-conv3x3(32)-pool-fc128-fc10, ReLU, dropout 0.25; Adam 1e-3 linear decay, batch 64",
            "epochs": CLASSIFIER_EPOCHS,
        },
        "samples_per_label": SAMPLES_PER_LABEL,
        "sample_seed": f"{SAMPLE_SEED} + label",
        "targets": {"test_neg_elbo": TARGETS, "conditional_accuracy": ACCURACY_TARGET},
        "benchmark_wall_seconds": time.perf_counter() - started,
        "configs": out,
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results, results_dir / "RESULTS.md")
    print(f"wrote {results_dir / 'results.json'} and {results_dir / 'RESULTS.md'}; run dirs in {args.work}")
    ok = all(r["meets_elbo_target"] and r["meets_accuracy_target"] for r in out.values())
    return 0 if ok or partial else 1


if __name__ == "__main__":
    sys.exit(main())
