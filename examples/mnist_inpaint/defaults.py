"""What ``condgen train --conditioner inpaint`` gives with no other settings: the old default mask mix against the new.

Trains, through ``condgen.train``, the model that ::

    condgen train --conditioner inpaint --epochs 10 --data-dir DIR --out RUN_DIR

trains (every other setting at its default: latent 2, one hidden layer of 512, ReLU, standard
prior, batch 50, Adam at 1e-3, seed 0), once with the plugin's default mask mix and once with the
old one (1, 2 or 3 observed quadrants only, ``masks=["quadrants:1","quadrants:2","quadrants:3"]``);
``--candidate`` adds other mixes to try. Then, on all 10,000 MNIST test digits, for each of several
masks (the halves, the centre, the quadrants, a random rectangle) it completes every digit once
and has the label example's classifier read the completions, and scores the quadrant task as
``benchmark.py`` does: -ELBO and importance-sampled NCLL (S = 100) of the missing pixels, in nats
per image, for 1, 2 and 3 observed quadrants::

    python examples/mnist_inpaint/defaults.py --data-dir DIR                            # the recorded figures
    python examples/mnist_inpaint/defaults.py --data-dir DIR --epochs 1 --work /tmp/x   # smoke check
    python examples/mnist_inpaint/defaults.py --data-dir DIR --candidate 'halves=quadrants:1,bottom-half@1,3'

Figures go to ``defaults.json`` and ``DEFAULTS.md`` beside this file (into ``--work`` for a smoke check).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

import torch
from benchmark import (CLASSIFIER_TARGET, IS_SAMPLES, classify, completion_accuracy, eval_masks, load_or_train_classifier,
                       score, train, when_and_where, write_results)
from condgen_inpaint import parse_mask_spec

import condgen

HERE = Path(__file__).resolve().parent
#: The plugin's default mix before issue #26: the paper's quadrant task only.
OLD_DEFAULT_MASKS = ["quadrants:1", "quadrants:2", "quadrants:3"]
#: The masks each model completes for the classifier (``right-half`` is the same mask as ``quadrants:2``).
EVAL_MASKS = ["bottom-half", "top-half", "left-half", "right-half", "centre", "random-rect",
              "quadrants:1", "quadrants:2", "quadrants:3"]
EPOCHS = 10


class Mix:
    """A training mix: ``masks``/``weights`` None is the plugin's default (the inpaint conditioner with no settings)."""

    def __init__(self, name: str, masks: Optional[list[str]] = None, weights: Optional[list[float]] = None) -> None:
        self.name, self.masks, self.weights = name, masks, weights

    @classmethod
    def parse(cls, text: str) -> "Mix":
        """``NAME=SPEC,SPEC,...`` or ``NAME=SPEC,...@W,W,...``."""
        name, eq, rest = text.partition("=")
        specs, at, weights = rest.partition("@")
        if not eq or not name or not specs:
            raise argparse.ArgumentTypeError(f"{text!r}: give NAME=SPEC,SPEC,... or NAME=SPEC,...@W,W,...")
        return cls(name, specs.split(","), [float(w) for w in weights.split(",")] if at else None)

    def settings(self) -> dict[str, Any]:
        """The inpaint conditioner's settings: none for the default mix."""
        out: dict[str, Any] = {}
        if self.masks is not None:
            out["masks"] = self.masks
        if self.weights is not None:
            out["weights"] = self.weights
        return out

    def config(self, epochs: int, data_dir: str) -> condgen.RunConfig:
        inpaint: dict[str, Any] = {"name": "inpaint"}
        if self.settings():
            inpaint["config"] = self.settings()
        return condgen.RunConfig.parse({"conditioners": [inpaint], "data": {"data_dir": data_dir},
                                        "train": {"epochs": epochs}})

    def command(self, epochs: int) -> str:
        """The ``condgen train`` line that trains the same model."""
        settings = ",".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in self.settings().items())
        conditioner = f"'inpaint:{settings}'" if settings else "inpaint"
        return f"condgen train --conditioner {conditioner} --epochs {epochs} --data-dir DIR --out RUN_DIR"


