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
  place, 1,200 times: everything but the data path;
- ``pythae``: a library peer, pythae (benchmark_VAE) 0.1.2, the VAE library users pick today: its ``VAE`` with
  the seed's MLP and no condition (pythae has none; encoder 784 -> 512 ReLU -> mean and log-variance of a
  latent of 2, decoder 2 -> 512 ReLU -> 784 sigmoid, BCE), its own ``BaseTrainer``, batch 50, Adam 1e-3; the
  seconds of each epoch (its ``train_step``), and its own importance-sampled NLL (``get_nll``, S = 100) on the
  first 1,000 test images;
- ``condgen_vae``: condgen with no conditioner on the same model and training, and its own importance-sampled
  NLL (``Run.log_likelihood``, S = 100) on the same images.

pythae is installed only for this script, never as condgen's dependency: into a virtual environment of its own
(``--pythae-venv``, made on first use with pip) that sees this environment's torch through a ``.pth`` file.
``--no-pythae`` leaves both peers out.

Writes ``side_by_side.json`` and ``SIDE_BY_SIDE.md`` (a table of medians and ratios) to ``--out``::

    python benchmarks/side_by_side.py --data-dir ../shared/data/mnist --epochs 2 --repeats 3
    python benchmarks/side_by_side.py --data-dir ../shared/data/mnist --epochs 5 --repeats 1  # the peer's figures
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

#: The first test images both libraries' importance-sampled NLL is taken on, and the samples per image.
NLL_IMAGES, NLL_SAMPLES = 1000, 100

PYTHAE = r'''
import gzip, json, sys, tempfile, time
import numpy as np, torch, torch.nn as nn
from pythae.data.datasets import BaseDataset
from pythae.models import VAE, VAEConfig
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder
from pythae.trainers import BaseTrainer, BaseTrainerConfig

data_dir, epochs, n_images, n_samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])


def images(name):
    with gzip.open(f"{data_dir}/{name}-images-idx3-ubyte.gz") as f:
        raw = np.frombuffer(f.read(), np.uint8, offset=16)
    return torch.from_numpy(raw.reshape(-1, 1, 28, 28).astype(np.float32) / 255)


class Encoder(BaseEncoder):
    def __init__(self):
        super().__init__()
        self.hidden, self.mu, self.logvar = nn.Linear(784, 512), nn.Linear(512, 2), nn.Linear(512, 2)

    def forward(self, x):
        h = torch.relu(self.hidden(x.reshape(x.shape[0], -1)))
        return ModelOutput(embedding=self.mu(h), log_covariance=self.logvar(h))


class Decoder(BaseDecoder):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 512), nn.ReLU(), nn.Linear(512, 784), nn.Sigmoid())

    def forward(self, z):
        return ModelOutput(reconstruction=self.net(z).reshape(z.shape[0], 1, 28, 28))


torch.manual_seed(0)
config = VAEConfig(input_dim=(1, 28, 28), latent_dim=2, reconstruction_loss="bce")
model = VAE(config, encoder=Encoder(), decoder=Decoder())
train = images("train")
settings = BaseTrainerConfig(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=50, num_epochs=epochs,
                             learning_rate=1e-3, optimizer_cls="Adam", seed=0)
trainer = BaseTrainer(model, train_dataset=BaseDataset(train, torch.zeros(len(train))), training_config=settings)
seconds, train_step = [], trainer.train_step


def timed_step(epoch):
    start = time.perf_counter()
    out = train_step(epoch)
    seconds.append(time.perf_counter() - start)
    return out


trainer.train_step = timed_step
trainer.train()
model.eval()
start = time.perf_counter()
with torch.no_grad():
    nll = -float(model.get_nll(images("t10k")[:n_images], n_samples=n_samples, batch_size=n_samples))
print(json.dumps({"epoch_seconds": seconds, "is_nll": nll, "is_nll_seconds": time.perf_counter() - start}))
'''

CONDGEN_VAE = r'''
import json, sys, tempfile, time, torch, condgen
from condgen.data.splits import index_batch
from condgen.runs.datasets import load_dataset

data_dir, epochs, n_images, n_samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
cfg = condgen.RunConfig.parse({"conditioners": [], "model": {"latent_dim": 2, "hidden": [512]},
    "data": {"data_dir": data_dir}, "train": {"epochs": epochs, "batch_size": 50, "seed": 0}})
out = tempfile.mkdtemp() + "/run"
condgen.train(cfg, out, pictures=False, progress=False, log=lambda s: None)
rows = [json.loads(line) for line in open(out + "/metrics.jsonl")]
run = condgen.load_run(out)
batch = index_batch(load_dataset(cfg.data).test, torch.arange(n_images))
start = time.perf_counter()
nll = -float(run.log_likelihood(batch, samples=n_samples, generator=torch.Generator().manual_seed(0)).mean())
print(json.dumps({"epoch_seconds": [r["train_seconds"] for r in rows], "is_nll": nll,
                  "is_nll_seconds": time.perf_counter() - start}))
'''

SCRIPTS = {"reference": REFERENCE, "condgen": CONDGEN, "floor_matmul": FLOOR_MATMUL, "floor_step": FLOOR_STEP,
           "pythae": PYTHAE, "condgen_vae": CONDGEN_VAE}
