"""The command line: ``condgen plugins | train | sample | evaluate`` and the plugins' commands.

- ``app``: the entry point, :func:`main`, which turns every failure into one line and an exit code;
- ``parser``: the parser, built without torch or pydantic so ``condgen --help`` answers at once;
- ``options``: each command's flags (from the option declarations) and the train flags laid over a config;
- ``commands``: ``train``, ``sample`` and ``evaluate``; ``listing``: ``plugins``.
"""

from .app import main

__all__ = ["main"]
