"""Samples written to a file, the one way for every command that writes them: ``condgen sample``,
``condgen inpaint`` and any plugin's command.

A command declares the shared flags with :func:`add_sample_arguments`, checks ``--out`` and
``--num`` with :class:`SampleFile` before it loads a run, turns ``--condition`` into rows of
samples with :meth:`SampleFile.rows` and writes what it drew with :meth:`SampleFile.write`::

    def run_command(args):
        out = condgen.SampleFile(args.out, args.num)        # .png or .npy, --num >= 1: before a run loads
        run = condgen.load_run(args.run_dir, device=args.device)
        rows = out.rows(run, args.condition)                 # a row per combination of the values given
        images = rows.sample(run, out.num, seed=args.seed)   # (R * num, C, H, W)
        out.write(images, rows)                              # an array, or a grid of labelled rows

Declaring the flags imports neither torch nor pydantic (``condgen --help`` builds every command's
flags); checking the file, and the rest, import them when the command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..common.errors import ArgumentError, CondgenError
from ..common.options import Option, add_options
from ..runs.options import DEVICE

if TYPE_CHECKING:
    from torch import Tensor

    from ..runs.run import Run
    from .rows import SampleRows

#: What ``--out`` may end in: a picture, or an array.
SUFFIXES = (".png", ".npy")


def sample_options(
    *,
    num: int = 10,
    num_help: str = "samples per condition",
    condition_help: str = "e.g. label=5, label=0,1,2 or label=all (one row per value)",
    out_help: str = ".png grid, or .npy array (N, C, H, W)",
) -> tuple[Option, ...]:
    """The shared flags as option declarations (:class:`condgen.common.options.Option`): ``--condition``
    (repeatable), ``--num`` (default ``num``), ``--seed`` (default 0), ``--out`` (required) and
    ``--device`` (default ``auto``), as ``condgen sample`` has them; the help texts say what they mean
    for the command."""
    return (
        Option("condition", condition_help, action="append", default=[], metavar="NAME=VALUE"),
        Option("num", f"{num_help} (default {num})", type=int, default=num),
        Option("seed", "seed of the samples' noise (default 0)", type=int, default=0),
        Option("out", out_help, required=True, metavar="FILE"),
        DEVICE,
    )


def add_sample_arguments(parser: argparse.ArgumentParser, **texts: Any) -> None:
    """Declare the shared flags of :func:`sample_options` on ``parser`` (a plugin command's, say);
    ``texts`` are :func:`sample_options`' keywords (``num=16``, ``num_help=...``)."""
    add_options(parser, sample_options(**texts))


class SampleFile:
    """The file ``--out`` names, to hold ``--num`` samples of each row; checked when made, before a run
    is loaded: it ends in ``.png`` or ``.npy``, and ``num`` is at least 1 (and, for a picture, fits
    in a row of one: :data:`condgen.pictures.grid.MAX_GRID_COLUMNS`).

    A ``.npy`` file holds the samples as one array ``(R * num, *data_shape)``; a ``.png`` file a grid
    with a row of ``num`` images for each row of conditions, labelled by its conditions and headed by
    their picture where every row has one (:class:`condgen.pictures.rows.SampleRows`).
    """

    def __init__(self, path: str | PathLike[str], num: int) -> None:
        from .grid import MAX_GRID_COLUMNS

        if not isinstance(path, (str, PathLike)) or not str(path).strip():
            raise ArgumentError(f"--out must name the .png or .npy file to write, got {path!r}")
        self.path = Path(path)
        if self.path.suffix.lower() not in SUFFIXES:
            raise CondgenError(f"--out {str(path)!r}: the file must end in .png (a picture) or .npy (an array)")
        if isinstance(num, bool) or not isinstance(num, int):
            raise ArgumentError(f"--num must be a whole number >= 1, got {num!r}")
        if num < 1:
            raise CondgenError(f"--num must be at least 1, got {num}")
        if self.picture and num > MAX_GRID_COLUMNS:
            raise CondgenError(f"--out {str(path)!r}: a picture's rows hold at most {MAX_GRID_COLUMNS:,} samples, "
                               f"not --num {num}; write --out FILE.npy, or ask for fewer")
        self.num = num

    @property
    def picture(self) -> bool:
        """Whether the file is a ``.png`` picture (else a ``.npy`` array)."""
        return self.path.suffix.lower() == ".png"

    def rows(self, run: Run, texts: Sequence[str], given: Mapping[str, Tensor] | None = None) -> SampleRows:
        """The rows of samples that ``--condition`` texts ask for (one for each combination of the values
        given; see :meth:`condgen.pictures.rows.SampleRows.from_texts`, and its ``given`` for the conditions a
        command takes from flags of its own), checked to fit the file (:meth:`check`)."""
        from .rows import SampleRows

        rows = SampleRows.from_texts(run, texts, given)
        self.check(run, len(rows))
        return rows

    def check(self, run: Run, rows: int) -> None:
        """CondgenError, before anything is drawn, if ``rows`` rows of ``num`` samples of ``run`` cannot be
        written: a picture holds at most :data:`condgen.pictures.grid.MAX_GRID_IMAGES` images, and only images."""
        from .grid import MAX_GRID_IMAGES, is_image_shape

        if not self.picture:
            return
        if rows * self.num > MAX_GRID_IMAGES:
            raise CondgenError(f"--out {str(self.path)!r}: a picture holds at most {MAX_GRID_IMAGES:,} samples, and "
                               f"{rows} row(s) of --num {self.num} make {rows * self.num:,}; write --out FILE.npy, "
                               "or ask for fewer")
        if not is_image_shape(run.model.data_shape):
            raise CondgenError(f"this model's data {run.model.data_shape} are not images; write --out FILE.npy")

    def write(self, samples: Tensor, rows: SampleRows | None = None) -> None:
        """Write ``samples`` ``(R * num, *data_shape)``, row after row as
        :meth:`condgen.pictures.rows.SampleRows.sample` draws them: the array, or a grid of ``num`` a
        row, each row labelled and headed as ``rows`` says (unlabelled when ``rows`` is None or its
        labels are empty, as for a model without conditioners)."""
        from ..common.files import save_array
        from .grid import save_grid

        if not self.picture:
            save_array(samples, self.path)
            return
        rows = rows.with_heads() if rows is not None else None
        labels = rows.labels if rows is not None and any(rows.labels) else None
        save_grid(samples, self.path, per_row=self.num, row_labels=labels,
                  row_heads=rows.heads if rows is not None else None)
