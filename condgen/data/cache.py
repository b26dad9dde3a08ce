"""A data set's decoded items kept on disk, so later runs read them without decoding again.

Each entry is a folder ``${XDG_CACHE_HOME:-~/.cache}/condgen/<kind>/<key>/`` (``CONDGEN_CACHE_DIR`` in place
of ``.../condgen``) named by what the items are made from (the data's folder and the options that change
the pixels), holding per split a file of rows (``train.rows``) and its description (``train.json``): the
content key (each source file's path, size and modification time), the rows' shape, a CRC-32 of every
block of the rows file, and what the data set keeps of each source file.

An entry is used only when its content key is the one asked for (else it is *stale*: a file was added,
removed or changed) and the rows file has the stated size and checksums (else it is *corrupt*, e.g. cut
short by a full disk or a crash). Either way it is built again; it is never read as garbage. Files are
written beside their final names and renamed over them, under a lock, so a process that reads an entry while
another rebuilds it keeps reading the old files, and two processes (the ranks of a distributed run) build
it once.
"""

from __future__ import annotations

import fcntl  # POSIX: the cache's lock
import hashlib
import json
import os
import tempfile
import warnings
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..common.errors import DataError
from ..common.files import describe_os_error, new_file_mode

#: The version of the entries' layout: entries of another are stale.
FORMAT = 1
#: Checksums cover blocks of this many bytes.
BLOCK = 64 * 2**20
#: The environment variable that puts the cache elsewhere.
CACHE_DIR_ENV = "CONDGEN_CACHE_DIR"


def cache_root() -> Path:
    """``$CONDGEN_CACHE_DIR``, else ``${XDG_CACHE_HOME:-~/.cache}/condgen``."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "condgen"


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def digest(value: Any) -> str:
    """A short hex key of a JSON-able ``value``."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _fix(path: Path) -> str:
    return (f"free space or make {str(path)!r} writable, set {CACHE_DIR_ENV} to a folder that is, or decode "
            "into memory each run with --data-option cache=false")


