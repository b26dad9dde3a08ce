"""condgen's own commands that use a run: ``train``, ``sample``, ``evaluate``, ``export``, ``report`` and ``demo``."""

from __future__ import annotations

import argparse
import json
from functools import partial
from typing import TYPE_CHECKING

from ..common.errors import CondgenError
from .options import flags_given, train_config_from_args

if TYPE_CHECKING:
    from ..runs.run import Run


def cmd_train(args: argparse.Namespace) -> int:
    from ..api import train
    from ..runs.checkpoint import CHECKPOINT_NAME
    from ..runs.config import read_config_file
    from ..runs.rundir import check_out_path
    from ..runs.store import read_run
    from ..training.distributed import is_main

    checkpoint = check_out_path(args.out) / CHECKPOINT_NAME
    # --resume reads the checkpoint once, here, and hands it to train() with its RunConfig as it is
    stored = read_run(checkpoint) if args.resume and checkpoint.is_file() else None
    if args.config:
        config = train_config_from_args(args, read_config_file(args.config))
    elif stored is not None:
        config = train_config_from_args(args, stored.config.model_dump(mode="json")) if flags_given(args) else stored.config
    else:
        config = train_config_from_args(args, {})
    log = partial(print, flush=True)  # line by line through a pipe (`| tee train.log`) too
    run = train(config, args.out, resume=stored or args.resume, pictures=not args.no_pictures, log=log)
    if is_main():  # under torchrun, rank 0 speaks for all
        print(f"run directory: {run.directory} (sample with: {_sampling_command(run)})")
    return 0


def _sampling_command(run: Run) -> str:
    """How the run's samples are drawn: the command a conditioner names (``condgen inpaint ...``), with the
    other conditioners' flags, else ``condgen sample``'s."""
    for name, cond in run.conditioners.items():
        others = " ".join(f"--condition {n}=..." for n in run.conditioners if n != name)
        try:
            command = cond.sampling_command(str(run.directory), others)
        except Exception:  # noqa: BLE001 - a plugin's hint that fails is no hint: the run is trained and saved
            command = None
        if isinstance(command, str) and command.strip():
            return command.strip()
    flags = "".join(f" --condition {n}=..." for n in run.conditioners)
    return f"condgen sample {run.directory}{flags} --out samples.png"


def cmd_sample(args: argparse.Namespace) -> int:
    from ..pictures.samples import SampleFile
    from ..runs.store import load_run

    out = SampleFile(args.out, args.num)  # a wrong --out or --num is refused before the run loads
    run = load_run(args.run_dir, device=args.device)
    rows = out.rows(run, args.condition)
    images = rows.sample(run, out.num, seed=args.seed)
    out.write(images, rows)
    print(f"wrote {images.shape[0]} samples {tuple(images.shape)} to {out.path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..runs.store import load_run
    from ..training.evaluation import evaluate, keep_evaluation

    if args.samples < 0:
        raise CondgenError(f"--samples must be 0 (skip the likelihood estimate) or more, got {args.samples}")
    run = load_run(args.run_dir, device=args.device)
    result = evaluate(run, samples=args.samples, data_dir=args.data_dir, progress=None)
    kept = keep_evaluation(run, result)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:28s} {value:.4f}" if isinstance(value, float) else f"{key:28s} {value}")
    if kept is not None and not args.json:
        print(f"kept in {kept} (condgen export puts them in the model card)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..runs.export import export_run

    out = export_run(args.run_dir, args.out_dir)
    print(f"wrote the model folder {out} (model.safetensors, config.json, README.md); sample from it with: "
          f"condgen sample {out} ...")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..pictures.report import write_report

    out = write_report(args.run_dirs, args.out)
    print(f"wrote {out} (one file with everything in it: open it in a browser, no server needed)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo.page import start

    page, url = start(args.run_dir, host=args.host, port=args.port, device=args.device)
    print(f"serving the demo of {args.run_dir} on {url} (open it in a browser; Ctrl-C stops it)", flush=True)
    try:
        page.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        page.close()
    return 0