#: The library peer's measurements, which need pythae's environment (``--no-pythae`` leaves them out).
PEERS = ("pythae", "condgen_vae")


def pythae_python(venv: Path) -> Path:
    """The interpreter of a virtual environment that has pythae and sees this one's packages (torch, condgen)
    through a ``.pth`` file: made with pip on first use, for this script alone."""
    python = venv / "bin" / "python"
    if python.is_file() and subprocess.run([str(python), "-c", "import pythae"], capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"], check=True,
                          capture_output=True, text=True).stdout.strip()
    ours = [p for p in sys.path if p.endswith("site-packages")]
    Path(site, "condgen-benchmark.pth").write_text("\n".join(ours) + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "pythae==0.1.2"], check=True)
    return python


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


def run_once(kind: str, data_dir: Path, tv_root: Path, epochs: int, python: Path | None = None) -> dict:
    arg = str(tv_root) if kind == "reference" else str(data_dir)
    extra = [str(NLL_IMAGES), str(NLL_SAMPLES)] if kind in PEERS else []
    interpreter = str(python) if kind == "pythae" else sys.executable
    out = subprocess.run([interpreter, "-c", SCRIPTS[kind], arg, str(epochs), *extra], capture_output=True,
                         text=True, cwd=HERE.parent, env={**os.environ, "TQDM_DISABLE": "1"})
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
    parser.add_argument("--pythae-venv", default=str(Path.home() / ".cache" / "condgen" / "pythae-venv"))
    parser.add_argument("--no-pythae", action="store_true", help="leave out the library peer (pythae, condgen_vae)")
    parser.add_argument("--out", default=str(HERE))
    args = parser.parse_args()
    data_dir = Path(args.data_dir).expanduser()
    tv_root = torchvision_root(data_dir, Path(args.cache).expanduser())
    kinds = [k for k in SCRIPTS if not (args.no_pythae and k in PEERS)]
    python = None if args.no_pythae else pythae_python(Path(args.pythae_venv).expanduser())

    runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
    for repeat in range(args.repeats):
        order = kinds if repeat % 2 == 0 else list(reversed(kinds))  # swap who goes first
        for kind in order:
            result = run_once(kind, data_dir, tv_root, args.epochs, python)
            runs[kind].append(result)
            print(f"repeat {repeat + 1}/{args.repeats}  {kind:13s} {result}", flush=True)

    median = {kind: statistics.median(s for r in rs for s in r["epoch_seconds"]) for kind, rs in runs.items()}
    nll = {kind: statistics.median(r["test_neg_elbo"] for r in rs) for kind, rs in runs.items()
           if "test_neg_elbo" in rs[0]}
    is_nll = {kind: {"nll": statistics.median(r["is_nll"] for r in rs),
                     "seconds": statistics.median(r["is_nll_seconds"] for r in rs)}
              for kind, rs in runs.items() if "is_nll" in rs[0]}
    import torch

    result = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
                   f"{torch.get_num_threads()} threads",
        "epochs": args.epochs, "repeats": args.repeats, "median_epoch_seconds": median,
        "reference_over_condgen": median["reference"] / median["condgen"],
        "condgen_over_floor_matmul": median["condgen"] / median["floor_matmul"],
        "condgen_over_floor_step": median["condgen"] / median["floor_step"],
        "test_neg_elbo_after_epochs": nll, "is_nll_after_epochs": is_nll,
        "is_nll_images": NLL_IMAGES, "is_nll_samples": NLL_SAMPLES, "runs": runs,
    }
    out = Path(args.out)
    (out / "side_by_side.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = [
        "| measurement | median s/epoch | vs condgen |", "|---|---:|---:|",
        *(f"| {kind} | {median[kind]:.2f} | {median[kind] / median['condgen']:.2f}x |" for kind in kinds),
    ]
    peer = [
        "", f"The library peer, no condition: each library's own importance-sampled NLL (S = {NLL_SAMPLES}) on the "
        f"first {NLL_IMAGES:,} test images after {args.epochs} epochs (medians):", "",
        "| library | s/epoch | NLL (nats) | seconds to compute it |", "|---|---:|---:|---:|",
        *(f"| {kind} | {median[kind]:.2f} | {v['nll']:.2f} | {v['seconds']:.2f} |" for kind, v in is_nll.items()),
    ] if is_nll else []
    text = "\n".join([
        "# condgen against a plain PyTorch port of the seed, and the floor", "",
        f"`python benchmarks/side_by_side.py --epochs {args.epochs} --repeats {args.repeats}` on {result['date']} "
        f"({result['machine']}): each measurement in its own process, alternated, medians of "
        f"{args.epochs * args.repeats} epochs (the floors: of {args.repeats} runs).", "", *rows, "",
        f"condgen is **{result['reference_over_condgen']:.2f}x** the reference's speed; its epoch is "
        f"{result['condgen_over_floor_matmul']:.2f}x the matrix multiplications alone and "
        f"{result['condgen_over_floor_step']:.2f}x its own step without the data path. Test -ELBO after "
        f"{args.epochs} epochs (median): " + ", ".join(f"{k} {v:.2f}" for k, v in nll.items()) + " nats.", *peer, "",
    ])
    (out / "SIDE_BY_SIDE.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
