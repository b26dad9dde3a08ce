"""The flags of condgen's own commands, one table per command, and how ``train``'s are laid over a config.

``train``'s table is its own flags followed by the options of the config fields, which are declared
beside each config (``condgen.runs.options``, ``condgen.data.options``); the parser is built from these
tables (``parser``), and :func:`train_config_from_args` sets each field whose flag was given.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..common.errors import ConfigError
from ..common.options import Option, flag_values, lay_over
from ..data.options import DATA_OPTIONS
from ..demo import DEFAULT_HOST, DEFAULT_PORT
from ..pictures.samples import sample_options
from ..runs.options import DEVICE, MODEL_OPTIONS, RUN_OPTIONS, TRAIN_OPTIONS

if TYPE_CHECKING:
    from ..runs.config import RunConfig


RUN_DIR = Option("run_dir", "a run directory written by condgen train", positional=True, metavar="RUN_DIR")
JSON = Option("json", "print JSON", action="store_true")

#: ``condgen train``: where the run goes and from what, then a flag for every config field.
TRAIN_COMMAND = (
    Option("out", "run directory to write", required=True, metavar="RUN_DIR"),
    Option("config", "full config (.json, .yaml, .toml); flags override it", metavar="FILE"),
    *RUN_OPTIONS,
    *MODEL_OPTIONS,
    *TRAIN_OPTIONS,
    *DATA_OPTIONS,
    Option("resume", "continue the run in --out from its checkpoint", action="store_true"),
    Option("no_pictures", "skip samples/reconstructions/latent PNGs", action="store_true"),
)

#: ``condgen sample``: the run, then the flags every command that writes samples shares.
SAMPLE_COMMAND = (RUN_DIR, *sample_options())

#: ``condgen evaluate``.
EVALUATE_COMMAND = (
    RUN_DIR,
    Option("samples", "importance samples per item for -log p(x|c) (default 100; 0 skips it)", type=int,
           default=100, metavar="S"),
    Option("data_dir", "override the run's data directory", metavar="DIR"),
    DEVICE,
    JSON,
)

#: ``condgen export``.
EXPORT_COMMAND = (
    RUN_DIR,
    Option("out_dir", "a new or empty directory for the model folder", positional=True, metavar="OUT_DIR"),
)

#: ``condgen report``.
REPORT_COMMAND = (
    Option("run_dirs", "run directories written by condgen train: one, or several to compare", positional=True,
           nargs="+", metavar="RUN_DIR"),
    Option("out", "the page to write (default RUN_DIR/report.html; needed for several runs)", metavar="FILE.html"),
)

#: ``condgen demo``.
DEMO_COMMAND = (
    RUN_DIR,
    Option("host", f"address to serve on (default {DEFAULT_HOST}: this machine only)", default=DEFAULT_HOST),
    Option("port", f"port to serve on (default {DEFAULT_PORT})", type=int, default=DEFAULT_PORT),
    DEVICE,
)

#: ``condgen plugins``.
PLUGINS_COMMAND = (
    Option("conditioner", "show this conditioner's (or data set's) settings", positional=True, nargs="?",
           metavar="NAME"),
    JSON,
)


def train_config_from_args(args: argparse.Namespace, base: dict[str, Any]) -> RunConfig:
    """``base`` (a config file or a stored config) with the flags the user gave laid over it."""
    from ..runs.config import RunConfig

    data = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for section, value in data.items():
        if value is None:  # an empty section in a YAML file
            data[section] = [] if section == "conditioners" else {}
        elif section != "conditioners" and not isinstance(value, dict):
            raise ConfigError(f"config section {section!r} must be a mapping of fields, got {value!r}")
    return RunConfig.parse(lay_over(data, flag_values(args, TRAIN_COMMAND)))


def flags_given(args: argparse.Namespace) -> bool:
    """Whether a flag that sets a config field was given (``--resume`` keeps the stored config otherwise)."""
    return bool(flag_values(args, TRAIN_COMMAND))
