"""Run directories: which directories condgen may write a run into, and one writer at a time.

A run directory is one condgen made: it holds the marker file ``.condgen-run`` (or, from
before markers, a condgen checkpoint). condgen writes a new run only into a new or empty
directory, or into a run directory whose first epoch never finished; it never overwrites a
directory of someone else's files.

While ``condgen train`` writes a run it holds an exclusive lock on ``.condgen.lock`` (an OS
file lock from the ``filelock`` library), and records itself in ``.condgen-owner``. A second
writer (another ``train``, or a ``--resume`` of a run still going) is refused with a line
naming the process that holds the run. The operating system drops the lock when its process
dies, even by ``kill -9``, so a dead run never blocks the next one.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from .._version import __version__
from ..common.errors import ArgumentError, CondgenError, RunDirectoryBusy
from ..common.files import access_error, read_text, write_text_atomic
from .checkpoint import CHECKPOINT_NAME

CONFIG_NAME = "config.json"
METRICS_NAME = "metrics.jsonl"
#: ``condgen evaluate``'s last figures (:func:`condgen.training.evaluation.keep_evaluation`).
EVALUATION_NAME = "evaluation.json"
MARKER_NAME = ".condgen-run"
LOCK_NAME = ".condgen.lock"
OWNER_NAME = ".condgen-owner"
#: Files of condgen's own bookkeeping, which do not make a directory "non-empty".
BOOKKEEPING = (LOCK_NAME, OWNER_NAME, ".gitkeep", ".DS_Store")


def kept_evaluation(run_dir: str | Path) -> dict[str, Any] | None:
    """``condgen evaluate``'s kept figures, or None where it has not run (or its file is unreadable)."""
    try:
        figures = json.loads((Path(run_dir) / EVALUATION_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return figures if isinstance(figures, dict) else None


def check_out_path(out: object, what: str = "run directory (--out)", example: str = "runs/my-run") -> Path:
    """``out`` as a Path; an empty or non-path value is an error (``Path('')`` would be the current directory)."""
    if not isinstance(out, (str, os.PathLike)) or not str(os.fspath(out)).strip():
        raise ArgumentError(f"{what} {out!r}: name the directory to write, e.g. {example}")
    return Path(out)


def _contents(out: Path) -> list[str]:
    try:
        return sorted(p.name for p in out.iterdir() if p.name not in BOOKKEEPING)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise access_error("run directory", out, exc) from None


def _busy(out: Path) -> RunDirectoryBusy:
    return RunDirectoryBusy(
        f"{str(out)!r} is being written by {_owner_text(out)}; wait for it to end (or stop it), "
        "or choose another --out"
    )


def check_writable_run_dir(out: Path, resume: bool, *, locked: bool = False) -> None:
    """Refuse, before any work, a ``--out`` that another process is writing, that is a file, that
    holds someone else's files, that already holds a run (without ``--resume``), or that holds
    none to resume. ``locked``: this process holds the run's lock already."""
    if not locked and (out / LOCK_NAME).is_file():
        probe = FileLock(str(out / LOCK_NAME), timeout=0)
        try:
            probe.acquire()
        except Timeout:
            raise _busy(out) from None
        except OSError:
            pass  # a lock that cannot even be opened is reported when the run is claimed
        else:
            probe.release()
    if out.exists() and not out.is_dir():
        raise CondgenError(f"--out {str(out)!r} is a file, not a directory; choose a directory for the run")
    names = _contents(out)
    has_checkpoint = CHECKPOINT_NAME in names
    if resume:
        if not has_checkpoint:
            raise CondgenError(f"--resume: there is no {CHECKPOINT_NAME} in {str(out)!r} to continue from")
        return
    if has_checkpoint:
        raise CondgenError(f"{str(out)!r} already holds a run; continue it with --resume, or choose another --out")
    if names and MARKER_NAME not in names and not _unfinished_old_run(out, names):
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        raise CondgenError(
            f"--out {str(out)!r} holds files that are not a condgen run ({shown}); condgen writes a new run only "
            "into a new or empty directory, so it overwrites nothing of yours: choose another --out"
        )


def _unfinished_old_run(out: Path, names: list[str]) -> bool:
    """A run directory of a condgen from before markers, whose first epoch never finished: its own
    ``config.json`` (a full run config) and perhaps ``metrics.jsonl``, nothing else."""
    if CONFIG_NAME not in names or not set(names) <= {CONFIG_NAME, METRICS_NAME}:
        return False
    try:
        config = json.loads((out / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and set(config) == {"conditioners", "model", "data", "train"}


def _owner_text(out: Path, wait: float = 2.0) -> str:
    """Who holds the run, from its owner file; the holder writes it just after taking the lock, so wait a moment."""
    deadline = time.monotonic() + wait
    while True:
        try:
            owner = json.loads((out / OWNER_NAME).read_text(encoding="utf-8"))
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner["started"]))
            return f"process {owner['pid']} on {owner['host']} (`{owner['command']}`, since {since})"
        except (OSError, ValueError, KeyError, TypeError, OverflowError):  # not written yet, or foreign
            if time.monotonic() > deadline:
                return "another process"
            time.sleep(0.05)


def _command() -> str:
    """This process's command line as the user typed it: ``condgen train ...``, ``python script.py``."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    if sys.argv and Path(sys.argv[0]).parent.name == "condgen" and program == "__main__.py":
        program = "condgen"  # python -m condgen
    text = " ".join([program, *sys.argv[1:]])
    return text if len(text) <= 200 else text[:197] + "..."


@dataclass
class RunDirectory:
    """A run directory claimed for writing (see :func:`claim_run_dir`): ``run_id`` is the identity its marker
    holds (None in a marker of a condgen from before run identities)."""

    path: Path
    created: bool
    run_id: str | None = None

    def adopt(self, run_id: str) -> None:
        """Make ``run_id`` the identity of the run this directory holds (in its marker)."""
        if run_id != self.run_id:
            write_marker(self.path, run_id)
            self.run_id = run_id


def new_run_id() -> str:
    """A new run's identity: 32 hex digits, random (the directory, the host and the time could repeat)."""
    return uuid.uuid4().hex


def write_marker(out: Path, run_id: str | None) -> None:
    marker = {"condgen_version": __version__, **({"run_id": run_id} if run_id else {})}
    write_text_atomic(out / MARKER_NAME, json.dumps(marker) + "\n", "run directory marker")


def marker_run_id(out: Path) -> str | None:
    """The run identity in ``out``'s marker; None where it has none (an older condgen's, no marker, or one cut
    short): a resume then takes the checkpoint as the run's only where its config is the directory's
    (:func:`condgen.training.loop.train`). A marker the file system will not let be read is a FileAccessError."""
    if not (out / MARKER_NAME).exists():
        return None
    try:
        marker = json.loads(read_text(out / MARKER_NAME, "run directory marker"))
    except ValueError:  # a marker cut short (kill -9 of a condgen before atomic markers): it names no run
        return None
    run_id = marker.get("run_id") if isinstance(marker, dict) else None
    return run_id if isinstance(run_id, str) and run_id else None


def _make_dirs(out: Path) -> list[Path]:
    """Create ``out`` and any missing parents; the directories this call made, outermost first."""
    missing = []
    for d in [out, *out.parents]:
        if d.exists():
            break
        missing.append(d)
    made = []
    for d in reversed(missing):
        try:
            d.mkdir()
            made.append(d)
        except FileExistsError:  # another process made it just now: not ours to remove
            continue
        except OSError as exc:
            raise access_error("run directory", out, exc, verb="create") from None
    if not out.is_dir():
        raise CondgenError(f"--out {str(out)!r} is a file, not a directory; choose a directory for the run")
    return made


@contextmanager
def claim_run_dir(out: Path, resume: bool, own_files: tuple[str, ...] = ()) -> Iterator[RunDirectory]:
    """Create (if need be) and lock ``out`` for writing a run, for the ``with`` block.

    Raises :class:`RunDirectoryBusy` naming the process that holds it, and the errors of
    :func:`check_writable_run_dir`, checked again under the lock. If the block (or this claim)
    fails before a new run has a checkpoint, what it wrote (the marker and ``own_files``) is
    removed again, and so are the directories it made: a failed start leaves nothing.
    """
    made = _make_dirs(out)
    made_lock = not (out / LOCK_NAME).exists()
    lock = FileLock(str(out / LOCK_NAME), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise _busy(out) from None
    except OSError as exc:
        raise access_error("run directory", out, exc, verb="lock") from None
    ours: list[str] = []  # files that are this claim's to remove, once the directory proved to be ours
    clean = False
    try:
        check_writable_run_dir(out, resume, locked=True)  # again: another writer may have finished in between
        ours = [OWNER_NAME, *own_files]
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "command": _command()}
        write_text_atomic(out / OWNER_NAME, json.dumps(owner) + "\n", "run directory owner file")
        if not (out / MARKER_NAME).exists():
            ours.append(MARKER_NAME)
            # a run resumed in a directory without a marker takes its checkpoint's identity (RunDirectory.adopt)
            write_marker(out, None if resume else new_run_id())
        yield RunDirectory(out, bool(made), marker_run_id(out))
    except BaseException:
        clean = bool(ours) and not resume and not (out / CHECKPOINT_NAME).exists()
        if clean:
            for name in ours:
                (out / name).unlink(missing_ok=True)
        raise
    finally:
        (out / OWNER_NAME).unlink(missing_ok=True)
        lock.release()
        if clean and made_lock:  # a lock file this claim made: another writer would have been refused meanwhile
            (out / LOCK_NAME).unlink(missing_ok=True)
        if clean and made:
            for d in reversed(made):
                try:
                    d.rmdir()
                except OSError:  # someone put something there meanwhile: leave it
                    break
