"""Time to quality: wall time of ``condgen train`` from a cold start to a test -ELBO of 95 nats on MNIST.

Each configuration is trained by the command line in a fresh process (Python start, torch import,
data loading, training, the per-epoch test evaluation, the checkpoints; no pictures), ``--repeats``
times, the configurations alternating. Reports the median wall time, the final test -ELBO, and the
first epoch at or under the target. Writes ``time_to_quality.json`` and ``TIME_TO_QUALITY.md``::

    python benchmarks/time_to_quality.py --data-dir ../shared/data/mnist --repeats 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples" / "mnist_label"
TARGET = 95.0
CONFIGS = {"fast": EXAMPLES / "fast.json", "recommended": EXAMPLES / "recommended.json"}


def run_once(config: Path, data_dir: str, out: Path) -> dict:
    argv = [sys.executable, "-m", "condgen", "train", "--config", str(config), "--data-dir", data_dir,
            "--out", str(out), "--no-pictures"]
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr}")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    reached = next((r["epoch"] for r in rows if r["test_neg_elbo"] <= TARGET), None)
    return {"wall_seconds": round(wall, 2), "final_test_neg_elbo": rows[-1]["test_neg_elbo"], "epochs": len(rows),
            "first_epoch_at_target": reached, "train_seconds": [r["train_seconds"] for r in rows],
            "eval_seconds": [r["eval_seconds"] for r in rows]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("CONDGEN_DATA_DIR", "../shared/data/mnist"))
    parser.add_argument("--configs", nargs="+", default=["fast"], choices=sorted(CONFIGS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(HERE))
    args = parser.parse_args()
    import torch  # only for the record of the machine

    runs: dict[str, list[dict]] = {name: [] for name in args.configs}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for name in args.configs:
                result = run_once(CONFIGS[name], args.data_dir, Path(tmp) / f"{name}-{rep}")
                runs[name].append(result)
                print(f"{name} #{rep + 1}: {result['wall_seconds']:.1f} s, test -ELBO "
                      f"{result['final_test_neg_elbo']:.2f} nats", flush=True)
    machine = {"date": dt.date.today().isoformat(), "machine": platform.machine(), "cpus": os.cpu_count(),
               "torch": torch.__version__, "threads": torch.get_num_threads()}
    summary = {name: {"config": json.loads(CONFIGS[name].read_text()),
                      "median_wall_seconds": statistics.median(r["wall_seconds"] for r in rs),
                      "median_final_test_neg_elbo": statistics.median(r["final_test_neg_elbo"] for r in rs),
                      "runs": rs} for name, rs in runs.items()}
    out = Path(args.out)
    (out / "time_to_quality.json").write_text(json.dumps({"machine": machine, "target": TARGET, **summary}, indent=2) + "\n")
    lines = [f"# Time to {TARGET:g} nats test -ELBO on MNIST, from a cold start", "",
             f"`python benchmarks/time_to_quality.py --repeats {args.repeats}` on {machine['date']} ({machine['machine']}, "
             f"{machine['cpus']} CPUs, torch {machine['torch']}, {machine['threads']} threads): the whole "
             "`condgen train --config FILE --no-pictures` command, medians of the runs, alternated.", "",
             "| configuration | wall time (s) | final test -ELBO (nats) | epochs | first epoch at target |",
             "|---|---:|---:|---:|---:|"]
    for name, s in summary.items():
        first = [r["first_epoch_at_target"] for r in s["runs"]]
        lines.append(f"| `{CONFIGS[name].relative_to(HERE.parent)}` | {s['median_wall_seconds']:.1f} | "
                     f"{s['median_final_test_neg_elbo']:.2f} | {s['runs'][0]['epochs']} | {first[0]} |")
    (out / "TIME_TO_QUALITY.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
