"""Start-up time of the ``condgen`` command, in fresh processes, for this tree and (``--base REV``) another revision.

Each command runs as a user runs it, through the installed ``condgen`` console script; the tree
under test comes first on ``PYTHONPATH`` (its ``condgen`` and its bundled plugins), and the
installed entry points (``label = condgen_label``, ...) resolve to that tree's modules. The
commands and the trees alternate, ``--repeats`` times (a shared machine drifts between runs, so
only alternated medians compare)::

    python benchmarks/startup.py --base 5067f32 --run runs/label --repeats 7

``import torch`` alone is measured too: the floor of any command that needs a model. Prints a
table of medians (seconds) and writes every time and the medians as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Only the plugins that come with condgen load (CONDGEN_PLUGINS), so an installed third-party plugin
#: that imports torch in its entry-point module does not hide what condgen itself costs.
BUNDLED = "condgen-label,condgen-inpaint,condgen-regression"
FLOOR = "python -c 'import torch'"


def worktree(rev: str, root: Path) -> Path:
    path = root / "base"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-f", str(path), rev], check=True,
                   capture_output=True)
    return path


def tree_env(tree: Path, all_plugins: bool) -> dict[str, str]:
    paths = [tree, *sorted((tree / "plugins").glob("condgen-*"))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, paths))}
    env.pop("CONDGEN_BLOCK_PLUGINS", None)
    if all_plugins:
        env.pop("CONDGEN_PLUGINS", None)
    else:
        env["CONDGEN_PLUGINS"] = BUNDLED
    return env


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    out = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} (PYTHONPATH={env['PYTHONPATH']}) failed:\n{out.stderr}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", metavar="REV", help="also measure this git revision (in a temporary worktree)")
    parser.add_argument("--run", metavar="DIR", help="a trained run directory: also time `condgen sample DIR`")
    parser.add_argument("--condition", default="label=all", help="the sample command's --condition (default label=all)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--all-plugins", action="store_true",
                        help=f"load every installed plugin (default: only the bundled ones, {BUNDLED})")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "startup.json"), help="JSON file for the figures")
    args = parser.parse_args()
    condgen = shutil.which("condgen", path=str(Path(sys.executable).parent)) or shutil.which("condgen")
    if condgen is None:
        parser.error("no `condgen` console script next to this Python or on PATH: pip install -e . first")
    scratch = Path(tempfile.mkdtemp(prefix="condgen-startup-"))
    trees = {"current": REPO}
    if args.base:
        trees = {f"base {args.base}": worktree(args.base, scratch), **trees}
    commands = {
        "condgen --help": [condgen, "--help"],
        "condgen --version": [condgen, "--version"],
        "condgen train --help": [condgen, "train", "--help"],
        "condgen plugins": [condgen, "plugins"],
    }
    if args.run:
        commands["condgen sample RUN --num 16 --out x.png"] = [
            condgen, "sample", str(Path(args.run).resolve()), "--condition", args.condition, "--num", "16",
            "--out", str(scratch / "x.png")]
    times: dict[str, dict[str, list[float]]] = {c: {t: [] for t in trees} for c in commands}
    times[FLOOR] = {"any": []}
    try:
        for i in range(args.repeats):
            for name, argv in commands.items():
                # alternate which tree goes first, so neither always runs on a warmer cache
                for tree in (list(trees) if i % 2 == 0 else list(reversed(trees))):
                    times[name][tree].append(timed(argv, tree_env(trees[tree], args.all_plugins), scratch))
            times[FLOOR]["any"].append(timed([sys.executable, "-c", "import torch"], dict(os.environ), scratch))
            print(f"repeat {i + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    finally:
        if args.base:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(trees[f"base {args.base}"])],
                           capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
    medians = {c: {t: round(statistics.median(ts), 3) for t, ts in per.items()} for c, per in times.items()}

    columns = list(trees)
    rows = [["command", *(f"{t} (s)" for t in columns)]]
    for command, per in medians.items():
        rows.append([command, *(f"{per.get(t, per.get('any')):.2f}" for t in columns)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print("| " + " | ".join(c.ljust(w) for c, w in zip(rows[0], widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows[1:]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")

    torch_version = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"],
                                   capture_output=True, text=True).stdout.strip()
    machine = {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
               "system": platform.platform(), "python": platform.python_version(), "torch": torch_version}
    Path(args.out).write_text(json.dumps({
        "machine": machine, "repeats": args.repeats, "trees": {t: f"git worktree of {args.base}" if p != REPO else f"working tree {p}" for t, p in trees.items()},
        "plugins": "all installed" if args.all_plugins else BUNDLED, "median_seconds": medians, "seconds": times,
    }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
