"""How well the ``word`` plugin reads a digit's name: train on MNIST, then ask for digits by words.

It trains the recommended MNIST configuration (``examples/mnist_label/recommended.json``) with the
``word`` conditioner instead of ``label`` through ``condgen.train``, then draws 100 samples for each of
these words and has the independent digit classifier of ``examples/mnist_label/classifier.py``
(99 % on MNIST's test set) say which digit each shows:

- ``names``: the ten names themselves;
- ``one typo``: one random misspelling of each (one edit away; training draws from these);
- ``two typos``: two random edits of each, which training never shows (at least two edits away);
- ``sound-alikes``: words people might type (``too``, ``for``, ``won``, ``ate``, ``nein`` ...).

It also records ``condgen evaluate``'s ``word_read_accuracy`` and ``word_typo_read_accuracy`` (the
model as a classifier: the test image's own name, or misspelling, gets the best ELBO) and the test
-ELBO. Results go to ``results.json``, ``RESULTS.md`` and ``words.png`` beside this file::

    pip install -e examples/condgen-word
    python examples/condgen-word/benchmark.py --data-dir ../shared/data/mnist        # ~5 min on 2 cores
    python examples/condgen-word/benchmark.py --data-dir DIR --epochs 1 --results-dir /tmp/x   # a smoke run
    python examples/condgen-word/benchmark.py --data-dir DIR --work W --reuse   # measure the run in W again
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import random
import statistics
import sys
import tempfile
from pathlib import Path

import torch

import condgen
from condgen.plugin.registry import registry

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "examples" / "mnist_label"))
from classifier import classify, load_or_train_classifier  # noqa: E402

SAMPLES_PER_WORD = 100
SOUND_ALIKES = {"oh": 0, "won": 1, "too": 2, "tree": 3, "for": 4, "fiv": 5, "sicks": 6, "sevan": 7, "ate": 8,
                "nein": 9}


def two_typos(word: str, rng: random.Random, one_typo) -> str:
    """A random spelling at least two edits from ``word``: two random single edits, redrawn until neither
    ``word`` nor one of its one-edit misspellings."""
    near = set(one_typo(word)) | {word}
    while True:
        typo = rng.choice(one_typo(rng.choice(one_typo(word))))
        if typo not in near and len(typo) >= 2:
            return typo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="the MNIST files (default $CONDGEN_DATA_DIR)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--work", default=None, help="where the run goes (default a temporary directory)")
    parser.add_argument("--results-dir", default=str(HERE), help="where results.json, RESULTS.md, words.png go")
    parser.add_argument("--reuse", action="store_true", help="measure the run already trained in --work")
    args = parser.parse_args()
    if "word" not in registry().conditioners:
        sys.exit("error: the word plugin is not installed; run: pip install -e examples/condgen-word")
    from condgen_word import one_typo

    config = json.loads((REPO / "examples" / "mnist_label" / "recommended.json").read_text())
    config["conditioners"] = [{"name": "word"}]
    config["train"]["epochs"] = args.epochs
    config["data"] = {"dataset": "mnist", "data_dir": args.data_dir}
    work = Path(args.work or tempfile.mkdtemp(prefix="condgen-word-"))
    if args.reuse:
        run = condgen.load_run(work / "run")
    else:
        run = condgen.train(condgen.RunConfig.parse(config), work / "run")
    metrics = [json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    epoch_seconds = statistics.median(m["train_seconds"] for m in metrics)
    figures = condgen.evaluate(run, samples=0)
    classifier, classifier_accuracy = load_or_train_classifier(args.data_dir)

    rng = random.Random(0)
    names = run.conditioners["word"].config.words
    groups = {
        "names": {w: d for d, w in enumerate(names)},
        "one typo": {rng.choice(one_typo(w)): d for d, w in enumerate(names)},
        "two typos": {two_typos(w, rng, one_typo): d for d, w in enumerate(names)},
        "sound-alikes": SOUND_ALIKES,
    }
    per_word: dict[str, dict[str, float]] = {}
    for group, words in groups.items():
        for k, (word, digit) in enumerate(words.items()):
            images = run.sample({"word": word}, num=SAMPLES_PER_WORD, seed=k)
            per_word[word] = {"digit": digit, "group": group,
                              "accuracy": float((classify(classifier, images) == digit).float().mean())}
    summary = {g: sum(per_word[w]["accuracy"] for w in ws) / len(ws) for g, ws in groups.items()}

    results_dir = Path(args.results_dir)
    picture_words = [w for ws in groups.values() for w in list(ws)[7:8]] + ["too", "for", "ate", "won"]
    picture = condgen.SampleFile(results_dir / "words.png", 10)
    rows = picture.rows(run, ["word=" + ",".join(picture_words)])
    picture.write(rows.sample(run, picture.num, seed=0), rows)
    result = {
        "date": dt.date.today().isoformat(), "machine": f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}", "epochs": len(metrics),
        "median_epoch_seconds": round(epoch_seconds, 1), "test_neg_elbo": figures["test_neg_elbo"],
        "word_read_accuracy": figures["word_read_accuracy"],
        "word_typo_read_accuracy": figures["word_typo_read_accuracy"],
        "classifier_test_accuracy": classifier_accuracy, "samples_per_word": SAMPLES_PER_WORD,
        "group_accuracy": summary, "words": per_word,
    }
    (results_dir / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# The word plugin on MNIST", "",
        f"Recorded by `python examples/condgen-word/benchmark.py --data-dir DIR` on {result['date']} "
        f"({result['machine']}): the recommended MNIST configuration with `--conditioner word`, "
        f"{len(metrics)} epochs at a median {epoch_seconds:.1f} s each; test -ELBO {figures['test_neg_elbo']:.2f} nats "
        "(its test conditions carry typos half the time, as in training).", "",
        f"The model as a reader (`condgen evaluate`): the test image's own name gets the best ELBO among the ten "
        f"names for {figures['word_read_accuracy']:.1%} of test images, and its misspelling among ten "
        f"misspellings for {figures['word_typo_read_accuracy']:.1%}.", "",
        f"Samples: {SAMPLES_PER_WORD} per word, judged by the independent CNN of examples/mnist_label "
        f"({classifier_accuracy:.1%} on MNIST's test set): the share it reads as the intended digit.", "",
        "| words | mean | " + " | ".join(str(d) for d in range(10)) + " |",
        "|---|---|" + "---|" * 10,
    ]
    for group, words in groups.items():
        by_digit = {d: w for w, d in words.items()}
        cells = [f"{by_digit[d]} {per_word[by_digit[d]]['accuracy']:.0%}" for d in range(10)]
        lines.append(f"| {group} | **{summary[group]:.1%}** | " + " | ".join(cells) + " |")
    lines += ["", "![samples for typed words](words.png)", ""]
    (results_dir / "RESULTS.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
