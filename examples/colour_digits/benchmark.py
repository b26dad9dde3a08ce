"""Colour digits: a conv CVAE conditioned on the digit and on its two colours (label + regression): benchmark.

The data (``make_data.py``): every MNIST digit at 32x32 in a random pure colour (hue ``fg_hue``) on a
random darker background (hue ``bg_hue``, at least a quarter turn away), both hues in [0, 0.8). Trains,
through ``condgen.train``, one CVAE with ``model.arch: conv``, a mixture of 3 discretised logistics on the
8-bit RGB levels (``--likelihood logistic`` for one), the conditional prior, Sohn et al.'s hybrid objective
(``--objective elbo`` for the ELBO alone), a ``label`` conditioner on the digit and a ``regression``
conditioner on the data fields ``fg_hue`` and ``bg_hue``. Then, asking for each
test item's own digit and hues, one sample each:

- measures the digit's and the background's hue in each sample (``make_data.measure``: the background is
  the median colour of the 3-pixel frame, the digit the colour where the ray from it through the mean of the
  pixels farthest from it leaves the RGB cube; the core's own hue is reported too) and
  reports the Pearson correlation of requested against measured hue for each (target >= 0.9);
- turns each sample into an MNIST digit (each pixel's share of the way from the background colour to the
  digit colour, the 2-pixel padding cropped off) and has the label example's classifier read it (target
  >= 95 %);
- reports the test -ELBO and the IS-NLL (S = 100) in bits per dimension;
- draws ``sweep.png``: for a few digits, rows sweeping the digit's hue and a row sweeping the background's.

Figures go to ``results.json`` and ``RESULTS.md`` (and ``sweep.png``) beside this file::

    python examples/colour_digits/benchmark.py --data-dir DIR             # the recorded figures (5 epochs)
    python examples/colour_digits/benchmark.py --data-dir DIR --smoke     # a quick check, into a temporary dir
"""

from __future__ import annotations

import argparse
import json
import math
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
sys.path.insert(0, str(HERE.parent / "mnist_label"))
from classifier import classify, load_or_train_classifier  # noqa: E402
from make_data import HUE_RANGE, TARGETS, make_npz, measure  # noqa: E402

TARGET_R = 0.9
#: What is read from each sample: the two hues, and the digit core's own hue (before extrapolating to the cube).
MEASURED = (*TARGETS, "fg_core_hue")
TARGET_ACCURACY = 0.95
IS_SAMPLES = 100
PICTURE_DIGITS = (0, 2, 3, 7)
SWEEP_STEPS = 10
#: sweep.png's rows for each digit: (what is swept, its first and last hue, the other hue held fixed). A
#: digit hue must stay at least a quarter turn from the background's, so no one background colour allows the
#: digit's whole range [0, 0.8): two rows cover it, on a red and on a violet background.
SWEEPS = (("fg_hue", 0.25, 0.75, 0.0), ("fg_hue", 0.0, 0.45, 0.72), ("bg_hue", 0.25, 0.75, 0.0))


def config_of(args: argparse.Namespace, data: Path) -> dict[str, Any]:
    """The run's config (a plain dict, as stored in results.json) from the command line."""
    return {
        "conditioners": [{"name": "label"}, {"name": "regression", "config": {"targets": list(TARGETS)}}],
        "model": {"arch": "conv", "channels": args.channels, "hidden": args.hidden, "latent_dim": args.latent_dim,
                  "activation": "gelu", "likelihood": args.likelihood, "prior": args.prior},
        "data": {"dataset": "npz", "data_dir": str(data), "train_limit": args.train_limit,
                 "test_limit": args.test_limit},
        "train": {"epochs": args.epochs, "batch_size": 100, "lr": args.lr, "lr_schedule": "cosine",
                  "seed": args.seed, "objective": args.objective, "gsnn_weight": args.gsnn_weight},
    }


def command_line(config: dict[str, Any]) -> str:
    """The same training as a ``condgen train`` command."""
    m, t = config["model"], config["train"]
    d = config["data"]
    limit = (f" --train-limit {d['train_limit']}" if d["train_limit"] else "") + (
        f" --test-limit {d['test_limit']}" if d["test_limit"] else "")
    if t.get("objective", "elbo") == "hybrid":
        limit += f" --objective hybrid --gsnn-weight {t['gsnn_weight'] or 0.5:g}"
    return ("condgen train --dataset npz --data-dir COLOUR.npz --conditioner label "
            f"--conditioner 'regression:targets=[\"{TARGETS[0]}\",\"{TARGETS[1]}\"]' --arch conv "
            f"--channels {' '.join(map(str, m['channels']))} --hidden {' '.join(map(str, m['hidden']))} "
            f"--latent-dim {m['latent_dim']} --activation gelu --likelihood {m['likelihood']} --prior {m['prior']} "
            f"--batch-size {t['batch_size']} --lr {t['lr']:g} --lr-schedule cosine --epochs {t['epochs']} "
            f"--seed {t['seed']}{limit} --no-pictures --out RUN_DIR")


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.float(), b.float()]))[0, 1])


