"""The figures issue #15 asks to keep: a seed training run's peak memory, ``run.sample`` of 10,000 images,
and the ``condgen sample`` command against ``import torch``.

- peak memory (target < 1 GiB): the most resident memory (max RSS) of a seed-configuration training run on
  all of MNIST (60,000 training and 10,000 test items, ``--epochs``, the pictures written as the command
  line writes them), through ``condgen.train`` (the child's own ``getrusage(RUSAGE_SELF)``) and through
  ``python -m condgen train ...`` (``getrusage(RUSAGE_CHILDREN)`` of a fresh parent that ran only it);
- ``run.sample`` (target < 0.5 s): ``condgen.load_run(RUN).sample({"label": 0, 1, ..., 9, 0, ...},
  num=10000)``, once to warm up, then ``--calls`` times, in each of ``--repeats`` fresh processes; median;
- ``condgen sample``: ``python -m condgen sample RUN --condition label=all`` with ``--num 10 --out x.png``
  (100 samples) and ``--num 1000 --out x.npy`` (10,000), against ``python -c "import torch"``, alternated,
  medians; condgen's own share is the difference. Where it goes: ``python -X importtime`` (the imports
  outside torch's, torch's time taken out of its importers') and cProfile of the command after torch is
  imported (condgen's functions, and the modules, by cumulative time), one run each.

RUN is ``--run DIR``, else the run that the first command-line memory measurement trained. The commands
load only the bundled plugins, as ``startup.py``'s do. Writes ``holds.json`` and ``HOLDS.md`` to ``--out``::

    python benchmarks/holds.py --data-dir ../shared/data/mnist --epochs 2 --repeats 5

``--quick`` checks the script (1 epoch on 2,000 items, 1 repeat, into a temporary folder).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from scaling import child_facts, describe_machine, in_child, machine_info, max_rss_bytes  # noqa: E402
from startup import BUNDLED, timed, tree_env  # noqa: E402

GIB = 2**30
TARGETS = {"peak_gib": 1.0, "run_sample_seconds": 0.5}
SAMPLE_NUM = 10_000
#: ``condgen sample`` arguments after RUN, by what they write ({out} is a scratch folder).
SAMPLE_COMMANDS = {
    "100 samples to .png": ["--condition", "label=all", "--num", "10", "--out", "{out}/x.png"],
    "10,000 samples to .npy": ["--condition", "label=all", "--num", "1000", "--out", "{out}/x.npy"],
}
PROFILED = "10,000 samples to .npy"


# -- children ------------------------------------------------------------------------------------
def train_peak(data_dir: str, epochs: int, out: str, limits: Mapping[str, int]) -> dict[str, Any]:
    """``condgen.train`` of the seed configuration with pictures, as the command line trains; this process's peak."""
    import condgen
    from profile_step import seed_config

    start = time.perf_counter()
    condgen.train(seed_config(data_dir, train={"epochs": epochs}, data=limits), out, pictures=True, progress=False,
                  log=lambda line: None)
    return {"seconds": time.perf_counter() - start, **child_facts()}


def command_peak(argv: list[str]) -> dict[str, Any]:
    """Run ``argv`` (this process runs nothing else): its wall time and peak memory, from ``RUSAGE_CHILDREN``."""
    start = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{out.stderr}")
    return {"seconds": time.perf_counter() - start, "max_rss_bytes": max_rss_bytes(resource.RUSAGE_CHILDREN)}


def sample_seconds(run_dir: str, num: int, calls: int) -> dict[str, Any]:
    """``load_run`` once, then ``run.sample`` of ``num`` images (labels 0, 1, ... in turn) once untimed and ``calls`` times."""
    import torch

    import condgen

    start = time.perf_counter()
    run = condgen.load_run(run_dir)
    load = time.perf_counter() - start
    labels = torch.arange(num) % run.conditioners["label"].config.num_classes
    run.sample({"label": labels}, num=num, seed=0)  # warm up
    seconds = []
    for i in range(calls):
        start = time.perf_counter()
        run.sample({"label": labels}, num=num, seed=i)
        seconds.append(time.perf_counter() - start)
    return {"load_run_seconds": load, "sample_seconds": seconds, **child_facts()}