class CacheEntry:
    """One entry's folder: ``open_split`` what is there, ``writer`` a split anew."""

    def __init__(self, kind: str, key: str) -> None:
        self.path = cache_root() / kind / key
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"cannot make the data cache folder {str(self.path)!r}: {describe_os_error(exc)}; "
                            f"{_fix(self.path)}") from None

    @contextmanager
    def locked(self) -> Iterator["CacheEntry"]:
        """Held while an entry is checked and, where needed, built: one process builds, the others wait."""
        lock = self.path / "lock"
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            raise DataError(f"cannot lock the data cache {str(lock)!r}: {describe_os_error(exc)}; "
                            f"{_fix(self.path)}") from None
        try:
            try:
                # a POSIX record lock: a forked worker does not inherit it (flock's would be held by the workers
                # too), and network file systems carry it where they carry any lock
                fcntl.lockf(fd, fcntl.LOCK_EX)
            except OSError as exc:
                raise DataError(f"cannot lock the data cache {str(lock)!r}: {describe_os_error(exc)} (a file "
                                f"system without locks?); {_fix(self.path)}") from None
            self._remove_orphans()
            yield self
        finally:
            os.close(fd)  # closing drops the lock

    def _remove_orphans(self) -> None:
        """Temporary files a killed build left (only a holder of the lock writes here, so any is an orphan)."""
        for orphan in self.path.glob(".*.tmp*"):
            try:
                orphan.unlink()
            except OSError:
                pass  # another user's, or gone: left for whoever can

    def rows_path(self, split: str) -> Path:
        return self.path / f"{split}.rows"

    def open_split(self, split: str, key: str) -> dict[str, Any] | None:
        """The description of ``split`` if it is there, of content ``key``, and its rows file is whole; else
        None (a corrupt one is warned of)."""
        meta_path = self.path / f"{split}.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self._corrupt(split, f"its description does not read ({exc})")
            return None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("key") != key:
            return None  # stale: made from other files (or by another version), not damaged
        problem = self._check_rows(split, meta)
        if problem:
            self._corrupt(split, problem)
            return None
        return meta

    def _check_rows(self, split: str, meta: dict[str, Any]) -> str | None:
        path = self.rows_path(split)
        try:
            size = path.stat().st_size
        except OSError as exc:
            return f"its rows file cannot be read ({describe_os_error(exc)})"
        want = meta.get("bytes")
        if size != want:
            return f"its rows file holds {size} bytes, not the {want} it should"
        sums = meta.get("crc32") or []
        if len(sums) != -(-size // BLOCK):
            return "its checksums do not cover its rows file"
        if not all(isinstance(s, int) for s in sums):
            return "its checksums are not numbers"
        try:
            with open(path, "rb", buffering=0) as fh, ThreadPoolExecutor(_cores()) as pool, \
                    tqdm(total=size, desc=f"checking the cached {split} data", unit="B", unit_scale=True, leave=False,
                         disable=None) as bar:
                def block_sum(i: int) -> tuple[int, int]:  # reading and zlib both let go of the GIL
                    block = os.pread(fh.fileno(), BLOCK, i * BLOCK)
                    return zlib.crc32(block), len(block)

                ahead = _cores() * 2  # blocks in flight: a mismatch stops the reading soon, not at the end
                futures = [pool.submit(block_sum, i) for i in range(min(ahead, len(sums)))]
                for i in range(len(sums)):
                    got, length = futures[i].result()
                    if i + ahead < len(sums):
                        futures.append(pool.submit(block_sum, i + ahead))
                    if got != sums[i]:
                        for f in futures[i + 1:]:
                            f.cancel()
                        return f"block {i} of its rows file does not match its checksum"
                    bar.update(length)
        except OSError as exc:
            return f"its rows file cannot be read ({describe_os_error(exc)})"
        return None

    def _corrupt(self, split: str, why: str) -> None:
        warnings.warn(f"the data cache {str(self.path)!r} ({split}) is damaged: {why}; building it again",
                      stacklevel=3)

    def writer(self, split: str) -> "RowWriter":
        return RowWriter(self, split)


class RowWriter:
    """Rows appended to a temporary file, made the entry's ``split`` by :meth:`commit` (with its description);
    a writer left without a commit (an error, Ctrl-C) removes its file."""

    def __init__(self, entry: CacheEntry, split: str) -> None:
        self.entry, self.split = entry, split
        try:
            fd, name = tempfile.mkstemp(prefix=f".{split}.", suffix=".tmp", dir=entry.path)
        except OSError as exc:
            raise DataError(f"cannot write the data cache in {str(entry.path)!r}: {describe_os_error(exc)}; "
                            f"{_fix(entry.path)}") from None
        self.tmp = Path(name)
        self.fh = os.fdopen(fd, "wb")
        self.bytes, self.sums, self._block, self._block_crc = 0, [], 0, 0

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        size = view.nbytes
        try:
            self.fh.write(view)
        except OSError as exc:
            self.abandon()
            raise DataError(f"cannot write the data cache {str(self.tmp)!r}: {describe_os_error(exc)}; "
                            f"{_fix(self.entry.path)}") from None
        while len(view):  # a checksum per BLOCK bytes of the file, whatever the rows' size
            take = min(len(view), BLOCK - self._block)
            self._block_crc = zlib.crc32(view[:take], self._block_crc)
            self._block += take
            view = view[take:]
            if self._block == BLOCK:
                self.sums.append(self._block_crc)
                self._block, self._block_crc = 0, 0
        self.bytes += size

    def commit(self, key: str, description: dict[str, Any]) -> dict[str, Any]:
        """The rows file and its description, in place; the description as :meth:`CacheEntry.open_split` gives it."""
        sums = self.sums + ([self._block_crc] if self._block else [])
        meta = {"format": FORMAT, "key": key, "bytes": self.bytes, "crc32": sums, **description}
        meta_tmp = self.entry.path / f".{self.split}.json.tmp{os.getpid()}"
        try:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            os.chmod(self.tmp, new_file_mode())
            meta_tmp.write_text(json.dumps(meta), encoding="utf-8")
            os.chmod(meta_tmp, new_file_mode())
            # rows first: a crash between the two leaves the old description, whose checksums refuse new rows
            os.replace(self.tmp, self.entry.rows_path(self.split))
            os.replace(meta_tmp, self.entry.path / f"{self.split}.json")
        except OSError as exc:
            self.abandon()
            meta_tmp.unlink(missing_ok=True)
            raise DataError(f"cannot write the data cache in {str(self.entry.path)!r}: {describe_os_error(exc)}; "
                            f"{_fix(self.entry.path)}") from None
        return meta

    def abandon(self) -> None:
        try:
            self.fh.close()
        except OSError:
            pass
        self.tmp.unlink(missing_ok=True)
