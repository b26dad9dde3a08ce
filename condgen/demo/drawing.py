"""From the demo page's inputs to a grid of samples, with no web toolkit in it.

Each conditioner's widget turns its inputs into a value (:meth:`condgen.Widget.value`), the conditioner
into conditions ``(K, ...)``; every combination of them is one row of samples, as for ``condgen sample
--condition ...`` (:class:`condgen.SampleRows`). The same inputs and seed give the same picture.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..common.arguments import MAX_SEED, whole_number
from ..common.errors import CondgenError, ConditionError, PluginError
from ..pictures.grid import grid_image
from ..pictures.rows import SampleRows
from ..plugin.registry import WIDGETS, registry
from ..plugin.widget import Widget
from ..runs.run import Run
from .widgets import make_widget

#: The most samples of a row the page draws (the end of its slider), and the most in one picture.
MAX_PER_ROW = 100
MAX_SAMPLES = 1_000
#: A picture of one row of samples wraps them this many a row: 100 samples make a 10 x 10 square.
COLUMNS = 10
#: Small samples are shown enlarged, each pixel a square of pixels, until the picture is this wide (at most 8x).
MIN_WIDTH = 560


@dataclass(frozen=True)
class Picture:
    """What one press of "Generate" gives: the grid ``(H, W, 3)`` uint8, what its rows are, and the time taken."""

    image: np.ndarray
    caption: str
    seconds: float


class Drawing:
    """A run with a widget for each of its conditioners, drawing pictures of samples for the page."""

    def __init__(self, run: Run) -> None:
        self.run = run
        #: Conditioner name -> its widget, in the run's order of conditioners.
        self.widgets: dict[str, Widget] = {n: make_widget(run, n) for n in run.conditioners}
        grid_image(torch.zeros(1, 1, 2, 2), 1)  # imports torchvision's grid now, not on the first press (1 s)

    def value_of(self, name: str, inputs: Sequence[Any]) -> Any:
        """Widget ``name``'s value of its components' ``inputs``; its bug is a :class:`condgen.PluginError` naming it."""
        widget = self.widgets[name]
        try:
            return widget.value(*inputs)
        except CondgenError:
            raise
        except Exception as exc:
            plugin = registry().resolve(WIDGETS).owners.get(type(widget).conditioner, "condgen")
            raise PluginError(f"the {name!r} input failed: {type(widget).__name__}.value of plugin {plugin!r} raised "
                              f"{type(exc).__name__}: {exc} (a bug in that plugin)") from None

    def rows(self, inputs: Mapping[str, Sequence[Any] | None]) -> SampleRows:
        """The rows of samples ``inputs`` ask for: ``{conditioner: its components' values}``, None for one left out
        (allowed for a conditioner the run learnt to do without)."""
        parsed = {}
        for name, cond in self.run.conditioners.items():
            given = inputs.get(name)
            if given is None:
                if name not in self.run.optional:
                    raise ConditionError(f"{name!r} cannot be left out: this run was trained without condition "
                                         f"dropout for it, so it needs a value")
                continue
            value = self.value_of(name, given)
            try:
                parsed[name] = cond.conditions_from_value(value)
            except CondgenError:
                raise
            except Exception as exc:  # the conditioner's plugin's bug, said in one line
                raise PluginError(f"conditioner {name!r} could not read the value {value!r:.80} "
                                  f"({type(exc).__name__}: {exc}; a bug in its plugin)") from None
        return SampleRows.combining(self.run, parsed)

    def draw(self, inputs: Mapping[str, Sequence[Any] | None], num: Any, seed: Any) -> Picture:
        """``num`` samples for each row of conditions ``inputs`` ask for (see :meth:`rows`), drawn with ``seed``."""
        start = time.perf_counter()
        num = whole_number("the number of samples", _whole(num), 1, MAX_PER_ROW)
        seed = whole_number("the seed", _whole(seed), 0, MAX_SEED)
        rows = self.rows(inputs)
        if len(rows) * num > MAX_SAMPLES:
            raise ConditionError(f"{len(rows)} rows of {num} samples make {len(rows) * num:,}; the page draws at most "
                                 f"{MAX_SAMPLES:,}: ask for fewer samples, or fewer conditions at once")
        with torch.no_grad():
            samples = rows.sample(self.run, num, seed=seed)
        rows = rows.with_heads()
        if rows.heads is not None:  # each row headed by its condition's picture (the image being completed)
            grid = grid_image(*_headed(samples.cpu(), rows.heads.cpu(), num))
        else:
            grid = grid_image(samples, num if len(rows) > 1 else min(num, COLUMNS))
        image = _enlarged((grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        seconds = time.perf_counter() - start
        return Picture(image, _caption(rows, num, f"{samples.shape[0]} samples of seed {seed} in {seconds:.2f} s"),
                       seconds)


def _headed(samples: Tensor, heads: Tensor, num: int) -> tuple[Tensor, int]:
    """Rows of ``num`` samples ``(R * num, C, H, W)``, each headed by its picture in ``heads`` ``(R, C, H, W)`` and
    a blank, wrapped at :data:`COLUMNS` samples a line (later lines start with two blanks, the last is filled out
    with blanks): ``(images, per_row)`` for :func:`condgen.pictures.grid.grid_image`."""
    per_line = min(num, COLUMNS)
    lines = -(-num // per_line)
    blank = torch.ones_like(samples[:1])
    out = []
    for r in range(heads.shape[0]):
        row = samples[r * num:(r + 1) * num]
        row = torch.cat([row, blank.expand(lines * per_line - num, *blank.shape[1:])])
        for line in range(lines):
            lead = [heads[r:r + 1].to(samples.dtype), blank] if line == 0 else [blank, blank]
            out += [*lead, row[line * per_line:(line + 1) * per_line]]
    return torch.cat(out), per_line + 2


def _enlarged(image: np.ndarray) -> np.ndarray:
    """``image`` ``(H, W, 3)`` with each pixel repeated k x k times, so 28-pixel digits are not specks on the page
    (the browser would blur a picture it scales up itself)."""
    k = max(1, min(8, -(-MIN_WIDTH // image.shape[1])))
    return image if k == 1 else image.repeat(k, axis=0).repeat(k, axis=1)


def _whole(value: Any) -> Any:
    """A number from the page, where a slider or number box may give a float: ``16.0`` is 16, ``2.5`` stays."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def _caption(rows: SampleRows, num: int, drawn: str) -> str:
    """What the picture shows: its rows' conditions, then ``drawn`` (how many, the seed, how long it took)."""
    labels = [label for label in rows.labels if label]
    if not labels:
        return drawn
    if len(labels) == 1:
        return f"{labels[0]}: {drawn}"
    shown = "; ".join(f"row {i + 1}: {label}" for i, label in enumerate(labels[:12]))
    more = f"; and {len(labels) - 12} more" if len(labels) > 12 else ""
    return f"{len(labels)} rows of {num} ({shown}{more}): {drawn}"