def short_name(file: str) -> str:
    """A profiled file as a module-ish path: relative to the repository or to site-packages."""
    path = Path(file)
    if path.is_relative_to(REPO) and ".venv" not in path.parts:
        return str(path.relative_to(REPO))
    return re.sub(r"^.*?/lib/python[\d.]+/((site|dist)-packages/)?", "", file)


def sample_profile(argv: list[str], top: int) -> dict[str, Any]:
    """cProfile of ``condgen <argv>`` in this process, after ``import torch``: the condgen functions and the
    modules imported, by cumulative seconds."""
    import cProfile
    import pstats

    start = time.perf_counter()
    importlib.import_module("torch")  # its import is the floor, not condgen's
    torch_seconds = time.perf_counter() - start
    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.enable()
    from condgen.cli import main

    code = main(argv)
    prof.disable()
    total = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"condgen {' '.join(argv)} exited with {code}")
    functions, modules = [], {}
    for (file, line, name), (_, calls, _, cumulative, _) in pstats.Stats(prof).stats.items():
        where = short_name(file)
        if name == "<module>":  # the slowest module of each package (torch's and condgen's: of each subpackage)
            parts = Path(where).parts or ("?",)
            package = "/".join(parts[:2] if parts[0] in ("torch", "condgen", "plugins") else parts[:1])
            if cumulative > modules.get(package, {"cumulative_s": -1.0})["cumulative_s"]:
                modules[package] = {"where": where, "calls": calls, "cumulative_s": cumulative}
        elif file.startswith(str(REPO)) and ".venv" not in file:
            functions.append({"where": f"{where}:{line} {name}", "calls": calls, "cumulative_s": cumulative})
    return {"torch_import_s": torch_seconds, "profiled_s": total, "functions": slowest(functions, top),
            "modules": slowest(list(modules.values()), top)}


def slowest(rows: list[dict[str, Any]], top: int) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: -r["cumulative_s"])[:top]


