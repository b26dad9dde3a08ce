"""The ``condgen`` command: plugins, train, sample, evaluate.

Every problem a user can fix is printed as one ``error:`` line (exit code 2); ``--debug``
shows the traceback instead.

Building the parser imports neither torch nor pydantic (the plugins' commands come from their
command hook alone, :func:`condgen.plugins.plugin_commands`); each command imports what it needs
when it runs, so ``condgen --help`` answers in a fraction of a second.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import traceback
import warnings
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ._version import __version__
from .command import BUILT_IN_COMMANDS
from .errors import CondgenError, ConfigError
from .files import describe_os_error

if TYPE_CHECKING:
    from .config import RunConfig

EXIT_USER_ERROR = 2
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: the command stops the way Ctrl-C stops it (a run keeps its last checkpoint)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()

#: ``--flag`` -> (config section, field) for the flags that override a config file.
TRAIN_FLAGS = {
    "latent_dim": ("model", "latent_dim"),
    "hidden": ("model", "hidden"),
    "decoder_hidden": ("model", "decoder_hidden"),
    "activation": ("model", "activation"),
    "likelihood": ("model", "likelihood"),
    "prior": ("model", "prior"),
    "prior_hidden": ("model", "prior_hidden"),
    "dataset": ("data", "dataset"),
    "data_dir": ("data", "data_dir"),
    "x_field": ("data", "x_field"),
    "train_limit": ("data", "train_limit"),
    "test_limit": ("data", "test_limit"),
    "epochs": ("train", "epochs"),
    "batch_size": ("train", "batch_size"),
    "lr": ("train", "lr"),
    "optimizer": ("train", "optimizer"),
    "weight_decay": ("train", "weight_decay"),
    "lr_schedule": ("train", "lr_schedule"),
    "objective": ("train", "objective"),
    "gsnn_weight": ("train", "gsnn_weight"),
    "condition_dropout": ("train", "condition_dropout"),
    "seed": ("train", "seed"),
    "device": ("train", "device"),
}


def _dropout_flag(text: str) -> Any:
    """``0.1`` -> 0.1 and ``label=0.1,regression=0.2`` -> a dict; anything else is left for the config to refuse."""
    try:
        if "=" not in text:
            return float(text)
        return {name.strip(): float(p) for name, p in (item.split("=") for item in text.split(","))}
    except ValueError:
        return text


class Parser(argparse.ArgumentParser):
    """argparse, with a wrong flag reported like every other user error: one ``error:`` line, exit 2."""

    def error(self, message: str) -> "NoReturn":
        self.exit(EXIT_USER_ERROR, f"error: {message} (see: {self.prog} --help)\n")


def _debug_parent() -> argparse.ArgumentParser:
    parent = Parser(add_help=False)
    parent.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    return parent


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; plugin commands are added unless ``argv`` is known to need none (``--version``, or
    one of condgen's own commands), so those never import a plugin's entry-point module."""
    debug = _debug_parent()
    parser = Parser(
        prog="condgen", description="Conditional VAEs with pluggable conditioners.", parents=[debug]
    )
    parser.add_argument("--version", action="version", version=f"condgen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("plugins", parents=[debug], help="list installed plugins, or one conditioner's settings")
    p.add_argument("conditioner", nargs="?", metavar="NAME", help="show this conditioner's settings")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("train", parents=[debug], help="train a model into a run directory")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to write")
    p.add_argument("--config", metavar="FILE", help="full config (.json, .yaml, .toml); flags override it")
    p.add_argument("--conditioner", action="append", metavar="NAME[:KEY=VALUE,...]",
                   help="condition on NAME (repeatable), with settings, e.g. label:embedding=learned,embed_dim=16")
    p.add_argument("--latent-dim", type=int, help="latent size (seed: 2); 0 is the deterministic baseline p(x|c)")
    p.add_argument("--hidden", type=int, nargs="+", metavar="W", help="encoder hidden widths (seed: 512)")
    p.add_argument("--decoder-hidden", type=int, nargs="+", metavar="W", help="default: --hidden reversed")
    p.add_argument("--activation", help="relu, elu, gelu, silu, tanh or leaky_relu")
    p.add_argument("--likelihood", help="bernoulli (data in [0, 1]) or gaussian")
    p.add_argument("--prior", help="standard (N(0, I), the seed) or conditional (a prior network p(z|c))")
    p.add_argument("--prior-hidden", type=int, nargs="+", metavar="W", help="conditional prior widths (default --hidden)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="learning rate (seed: 1e-3)")
    p.add_argument("--optimizer", help="adam (the seed) or adamw")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--lr-schedule", help="constant or cosine")
    p.add_argument("--objective", help="elbo (the seed) or hybrid (Sohn et al.'s CVAE + GSNN)")
    p.add_argument("--gsnn-weight", type=float, help="weight of the GSNN term in the hybrid objective (default 0.5)")
    p.add_argument("--condition-dropout", type=_dropout_flag, metavar="P|NAME=P,...",
                   help="leave each conditioner's condition out of a training item with probability P (or per "
                   "conditioner), so it may be left out when sampling")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--dataset", help="registered dataset name (default mnist)")
    p.add_argument("--data-dir", metavar="DIR", help="directory of the data files (mnist: or $CONDGEN_DATA_DIR); "
                   "for --dataset npz, the .npz file")
    p.add_argument("--x-field", metavar="FIELD", help="the data field the model generates (default image)")
    p.add_argument("--train-limit", type=int, metavar="N", help="train on the first N items only")
    p.add_argument("--test-limit", type=int, metavar="N", help="evaluate on the first N test items only")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--no-pictures", action="store_true", help="skip samples/reconstructions/latent PNGs")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", parents=[debug], help="draw samples from a trained run")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--condition", action="append", default=[], metavar="NAME=VALUE",
                   help="e.g. label=5, label=0,1,2 or label=all (one row per value)")
    p.add_argument("--num", type=int, default=10, help="samples per condition (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, metavar="FILE", help=".png grid, or .npy array (N, C, H, W)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("evaluate", parents=[debug], help="test-split -ELBO and importance-sampled NLL of a run")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--samples", type=int, default=100, metavar="S",
                   help="importance samples per item for -log p(x|c) (default 100; 0 skips it)")
    p.add_argument("--data-dir", metavar="DIR", help="override the run's data directory")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_evaluate)
    if not _own_command_line(argv):
        _add_plugin_commands(sub, debug)
    return parser


