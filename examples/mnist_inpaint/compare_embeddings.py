"""Which inpaint embedding is better, the MLP or the small convolutional encoder? A side-by-side measurement.

Trains the benchmark's mixed-mask CVAE (``benchmark.py``'s configuration) once with each
embedding, for the same number of epochs from the same seed, one after the other (a shared
machine's speed drifts, so compare seconds per epoch with care), and scores both on all 10,000 test images like the
benchmark: -ELBO and IS-NLL (S = 100) of the missing pixels for 1, 2 and 3 observed quadrants.
It records seconds per epoch (each epoch's training and test evaluation, from ``metrics.jsonl``)
and writes ``embeddings.json`` and ``EMBEDDINGS.md`` beside this file::

    python examples/mnist_inpaint/compare_embeddings.py --data-dir DIR                 # the recorded figures
    python examples/mnist_inpaint/compare_embeddings.py --data-dir DIR --epochs 1 --work /tmp/x   # smoke check
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmark import IS_SAMPLES, MIXED_MASKS, PEER_IS_NLL, model_config, score, train, when_and_where, write_results

HERE = Path(__file__).resolve().parent
EMBEDDINGS = ("mlp", "conv")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("CONDGEN_DATA_DIR"))
    parser.add_argument("--work", default=None, help="directory for the run dirs (default: a new temporary one); "
                        "runs already there are resumed or, when complete, re-scored without training")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results-dir", default=None, help="default: beside this file (--work for a smoke check)")
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("give --data-dir DIR (the four MNIST .gz files) or set CONDGEN_DATA_DIR")
    work = Path(args.work or tempfile.mkdtemp(prefix="condgen-inpaint-embeddings-"))
    results_dir = Path(args.results_dir) if args.results_dir else (work if args.epochs < 5 else HERE)

    runs = {emb: train(emb, model_config(args.latent_dim, MIXED_MASKS, args.epochs, args.data_dir, args.seed, emb),
                       work)[0] for emb in EMBEDDINGS}

    from condgen.data.mnist import locate_mnist, read_mnist_dir

    test = read_mnist_dir(locate_mnist(args.data_dir)).test
    rows: dict[str, Any] = {}
    for emb, run in runs.items():
        metrics = [json.loads(line) for line in (work / emb / "metrics.jsonl").read_text().splitlines() if line]
        epoch_seconds = [m["train_seconds"] + m["eval_seconds"] for m in metrics]
        scores = {k: score(run, test, k, IS_SAMPLES) for k in (1, 2, 3)}
        rows[emb] = {
            "parameters": sum(p.numel() for p in run.model.embeddings["inpaint"].parameters()),
            "median_epoch_seconds": statistics.median(epoch_seconds),
            "total_seconds": sum(epoch_seconds),
            "neg_elbo": {k: s["neg_elbo"] for k, s in scores.items()},
            "is_nll": {k: s["is_nll"] for k, s in scores.items()},
        }
        print(f"== {emb}: IS-NLL " + " / ".join(f"{s['is_nll']:.2f}" for s in scores.values())
              + f", {rows[emb]['median_epoch_seconds']:.1f} s an epoch", flush=True)
    results = {
        **when_and_where(),
        "epochs": args.epochs, "latent_dim": args.latent_dim, "masks": MIXED_MASKS, "embeddings": rows,
    }
    write_results(results, results_dir / "embeddings.json", write_markdown, results_dir / "EMBEDDINGS.md")
    return 0


def write_markdown(r: dict[str, Any], path: Path) -> None:
    lines = [
        "# MLP against convolutional inpaint embedding", "",
        f"Written by `compare_embeddings.py` on {r['date']} ({r['machine']['cpu_count']} CPU cores, torch "
        f"{r['machine']['torch']}): the benchmark's mixed-mask CVAE (latent {r['latent_dim']}) with each "
        f"embedding, {r['epochs']} epochs each from the same seed, one after the other. NCLL of the missing pixels in nats "
        "per test image over all 10,000 test images; seconds per epoch include its test evaluation.", "",
        "| embedding | parameters | s / epoch (median) | IS-NLL 1 | IS-NLL 2 | IS-NLL 3 | −ELBO 1 | −ELBO 2 | −ELBO 3 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for emb, row in r["embeddings"].items():
        lines.append(f"| {emb} | {row['parameters']:,} | {row['median_epoch_seconds']:.1f} | "
                     + " | ".join(f"{row['is_nll'][k]:.2f}" for k in row["is_nll"]) + " | "
                     + " | ".join(f"{row['neg_elbo'][k]:.2f}" for k in row["neg_elbo"]) + " |")
    lines += ["", f"Peer (Pyro, IS-NLL after 59 min): {' / '.join(str(v) for v in PEER_IS_NLL.values())}.", ""]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
