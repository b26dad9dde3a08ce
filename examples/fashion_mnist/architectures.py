"""Fashion-MNIST, class-conditional: the MLP against the conv net at equal training time, with the discretised
logistic likelihood (bits per dimension) and the share of samples an independent classifier reads as the
requested class.

Both runs take ``config.json``'s recipe (latent 16, GELU, cosine schedule, batch 100, the label conditioner
one-hot) at Adam 1e-3 (:data:`LR`) with the conditional prior and ``--likelihood logistic`` on the 8-bit images. The MLP has hidden
[512, 512]; the conv net ``--arch conv --channels 32 64`` and one dense layer of 512. Each gets about
``--minutes`` of training: a one-epoch run on a tenth of the training split times each architecture first,
and its epochs are the budget over that time. Figures: the test -ELBO and IS-NLL (S = 100 importance
samples on the first ``--is-items`` test images) in nats and bits per dimension, seconds per epoch, and per
class the share of 1,000 samples the classifier (the MNIST example's CNN trained on Fashion-MNIST, as
``benchmark.py`` does) reads as the requested class. Written to ``architectures.json`` and
``ARCHITECTURES.md``, with each run's ``samples.png`` as ``samples-mlp.png`` and ``samples-conv.png`` (with
``--objective hybrid``: ``architectures-hybrid.json``, ``ARCHITECTURES-hybrid.md``, ``samples-hybrid-mlp.png``, ...).
``--only conv`` re-runs one architecture and keeps the other's figures from ``architectures.json`` (each run
records its date). ``--objective hybrid`` trains both with Sohn et al.'s CVAE + GSNN objective instead of the
ELBO::

    python examples/fashion_mnist/architectures.py [--data-dir DIR] [--work runs/fashion-arch] [--minutes 10] \
        [--objective elbo|hybrid]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

import condgen
from condgen.data.fashion import CLASSES, locate_fashion_mnist

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from benchmark import fashion_classifier, per_class_accuracy  # noqa: E402

IS_SAMPLES = 100
#: What each objective adds to the names of the files written (the ELBO's are the main record).
SUFFIX = {"elbo": "", "hybrid": "-hybrid"}
#: How ARCHITECTURES.md names each objective.
OBJECTIVES = {"elbo": "the ELBO", "hybrid": "the hybrid objective (0.5 ELBO + 0.5 GSNN)"}
ARCHITECTURES = {
    "mlp": {"arch": "mlp", "hidden": [512, 512]},
    "conv": {"arch": "conv", "channels": [32, 64], "hidden": [512]},
}


#: Adam's learning rate. config.json's 2e-3 made the MLP's logistic loss blow up (to inf at epoch 9 in one run,
#: epoch 24 in another): the logistic's gradients are up to 1 / scale (2,000) times a Bernoulli's.
LR = 1e-3


def config_of(arch: str, data_dir: Path, epochs: int, objective: str,
              train_limit: int | None = None) -> condgen.RunConfig:
    raw = json.loads((HERE / "config.json").read_text())
    raw["model"] = {**raw["model"], **ARCHITECTURES[arch], "prior": "conditional", "likelihood": "logistic"}
    raw["data"] = {**raw["data"], "data_dir": str(data_dir), "train_limit": train_limit}
    raw["train"] = {**raw["train"], "epochs": epochs, "lr": LR, "objective": objective}
    return condgen.RunConfig.parse(raw)


def seconds_per_epoch(arch: str, data_dir: Path, work: Path, objective: str) -> float:
    """One epoch on a tenth of the training split, times ten."""
    run_dir = work / f"calibrate-{arch}"
    shutil.rmtree(run_dir, ignore_errors=True)
    condgen.train(config_of(arch, data_dir, 1, objective, train_limit=6000), run_dir, progress=False,
                  pictures=False, log=lambda s: None)
    row = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    return row["train_seconds"] * 10


def run_one(arch: str, epochs: int, data_dir: Path, work: Path, classifier, is_items: int,
            objective: str) -> dict[str, Any]:
    run_dir = work / arch
    shutil.rmtree(run_dir, ignore_errors=True)
    run = condgen.train(config_of(arch, data_dir, epochs, objective), run_dir, progress=False,
                        log=lambda s: print(f"[{arch}] {s}", flush=True))
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    test = condgen.read_idx_dir(data_dir, name="Fashion-MNIST", classes=CLASSES, levels=True).test
    figures = condgen.evaluate(run, {k: v[:is_items] for k, v in test.items()}, samples=IS_SAMPLES)
    shares = per_class_accuracy(run, classifier)
    seconds = sum(m["train_seconds"] for m in metrics)
    result = {"date": time.strftime("%Y-%m-%d"), "epochs": epochs, "train_seconds": seconds,
              "seconds_per_epoch": seconds / len(metrics),
              "test_neg_elbo_all": metrics[-1]["test_neg_elbo"],
              "test_neg_elbo": figures["test_neg_elbo"], "test_is_nll": figures["test_is_nll"],
              "bits_per_dim": figures["test_is_nll_bits_per_dim"],
              "neg_elbo_bits_per_dim": figures["test_neg_elbo"] / (784 * math.log(2)),
              "class_accuracy": shares, "mean_class_accuracy": sum(shares.values()) / len(shares),
              "parameters": sum(p.numel() for p in run.model.parameters())}
    shutil.copy(run_dir / "samples.png", HERE / f"samples{SUFFIX[objective]}-{arch}.png")
    print(f"== {arch}: {epochs} epochs, IS-NLL {result['bits_per_dim']:.4f} bits/dim, samples read as their class "
          f"{result['mean_class_accuracy']:.1%}", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST's four files (default: where condgen looks)")
    parser.add_argument("--work", default="runs/fashion-arch", help="where the runs are trained")
    parser.add_argument("--minutes", type=float, default=10.0, help="training time of each architecture")
    parser.add_argument("--is-items", type=int, default=1000, help="test images the IS-NLL is estimated on")
    parser.add_argument("--only", choices=sorted(ARCHITECTURES), default=None, help="re-run this architecture "
                        "alone; the other's figures are kept from architectures.json")
    parser.add_argument("--objective", choices=["elbo", "hybrid"], default="elbo", help="the training objective "
                        "of both: elbo or hybrid (Sohn et al.'s CVAE + GSNN, GSNN weight 0.5)")
    args = parser.parse_args()
    data_dir = locate_fashion_mnist(args.data_dir)
    work = Path(args.work)
    classifier, classifier_accuracy = fashion_classifier(data_dir)
    kept: dict[str, Any] = {}
    record = HERE / f"architectures{SUFFIX[args.objective]}.json"
    if args.only:
        recorded = json.loads(record.read_text())
        given = (recorded["minutes"], recorded["is_items"], recorded.get("objective", "elbo"))
        if given != (args.minutes, args.is_items, args.objective):
            raise SystemExit(f"{record.name} was recorded with --minutes {given[0]:g} --is-items {given[1]} "
                             f"--objective {given[2]}; --only keeps its other run, so give the same")
        if recorded["classifier_test_accuracy"] != classifier_accuracy:
            raise SystemExit(f"{record.name}'s runs were scored by a classifier with test accuracy "
                             f"{recorded['classifier_test_accuracy']:.4f}, this one has {classifier_accuracy:.4f}: "
                             "the kept run's shares would not compare; run both (without --only)")
        kept = {a: {"date": recorded["date"], **r} for a, r in recorded["runs"].items() if a != args.only}
    todo = [a for a in ARCHITECTURES if a not in kept]
    per_epoch = {arch: seconds_per_epoch(arch, data_dir, work, args.objective) for arch in todo}
    epochs = {arch: max(1, round(args.minutes * 60 / s)) for arch, s in per_epoch.items()}
    print(f"classifier {classifier_accuracy:.2%}; estimated s/epoch {per_epoch}; epochs {epochs}", flush=True)
    runs = {arch: kept.get(arch) or run_one(arch, epochs[arch], data_dir, work, classifier, args.is_items,
                                            args.objective) for arch in ARCHITECTURES}
    results = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.processor() or platform.machine()}, "
               f"{torch.get_num_threads()} threads, torch {torch.__version__}", "minutes": args.minutes,
               "objective": args.objective,
               "classifier_test_accuracy": classifier_accuracy, "is_samples": IS_SAMPLES, "is_items": args.is_items,
               "runs": runs}
    record.write_text(json.dumps(results, indent=2) + "\n")
    rows = (("epochs in the budget", "epochs", "{:d}"), ("training seconds", "train_seconds", "{:.0f}"),
            ("s/epoch", "seconds_per_epoch", "{:.1f}"), ("weights", "parameters", "{:,}"),
            ("test −ELBO, all 10,000 (nats)", "test_neg_elbo_all", "{:.2f}"),
            (f"test IS-NLL, S = {IS_SAMPLES}, first {args.is_items:,} (nats)", "test_is_nll", "{:.2f}"),
            ("test IS-NLL (bits/dim)", "bits_per_dim", "{:.4f}"),
            ("samples read as their class", "mean_class_accuracy", "{:.1%}"))
    lines = ["# Fashion-MNIST: the MLP and the conv net at equal training time", "",
             f"Recorded by `python examples/fashion_mnist/architectures.py --minutes {args.minutes:g} --objective "
             f"{args.objective}` on "
             f"{results['date']} ({results['machine']}; the MLP run of {runs['mlp'].get('date', results['date'])}, "
             f"the conv run of {runs['conv'].get('date', results['date'])}). Both: latent 16, GELU, the conditional "
             "prior, the label conditioner one-hot, the discretised logistic on the 8-bit levels, "
             f"{OBJECTIVES[args.objective]}, Adam 1e-3 cosine, "
             "batch 100, seed 0. MLP: hidden [512, 512]. Conv: channels [32, 64] (3x3 stride-2 convolutions; 4x4 "
             f"transposed ones back, each stage's maps scaled and shifted by the label's embedding, FiLM), a dense "
             f"layer of 512. The classifier reads {classifier_accuracy:.1%} of the "
             "test images right; 1,000 samples a class, asked for by name.", "",
             "| | MLP | conv |", "|---|---:|---:|",
             *(f"| {label} | {fmt.format(runs['mlp'][key])} | {fmt.format(runs['conv'][key])} |"
               for label, key, fmt in rows),
             *(f"| `{name}` | {runs['mlp']['class_accuracy'][name]:.1%} | {runs['conv']['class_accuracy'][name]:.1%} |"
               for name in CLASSES), ""]
    (HERE / f"ARCHITECTURES{SUFFIX[args.objective]}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
