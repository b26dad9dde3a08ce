"""Inpainting MNIST quadrants (Sohn, Lee & Yan 2015, Table 1; Pyro's CVAE example): benchmark.

Trains, through ``condgen.train``, a CVAE conditioned on ``inpaint`` and the deterministic
baseline of the same width (``latent_dim 0``), either one model of each on a mix of 1, 2 and 3
observed quadrants (plus the bottom half missing, for the classifier check) or one per quadrant
count (``--strategy``). Then, for 1, 2 and 3 observed quadrants (Pyro's layout), it scores all
10,000 MNIST test images: the baseline's exact negative conditional log-likelihood (NCLL) of the
missing pixels, the CVAE's -ELBO, and the CVAE's importance-sampled NCLL with S = 100, in nats
per image summed over the missing pixels. It also completes test digits with the bottom half
missing and has the label example's classifier read them, and draws ``inpainting.png``::

    python examples/mnist_inpaint/benchmark.py --data-dir DIR                # the recorded figures
    python examples/mnist_inpaint/benchmark.py --data-dir DIR --epochs 1 --work /tmp/x   # smoke check

Figures go to ``results.json``, ``RESULTS.md`` and ``inpainting.png`` beside this file (into ``--work``
for a smoke check); with ``--strategy per-count`` to ``results-per-count.json`` and so on, with
``--embedding conv`` to ``results-conv.json`` and so on. ``--arch conv --embedding spatial`` trains the conv
CVAE with the observed image and its mask as feature maps at every stage (``results-arch-conv-spatial.json``)::

    python examples/mnist_inpaint/benchmark.py --data-dir DIR --arch conv --embedding spatial --epochs 29 \
        --baseline-epochs 3
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import condgen
from condgen_inpaint import MaskSpec, parse_mask_spec, quadrant_mask

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "mnist_label"))
from classifier import classify, load_or_train_classifier  # noqa: E402

#: Pyro's CVAE example on this machine: importance-sampled NCLL (S = 100) after 59 minutes of training.
PEER_IS_NLL = {1: 67.3, 2: 47.7, 3: 22.1}
#: Pyro's own reported figures, a bound (-ELBO with 10 particles), for reference only.
PEER_BOUND = {1: 72.1, 2: 51.4, 3: 24.5}
TIME_BUDGET_SECONDS = 30 * 60
CLASSIFIER_TARGET = 0.85
IS_SAMPLES = 100
MIXED_MASKS = ["quadrants:1", "quadrants:2", "quadrants:3", "bottom-half"]


#: ``--arch``: the networks' settings. The conv net's dense layer sits between its last stage and the latent.
ARCHITECTURES = {"mlp": {"arch": "mlp", "hidden": [512, 512]},
                 "conv": {"arch": "conv", "channels": [32, 64], "hidden": [512]}}


def model_config(latent: int, masks: list[str], epochs: int, data_dir: str, seed: int,
                 embedding: str = "mlp", arch: str = "mlp") -> condgen.RunConfig:
    return condgen.RunConfig.parse({
        "conditioners": [{"name": "inpaint", "config": {"masks": masks, "embedding": embedding}}],
        "model": {**ARCHITECTURES[arch], "latent_dim": latent, "activation": "gelu",
                  "prior": "conditional" if latent else "standard"},
        "data": {"data_dir": data_dir},
        "train": {"epochs": epochs, "batch_size": 100, "lr": 1e-3, "lr_schedule": "cosine", "seed": seed},
    })


def masks_for(k: int, n: int) -> torch.Tensor:
    return quadrant_mask(n, 28, 28, k)


@torch.no_grad()
def score(run: condgen.Run, test: dict[str, torch.Tensor], k: int, samples: int) -> dict[str, float]:
    """Mean -ELBO and IS NCLL over the missing pixels, for k observed quadrants, over ``test``."""
    cond = run.conditioners["inpaint"]
    gen = condgen.seeded_generator(run.device, condgen.EVAL_SEED)
    is_gen = condgen.seeded_generator(run.device, condgen.EVAL_SEED + 1)
    totals = {"neg_elbo": 0.0, "is_nll": 0.0}
    n = 0
    for _, batch in condgen.iter_batches(test, 500):
        x = batch["image"]
        conds = {"inpaint": cond.condition(x, masks_for(k, x.shape[0]).to(x.device))}
        totals["neg_elbo"] += float(run.terms(batch, conds, gen, objective=False)["neg_elbo"].sum())
        if samples:
            totals["is_nll"] += float(-run.log_likelihood(batch, conds, samples, is_gen).sum())
        n += x.shape[0]
    out = {k2: v / n for k2, v in totals.items()}
    if not samples:  # the deterministic baseline: its likelihood is exact
        out["is_nll"] = out["neg_elbo"]
    return out


@torch.no_grad()
def completion_accuracy(run: condgen.Run, test: dict[str, torch.Tensor], classifier, mask: str = "bottom-half") -> float:
    """Share of test digits whose completion (``mask``'s pixels missing, one sample) the classifier reads right.

    ``mask`` is a mask name (``bottom-half``, ``centre``, ``random-rect``, ...); a random kind draws a
    mask per digit from a seeded generator, so every model is judged on the same masks.
    """
    cond = run.conditioners["inpaint"]
    spec = parse_mask_spec(mask)
    right = 0
    for start, batch in condgen.iter_batches(test, 1000):
        x = batch["image"]
        completed = run.sample({"inpaint": cond.condition(x, eval_masks(spec, x, start))}, num=x.shape[0], seed=start)
        right += int((classify(classifier, completed.cpu()) == batch["label"].cpu()).sum())
    return right / test["label"].shape[0]


def eval_masks(spec: MaskSpec, x: torch.Tensor, start: int) -> torch.Tensor:
    """Masks of ``spec`` for the test images ``x`` from item ``start`` on; a random kind draws them from a
    generator seeded with ``start``, so every model (and every measure) gets the same ones."""
    return spec.sample(x.shape[0], x.shape[2], x.shape[3], condgen.seeded_generator(x.device, condgen.EVAL_SEED + start))


def write_results(results: dict[str, Any], json_path: Path, markdown: Callable[[dict[str, Any], Path], None],
                  markdown_path: Path) -> None:
    """``results`` as JSON to ``json_path`` and, through ``markdown``, as a table to ``markdown_path``."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    markdown(results, markdown_path)
    print(f"wrote {json_path} and {markdown_path.name}")


def picture(runs: dict[int, condgen.Run], test: dict[str, torch.Tensor], path: Path, per_row: int = 6) -> None:
    """inpainting.png: for a few test digits and k = 1, 2, 3, the observed input, completions, the truth."""
    rows, labels = [], []
    x = test["image"][:4]
    for i in range(x.shape[0]):
        for k in (1, 2, 3):
            run = runs[k]
            cond = run.conditioners["inpaint"]
            c = cond.condition(x[i : i + 1], masks_for(k, 1).to(x.device))
            samples = run.sample({"inpaint": c.expand(per_row, *c.shape[1:])}, num=per_row, seed=i).cpu()
            rows.append(torch.cat([cond.condition_picture(c[0]).cpu().unsqueeze(0), samples, x[i : i + 1].cpu()]))
            labels.append(f"digit {i + 1}, {k} quadrant{'s' if k > 1 else ''} observed")
    condgen.save_grid(torch.cat(rows), path, per_row=per_row + 2, row_labels=labels)


def train(name: str, config: condgen.RunConfig, work: Path) -> tuple[condgen.Run, float]:
    """Train into ``work/name``, or (re-scoring) load the run already there; the training seconds,
    each epoch's training and its test evaluation, come from the run's metrics.jsonl either way."""
    run_dir = work / name
    if (run_dir / "checkpoint.safetensors").exists():
        print(f"== {name}: resuming (or reusing) {run_dir}", flush=True)
        run = condgen.train(config, run_dir, resume=True, progress=False, pictures=False,
                            log=lambda s: print(f"[{name}] {s}", flush=True))
    else:
        print(f"== training {name}", flush=True)
        run = condgen.train(config, run_dir, progress=False, pictures=False,
                            log=lambda s: print(f"[{name}] {s}", flush=True))
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return run, sum(r["train_seconds"] + r["eval_seconds"] for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("CONDGEN_DATA_DIR"))
    parser.add_argument("--work", default=None, help="directory for the run dirs (default: a new temporary one); "
                        "runs already there are resumed or, when complete, re-scored without training")
    parser.add_argument("--strategy", choices=["mixed", "per-count"], default="mixed")
    parser.add_argument("--epochs", type=int, default=None, help="CVAE epochs (default 60 mixed, 20 per count: the same total)")
    parser.add_argument("--baseline-epochs", type=int, default=None, help="default: 12 mixed, 4 per count")
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--embedding", choices=["mlp", "conv", "spatial"], default="mlp",
                        help="the inpaint embedding: an MLP's or a small conv net's vector, or the image and mask "
                        "as maps (spatial, for --arch conv)")
    parser.add_argument("--arch", choices=list(ARCHITECTURES), default="mlp",
                        help="the CVAE's networks (conv: channels [32, 64], a dense layer of 512)")
    parser.add_argument("--is-items", type=int, default=None,
                        help="score the first N test images (default all 10,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results-dir", default=None)
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("give --data-dir DIR (the four MNIST .gz files) or set CONDGEN_DATA_DIR")
    smoke = args.epochs is not None and args.epochs < 5
    work = Path(args.work or tempfile.mkdtemp(prefix="condgen-mnist-inpaint-"))
    work.mkdir(parents=True, exist_ok=True)
    results_dir = Path(args.results_dir) if args.results_dir else (work if smoke else HERE)
    mixed = args.strategy == "mixed"
    epochs = args.epochs or (60 if mixed else 20)
    baseline_epochs = args.baseline_epochs or (12 if mixed else 4)

    classifier, classifier_accuracy = load_or_train_classifier(args.data_dir, None)

    def config(latent: int, masks: list[str], epochs: int) -> condgen.RunConfig:
        return model_config(latent, masks, epochs, args.data_dir, args.seed, args.embedding, args.arch)

    seconds: dict[str, float] = {}
    cvae: dict[int, condgen.Run] = {}
    base: dict[int, condgen.Run] = {}
    if mixed:
        run, seconds["cvae-mixed"] = train("cvae-mixed", config(args.latent_dim, MIXED_MASKS, epochs), work)
        cvae = {1: run, 2: run, 3: run}
        run, seconds["baseline-mixed"] = train("baseline-mixed", config(0, MIXED_MASKS, baseline_epochs), work)
        base = {1: run, 2: run, 3: run}
    else:
        for k in (1, 2, 3):
            masks = [f"quadrants:{k}"] + (["bottom-half"] if k == 2 else [])
            cvae[k], seconds[f"cvae-{k}"] = train(f"cvae-{k}", config(args.latent_dim, masks, epochs), work)
            base[k], seconds[f"baseline-{k}"] = train(f"baseline-{k}", config(0, masks, baseline_epochs), work)
    from condgen.data.mnist import locate_mnist, read_mnist_dir

    test = read_mnist_dir(locate_mnist(args.data_dir)).test
    scored_test = test if args.is_items is None else {k: v[:args.is_items] for k, v in test.items()}
    table = {}
    for k in (1, 2, 3):
        start = time.perf_counter()
        c, b = score(cvae[k], scored_test, k, IS_SAMPLES), score(base[k], scored_test, k, 0)
        table[k] = {"baseline_ncll": b["neg_elbo"], "cvae_neg_elbo": c["neg_elbo"], "cvae_is_nll": c["is_nll"],
                    "peer_is_nll": PEER_IS_NLL[k], "peer_bound": PEER_BOUND[k],
                    "beats_peer": c["is_nll"] < PEER_IS_NLL[k], "beats_baseline": c["is_nll"] < b["neg_elbo"],
                    "eval_seconds": time.perf_counter() - start}
        print(f"== {k} quadrant(s): baseline {b['neg_elbo']:.2f}, CVAE -ELBO {c['neg_elbo']:.2f}, "
              f"IS-NLL {c['is_nll']:.2f} (peer {PEER_IS_NLL[k]})", flush=True)
    bottom_run = cvae[2]
    accuracy = {"cvae": completion_accuracy(bottom_run, test, classifier),
                "baseline": completion_accuracy(base[2], test, classifier)}
    print(f"== bottom half missing: classifier agrees on {accuracy['cvae']:.3f} of CVAE completions, "
          f"{accuracy['baseline']:.3f} of the baseline's", flush=True)
    results_dir.mkdir(parents=True, exist_ok=True)
    # the per-count and conv figures sit beside the recorded mixed MLP ones
    tag = (("" if mixed else "-per-count") + ("" if args.arch == "mlp" else f"-arch-{args.arch}")
           + ("" if args.embedding == "mlp" else f"-{args.embedding}"))
    picture(cvae, test, results_dir / f"inpainting{tag}.png")
    total = sum(seconds.values())
    results = {
        **when_and_where(),
        "strategy": args.strategy, "arch": args.arch, "embedding": args.embedding,
        "scored_items": scored_test["label"].shape[0], "latent_dim": args.latent_dim, "epochs": epochs,
        "baseline_epochs": baseline_epochs,
        "train_seconds": seconds, "total_train_seconds": total, "within_budget": total <= TIME_BUDGET_SECONDS,
        "table": table, "bottom_half_classifier_agreement": accuracy, "classifier_test_accuracy": classifier_accuracy,
        "meets_classifier_target": accuracy["cvae"] >= CLASSIFIER_TARGET,
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"results{tag}.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results, results_dir / f"RESULTS{tag}.md")
    print(f"wrote results{tag}.json, RESULTS{tag}.md and inpainting{tag}.png to {results_dir}; "
          f"total training {total / 60:.1f} min")
    return 0


def when_and_where() -> dict[str, Any]:
    """The ``date`` and ``machine`` fields of a results file."""
    return {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": {"cpu_count": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                        "platform": platform.platform()}}


def write_markdown(r: dict[str, Any], path: Path) -> None:
    lines = [
        "# MNIST quadrant inpainting: benchmark results", "",
        f"Written by `benchmark.py` on {r['date']} ({r['machine']['cpu_count']} CPU cores, torch "
        f"{r['machine']['torch']}); strategy {r['strategy']}, {r.get('arch', 'mlp')} networks, "
        f"{r.get('embedding', 'mlp')} embedding, latent "
        f"{r['latent_dim']}, CVAE {r['epochs']} epochs, baseline {r['baseline_epochs']} epochs; all models trained in {r['total_train_seconds'] / 60:.1f} min "
        f"(budget 30). NCLL of the missing pixels in nats per test image, over the first "
        f"{r.get('scored_items', 10000):,} test images.", "",
        "| observed quadrants | baseline (latent 0) | CVAE −ELBO | CVAE IS-NLL (S = 100) | peer IS-NLL (Pyro, 59 min) |",
        "|---|---|---|---|---|",
    ]
    for k, row in r["table"].items():
        ok = "✓" if row["beats_peer"] and row["beats_baseline"] else "✗"
        lines.append(f"| {k} | {row['baseline_ncll']:.2f} | {row['cvae_neg_elbo']:.2f} | **{row['cvae_is_nll']:.2f}** {ok} "
                     f"| {row['peer_is_nll']} |")
    acc = r["bottom_half_classifier_agreement"]
    lines += ["", f"Bottom half missing: the label example's classifier agrees with the true digit on "
              f"{100 * acc['cvae']:.1f} % of CVAE completions (target 85 %) and {100 * acc['baseline']:.1f} % of the "
              "baseline's.", ""]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
