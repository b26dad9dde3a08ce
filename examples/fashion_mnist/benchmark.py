"""Fashion-MNIST with the label conditioner by class name: test -ELBO, IS-NLL (S = 100) and, per class, the
share of samples that an independently trained Fashion-MNIST classifier reads as the requested class.

Two runs of ``config.json`` (latent 16, [512, 512] GELU, Adam 2e-3 cosine, batch 100, 8 epochs): the standard
prior, and the conditional prior (``--prior conditional``). The classifier is the MNIST example's small CNN
(``examples/mnist_label/classifier.py``), trained here on Fashion-MNIST's training split with the same recipe
and cached. Figures go to ``results.json`` and ``RESULTS.md``, the standard-prior run's ``samples.png`` (one
row per class name) beside them::

    python examples/fashion_mnist/benchmark.py [--data-dir DIR] [--work runs/fashion] [--epochs 8]

Fashion-MNIST comes from Debian's ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``) unless
``--data-dir`` names its four files.
"""

from __future__ import annotations

import argparse
import json
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
sys.path.insert(0, str(HERE.parent / "mnist_label"))
from classifier import accuracy, classify, default_cache_dir, train_classifier  # noqa: E402

SAMPLES_PER_CLASS = 1000
IS_SAMPLES = 100
SAMPLE_SEED = 2024
CLASSIFIER_VERSION = 1


def fashion_classifier(data_dir: Path, log=print) -> tuple[torch.nn.Module, float]:
    """The MNIST example's CNN trained on Fashion-MNIST (cached), and its test accuracy."""
    from safetensors.torch import load_file, save_file

    from classifier import DigitCNN

    data = condgen.read_idx_dir(data_dir, name="Fashion-MNIST", classes=CLASSES)  # floats in [0, 1]
    path = default_cache_dir() / f"fashion_cnn_v{CLASSIFIER_VERSION}.safetensors"
    model = DigitCNN()
    if path.is_file():
        model.load_state_dict(load_file(str(path)))
        log(f"loaded classifier from {path}")
    else:
        model = train_classifier(data.train, log=log)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    model.eval()
    return model, accuracy(model, data.test["image"], data.test["label"])


@torch.no_grad()
def per_class_accuracy(run: condgen.Run, classifier: torch.nn.Module) -> dict[str, float]:
    """For each class name, the share of its samples the classifier reads as that class."""
    shares = {}
    for k, name in enumerate(CLASSES):
        images = run.sample({"label": name}, num=SAMPLES_PER_CLASS, seed=SAMPLE_SEED + k).cpu()
        shares[name] = float((classify(classifier, images) == k).float().mean())
    return shares


def benchmark_one(name: str, raw: dict[str, Any], data_dir: Path, work: Path, classifier) -> dict[str, Any]:
    config = condgen.RunConfig.parse({**raw, "data": {**raw["data"], "data_dir": str(data_dir)}})
    run_dir = work / name
    shutil.rmtree(run_dir, ignore_errors=True)
    start = time.perf_counter()
    run = condgen.train(config, run_dir, progress=False, log=lambda s: print(f"[{name}] {s}", flush=True))
    wall = time.perf_counter() - start
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    figures = condgen.evaluate(run, samples=IS_SAMPLES)
    shares = per_class_accuracy(run, classifier)
    result = {
        "epochs": len(metrics), "test_neg_elbo": figures["test_neg_elbo"], "test_is_nll": figures["test_is_nll"],
        "label_elbo_accuracy": figures.get("label_elbo_accuracy"),
        "seconds_per_epoch": sum(m["train_seconds"] for m in metrics) / len(metrics), "wall_seconds": wall,
        "class_accuracy": shares, "mean_class_accuracy": sum(shares.values()) / len(shares),
    }
    print(f"== {name}: test -ELBO {result['test_neg_elbo']:.2f}, IS-NLL {result['test_is_nll']:.2f}, samples read "
          f"as their class {result['mean_class_accuracy']:.1%}", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST's four files (default: where condgen looks)")
    parser.add_argument("--work", default="runs/fashion-benchmark", help="where the runs are trained")
    parser.add_argument("--epochs", type=int, default=None, help="override config.json's epochs")
    args = parser.parse_args()
    data_dir = locate_fashion_mnist(args.data_dir)
    classifier, classifier_accuracy = fashion_classifier(data_dir)
    print(f"classifier test accuracy {classifier_accuracy:.2%}", flush=True)
    raw = json.loads((HERE / "config.json").read_text())
    if args.epochs:
        raw["train"]["epochs"] = args.epochs
    conditional = json.loads(json.dumps(raw))
    conditional["model"]["prior"] = "conditional"
    work = Path(args.work)
    results = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.processor() or platform.machine()}, "
               f"{torch.get_num_threads()} threads, torch {torch.__version__}", "classifier_test_accuracy":
               classifier_accuracy, "samples_per_class": SAMPLES_PER_CLASS, "is_samples": IS_SAMPLES,
               "runs": {"standard prior": benchmark_one("standard", raw, data_dir, work, classifier),
                        "conditional prior": benchmark_one("conditional", conditional, data_dir, work, classifier)}}
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    shutil.copy(work / "standard" / "samples.png", HERE / "samples.png")
    runs = results["runs"]
    lines = ["# Fashion-MNIST by class name", "",
             f"Recorded by `python examples/fashion_mnist/benchmark.py` on {results['date']} ({results['machine']}): "
             f"`config.json` ({runs['standard prior']['epochs']} epochs), with the standard and the conditional prior. "
             f"The classifier (the MNIST example's CNN trained on Fashion-MNIST) reads "
             f"{classifier_accuracy:.1%} of the test images right; each class is asked for by its name, "
             f"{SAMPLES_PER_CLASS} samples each.", "",
             "| | standard prior | conditional prior |", "|---|---:|---:|",
             *(f"| {label} | {fmt(runs['standard prior'][key])} | {fmt(runs['conditional prior'][key])} |"
               for label, key in (("test −ELBO (nats)", "test_neg_elbo"), (f"test IS-NLL, S = {IS_SAMPLES} (nats)",
                                  "test_is_nll"), ("samples read as their class", "mean_class_accuracy"),
                                  ("s/epoch", "seconds_per_epoch"))),
             *(f"| `{name}` | {runs['standard prior']['class_accuracy'][name]:.1%} | "
               f"{runs['conditional prior']['class_accuracy'][name]:.1%} |" for name in CLASSES), ""]
    (HERE / "RESULTS.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


def fmt(value: float) -> str:
    return f"{value:.1%}" if value < 1 else f"{value:.2f}"


if __name__ == "__main__":
    sys.exit(main())
