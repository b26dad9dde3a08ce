"""Digits of a requested label, ink and slant: a CVAE conditioned on ``label`` and ``regression`` at once.

Trains, through ``condgen.train``, one CVAE conditioned on the MNIST label and on two attributes
computed from each image, ``ink`` (mean pixel value) and ``slant`` (mu11 / mu02), with condition
dropout so that either condition may be left out when sampling. Then, over the 10,000 test
images, it asks for each test digit's own label, ink and slant, draws one sample for each, and
measures:

- how well the samples' measured ink and slant follow the requested values (Pearson r, target >= 0.9 each);
- how often the label example's classifier reads the requested label (target >= 95 %);
- with the label left out (only ink and slant given), how the samples spread over the ten digits.

It writes ``attributes.png`` (for a few labels, rows sweeping ink from thin to thick and rows
sweeping slant from left to right), ``results.json`` and ``RESULTS.md`` beside this file::

    python examples/mnist_attributes/benchmark.py --data-dir DIR                     # the recorded figures
    python examples/mnist_attributes/benchmark.py --data-dir DIR --epochs 1 --work /tmp/x   # a smoke check
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
sys.path.insert(0, str(HERE.parent / "mnist_label"))
from classifier import classify, load_or_train_classifier  # noqa: E402

CONFIG: dict[str, Any] = {
    "conditioners": [{"name": "label"}, {"name": "regression", "config": {"targets": ["ink", "slant"]}}],
    "model": {"latent_dim": 16, "hidden": [512, 512], "activation": "gelu", "prior": "conditional"},
    "train": {"batch_size": 100, "lr": 2e-3, "lr_schedule": "cosine", "epochs": 20, "seed": 0,
              "condition_dropout": 0.1},
}
CLI = ("condgen train --conditioner label --conditioner 'regression:targets=[\"ink\",\"slant\"]' --latent-dim 16 "
       "--hidden 512 512 --activation gelu --prior conditional --batch-size 100 --lr 2e-3 --lr-schedule cosine --epochs 20 "
       "--condition-dropout 0.1 --data-dir DIR --out RUN_DIR")
TARGET_R = 0.9
TARGET_ACCURACY = 0.95
PICTURE_LABELS = (0, 2, 4, 7)
SWEEP_STEPS = 8


@torch.no_grad()
def follow(run: condgen.Run, test: dict[str, torch.Tensor], classifier, with_label: bool = True) -> dict[str, Any]:
    """Sample once per test item with its own conditions (the label left out unless ``with_label``);
    the correlation of the samples' ink and slant with the requested ones, and what the classifier reads."""
    regression = run.conditioners["regression"]
    asked, measured, read = [], [], []
    for start, batch in condgen.iter_batches(test, 1000):
        conds = run.conditions_from_batch(batch)
        if not with_label:
            del conds["label"]
        samples = run.sample(conds, num=batch["label"].shape[0], seed=start).cpu()
        asked.append(conds["regression"].cpu())
        measured.append(regression.target_values({"image": samples}))
        read.append(classify(classifier, samples))
    a, m, r = torch.cat(asked), torch.cat(measured), torch.cat(read)
    out: dict[str, Any] = {f"{t}_r": float(torch.corrcoef(torch.stack([a[:, j], m[:, j]]))[0, 1])
                           for j, t in enumerate(regression.targets)}
    if with_label:
        out["label_accuracy"] = float((r == test["label"].cpu()).float().mean())
    else:
        out["label_shares"] = (torch.bincount(r, minlength=10).float() / r.numel()).tolist()
    return out


