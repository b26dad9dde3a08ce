"""Attributes of a data set's files from a CSV beside them: a column naming each file, and any number of other
columns, each becoming a field of the data.

A column whose every value is a number becomes a float32 field ``(N,)`` (what the ``regression``
conditioner reads); any other column is a category, a field of class indices ``(N,)`` int64 whose class
names are the column's values, sorted (what the ``label`` conditioner reads, names and all). A column may
be declared either way (``number`` or ``category``); a value that does not fit its declared type, an empty
cell, a file listed twice, a file the data set does not have and a file without a row are each one
:class:`condgen.DataError` naming the file, row and column.

With ``missing="absent"`` an empty cell is a missing value instead, marked the toolkit's one way
(:func:`is_missing`): NaN in a number field, :data:`MISSING_CATEGORY` (−1) in a category field. A conditioner
reading the field reports those items (:meth:`condgen.Conditioner.missing_values`), and the model gives them
its learned "absent" condition, as condition dropout does.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor

from ..common.errors import DataError
from ..common.files import is_file, read_text

#: The types a column may be declared as.
COLUMN_TYPES = ("number", "category")
#: What an empty cell may mean: refused (the default), or the item's condition left out.
MISSING_POLICIES = ("refuse", "absent")
#: The class index of a missing value in a field of class indices (a float field marks one NaN).
MISSING_CATEGORY = -1


def is_missing(values: Tensor) -> Tensor:
    """Which items of a data field ``(N, ...)`` have no value: ``(N,)`` bool, True where an item is NaN (a
    float field) or :data:`MISSING_CATEGORY` (an integer field) anywhere in its dimensions. The one marker of a
    missing value, for every data set and conditioner."""
    marked = torch.isnan(values) if values.is_floating_point() else values == MISSING_CATEGORY
    return marked.reshape(values.shape[0], -1).any(1) if values.dim() != 1 else marked


class Attributes:
    """A CSV of attributes read once: each file's row of values, by the file's name as the CSV gives it."""

    def __init__(self, path: str | Path, file_column: str = "file", types: Mapping[str, str] | None = None,
                 reserved: Sequence[str] = (), missing: str = "refuse") -> None:
        if missing not in MISSING_POLICIES:
            raise ValueError(f"missing must be one of {MISSING_POLICIES}, got {missing!r}")
        self.path = Path(path)
        self.types = dict(types or {})
        self.missing = missing
        if not is_file(self.path, "attributes CSV"):
            raise DataError(f"attributes CSV {str(self.path)!r} does not exist (give --data-option attributes=FILE, "
                            "relative to --data-dir or absolute)")
        reader = csv.reader(io.StringIO(read_text(self.path, "attributes CSV"), newline=""))
        header = [h.strip() for h in next(reader, [])]
        if file_column not in header:
            raise DataError(f"attributes CSV {str(self.path)!r} has no column {file_column!r} (its columns: "
                            f"{', '.join(header) or 'none'}); name the column of file names with --data-option "
                            "file_column=NAME")
        self.columns = [h for h in header if h != file_column]
        for name in self.columns:
            if name in reserved or not name:
                raise DataError(f"attributes CSV {str(self.path)!r} has a column {name!r}, a name the data set "
                                f"gives a field of its own ({', '.join(reserved)}) or none; rename it")
        unknown = sorted(set(self.types) - set(self.columns))
        if unknown:
            raise DataError(f"data.options attribute_types names column {unknown[0]!r}, which attributes CSV "
                            f"{str(self.path)!r} has not (its columns: {', '.join(self.columns) or 'none'})")
        self.rows: dict[str, tuple[int, dict[str, str]]] = {}
        at = header.index(file_column)
        for line, values in enumerate(reader, start=2):
            if not any(v.strip() for v in values):
                continue  # a blank line
            if len(values) != len(header):
                raise DataError(f"attributes CSV {str(self.path)!r} row {line} has {len(values)} values, but its "
                                f"header has {len(header)} columns")
            key = values[at].strip()
            if key in self.rows:
                raise DataError(f"attributes CSV {str(self.path)!r} lists file {key!r} twice (rows "
                                f"{self.rows[key][0]} and {line}); give each file one row")
            self.rows[key] = (line, {h: v.strip() for h, v in zip(header, values) if h != file_column})
        # each column's type and a category's names, from the whole CSV once (both splits read the same); an
        # empty cell says nothing of its column's type
        filled = {c: [row[c] for _, row in self.rows.values() if row[c]] for c in self.columns}
        if missing == "absent":
            empty = [c for c in self.columns if self.rows and not filled[c]]
            if empty:
                raise DataError(f"attributes CSV {str(self.path)!r}: column {empty[0]!r} is empty in every row; fill "
                                "it in or remove it")
        self.kinds = {c: self.types.get(c) or ("number" if all(_number(v) is not None for v in filled[c])
                                               else "category")
                      for c in self.columns}
        self.classes = {c: sorted(set(filled[c])) for c, kind in self.kinds.items() if kind == "category"}

    def fields(self, keys: Sequence[str]) -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
        """The fields ``{column: (N,)}`` of the files ``keys`` (as the CSV names them), in their order, and the
        class names of the category columns (:attr:`classes`). Every key must have a row; each column's type
        (:attr:`kinds`) is declared, or a number where every value of the whole CSV is one. An empty cell is
        refused, or with ``missing="absent"`` marked missing (NaN or :data:`MISSING_CATEGORY`)."""
        missing = [k for k in keys if k not in self.rows]
        if missing:
            raise DataError(f"file {missing[0]!r} has no row in attributes CSV {str(self.path)!r}"
                            + (f", nor do {len(missing) - 1} more" if len(missing) > 1 else "")
                            + "; give every file a row")
        fields = {}
        for column, kind in self.kinds.items():
            values = []
            for key in keys:
                line, row = self.rows[key]
                value = row[column]
                if not value:
                    if self.missing == "absent":
                        values.append(None)
                        continue
                    raise DataError(f"attributes CSV {str(self.path)!r} row {line} (file {key!r}), column {column!r} "
                                    "is empty; give every file a value, or --data-option missing=absent to take an "
                                    "empty cell as that condition left out")
                if kind == "number" and _number(value) is None:
                    raise DataError(f"attributes CSV {str(self.path)!r} row {line} (file {key!r}), column {column!r}: "
                                    f"{value!r} is not a finite number, which the column is declared to hold")
                values.append(value)
            if kind == "number":
                fields[column] = torch.tensor([math.nan if v is None else float(v) for v in values],
                                              dtype=torch.float32)
            else:
                index = {name: i for i, name in enumerate(self.classes[column])}
                fields[column] = torch.tensor([MISSING_CATEGORY if v is None else index[v] for v in values],
                                              dtype=torch.int64)
        return fields, dict(self.classes)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
