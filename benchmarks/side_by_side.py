"""condgen against a plain PyTorch port of the seed, and against the floor, side by side on one machine.

Four measurements, each in a fresh process, alternated ``--repeats`` times (these shared machines
drift by a third between runs, so only alternated medians are comparable):

- ``reference``: the seed as most users write it in plain PyTorch: torchvision's MNIST with
  ``ToTensor``, a ``DataLoader`` (batch 50, shuffle), the seed's MLP CVAE (one-hot label, latent 2,
  512 hidden ReLU, Bernoulli), Adam 1e-3; the training seconds of each epoch, and the final test -ELBO;
- ``condgen``: ``condgen.train`` on the same configuration (``metrics.jsonl``'s ``train_seconds``);
- ``floor_matmul``: only the matrix multiplications of one epoch of the seed model (1,200 steps of
  batch 50, forward and backward, on tensors in place: ``scaling.matmul_step``): the arithmetic no
  implementation avoids;
- ``floor_step``: condgen's own training step (forward, backward, fused Adam) on one batch already in
  place, 1,200 times: everything but the data path.

Writes ``side_by_side.json`` and ``SIDE_BY_SIDE.md`` (a table of medians and ratios) to ``--out``::

    python benchmarks/side_by_side.py --data-dir ../shared/data/mnist --epochs 2 --repeats 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from compare_revisions import TRAIN as CONDGEN  # noqa: E402  (condgen.train on the seed configuration)

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

REFERENCE = r'''
import json, sys, time
import torch, torch.nn as nn, torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

root, epochs = sys.argv[1], int(sys.argv[2])
torch.manual_seed(0)
train = datasets.MNIST(root, train=True, download=False, transform=transforms.ToTensor())
test = datasets.MNIST(root, train=False, download=False, transform=transforms.ToTensor())
loader = DataLoader(train, batch_size=50, shuffle=True)


class CVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc, self.mu, self.logvar = nn.Linear(784 + 10, 512), nn.Linear(512, 2), nn.Linear(512, 2)
        self.dec1, self.dec2 = nn.Linear(2 + 10, 512), nn.Linear(512, 784)

    def forward(self, x, y):
        c = F.one_hot(y, 10).float()
        h = F.relu(self.enc(torch.cat([x.view(-1, 784), c], 1)))
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.dec2(F.relu(self.dec1(torch.cat([z, c], 1)))), mu, logvar


def neg_elbo(logits, x, mu, logvar):  # summed over the batch
    bce = F.binary_cross_entropy_with_logits(logits, x.view(-1, 784), reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


model = CVAE()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
seconds = []
for epoch in range(epochs):
    model.train()
    start = time.perf_counter()
    for x, y in loader:
        logits, mu, logvar = model(x, y)
        loss = neg_elbo(logits, x, mu, logvar) / len(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds.append(time.perf_counter() - start)
model.eval()
total = 0.0
with torch.no_grad():
    for x, y in DataLoader(test, batch_size=1000):
        logits, mu, logvar = model(x, y)
        total += float(neg_elbo(logits, x, mu, logvar))
print(json.dumps({"epoch_seconds": seconds, "test_neg_elbo": total / len(test)}))
'''

FLOOR_MATMUL = r'''
import json, sys, time
sys.path.insert(0, "benchmarks")
from scaling import matmul_step

step = matmul_step(batch=50, hidden=512, latent=2)
def epoch():
    for _ in range(1200):
        step()
epoch()  # warm up
times = []
for _ in range(3):
    start = time.perf_counter(); epoch(); times.append(time.perf_counter() - start)
print(json.dumps({"epoch_seconds": [min(times)]}))
'''

FLOOR_STEP = r'''
import json, sys, time, torch
sys.path.insert(0, "benchmarks")
from profile_step import seed_run, train_step
from condgen.data.splits import index_batch

run, opt, train = seed_run(sys.argv[1])
batch = index_batch(train, torch.arange(50))  # as training makes a batch: the images' levels as floats
step = train_step(run, opt, torch.Generator().manual_seed(0))
def epoch():
    for _ in range(1200):
        step(batch)
epoch()
start = time.perf_counter(); epoch()
print(json.dumps({"epoch_seconds": [time.perf_counter() - start]}))
'''

SCRIPTS = {"reference": REFERENCE, "condgen": CONDGEN, "floor_matmul": FLOOR_MATMUL, "floor_step": FLOOR_STEP}


def torchvision_root(data_dir: Path, cache: Path) -> Path:
    """A folder torchvision's MNIST reads without downloading: ``ROOT/MNIST/raw/`` with the four files
    uncompressed (made once, from ``data_dir``'s files)."""
    raw = cache / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        if (raw / name).is_file():
            continue
        if (data_dir / name).is_file():
            shutil.copyfile(data_dir / name, raw / name)
        else:
            with gzip.open(data_dir / f"{name}.gz") as src, open(raw / name, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return cache


def run_once(kind: str, data_dir: Path, tv_root: Path, epochs: int) -> dict:
    arg = str(tv_root) if kind == "reference" else str(data_dir)
    out = subprocess.run([sys.executable, "-c", SCRIPTS[kind], arg, str(epochs)], capture_output=True, text=True,
                         cwd=HERE.parent, env={**os.environ, "TQDM_DISABLE": "1"})
    if out.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if "train_seconds" in result:  # condgen's metrics name
        result["epoch_seconds"] = result.pop("train_seconds")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("CONDGEN_DATA_DIR", "../shared/data/mnist"))
    parser.add_argument("--epochs", type=int, default=2, help="epochs per training run (each epoch is a sample)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "condgen" / "torchvision-mnist"))
    parser.add_argument("--out", default=str(HERE))
    args = parser.parse_args()
    data_dir = Path(args.data_dir).expanduser()
    tv_root = torchvision_root(data_dir, Path(args.cache).expanduser())

    runs: dict[str, list[dict]] = {kind: [] for kind in SCRIPTS}
    for repeat in range(args.repeats):
        order = list(SCRIPTS) if repeat % 2 == 0 else list(reversed(SCRIPTS))  # swap who goes first
        for kind in order:
            result = run_once(kind, data_dir, tv_root, args.epochs)
            runs[kind].append(result)
            print(f"repeat {repeat + 1}/{args.repeats}  {kind:13s} {result}", flush=True)

    median = {kind: statistics.median(s for r in rs for s in r["epoch_seconds"]) for kind, rs in runs.items()}
    nll = {kind: statistics.median(r["test_neg_elbo"] for r in rs) for kind, rs in runs.items()
           if "test_neg_elbo" in rs[0]}
    import torch

    result = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
                   f"{torch.get_num_threads()} threads",
        "epochs": args.epochs, "repeats": args.repeats, "median_epoch_seconds": median,
        "reference_over_condgen": median["reference"] / median["condgen"],
        "condgen_over_floor_matmul": median["condgen"] / median["floor_matmul"],
        "condgen_over_floor_step": median["condgen"] / median["floor_step"],
        "test_neg_elbo_after_epochs": nll, "runs": runs,
    }
    out = Path(args.out)
    (out / "side_by_side.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = [
        "| measurement | median s/epoch | vs condgen |", "|---|---:|---:|",
        *(f"| {kind} | {median[kind]:.2f} | {median[kind] / median['condgen']:.2f}x |" for kind in SCRIPTS),
    ]
    text = "\n".join([
        "# condgen against a plain PyTorch port of the seed, and the floor", "",
        f"`python benchmarks/side_by_side.py --epochs {args.epochs} --repeats {args.repeats}` on {result['date']} "
        f"({result['machine']}): each measurement in its own process, alternated, medians of "
        f"{args.epochs * args.repeats} epochs (the floors: of {args.repeats} runs).", "", *rows, "",
        f"condgen is **{result['reference_over_condgen']:.2f}x** the reference's speed; its epoch is "
        f"{result['condgen_over_floor_matmul']:.2f}x the matrix multiplications alone and "
        f"{result['condgen_over_floor_step']:.2f}x its own step without the data path. Test -ELBO after "
        f"{args.epochs} epochs (median): " + ", ".join(f"{k} {v:.2f}" for k, v in nll.items()) + " nats.", "",
    ])
    (out / "SIDE_BY_SIDE.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
