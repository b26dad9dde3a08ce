"""A field kept in a file and read a batch at a time: images bigger than memory.

A :class:`StoredArray` stands in a split where a tensor would, for a field too big to hold: it has a tensor's
``shape``, ``dtype``, ``device`` and ``dim()``, and indexing it (an int, a slice, indices) reads just those
items from the file and gives a :class:`torch.Tensor`. Rows are read with ``pread`` into a batch's own buffer,
not through a memory map: pages of a map that an epoch touches count in the process's resident memory until
the kernel takes them back, so a map of 2.4 GB would look (and, to a job scheduler, be) 2.4 GB resident. The
file's pages stay in the kernel's page cache, shared and dropped under memory pressure.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..common.errors import DataError
from ..common.files import describe_os_error

#: Rows read in file order at a time (a batch is one chunk; a whole array, many).
READ_CHUNK = 4096


class _OpenFile:
    """One open file shared by an array and its views; closed when the last of them goes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise DataError(f"cannot read the stored array {str(path)!r}: {describe_os_error(exc)}") from None

    def __reduce__(self):  # another process (a spawned worker, a pickle) opens the file again, by its path
        return (_OpenFile, (self.path,))

    def __del__(self) -> None:
        fd = getattr(self, "fd", None)
        if fd is not None:
            os.close(fd)


class StoredArray:
    """``(N, *item_shape)`` items of ``uint8`` kept in a file, read when indexed.

    Item ``i`` is the file's row ``rows[i]`` (a file is written once, in the order its items were made, and
    an array may show them in any order or a part of them). With ``scaled``, items come as float32 in
    [0, 1] (the file's levels / 255), the way a batch of images reaches the model.

    Indexing gives a tensor on :attr:`device`: ``a[3]`` ``(*item_shape)``, ``a[:8]`` and ``a[idx]`` (a 1-D
    tensor, array or list of indices, or a boolean mask) ``(B, *item_shape)``. :meth:`head` and :meth:`to`
    give arrays over the same file.
    """

    def __init__(self, path: str | Path, item_shape: tuple[int, ...], rows: np.ndarray | None = None, *,
                 file_rows: int | None = None, scaled: bool = False, device: torch.device | str = "cpu",
                 _file: _OpenFile | None = None) -> None:
        self._file = _file or _OpenFile(Path(path))
        self.item_shape = tuple(int(s) for s in item_shape)
        self.row_bytes = int(np.prod(self.item_shape, dtype=np.int64))
        if file_rows is None:
            file_rows = os.fstat(self._file.fd).st_size // max(self.row_bytes, 1)
        self.file_rows = int(file_rows)
        self._rows = np.arange(self.file_rows, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
        if self._rows.ndim != 1 or (self._rows.size and not 0 <= self._rows.min() <= self._rows.max() < self.file_rows):
            raise ValueError(f"rows must be a 1-D array of row numbers below {self.file_rows}")
        self.scaled = scaled
        self.device = torch.device(device)

    # -- what a tensor would say ---------------------------------------------------------
    @property
    def path(self) -> Path:
        return self._file.path

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self._rows), *self.item_shape))

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32 if self.scaled else torch.uint8

    @property
    def ndim(self) -> int:
        return 1 + len(self.item_shape)

    def dim(self) -> int:
        return self.ndim

    def size(self, dim: int | None = None) -> Any:
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return len(self._rows) * self.row_bytes

    def is_floating_point(self) -> bool:
        return self.scaled

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        kind = "float32 in [0, 1]" if self.scaled else "uint8"
        return f"StoredArray({list(self.shape)}, {kind}, {str(self.path)!r})"

    # -- views ---------------------------------------------------------------------------
    def _view(self, rows: np.ndarray | None = None, scaled: bool | None = None,
              device: torch.device | None = None) -> "StoredArray":
        return StoredArray(self.path, self.item_shape, self._rows if rows is None else rows,
                           file_rows=self.file_rows, scaled=self.scaled if scaled is None else scaled,
                           device=self.device if device is None else device, _file=self._file)

    def head(self, n: int | None) -> "StoredArray":
        """The first ``n`` items (all where ``n`` is None), still in the file."""
        return self if n is None else self._view(self._rows[:n])

    def select(self, rows: np.ndarray) -> "StoredArray":
        """Items ``rows`` of this array (indices into it, in any order), still in the file."""
        return self._view(self._rows[np.asarray(rows, dtype=np.int64)])

    def as_floats(self) -> "StoredArray":
        """The same items as float32 in [0, 1]."""
        return self._view(scaled=True)

    def to(self, device: torch.device | str) -> "StoredArray":
        """The same items, read onto ``device`` (the file stays where it is: that is the point)."""
        return self._view(device=torch.device(device))

    # -- reading -------------------------------------------------------------------------
    def __getitem__(self, key: Any) -> Tensor:
        if isinstance(key, Tensor):
            key = key.detach().cpu().numpy()
        rows = self._rows[key]
        if np.ndim(rows) == 0:
            return self._read(np.asarray([rows]))[0]
        return self._read(rows)

    def _read(self, rows: np.ndarray) -> Tensor:
        """Rows ``rows`` of the file ``(B, *item_shape)``. Each chunk of them is read in file order, a run of
        consecutive rows in one call, into a buffer of the chunk's size: reading all of a big array in
        another order takes the memory of the array and a chunk, not twice the array."""
        out = np.empty((len(rows), self.row_bytes), dtype=np.uint8)
        for start in range(0, len(rows), READ_CHUNK):
            chunk = rows[start:start + READ_CHUNK]
            order = np.argsort(chunk, kind="stable")
            wanted = chunk[order]
            in_order = bool(np.all(order[1:] > order[:-1]))
            buffer = out[start:start + len(chunk)] if in_order else np.empty((len(chunk), self.row_bytes), np.uint8)
            breaks = np.flatnonzero(np.diff(wanted) != 1) + 1
            for a, b in zip(np.concatenate(([0], breaks)).tolist(), np.concatenate((breaks, [len(wanted)])).tolist()):
                self._pread(buffer[a:b], int(wanted[a]))
            if not in_order:
                out[start + order] = buffer
        t = torch.from_numpy(out).view(len(rows), *self.item_shape)
        if self.device.type != "cpu":
            t = t.to(self.device)
        return t.float().div_(255.0) if self.scaled else t

    def _pread(self, buffer: np.ndarray, first_row: int) -> None:
        want, offset = buffer.nbytes, first_row * self.row_bytes
        view = memoryview(buffer).cast("B")
        done = 0
        try:
            while done < want:  # a read may return less than asked (a signal, a network file system)
                got = os.preadv(self._file.fd, [view[done:]], offset + done)
                if got == 0:
                    raise DataError(f"the stored array {str(self.path)!r} is cut short (row {first_row} and after "
                                    "are missing): it changed while in use; run again to rebuild it")
                done += got
        except OSError as exc:
            raise DataError(f"cannot read the stored array {str(self.path)!r}: {describe_os_error(exc)}") from None