@torch.no_grad()
def picture(run: condgen.Run, test: dict[str, torch.Tensor], path: Path) -> None:
    """For each of a few labels, a row sweeping ink (slant at its median) and a row sweeping slant,
    each row drawn with one noise draw."""
    regression = run.conditioners["regression"]
    sweeps = regression.sweeps(test, SWEEP_STEPS).reshape(len(regression.targets), SWEEP_STEPS, -1)
    conds, labels = [], []
    for label in PICTURE_LABELS:
        for j, target in enumerate(regression.targets):
            conds.append((label, sweeps[j]))
            labels.append(f"label {label}, {target} {float(sweeps[j, 0, j]):.2f} .. {float(sweeps[j, -1, j]):.2f}")
    # the same noise along a row (seed = row), so a row changes only by what the sweep asks for
    images = torch.cat([run.sample({"label": label, "regression": sweep[k]}, num=1, seed=row)
                        for row, (label, sweep) in enumerate(conds) for k in range(SWEEP_STEPS)])
    condgen.save_grid(images, path, per_row=SWEEP_STEPS, row_labels=labels)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("CONDGEN_DATA_DIR"))
    parser.add_argument("--work", default=None, help="directory for the run (default: a new temporary one); a "
                        "run already there is resumed or, when complete, re-scored without training")
    parser.add_argument("--epochs", type=int, default=None, help="default 20")
    parser.add_argument("--results-dir", default=None, help="default: beside this file (--work for --epochs)")
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("give --data-dir DIR (the four MNIST .gz files) or set CONDGEN_DATA_DIR")
    work = Path(args.work or tempfile.mkdtemp(prefix="condgen-mnist-attributes-"))
    results_dir = Path(args.results_dir) if args.results_dir else (work if args.epochs else HERE)
    config = json.loads(json.dumps(CONFIG))
    config["data"] = {"data_dir": args.data_dir}
    if args.epochs:
        config["train"]["epochs"] = args.epochs
    run_dir = work / "run"
    start = time.perf_counter()
    resume = (run_dir / "checkpoint.safetensors").exists()
    run = condgen.train(condgen.RunConfig.parse(config), run_dir, resume=resume, progress=False,
                        log=lambda s: print(s, flush=True))
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    train_seconds = sum(m["train_seconds"] + m["eval_seconds"] for m in metrics)
    print(f"trained in {time.perf_counter() - start:.0f} s", flush=True)

    from condgen.data.mnist import locate_mnist, read_mnist_dir

    test = read_mnist_dir(locate_mnist(args.data_dir)).test
    classifier, classifier_accuracy = load_or_train_classifier(args.data_dir, None)
    given = follow(run, test, classifier)
    no_label = follow(run, test, classifier, with_label=False)
    print(f"ink r {given['ink_r']:.3f}, slant r {given['slant_r']:.3f}, label accuracy {given['label_accuracy']:.3f}; "
          f"label left out: ink r {no_label['ink_r']:.3f}, slant r {no_label['slant_r']:.3f}", flush=True)
    results_dir.mkdir(parents=True, exist_ok=True)
    picture(run, test, results_dir / "attributes.png")
    results = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu_count": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "platform": platform.platform()},
        "config": CONFIG, "cli": CLI, "epochs": run.config.train.epochs, "train_seconds": train_seconds,
        "test_neg_elbo": metrics[-1]["test_neg_elbo"], "given": given, "label_left_out": no_label,
        "classifier_test_accuracy": classifier_accuracy,
        "meets_targets": given["ink_r"] >= TARGET_R and given["slant_r"] >= TARGET_R
        and given["label_accuracy"] >= TARGET_ACCURACY,
    }
    (results_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results, results_dir / "RESULTS.md")
    print(f"wrote results.json, RESULTS.md and attributes.png to {results_dir}")
    return 0


def write_markdown(r: dict[str, Any], path: Path) -> None:
    g, n = r["given"], r["label_left_out"]
    shares = ", ".join(f"{d}: {100 * s:.0f} %" for d, s in enumerate(n["label_shares"]))
    lines = [
        "# MNIST digits by label, ink and slant: benchmark results", "",
        f"Written by `benchmark.py` on {r['date']} ({r['machine']['cpu_count']} CPU cores, torch "
        f"{r['machine']['torch']}): `{r['cli']}`, trained in {r['train_seconds'] / 60:.1f} min; test −ELBO "
        f"{r['test_neg_elbo']:.2f} nats. One sample for each of the 10,000 test digits, asking for its own label, "
        "ink and slant.", "",
        "| measure | target | result |", "|---|---|---|",
        f"| Pearson r, requested vs measured ink | ≥ {TARGET_R} | **{g['ink_r']:.3f}** |",
        f"| Pearson r, requested vs measured slant | ≥ {TARGET_R} | **{g['slant_r']:.3f}** |",
        f"| classifier reads the requested label | ≥ {100 * TARGET_ACCURACY:.0f} % | **{100 * g['label_accuracy']:.1f} %** |",
        "", f"With the label left out (condition dropout; only ink and slant given): ink r {n['ink_r']:.3f}, "
        f"slant r {n['slant_r']:.3f}, and the classifier reads the samples as {shares}.", "",
    ]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