# -- the parent ----------------------------------------------------------------------------------
def imports_outside_torch(stderr: str, top: int) -> dict[str, Any]:
    """``-X importtime`` lines, ``import torch``'s subtree left out: its modules dropped, and its time taken out
    of the cumulative time of the modules that imported it (a torch submodule imported later, when condgen's
    code asks for it, stays). Their total, and the ``top`` by cumulative time."""
    entries = []
    for line in stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        indent = len(parts[2]) - len(parts[2].lstrip(" ")) - 1
        entries.append({"module": parts[2].strip(), "self_us": int(parts[0]), "cumulative_us": int(parts[1]),
                        "level": indent // 2})
    stack: list[dict[str, Any]] = []  # the ancestors of the entry at hand: parents are printed after children
    kept = []
    for e in reversed(entries):
        del stack[e["level"]:]
        in_torch = any(a["torch"] for a in stack)
        e["torch"] = in_torch or e["module"] == "torch"  # torch's submodules imported later are condgen's doing
        if e["torch"] and not in_torch:
            for a in stack:
                a["cumulative_us"] -= e["cumulative_us"]
        if not e["torch"]:
            kept.append(e)
        stack.append(e)
    rows = [{k: e[k] for k in ("module", "cumulative_us", "self_us", "level")} for e in kept]
    return {"outside_torch_us": sum(r["cumulative_us"] for r in rows if r["level"] == 0),
            "top": sorted(rows, key=lambda r: -r["cumulative_us"])[:top]}


def train_argv(data_dir: str, epochs: int, out: Path, limits: Mapping[str, int]) -> list[str]:
    extra = [a for k, v in limits.items() for a in (f"--{k.replace('_', '-')}", str(v))]
    return [sys.executable, "-m", "condgen", "train", "--conditioner", "label", "--latent-dim", "2", "--hidden", "512",
            "--epochs", str(epochs), "--data-dir", data_dir, "--out", str(out), *extra]


def sample_argv(run_dir: str, name: str, scratch: Path) -> list[str]:
    return ["sample", run_dir, *(a.format(out=scratch) for a in SAMPLE_COMMANDS[name])]


def table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return [f"| {' | '.join(head)} |", "|---|" + "---:|" * (len(head) - 1),  # the first column text, the rest figures
            *(f"| {' | '.join(map(str, r))} |" for r in rows), ""]


def markdown(result: Mapping[str, Any], command: str) -> str:
    m, med, imports = result["machine"], result["medians"], result["importtime"]
    peak = result["peak_gib"]
    holds = lambda ok: "yes" if ok else "**no**"  # noqa: E731
    rows = [
        [f"peak memory, `condgen.train` ({result['epochs']} epoch(s), pictures)", f"{peak['api']:.2f} GiB", "< 1 GiB",
         holds(peak["api"] < TARGETS["peak_gib"])],
        ["peak memory, `python -m condgen train ...`", f"{peak['cli']:.2f} GiB", "< 1 GiB",
         holds(peak["cli"] < TARGETS["peak_gib"])],
        [f"`run.sample` of {SAMPLE_NUM:,} after `load_run`", f"{med['run.sample']:.3f} s", "< 0.5 s",
         holds(med["run.sample"] < TARGETS["run_sample_seconds"])],
        ["`condgen.load_run(RUN)` (in the same processes)", f"{med['load_run']:.3f} s", "", ""],
        *([f"`condgen sample`, {name} (whole command)", f"{med[name]:.2f} s", "", ""] for name in SAMPLE_COMMANDS),
        ['`python -c "import torch"`', f"{med['import torch']:.2f} s", "", ""],
        *([f"condgen's own share, {name}", f"{med[name] - med['import torch']:.2f} s", "", ""]
          for name in SAMPLE_COMMANDS),
    ]
    prof = result["profile"]
    lines = [
        "# The figures issue #15 keeps", "",
        f"`{command}` on {m['date']} ({describe_machine(m)}; load average {m['load_average']}; plugins: {BUNDLED}). "
        f"Peak memory: the largest of {result['memory_repeats']} run(s) each way on all of MNIST (60,000 + 10,000 "
        f"items{', limited: ' + str(result['limits']) if result['limits'] else ''}); times: each in a fresh "
        f"process, alternated, medians of {result['repeats']} (`run.sample`: {result['calls']} calls in each).", "",
        *table(["figure", "median", "target", "holds"], rows),
        f"## Where condgen's own share goes (`condgen sample RUN {' '.join(SAMPLE_COMMANDS[PROFILED][:-1])} x.npy`)", "",
        f"Imports outside `import torch`'s (`python -X importtime`): {imports['outside_torch_us'] / 1e6:.2f} s in "
        "all (with Python's own start-up imports, which `import torch` has too, and the torch submodules imported "
        "later, at condgen's call); a module's cumulative time is without `import torch`'s subtree, and nested "
        "modules count in their importers' too:", "",
        *table(["module", "depth", "cumulative ms", "self ms"],
               [[f"`{r['module']}`", r["level"], f"{r['cumulative_us'] / 1000:.0f}", f"{r['self_us'] / 1000:.0f}"]
                for r in imports["top"]]),
        f"cProfile of the command after `import torch` ({prof['torch_import_s']:.2f} s, not profiled): "
        f"{prof['profiled_s']:.2f} s under the profiler. condgen's functions by cumulative time:", "",
        *table(["function", "calls", "cumulative s"],
               [[f"`{r['where']}`", r["calls"], f"{r['cumulative_s']:.3f}"] for r in prof["functions"]]),
        "Modules imported meanwhile, the slowest of each package, by cumulative time:", "",
        *table(["module", "cumulative s"], [[f"`{r['where']}`", f"{r['cumulative_s']:.3f}"] for r in prof["modules"]]),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("CONDGEN_DATA_DIR", "../shared/data/mnist"))
    parser.add_argument("--run", metavar="DIR", help="the trained run to sample (default: the one trained here)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the peak-memory training runs")
    parser.add_argument("--memory-repeats", type=int, default=1, help="training runs each way for the peak")
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes of each timed command")
    parser.add_argument("--calls", type=int, default=7, help="timed run.sample calls in each process")
    parser.add_argument("--top", type=int, default=12, help="rows of each breakdown table")
    parser.add_argument("--out", help="folder for the results (default: benchmarks/; with --quick a temporary one)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 epoch on 2,000 items, 1 repeat, 2 calls")
    args = parser.parse_args()
    limits = {"train_limit": 2000, "test_limit": 500} if args.quick else {}
    if args.quick:
        args.epochs, args.memory_repeats, args.repeats, args.calls = 1, 1, 1, 2
    out = Path(args.out or (tempfile.mkdtemp(prefix="condgen-holds-") if args.quick else HERE))
    data_dir = str(Path(args.data_dir).expanduser().resolve())
    env = tree_env(REPO, all_plugins=False)
    scratch = Path(tempfile.mkdtemp(prefix="condgen-holds-scratch-"))
    try:
        peaks: dict[str, list[dict[str, Any]]] = {"api": [], "cli": []}
        for i in range(args.memory_repeats):
            for kind in (["api", "cli"] if i % 2 == 0 else ["cli", "api"]):
                run_dir = scratch / f"{kind}-{i}"
                r = (in_child("train_peak", "holds", env, data_dir=data_dir, epochs=args.epochs, out=str(run_dir),
                              limits=limits) if kind == "api" else
                     in_child("command_peak", "holds", env, argv=train_argv(data_dir, args.epochs, run_dir, limits)))
                peaks[kind].append(r)
                print(f"peak memory ({kind}): {r['max_rss_bytes'] / GIB:.3f} GiB, {r['seconds']:.1f} s", flush=True)
        run = str(Path(args.run).resolve()) if args.run else str(scratch / "cli-0")

        argv = sample_argv(run, PROFILED, scratch)
        imports = subprocess.run([sys.executable, "-X", "importtime", "-m", "condgen", *argv], env=env, cwd=scratch,
                                 capture_output=True, text=True)
        if imports.returncode != 0:
            raise SystemExit(f"condgen {' '.join(argv)} failed:\n{imports.stderr[-3000:]}")
        profiled = in_child("sample_profile", "holds", env, argv=argv, top=args.top)

        kinds = ["run.sample", *SAMPLE_COMMANDS, "import torch"]
        times: dict[str, list[float]] = {k: [] for k in [*kinds, "load_run"]}
        children: list[dict[str, Any]] = [r for rs in peaks.values() for r in rs]
        for i in range(args.repeats):
            for kind in (kinds if i % 2 == 0 else kinds[::-1]):
                if kind == "run.sample":
                    r = in_child("sample_seconds", "holds", env, run_dir=run, num=SAMPLE_NUM, calls=args.calls)
                    times[kind] += r["sample_seconds"]
                    times["load_run"].append(r["load_run_seconds"])
                    children.append(r)
                elif kind == "import torch":
                    times[kind].append(timed([sys.executable, "-c", "import torch"], env, scratch))
                else:
                    times[kind].append(timed([sys.executable, "-m", "condgen", *sample_argv(run, kind, scratch)],
                                             env, scratch))
            print(f"repeat {i + 1}/{args.repeats}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in times.items()),
                  flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    result: dict[str, Any] = {
        "machine": machine_info({r["threads"] for r in children if "threads" in r}),
        "plugins": BUNDLED, "epochs": args.epochs, "limits": limits, "memory_repeats": args.memory_repeats,
        "repeats": args.repeats, "calls": args.calls, "run": args.run or "trained here by the first CLI run",
        "targets": TARGETS,
        "peak_gib": {kind: max(r["max_rss_bytes"] for r in rs) / GIB for kind, rs in peaks.items()},
        "medians": {k: statistics.median(v) for k, v in times.items()},
        "importtime": imports_outside_torch(imports.stderr, args.top), "profile": profiled,
        "peaks": peaks, "seconds": times,
    }
    command = (f"python benchmarks/holds.py --epochs {args.epochs} --repeats {args.repeats}"
               + (" --quick" if args.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    (out / "holds.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "HOLDS.md").write_text(markdown(result, command))
    print(markdown(result, command))
    print(f"wrote {out / 'holds.json'} and {out / 'HOLDS.md'}")


if __name__ == "__main__":
    main()