def hue_figures(asked: dict[str, torch.Tensor], seen: dict[str, torch.Tensor]) -> dict[str, float]:
    """For each hue: Pearson r of requested against measured, and the mean absolute error in degrees; also for the
    hue of the digit's core colour, unextrapolated (``make_data.measure``), against the requested digit hue."""
    out = {}
    for measured, wanted in (("fg_hue", "fg_hue"), ("bg_hue", "bg_hue"), ("fg_core_hue", "fg_hue")):
        out[f"{measured}_r"] = pearson(asked[wanted], seen[measured])
        out[f"{measured}_mae_degrees"] = float((asked[wanted] - seen[measured]).abs().mean() * 360)
    return out


@torch.no_grad()
def follow(run: condgen.Run, test: dict[str, torch.Tensor], classifier, items: int) -> dict[str, Any]:
    """One sample for each of the first ``items`` test items, with its own digit and hues: how the measured
    hues follow the requested ones and how often the classifier reads the requested digit. The same measures
    on the test images themselves, the ceiling of the method, under ``"data"``."""
    seen: dict[str, list[torch.Tensor]] = {t: [] for t in MEASURED}
    read = []
    for start, batch in condgen.iter_batches(test, 1000, limit=items):
        conds = run.conditions_from_batch(batch)
        samples = run.sample(conds, num=batch["label"].shape[0], seed=start).cpu()
        got = measure(samples)
        for t in MEASURED:
            seen[t].append(got[t])
        read.append(classify(classifier, got["grey"]))
    asked = {t: test[t][:items].float() for t in TARGETS}
    labels = test["label"][:items]
    digits = torch.cat(read)
    out: dict[str, Any] = hue_figures(asked, {t: torch.cat(v) for t, v in seen.items()})
    out["digit_accuracy"] = float((digits == labels).float().mean())
    out["digit_accuracy_by_label"] = {d: float((digits[labels == d] == d).float().mean()) for d in range(10)}
    data = measure(test["image"][:items])
    out["data"] = {**hue_figures(asked, data),
                   "digit_accuracy": float((classify(classifier, data["grey"]) == labels).float().mean())}
    return out


@torch.no_grad()
def sweep_picture(run: condgen.Run, path: Path) -> dict[str, float]:
    """sweep.png: for each of PICTURE_DIGITS, the rows of SWEEPS, each drawn with one noise draw (seed = row) so
    it changes only by the hue it sweeps. Returns, over all rows, the Pearson r of each swept hue against the
    hue measured in its samples."""
    images, labels, asked, seen = [], [], {t: [] for t in TARGETS}, {t: [] for t in TARGETS}
    row = 0
    for digit in PICTURE_DIGITS:
        for target, first, last, held in SWEEPS:
            swept = torch.linspace(first, last, SWEEP_STEPS)
            other = torch.full_like(swept, held)
            hues = torch.stack([swept, other] if target == TARGETS[0] else [other, swept], dim=1)
            samples = torch.cat([run.sample({"label": digit, "regression": hues[k]}, num=1, seed=row).cpu()
                                 for k in range(SWEEP_STEPS)])
            asked[target].append(swept)
            seen[target].append(measure(samples)[target])
            images.append(samples)
            what = "digit" if target == TARGETS[0] else "background"
            fixed = "background" if target == TARGETS[0] else "digit"
            labels.append(f"{digit}: {what} hue {first:g}..{last:g}, {fixed} {held:g}")
            row += 1
    condgen.save_grid(torch.cat(images), path, per_row=SWEEP_STEPS, row_labels=labels)
    return {f"{t}_r": pearson(torch.cat(asked[t]), torch.cat(seen[t])) for t in TARGETS}


@torch.no_grad()
def neg_elbo(run: condgen.Run, test: dict[str, torch.Tensor]) -> float:
    """The mean -ELBO (nats per item, one z each, seeded) over the whole of ``test``."""
    run.model.eval()
    gen = condgen.seeded_generator(run.device, condgen.EVAL_SEED)
    total = sum(float(run.terms(batch, generator=gen, objective=False)["neg_elbo"].sum())
                for _, batch in condgen.iter_batches(test, 1000))
    return total / test["label"].shape[0]