def _own_command_line(argv: list[str] | None) -> bool:
    """Whether ``argv`` names ``--version`` or one of condgen's own commands before anything else."""
    first = next((a for a in argv or [] if a != "--debug"), None)
    return first == "--version" or first in BUILT_IN_COMMANDS


def _add_plugin_commands(sub: Any, debug: argparse.ArgumentParser) -> None:
    """The subcommands that plugins register (``condgen_register_commands``)."""
    from .plugins import plugin_commands

    for name, command in sorted(plugin_commands().items()):
        try:  # on a scratch parser first: a failure must leave no entry in the help either
            command.add_arguments(argparse.ArgumentParser(prog=f"condgen {name}", parents=[debug], add_help=False))
        except Exception as exc:  # a broken plugin must not take the command line down
            warnings.warn(f"command {name!r} from a plugin failed to declare its arguments ({exc}); skipped")
            continue
        p = sub.add_parser(name, parents=[debug], help=command.help)
        command.add_arguments(p)
        p.set_defaults(func=command.run)


# -- commands ---------------------------------------------------------------------------------
def cmd_plugins(args: argparse.Namespace) -> int:
    from .plugins import list_plugins

    if args.conditioner:
        return _show_conditioner(args.conditioner, args.json)
    plugins = list_plugins()
    if args.json:
        print(json.dumps([p.as_dict() for p in plugins], indent=2))
        return 0
    rows = [("name", "distribution", "version", "conditioners", "datasets", "commands", "attributes", "status")]
    for p in plugins:
        rows.append((
            p.name, p.distribution or "-", p.version or "-", *(",".join(names) or "-" for names in
                                                              (p.conditioners, p.datasets, p.commands, p.attributes)),
            "ok" if p.ok else f"BROKEN: {p.error}" if p.error else f"not loaded: {p.not_loaded}",
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    return 0


def _show_conditioner(name: str, as_json: bool) -> int:
    """``condgen plugins NAME``: a conditioner's plugin and its settings with defaults and descriptions."""
    from .plugins import registry

    reg = registry()
    cls = reg.conditioner_class(name)
    plugin = reg.plugin_of(name)
    settings = []
    for field, info in cls.Config.model_fields.items():
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        settings.append({"name": field, "type": _type_name(info.annotation), "default": default,
                         "required": info.is_required(), "description": info.description or ""})
    doc = (cls.__doc__ or "").strip().splitlines()
    summary = doc[0] if doc else ""
    if as_json:
        print(json.dumps({"conditioner": name, "plugin": plugin.name, "distribution": plugin.distribution,
                          "version": plugin.version, "summary": summary, "settings": settings}, indent=2,
                         default=str))
        return 0
    print(f"conditioner {name!r} from {plugin.describe()}")
    if summary:
        print(f"  {summary}")
    if not settings:
        print("  no settings")
        return 0
    print(f"settings (--conditioner {name}:KEY=VALUE,... or conditioners[].config in a config file):")
    width = max(len(s["name"]) for s in settings)
    for s in settings:
        default = "required" if s["required"] else f"default {json.dumps(s['default'], default=str)}"
        print(f"  {s['name'].ljust(width)}  {s['type']}, {default}" + (f": {s['description']}" if s["description"] else ""))
    return 0


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if getattr(annotation, "__args__", None) is None else None
    return text or str(annotation).replace("typing.", "")


def train_config_from_args(args: argparse.Namespace, base: dict[str, Any]) -> RunConfig:
    """``base`` (a config file or a stored config) with the flags the user gave laid over it."""
    from .config import RunConfig, parse_conditioner_option

    data = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for section, value in data.items():
        if value is None:  # an empty section in a YAML file
            data[section] = [] if section == "conditioners" else {}
        elif section != "conditioners" and not isinstance(value, dict):
            raise ConfigError(f"config section {section!r} must be a mapping of fields, got {value!r}")
    for flag, (section, key) in TRAIN_FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            data.setdefault(section, {})[key] = value
    if args.conditioner is not None:
        listed = data.get("conditioners") if isinstance(data.get("conditioners"), list) else []
        known = {c["name"]: c for c in listed if isinstance(c, dict) and "name" in c}
        specs = []
        for text in args.conditioner:
            given = parse_conditioner_option(text)
            base_config = known.get(given["name"], {}).get("config") or {}
            specs.append({"name": given["name"], "config": {**base_config, **given["config"]}})
        data["conditioners"] = specs
    return RunConfig.parse(data)


def _flags_given(args: argparse.Namespace) -> bool:
    return args.conditioner is not None or any(getattr(args, flag) is not None for flag in TRAIN_FLAGS)


def cmd_train(args: argparse.Namespace) -> int:
    from .checkpoint import CHECKPOINT_NAME
    from .config import read_config_file
    from .distributed import is_main
    from .rundir import check_out_path
    from .store import read_run
    from .training import train

    checkpoint = check_out_path(args.out) / CHECKPOINT_NAME
    # --resume reads the checkpoint once, here, and hands it to train() with its RunConfig as it is
    stored = read_run(checkpoint) if args.resume and checkpoint.is_file() else None
    if args.config:
        config = train_config_from_args(args, read_config_file(args.config))
    elif stored is not None:
        config = train_config_from_args(args, stored.config.model_dump(mode="json")) if _flags_given(args) else stored.config
    else:
        config = train_config_from_args(args, {})
    log = partial(print, flush=True)  # line by line through a pipe (`| tee train.log`) too
    run = train(config, args.out, resume=stored or args.resume, pictures=not args.no_pictures, log=log)
    if is_main():  # under torchrun, rank 0 speaks for all
        print(f"run directory: {run.directory} (sample with: condgen sample {run.directory} "
              + " ".join(f"--condition {n}=..." for n in run.conditioners) + " --out samples.png)")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from .files import save_array
    from .pictures import MAX_GRID_COLUMNS, MAX_GRID_IMAGES, is_image_shape, save_grid
    from .store import load_run

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".npy"):
        raise CondgenError(f"--out {args.out!r}: the file must end in .png (a picture) or .npy (an array)")
    if args.num < 1:
        raise CondgenError(f"--num must be at least 1, got {args.num}")
    run = load_run(args.run_dir, device=args.device)
    parsed = run.parse_conditions(args.condition)
    rows = len(run.condition_grid(parsed)[1])
    if out.suffix.lower() == ".png" and args.num > MAX_GRID_COLUMNS:
        raise CondgenError(f"--out {args.out!r}: a picture's rows hold at most {MAX_GRID_COLUMNS:,} samples, not "
                           f"--num {args.num}; write --out FILE.npy, or ask for fewer")
    if out.suffix.lower() == ".png" and rows * args.num > MAX_GRID_IMAGES:
        raise CondgenError(f"--out {args.out!r}: a picture holds at most {MAX_GRID_IMAGES:,} samples, and {rows} row(s) "
                           f"of --num {args.num} make {rows * args.num:,}; write --out FILE.npy, or ask for fewer")
    images, labels = run.sample_rows(run.check_conditions(parsed), args.num, seed=args.seed)
    if out.suffix.lower() == ".npy":
        save_array(images, out)
    else:
        if not is_image_shape(run.model.data_shape):
            raise CondgenError(f"this model's data {run.model.data_shape} are not images; write --out FILE.npy")
        save_grid(images, out, per_row=args.num, row_labels=labels if run.conditioners else None)
    print(f"wrote {images.shape[0]} samples {tuple(images.shape)} to {out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import evaluate
    from .store import load_run

    if args.samples < 0:
        raise CondgenError(f"--samples must be 0 (skip the likelihood estimate) or more, got {args.samples}")
    run = load_run(args.run_dir, device=args.device)
    result = evaluate(run, samples=args.samples, data_dir=args.data_dir, progress=None)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:28s} {value:.4f}" if isinstance(value, float) else f"{key:28s} {value}")
    return 0


# -- entry point --------------------------------------------------------------------------------
def _interrupted_line(args: argparse.Namespace, exc: KeyboardInterrupt) -> str:
    """What stopped the command, and for ``train`` what was kept and how to go on."""
    what = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
    if getattr(args, "func", None) is not cmd_train or not str(args.out).strip():
        return what
    from .checkpoint import CHECKPOINT_NAME  # train imported it (and torch) already

    if (Path(args.out) / CHECKPOINT_NAME).is_file():
        return (f"{what}; the run keeps its last complete epoch: continue it with "
                f"condgen train --resume --out {args.out}")
    return f"{what} before the first epoch ended; nothing was kept"


def _out_of_memory(exc: BaseException) -> bool:
    text = str(exc)
    return (isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"
            or "can't allocate memory" in text or "not enough memory" in text)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    if not debug:  # plugins load while the parser is built: their warnings are one line too
        warnings.showwarning = _show_warning
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    # only the main thread may set handlers; and not over one an application embedding us chose
    own = threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    if own:
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return _run_command(args, debug)
    finally:
        if own:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _run_command(args: argparse.Namespace, debug: bool) -> int:
    """``args.func(args)`` with the toolkit's errors as one line and its exit codes."""
    try:
        return int(args.func(args) or 0)
    except CondgenError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as exc:
        print(f"\n{_interrupted_line(args, exc)}", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    except OSError as exc:  # the system refused a file operation that no check of ours caught first
        if debug:
            raise
        where = f" {exc.filename!r}" if exc.filename else ""
        print(f"error: cannot access{where}: {describe_os_error(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as exc:
        if debug:
            raise
        if _out_of_memory(exc):  # a size no check foresaw (a plugin's, or another process took the memory)
            print(f"error: ran out of memory ({str(exc).splitlines()[0][:160]}); make the model, the batch or "
                  "the number of samples smaller", file=sys.stderr)
            return EXIT_USER_ERROR
        where = traceback.extract_tb(exc.__traceback__)[-1]
        print(f"internal error: {type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno}; "
              "rerun with --debug for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL
