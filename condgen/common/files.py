"""Reading and writing the toolkit's files: errors that name the file and the cause, atomic writes.

Every file a user points condgen at is opened through :func:`read_bytes` / :func:`read_text` /
:func:`check_readable`, so "permission denied", "not UTF-8" and "is a directory" are each a
:class:`FileAccessError` naming the file, not a Python exception. Files condgen writes go to
a temporary file of their own (unique per writer) that is renamed over the target, and get the
mode the user's umask gives new files.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import FileAccessError

_CAUSES = {
    errno.ENOENT: "it does not exist",
    errno.EACCES: "permission denied (check its mode and owner, and those of the directories above it)",
    errno.EPERM: "operation not permitted",
    errno.EISDIR: "it is a directory, not a file",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.ENOSPC: "no space left on the device",
    errno.EROFS: "the file system is read-only",
}


def describe_os_error(exc: OSError) -> str:
    """The cause of an OSError in words: ``permission denied (...)`` rather than ``[Errno 13] ...``."""
    return _CAUSES.get(exc.errno or -1) or _lower_first(exc.strerror) or str(exc)


def _lower_first(text: str | None) -> str | None:
    """The system's words in the middle of our line: ``disk quota exceeded``, not ``Disk quota exceeded``."""
    return text[:1].lower() + text[1:] if text else text


def access_error(what: str, path: str | Path, exc: OSError, verb: str = "read") -> FileAccessError:
    """A one-line :class:`FileAccessError`: ``cannot read config file 'a.yaml': permission denied (...)``."""
    return FileAccessError(f"cannot {verb} {what} {str(path)!r}: {describe_os_error(exc)}")


def read_bytes(path: str | Path, what: str) -> bytes:
    """The contents of ``path``; ``what`` names it in errors (``"config file"``)."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise access_error(what, path, exc) from None


def read_text(path: str | Path, what: str) -> str:
    """The UTF-8 text of ``path``; a file that is not UTF-8 is an error saying where it stops being text."""
    raw = read_bytes(path, what)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileAccessError(
            f"{what} {str(path)!r} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8"
        ) from None


def check_readable(path: str | Path, what: str) -> Path:
    """``path`` if it is a file this process can open; else a FileAccessError saying why not."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise access_error(what, path, exc) from None
    return Path(path)


def is_file(path: str | Path, what: str) -> bool:
    """Whether ``path`` is a file; a directory above it that cannot be searched is an error, not False."""
    try:
        return Path(path).is_file()
    except OSError as exc:
        raise access_error(what, path, exc, verb="look for") from None


def _umask() -> int:
    try:  # Linux says it without changing it (no window in which another thread sees umask 0)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)  # elsewhere, the only way to read it is to set it and put it back
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode the user's umask gives a new file (``0o644`` under the usual umask 022)."""
    return 0o666 & ~_umask()


#: Errors a library that writes a file reports in its own exception types (safetensors' ``SafetensorError``,
#: say) but with the system's words for the cause; found in the message, they make the write's failure the
#: user's one line, not an internal error.
_WRITE_CAUSES = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS, errno.EACCES, errno.EPERM)


def write_failure_cause(exc: BaseException) -> str | None:
    """The cause, in words, of a failed write: an OSError's, or an OS cause named in another library's
    exception; None where ``exc`` is not a failure of the file system (a bug, which must not be hidden)."""
    if isinstance(exc, OSError):
        return describe_os_error(exc)
    text = str(exc)
    for code in _WRITE_CAUSES:
        if os.strerror(code) in text:
            return _CAUSES.get(code) or _lower_first(os.strerror(code))
    return None


class PreparedFile:
    """A file written in full to a temporary name beside its target, and flushed to disk, but not yet in place:
    :meth:`commit` renames it over the target (which needs no new space), :meth:`discard` removes it.

    Two files that must change together (an epoch's checkpoint and its line of metrics) are both prepared
    before either is committed, so a full disk fails while neither has changed.
    """

    def __init__(self, path: str | Path, write: Callable[[Path], None], what: str = "file") -> None:
        self.path, self.what = Path(path), what
        if self.path.is_symlink():  # written through: the link stays a link, its target gets the new file
            self.path = Path(os.path.realpath(self.path))
        if self.path.exists() and not (self.path.is_file() or self.path.is_dir()):
            raise FileAccessError(f"cannot write {what} {str(path)!r}: it is not a regular file (a device or a pipe: "
                                  "a rename would replace it); name a file")
        try:
            fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        except OSError as exc:
            raise access_error(what, self.path, exc, verb="write") from None
        os.close(fd)
        self.tmp: Path | None = Path(name)
        try:
            write(self.tmp)
            with open(self.tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(self.tmp, new_file_mode())  # mkstemp (and safetensors) create 0600 whatever the umask
        except BaseException as exc:
            self.discard()
            cause = write_failure_cause(exc) if isinstance(exc, Exception) else None
            if cause is None:
                raise
            raise FileAccessError(f"cannot write {what} {str(self.path)!r}: {cause}") from None

    def commit(self) -> None:
        """Put the file in place of its target: readers see the old file or the new one, never half of one."""
        if self.tmp is None:
            raise RuntimeError(f"{self.path} was committed or discarded already")
        try:
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.discard()
            raise access_error(self.what, self.path, exc, verb="write") from None
        self.tmp = None

    def discard(self) -> None:
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)
            self.tmp = None


def write_atomic(path: str | Path, write: Callable[[Path], None], what: str = "file") -> None:
    """``write(tmp)`` to a temporary file beside ``path``, flush it to disk, give it the umask's mode,
    and rename it over ``path``: readers see the old file or the new one, never half of one, and
    two writers never share a temporary file. A failure of the file system, whichever library wrote
    (safetensors, Pillow, matplotlib), is a :class:`FileAccessError` naming the file and the cause, and
    leaves the old file as it was."""
    PreparedFile(path, write, what).commit()


def write_text_atomic(path: str | Path, text: str, what: str = "file") -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`write_atomic`)."""
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), what)


def save_array(array: Any, path: str | Path) -> None:
    """Write ``array`` (a tensor or NumPy array) as a ``.npy`` file at exactly ``path`` (``numpy.save`` given
    a name would add ``.npy`` to ``x.NPY``), atomically; FileAccessError naming the file if it cannot be written."""
    import numpy as np

    data = array.detach().float().cpu().numpy() if hasattr(array, "detach") else np.asarray(array)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, data)

    write_atomic(path, write, what="array file")
