"""Data bigger than memory: an image folder decoded once into the cache, then trained on from the disk.

For each size (default 10,000 and 200,000 images, 64x64 RGB, ten classes of PNGs made by this script):

- **decode**: the first run, with an empty cache: images decoded (and written to the cache) per second, on
  all the cores and (for the smallest size) on one;
- **open**: a later run's loading, the cache's checksums checked, no image decoded;
- **read**: random batches of 128 read from the cache (``keep=disk``) per second;
- **train**: one epoch of ``condgen train`` from the disk (``keep=disk``) and from memory (``keep=memory``),
  its peak RSS (the training process's ``ru_maxrss``) and seconds, alternated and repeated, medians.

The issue's target: the peak RSS of the largest and the smallest sizes from the disk within 300 MB of each
other. Each measurement is a fresh process; the folders and the cache go under ``--work`` (kept between
runs of this script: made once). Needs a quiet machine: torch slows down many times over when another job
shares the cores.

    python benchmarks/image_cache.py --work /tmp/image-cache --sizes 10000 200000 --repeats 3

writes ``benchmarks/image_cache.json`` and prints a Markdown table (``benchmarks/IMAGE_CACHE.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SIDE, CLASSES = 64, 10
TRAIN_FLAGS = ["--conditioner", "label:num_classes=10", "--latent-dim", "16", "--hidden", "512",
               "--batch-size", "128", "--epochs", "1", "--device", "cpu"]


def _write_images(args: tuple[Path, int, int]) -> None:
    from PIL import Image

    root, start, stop = args
    for i in range(start, stop):
        rng = np.random.default_rng(i)
        cls = i % CLASSES
        coarse = rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)  # each image its own: 192 random levels
        coarse[..., cls % 3] = np.clip(coarse[..., cls % 3].astype(int) + 40 * (cls // 3), 0, 255)
        image = Image.fromarray(coarse).resize((SIDE, SIDE), Image.Resampling.BICUBIC)
        image.save(root / f"c{cls}" / f"{i:06d}.png")


def make_folder(root: Path, n: int) -> Path:
    """``n`` distinct 64x64 RGB PNGs in ten class folders (made once; a finished folder has ``done``)."""
    if (root / "done").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    for c in range(CLASSES):
        (root / f"c{c}").mkdir(parents=True)
    chunks = [(root, a, min(a + 2000, n)) for a in range(0, n, 2000)]
    with ProcessPoolExecutor(len(os.sched_getaffinity(0))) as pool:
        list(pool.map(_write_images, chunks))
    (root / "done").write_text(str(n))
    return root


def child(argv: list[str]) -> None:
    """One measurement in this fresh process; prints a JSON line."""
    what, root, keep = argv[0], Path(argv[1]), argv[2]
    if what == "decode-one-core":  # the same decoding, on one core: what the second one adds
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        what = "decode"
    import torch

    from condgen.data.folder import ImageFolderOptions, read_image_folder

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    options = ImageFolderOptions(keep=keep, test_fraction=0.05)
    out: dict[str, float] = {}
    if what in ("decode", "open"):
        start = time.perf_counter()
        data = read_image_folder(root, options)
        out["seconds"] = time.perf_counter() - start
        out["images"] = len(data.train["image"]) + len(data.test["image"])
        if what == "open":  # random batches, as an epoch reads them
            images = data.train["image"]
            gen = torch.Generator().manual_seed(0)
            perm = torch.randperm(len(images), generator=gen)
            batches = min(len(images) // 128, 400)
            start = time.perf_counter()
            for b in range(batches):
                images[perm[b * 128:(b + 1) * 128]]
            out["read_per_second"] = batches * 128 / (time.perf_counter() - start)
    else:
        from condgen.cli import main

        run = Path(argv[3])
        shutil.rmtree(run, ignore_errors=True)
        code = main(["train", "--dataset", "image-folder", "--data-dir", str(root), "--data-option", f"keep={keep}",
                     "--data-option", "test_fraction=0.05", *TRAIN_FLAGS, "--out", str(run)])
        assert code == 0, code
        row = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
        out.update(train_seconds=row["train_seconds"], test_neg_elbo=row["test_neg_elbo"])
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def measure(*argv: str, env: dict[str, str]) -> dict:
    done = subprocess.run([sys.executable, __file__, "_child", *argv], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"measurement {argv} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if sys.argv[1:2] == ["_child"]:
        return child(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/image-cache"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 200_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-repeats", type=int, nargs="+", help="repeats of the training epochs, per size "
                        "(default: --repeats each)")
    parser.add_argument("--out", type=Path, default=HERE / "image_cache.json")
    args = parser.parse_args()
    env = {**os.environ, "CONDGEN_CACHE_DIR": str(args.work / "cache")}
    results = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": len(os.sched_getaffinity(0)),
                           "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}, "sizes": {}}
    import torch

    results["machine"]["torch"] = torch.__version__
    results["load_before"] = [round(x, 2) for x in os.getloadavg()]
    for n, train_repeats in zip(args.sizes, args.train_repeats or [args.repeats] * len(args.sizes)):
        root = make_folder(args.work / f"folder-{n}", n)
        shutil.rmtree(args.work / "cache" / "image-folder", ignore_errors=True)
        if n == min(args.sizes):
            row_one = measure("decode-one-core", str(root), "disk", env=env)
            shutil.rmtree(args.work / "cache" / "image-folder", ignore_errors=True)
        row: dict = {"decode": measure("decode", str(root), "disk", env=env)}
        if n == min(args.sizes):
            row["decode_one_core"] = row_one
        row["open"] = [measure("open", str(root), "disk", env=env) for _ in range(args.repeats)]
        row["train"] = {"disk": [], "memory": []}
        for _ in range(train_repeats):
            for keep in ("disk", "memory"):  # alternated: the machine's drift falls on both
                row["train"][keep].append(measure("train", str(root), keep, str(args.work / "run"), env=env))
        results["sizes"][str(n)] = row
        print(json.dumps({n: summary(row)}), flush=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    m = results["machine"]
    text = (f"`python benchmarks/image_cache.py --sizes {' '.join(map(str, args.sizes))} --repeats {args.repeats}` on "
            f"{m['date']} ({m['cpu']}, {m['cores']} cores, torch {m['torch']}, Python {m['python']}; load average "
            f"before: {results['load_before']}). 64x64 RGB PNGs in ten class folders, 5 % held out as the test split; "
            "one epoch of an MLP (latent 16, 512 hidden, batch 128) per training run; medians of the repeats, "
            "each a fresh process, disk and memory alternated.\n\n" + table(results) + "\n")
    (HERE / "IMAGE_CACHE.md").write_text(text)
    print(text)


def summary(row: dict) -> dict:
    med = statistics.median
    s = {"images": row["decode"]["images"], "decode_per_s": row["decode"]["images"] / row["decode"]["seconds"],
         "decode_rss": row["decode"]["peak_rss_mb"], "open_s": med(r["seconds"] for r in row["open"]),
         "open_rss": med(r["peak_rss_mb"] for r in row["open"]),
         "read_per_s": med(r["read_per_second"] for r in row["open"])}
    for keep, runs in row["train"].items():
        s[f"{keep}_rss"] = med(r["peak_rss_mb"] for r in runs)
        s[f"{keep}_s"] = med(r["train_seconds"] for r in runs)
        s[f"{keep}_per_s"] = s["images"] * 0.95 / s[f"{keep}_s"]
        s[f"{keep}_elbo"] = [r["test_neg_elbo"] for r in runs]
    return s


def table(results: dict) -> str:
    lines = ["| images | decoded / s (first run) | later run's load (s) | read from the cache / s | "
             "epoch from disk (s) | epoch in memory (s) | trained / s | peak RSS, disk (MB) | peak RSS, memory (MB) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    one_core = ""
    for n, row in results["sizes"].items():
        s = summary(row)
        if "decode_one_core" in row:
            d = row["decode_one_core"]
            one_core = (f"\n\nDecoding on one core ({int(n):,} images): {d['images'] / d['seconds']:,.0f} images / s, "
                        f"against {s['decode_per_s']:,.0f} on {results['machine']['cores']}.")
        lines.append(f"| {int(n):,} | {s['decode_per_s']:,.0f} | {s['open_s']:.1f} | {s['read_per_s']:,.0f} | "
                     f"{s['disk_s']:.1f} | {s['memory_s']:.1f} | {s['disk_per_s']:,.0f} | {s['disk_rss']:,.0f} | "
                     f"{s['memory_rss']:,.0f} |")
    return "\n".join(lines) + one_core


if __name__ == "__main__":
    main()