@torch.no_grad()
def observed_only_accuracy(test: dict[str, torch.Tensor], classifier, mask: str) -> float:
    """The floor: share of test digits the classifier reads right from the observed pixels alone (missing = 0),
    on the same masks as :func:`benchmark.completion_accuracy`."""
    spec = parse_mask_spec(mask)
    right = 0
    for start, batch in condgen.iter_batches(test, 1000):
        x = batch["image"]
        right += int((classify(classifier, x * eval_masks(spec, x, start)) == batch["label"]).sum())
    return right / test["label"].shape[0]


def measure(mix: Mix, epochs: int, data_dir: str, work: Path, test: dict[str, torch.Tensor], classifier) -> dict[str, Any]:
    run, seconds = train(mix.name, mix.config(epochs, data_dir), work)
    accuracy = {}
    for mask in EVAL_MASKS:
        accuracy[mask] = completion_accuracy(run, test, classifier, mask)
        print(f"[{mix.name}] {mask}: classifier agrees on {accuracy[mask]:.3f} of completions", flush=True)
    quadrants = {}
    for k in (1, 2, 3):
        quadrants[k] = score(run, test, k, IS_SAMPLES)
        print(f"[{mix.name}] {k} quadrant(s): -ELBO {quadrants[k]['neg_elbo']:.2f}, "
              f"IS-NLL {quadrants[k]['is_nll']:.2f}", flush=True)
    inpaint = run.conditioners["inpaint"].config
    return {"command": mix.command(epochs), "masks": inpaint.masks, "weights": inpaint.weights,
            "conditioner": inpaint.model_dump(mode="json"), "train_seconds": seconds,
            "classifier_agreement": accuracy, "quadrants": quadrants,
            "meets_bottom_half_target": accuracy["bottom-half"] >= CLASSIFIER_TARGET}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("CONDGEN_DATA_DIR"))
    parser.add_argument("--work", default=None, help="directory for the run dirs (default: a new temporary one); "
                        "runs already there are resumed or, when complete, re-scored without training")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--candidate", type=Mix.parse, action="append", default=[], metavar="NAME=SPEC,...[@W,...]",
                        help="another training mix to measure beside the two defaults (repeatable)")
    parser.add_argument("--results-dir", default=None, help="default: beside this file (--work for a smoke check)")
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("give --data-dir DIR (the four MNIST .gz files) or set CONDGEN_DATA_DIR")
    work = Path(args.work or tempfile.mkdtemp(prefix="condgen-inpaint-defaults-"))
    work.mkdir(parents=True, exist_ok=True)
    results_dir = Path(args.results_dir) if args.results_dir else (work if args.epochs < 5 else HERE)

    from condgen.data.mnist import locate_mnist, read_mnist_dir

    classifier, classifier_accuracy = load_or_train_classifier(args.data_dir, None)
    test = read_mnist_dir(locate_mnist(args.data_dir)).test
    mixes = [Mix("old-default", OLD_DEFAULT_MASKS), Mix("new-default"), *args.candidate]
    runs = {mix.name: measure(mix, args.epochs, args.data_dir, work, test, classifier) for mix in mixes}
    floor = {mask: observed_only_accuracy(test, classifier, mask) for mask in EVAL_MASKS}
    results = {
        **when_and_where(), "epochs": args.epochs,
        "run_config": mixes[1].config(args.epochs, args.data_dir).model_dump(mode="json", exclude={"data": {"data_dir"}}),
        "classifier_test_accuracy": classifier_accuracy, "classifier_target": CLASSIFIER_TARGET,
        "observed_only_agreement": floor, "runs": runs,
    }
    write_results(results, results_dir / "defaults.json", write_markdown, results_dir / "DEFAULTS.md")
    return 0


