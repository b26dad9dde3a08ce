"""Seed-configuration epoch time and peak memory of two git revisions, side by side on one machine.

Each revision is checked out into a temporary worktree and trained in its own process, the two
alternating ``--repeats`` times (these shared machines drift by a third between runs, so only
alternated medians are comparable). Both use the core and label plugin of their own revision::

    python benchmarks/compare_revisions.py --data-dir DIR --base 403a0ab --head HEAD --epochs 2 --repeats 3

Prints each run's per-epoch training seconds, its peak resident memory (the training process's max RSS,
``getrusage``) and the medians, and writes them as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRAIN = """
import json, resource, sys, tempfile, condgen
cfg = condgen.RunConfig.parse({"conditioners": [{"name": "label"}], "model": {"latent_dim": 2, "hidden": [512]},
    "data": {"data_dir": sys.argv[1]}, "train": {"epochs": int(sys.argv[2]), "batch_size": 50, "seed": 0}})
out = tempfile.mkdtemp() + "/run"
condgen.train(cfg, out, pictures=False, progress=False, log=lambda s: None)
rows = [json.loads(l) for l in open(out + "/metrics.jsonl")]
print(json.dumps({"train_seconds": [r["train_seconds"] for r in rows], "test_neg_elbo": rows[-1]["test_neg_elbo"],
                  "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def worktree(rev: str, root: Path) -> Path:
    path = root / rev.replace("/", "_")
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-f", str(path), rev], check=True,
                   capture_output=True)
    return path


def run_once(tree: Path, data_dir: str, epochs: int) -> dict:
    # the revision's own core and label plugin come first on the path
    env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{tree / 'plugins' / 'condgen-label'}"}
    out = subprocess.run([sys.executable, "-c", TRAIN, data_dir, str(epochs)], env=env, cwd=tree,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"training at {tree} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("CONDGEN_DATA_DIR"), required=False)
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--head", default="HEAD")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None, help="JSON file for the figures")
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("give --data-dir DIR (the four MNIST .gz files) or set CONDGEN_DATA_DIR")
    args.data_dir = str(Path(args.data_dir).resolve())  # each revision trains from its own directory
    root = Path(tempfile.mkdtemp(prefix="condgen-revisions-"))
    trees = {"base": worktree(args.base, root), "head": worktree(args.head, root)}
    results: dict[str, list] = {"base": [], "head": []}
    try:
        for i in range(args.repeats):
            for name, tree in trees.items():
                r = run_once(tree, args.data_dir, args.epochs)
                results[name].append(r)
                print(f"repeat {i + 1} {name}: epochs {r['train_seconds']} s, test -ELBO {r['test_neg_elbo']:.4f}, "
                      f"peak RSS {r['max_rss_mib']:.0f} MiB", flush=True)
    finally:
        for tree in trees.values():
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], capture_output=True)
    medians = {n: statistics.median(s for r in rs for s in r["train_seconds"]) for n, rs in results.items()}
    peaks = {n: statistics.median(r["max_rss_mib"] for r in rs) for n, rs in results.items()}
    print(f"median s/epoch: base ({args.base}) {medians['base']:.2f}, head ({args.head}) {medians['head']:.2f}, "
          f"head/base {medians['head'] / medians['base']:.3f}")
    print(f"median peak RSS: base {peaks['base']:.0f} MiB, head {peaks['head']:.0f} MiB")
    if args.out:
        Path(args.out).write_text(json.dumps({"base": args.base, "head": args.head, "runs": results,
                                              "median_seconds_per_epoch": medians,
                                              "median_peak_rss_mib": peaks}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