def train(config: dict[str, Any], run_dir: Path) -> tuple[condgen.Run, list[dict[str, Any]]]:
    """Train into ``run_dir``, or resume (or reuse, when complete) the run already there; its metrics rows."""
    resume = (run_dir / "checkpoint.safetensors").exists()
    print(f"== {'resuming' if resume else 'training'} {run_dir}", flush=True)
    run = condgen.train(condgen.RunConfig.parse(config), run_dir, resume=resume, progress=False, pictures=False,
                        log=lambda s: print(s, flush=True))
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return run, metrics


def load_test(path: Path) -> dict[str, torch.Tensor]:
    """The data set's test split, as the ``npz`` data set reads it (images as uint8 levels)."""
    from condgen.data.arrays import load_npz_splits

    return load_npz_splits(condgen.DataConfig(dataset="npz", data_dir=str(path))).test


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("CONDGEN_DATA_DIR"), help="the four MNIST files")
    parser.add_argument("--data", default=None, help="the colour-digit .npz (default: made once into condgen's cache)")
    parser.add_argument("--work", default=None, help="directory of the run (default: a new temporary one); a run "
                        "already there is resumed or, when complete, re-scored without training")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--channels", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--hidden", type=int, nargs="+", default=[512])
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--prior", choices=["standard", "conditional"], default="conditional")
    parser.add_argument("--likelihood", default="logistic-mixture:3", help="logistic or logistic-mixture:K, "
                        "both of the 8-bit levels (README.md says why the mixture)")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--objective", choices=["elbo", "hybrid"], default="hybrid",
                        help="hybrid (the default: Sohn et al.'s CVAE + GSNN, which README.md says why) or elbo")
    parser.add_argument("--gsnn-weight", type=float, default=None, help="the hybrid objective's GSNN weight "
                        "(default 0.5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-limit", type=int, default=None, help="train on the first N training items")
    parser.add_argument("--test-limit", type=int, default=1000, help="test items each epoch's -ELBO is measured "
                        "on (the recorded -ELBO is over the whole test split)")
    parser.add_argument("--items", type=int, default=10_000, help="test items sampled and measured")
    parser.add_argument("--is-items", type=int, default=1000, help="test items the IS-NLL is estimated on")
    parser.add_argument("--smoke", action="store_true", help="a quick check: 1 epoch on 2,000 items, 500 test "
                        "items, figures into --work")
    parser.add_argument("--results-dir", default=None, help="default: beside this file (--work with --smoke)")
    args = parser.parse_args()
    if args.smoke:
        args.epochs, args.train_limit, args.items, args.is_items = 1, args.train_limit or 2000, 500, 100
    work = Path(args.work or tempfile.mkdtemp(prefix="condgen-colour-digits-"))
    results_dir = Path(args.results_dir) if args.results_dir else (work if args.smoke else HERE)

    load_before = os.getloadavg()[0]
    data = make_npz(args.data_dir, args.data)
    config = config_of(args, data)
    run, metrics = train(config, work / "run")
    train_seconds = sum(m["train_seconds"] for m in metrics)
    test = load_test(data)
    classifier, classifier_accuracy = load_or_train_classifier(args.data_dir, None)
    start = time.perf_counter()
    given = follow(run, test, classifier, args.items)
    print(f"== hue r: digit {given['fg_hue_r']:.3f}, background {given['bg_hue_r']:.3f}; digit accuracy "
          f"{given['digit_accuracy']:.3f}", flush=True)
    results_dir.mkdir(parents=True, exist_ok=True)
    sweep = sweep_picture(run, results_dir / "sweep.png")
    figures = condgen.evaluate(run, {k: v[:args.is_items] for k, v in test.items()}, samples=IS_SAMPLES)
    elbo = neg_elbo(run, test)
    dims = math.prod(test["image"].shape[1:])
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": {"cores": os.cpu_count(), "load_average_before": load_before,
                    "threads": torch.get_num_threads(), "torch": torch.__version__, "platform": platform.platform()},
        "config": config, "cli": command_line(config), "hue_range": HUE_RANGE,
        "epochs": run.config.train.epochs, "train_seconds": train_seconds,
        "test_neg_elbo": elbo, "test_neg_elbo_bits_per_dim": elbo / (dims * math.log(2)),
        "is_items": args.is_items, "is_samples": IS_SAMPLES, "test_is_nll": figures["test_is_nll"],
        "test_is_nll_bits_per_dim": figures["test_is_nll_bits_per_dim"],
        "label_elbo_accuracy": figures.get("label_elbo_accuracy"),
        "items": min(args.items, test["label"].shape[0]), "given": given, "sweep": sweep,
        "classifier_test_accuracy": classifier_accuracy, "measure_seconds": time.perf_counter() - start,
    }
    results["meets_targets"] = {"fg_hue_r": given["fg_hue_r"] >= TARGET_R, "bg_hue_r": given["bg_hue_r"] >= TARGET_R,
                                "digit_accuracy": given["digit_accuracy"] >= TARGET_ACCURACY}
    (results_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results, results_dir / "RESULTS.md")
    print(f"wrote results.json, RESULTS.md and sweep.png to {results_dir}; trained {train_seconds / 60:.1f} min")
    return 0