def write_markdown(r: dict[str, Any], path: Path) -> None:
    runs = r["runs"]
    names = list(runs)
    old, new = runs["old-default"], runs["new-default"]
    model, train_cfg = r["run_config"]["model"], r["run_config"]["train"]
    lines = [
        "# The inpaint conditioner's default mask mix, old against new", "",
        f"Written by `defaults.py` on {r['date']} ({r['machine']['cpu_count']} CPU cores, torch {r['machine']['torch']}). "
        f"Each model is what `condgen train --conditioner inpaint --epochs {r['epochs']}` trains with no other "
        f"settings (latent {model['latent_dim']}, hidden {model['hidden']} {model['activation']}, "
        f"{model['prior']} prior, {model['likelihood']} likelihood, batch {train_cfg['batch_size']}, "
        f"{train_cfg['optimizer']} at lr {train_cfg['lr']:g} ({train_cfg['lr_schedule']}), seed {train_cfg['seed']}, "
        f"the inpaint conditioner's default `{old['conditioner']['embedding']}` embedding); only the training mask mix differs:", "",
    ]
    for name in names:
        weights = f", weights {runs[name]['weights']}" if runs[name]["weights"] else ", equally often"
        lines.append(f"- **{name}**: `{', '.join(runs[name]['masks'])}`{weights}; trained in "
                     f"{runs[name]['train_seconds'] / 60:.1f} min: `{runs[name]['command']}`")
    lines += [
        "", "Training minutes include each epoch's test evaluation, on 2 cores shared with other work: they vary with "
        "the load, not with the mix. `old-default` is the plugin's default before issue #26, `new-default` its "
        "default now; any other row is a mix tried beside them (`--candidate`).", "",
        "Reproduce: `python examples/mnist_inpaint/defaults.py --data-dir DIR"
        + (f" --epochs {r['epochs']}" if r["epochs"] != EPOCHS else "")
        + "".join(f" --candidate '{n}={','.join(runs[n]['masks'])}"
                  + (f"@{','.join(f'{w:g}' for w in runs[n]['weights'])}" if runs[n]["weights"] else "") + "'"
                  for n in names[2:]) + "`.", "",
        "## Does the classifier read the true digit in a completion?", "",
        f"All 10,000 MNIST test digits, each completed once (one sample) with the mask's pixels missing; the "
        f"label example's classifier ({100 * r['classifier_test_accuracy']:.2f} % on the true test digits) reads the "
        f"completion. The last column is the floor: the classifier on the observed pixels alone (missing ones black). "
        f"`random-rect` draws one rectangle per digit (each side 25-75 %), the same ones for every model; "
        f"`right-half` is the same mask as `quadrants:2`. Target: {100 * r['classifier_target']:.0f} % on bottom halves.", "",
        "| missing | " + " | ".join(names) + " | observed part alone |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for mask in r["observed_only_agreement"]:
        cells = [f"{100 * runs[n]['classifier_agreement'][mask]:.1f} %" for n in names]
        lines.append(f"| `{mask}` | " + " | ".join(cells) + f" | {100 * r['observed_only_agreement'][mask]:.1f} % |")
    lines += [
        "", "## The quadrant task (Sohn et al.; `benchmark.py`'s scores)", "",
        "NCLL of the missing pixels in nats per test image over all 10,000 test images, for 1, 2 and 3 observed "
        f"quadrants (Pyro's layout): the −ELBO and the importance-sampled NCLL with S = {IS_SAMPLES}. Lower is better.", "",
        "| model | −ELBO 1 | −ELBO 2 | −ELBO 3 | IS-NLL 1 | IS-NLL 2 | IS-NLL 3 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        q = runs[name]["quadrants"]
        lines.append(f"| {name} | " + " | ".join(f"{q[k][m]:.2f}" for m in ("neg_elbo", "is_nll") for k in q) + " |")
    diff = " | ".join(f"{new['quadrants'][k][m] - old['quadrants'][k][m]:+.2f}"
                      for m in ("neg_elbo", "is_nll") for k in new["quadrants"])
    lines += [f"| new − old | {diff} |", ""]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
