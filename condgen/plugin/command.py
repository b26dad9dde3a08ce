"""Commands that plugins add to the ``condgen`` command line (``condgen NAME ...``)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass

COMMAND_PATTERN = re.compile(r"^[a-z][a-z0-9-]*$")
#: The toolkit's own commands, which no plugin may replace.
BUILT_IN_COMMANDS = ("plugins", "train", "sample", "evaluate", "export", "report", "demo")


@dataclass(frozen=True)
class Command:
    """A subcommand: ``add_arguments(parser)`` declares its flags, ``run(args)`` does the work.

    ``run`` returns an exit code (None is 0) and reports a user's mistake by raising
    :class:`condgen.CondgenError`, which the CLI prints as one ``error:`` line with exit code 2.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], "int | None"]


def check_command(obj: object) -> Command:
    """Raise TypeError saying what is wrong if ``obj`` is not a usable :class:`Command`."""
    if not isinstance(obj, Command):
        raise TypeError(f"registered {obj!r}, which is not a condgen.Command")
    if not COMMAND_PATTERN.match(obj.name):
        raise TypeError(f"command name must match {COMMAND_PATTERN.pattern}, got {obj.name!r}")
    if obj.name in BUILT_IN_COMMANDS:
        raise TypeError(f"command {obj.name!r} is one of condgen's own; choose another name")
    if not (callable(obj.add_arguments) and callable(obj.run)):
        raise TypeError(f"command {obj.name!r} needs callable add_arguments and run")
    return obj