def write_markdown(r: dict[str, Any], path: Path) -> None:
    g, d, ok = r["given"], r["given"]["data"], r["meets_targets"]

    def mark(key: str) -> str:
        return "✓" if ok[key] else "✗"

    m = r["config"]["model"]
    by_label = ", ".join(f"{k}: {100 * v:.1f} %" for k, v in g["digit_accuracy_by_label"].items())
    lines = [
        "# Colour digits: benchmark results", "",
        f"Written by `benchmark.py` on {r['date']} ({r['machine']['cores']} CPU cores, 1-minute load "
        f"average {r['machine']['load_average_before']:.1f} before training (other work on the cores shows here), "
        f"{r['machine']['threads']} torch threads, "
        f"torch {r['machine']['torch']}). Model: conv, channels {m['channels']}, dense {m['hidden']}, latent "
        f"{m['latent_dim']}, GELU, {m['prior']} prior, likelihood {m['likelihood']} on the 8-bit RGB levels; Adam "
        f"{r['config']['train']['lr']:g} cosine, batch 100, {r['epochs']} epochs, trained in "
        f"{r['train_seconds'] / 60:.1f} min. The same training from the command line:", "",
        f"    {r['cli']}", "",
        f"One sample for each of the first {r['items']:,} test items, asking for its own digit and hues; "
        "hues in turns on [0, 0.8), measured as README.md describes.", "",
        "| measure | target | samples | the test images themselves |", "|---|---|---|---|",
        f"| Pearson r, requested vs measured digit hue | ≥ {TARGET_R} | **{g['fg_hue_r']:.3f}** {mark('fg_hue_r')} "
        f"| {d['fg_hue_r']:.4f} |",
        f"| Pearson r, requested vs measured background hue | ≥ {TARGET_R} | **{g['bg_hue_r']:.3f}** "
        f"{mark('bg_hue_r')} | {d['bg_hue_r']:.4f} |",
        f"| Pearson r, the same with the stroke core's own hue (not extrapolated to the RGB cube) | | "
        f"{g['fg_core_hue_r']:.3f} | {d['fg_core_hue_r']:.4f} |",
        f"| mean absolute hue error, digit | | {g['fg_hue_mae_degrees']:.1f}° | {d['fg_hue_mae_degrees']:.2f}° |",
        f"| mean absolute hue error, background | | {g['bg_hue_mae_degrees']:.1f}° | {d['bg_hue_mae_degrees']:.2f}° |",
        f"| MNIST classifier reads the requested digit | ≥ {100 * TARGET_ACCURACY:.0f} % | "
        f"**{100 * g['digit_accuracy']:.1f} %** {mark('digit_accuracy')} | {100 * d['digit_accuracy']:.1f} % |",
        "",
        f"Per digit: {by_label}. The classifier reads {100 * r['classifier_test_accuracy']:.1f} % of the grey "
        "MNIST test digits right.", "",
        f"Test −ELBO over all 10,000 test items: {r['test_neg_elbo']:.1f} nats, "
        f"**{r['test_neg_elbo_bits_per_dim']:.4f} bits/dim**; IS-NLL (S = {r['is_samples']}, first "
        f"{r['is_items']:,} test items): {r['test_is_nll']:.1f} nats, **{r['test_is_nll_bits_per_dim']:.4f} "
        "bits/dim** (3 x 32 x 32 = 3,072 dimensions).", "",
        f"`sweep.png`: the requested against the measured hue along its rows, r = {r['sweep']['fg_hue_r']:.3f} "
        f"(digit) and {r['sweep']['bg_hue_r']:.3f} (background).", "",
        "Targets met: " + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in ok.items())
        + ". README.md lists the other settings tried and their figures.", "",
    ]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
