"""The ``condgen`` command line's parser: condgen's own commands, their flags, and the plugins' commands.

Building it imports neither torch nor pydantic (each command's flags come from its option table in
``options``, plain data; the plugins' commands from their command hook alone); each command imports
what it needs when it runs, so ``condgen --help`` answers at once.
"""

from __future__ import annotations

import argparse
import re
import warnings
from functools import partial
from typing import Any, NoReturn

from .._version import __version__
from ..common.errors import PluginError
from ..common.options import add_options
from ..plugin.command import BUILT_IN_COMMANDS
from .commands import cmd_demo, cmd_evaluate, cmd_export, cmd_report, cmd_sample, cmd_train
from .listing import cmd_plugins
from .options import (
    DEMO_COMMAND,
    EVALUATE_COMMAND,
    EXPORT_COMMAND,
    PLUGINS_COMMAND,
    REPORT_COMMAND,
    SAMPLE_COMMAND,
    TRAIN_COMMAND,
)

EXIT_USER_ERROR = 2

class Parser(argparse.ArgumentParser):
    """argparse, with a wrong flag reported like every other user error: one ``error:`` line, exit 2."""

    def error(self, message: str) -> "NoReturn":
        unknown = re.match(r"argument COMMAND: invalid choice: '([^']*)'", message)
        if unknown:  # a plugin's command whose plugin a filter variable leaves out: name it and the variable
            from ..plugin.registry import left_out_provider

            provider = left_out_provider(unknown.group(1))
            if provider:
                message = f"no command {unknown.group(1)!r}: {provider}"
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

    for name, summary, options, func in [
        ("plugins", "list installed plugins, or one conditioner's settings", PLUGINS_COMMAND, cmd_plugins),
        ("train", "train a model into a run directory", TRAIN_COMMAND, cmd_train),
        ("sample", "draw samples from a trained run", SAMPLE_COMMAND, cmd_sample),
        ("evaluate", "test-split -ELBO and importance-sampled NLL of a run", EVALUATE_COMMAND, cmd_evaluate),
        ("export", "write a run's model folder to share (weights, config, model card)", EXPORT_COMMAND, cmd_export),
        ("report", "write a run's page: learning curves, pictures, figures (or compare runs)", REPORT_COMMAND,
         cmd_report),
        ("demo", "serve a local web page that draws a run's samples", DEMO_COMMAND, cmd_demo),
    ]:
        p = sub.add_parser(name, parents=[debug], help=summary)
        add_options(p, options)
        p.set_defaults(func=func)
    if not _own_command_line(argv):
        _add_plugin_commands(sub, debug)
    return parser


def _own_command_line(argv: list[str] | None) -> bool:
    """Whether ``argv`` names ``--version`` or one of condgen's own commands before anything else."""
    first = next((a for a in argv or [] if a != "--debug"), None)
    return first == "--version" or first in BUILT_IN_COMMANDS


def _add_plugin_commands(sub: Any, debug: argparse.ArgumentParser) -> None:
    """The subcommands that plugins register (``condgen_register_commands``); a name more than one plugin
    registers is a command whose every use is the one-line error naming them."""
    from ..plugin.registry import plugin_commands, withdrawn_commands

    for name, message in sorted(withdrawn_commands().items()):
        # no option prefix: whatever the user typed after the name is taken, and the clash is what is said
        p = sub.add_parser(name, help="unusable: more than one plugin registers it (see condgen plugins)",
                           prefix_chars="\0", add_help=False)
        p.add_argument("args", nargs="*", help=argparse.SUPPRESS)
        p.set_defaults(func=partial(_withdrawn, message))

    for name, command in sorted(plugin_commands().items()):
        try:  # on a scratch parser first: a failure must leave no entry in the help either
            command.add_arguments(argparse.ArgumentParser(prog=f"condgen {name}", parents=[debug], add_help=False))
        except Exception as exc:  # a broken plugin must not take the command line down
            warnings.warn(f"command {name!r} from a plugin failed to declare its arguments ({exc}); skipped")
            continue
        p = sub.add_parser(name, parents=[debug], help=command.help)
        command.add_arguments(p)
        p.set_defaults(func=command.run)


def _withdrawn(message: str, args: argparse.Namespace) -> int:
    raise PluginError(message)
