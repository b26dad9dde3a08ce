"""The ``condgen`` command's entry point: parse, run, and turn every failure into one line and an exit code.

Every problem a user can fix is printed as one ``error:`` line (exit code 2); ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import traceback
import warnings
from pathlib import Path

from ..common.errors import CondgenError
from ..common.files import describe_os_error
from .commands import cmd_train
from .parser import EXIT_USER_ERROR, build_parser

EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: the command stops the way Ctrl-C stops it (a run keeps its last checkpoint)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


# -- entry point --------------------------------------------------------------------------------
def _interrupted_line(args: argparse.Namespace, exc: KeyboardInterrupt) -> str:
    """What stopped the command, and for ``train`` what was kept and how to go on."""
    what = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
    if getattr(args, "func", None) is not cmd_train or not str(args.out).strip():
        return what
    from ..runs.checkpoint import CHECKPOINT_NAME  # train imported it (and torch) already

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
