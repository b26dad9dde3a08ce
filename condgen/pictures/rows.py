"""Rows of samples: the conditions each row of a picture (or of a file of samples) is drawn for, its
label and the picture at its head, and the drawing of its samples.

``condgen sample --condition label=0,1 --condition sign=-1,1`` makes one row for each combination of
the values given (four here); a run's ``samples.png`` one row for each example condition
(:mod:`condgen.pictures.drawing`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from ..common.arguments import whole_number
from ..common.errors import CondgenError, ConditionError, PluginError
from ..plugin.conditioner import Conditioner
from ..runs.run import Run


def describe(conditioners: Mapping[str, Conditioner], one: Mapping[str, Tensor]) -> str:
    """A row label for one combination of conditions ``{name: (...)}``: ``"label=5 ink=0.2"``."""
    return " ".join(f"{n}={conditioners[n].describe_condition(one[n])}" for n in conditioners if n in one)


def row_picture(run: Run, conditions: Mapping[str, Tensor], row: int) -> Tensor | None:
    """The first conditioner's picture of row ``row``'s condition that has the run's data shape
    ``(C, H, W)`` (a grey one is repeated over C channels); None if no conditioner draws one that fits.
    A conditioner whose :meth:`~condgen.Conditioner.condition_picture` raises is a :class:`condgen.PluginError`."""
    shape = tuple(run.model.data_shape)
    for name, cond in run.conditioners.items():
        if name not in conditions:  # left out (condition dropout)
            continue
        try:
            pic = cond.condition_picture(conditions[name][row])
        except CondgenError:
            raise
        except Exception as exc:  # a plugin's bug: one line naming it, not an internal error
            raise PluginError(f"conditioner {name!r}'s condition_picture raised {type(exc).__name__}: {exc} "
                              "(a bug in its plugin)") from None
        if pic is None:
            continue
        pic = pic.detach().float().cpu()
        if len(shape) == 3 and pic.dim() == 3 and pic.shape[1:] == shape[1:] and pic.shape[0] in (1, shape[0]):
            return pic.expand(shape[0], *pic.shape[1:])
    return None


@dataclass
class SampleRows:
    """R rows of samples: the conditions each row is drawn for, its label, and the picture at its head.

    ``conditions`` ``{name: (R, ...)}`` holds a condition per row for each conditioner given (one left
    out, as condition dropout allows, is absent); ``labels`` one per row (``"label=5 ink=0.2"``, empty
    for a model without conditioners); ``heads`` ``(R, C, H, W)`` each row's condition as a picture of
    the samples' shape (:meth:`condgen.Conditioner.condition_picture`), or None unless every row has
    one; ``pictured`` how many rows have one. Rows made by :meth:`of` draw their pictures only when a
    picture is written (:meth:`with_heads`): an array of samples never asks a conditioner for one.
    """

    conditions: dict[str, Tensor]
    labels: list[str]
    heads: Tensor | None = None
    pictured: int = 0
    #: Draws ``(heads, pictured)`` for :meth:`with_heads`; None once drawn, or where there is nothing to draw.
    draw_heads: Callable[[], tuple[Tensor | None, int]] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.labels)

    def with_heads(self) -> SampleRows:
        """These rows with their head pictures drawn (themselves if there is nothing left to draw)."""
        if self.draw_heads is None:
            return self
        heads, pictured = self.draw_heads()
        return replace(self, heads=heads, pictured=pictured, draw_heads=None)

    @classmethod
    def of(cls, run: Run, conditions: Mapping[str, Tensor], labels: Sequence[str] | None = None) -> SampleRows:
        """The rows of ``conditions`` ``{name: (R, ...)}`` (one row and no conditions for a model without
        conditioners), labelled by their conditioners unless ``labels`` are given."""
        count = next(iter(conditions.values())).shape[0] if conditions else 1
        conditions = dict(conditions)
        if labels is None:
            labels = [describe(run.conditioners, {n: c[r] for n, c in conditions.items()}) for r in range(count)]

        def draw() -> tuple[Tensor | None, int]:
            drawn = [p for p in (row_picture(run, conditions, r) for r in range(count)) if p is not None]
            return (torch.stack(drawn) if drawn and len(drawn) == count else None), len(drawn)

        return cls(conditions, list(labels), draw_heads=draw if conditions else None)

    @classmethod
    def combining(cls, run: Run, parsed: Mapping[str, Tensor]) -> SampleRows:
        """A row for every combination of the conditions ``{name: (K_name, ...)}``, in the order of the
        run's conditioners (the last varies fastest); those not in ``parsed`` are left out."""
        names = [n for n in run.conditioners if n in parsed]
        empty = [n for n in names if parsed[n].shape[0] == 0]
        if empty:
            raise ConditionError(f"the condition for {empty[0]!r} holds no values; give at least one")
        picks = list(itertools.product(*[range(parsed[n].shape[0]) for n in names]))
        return cls.of(run, {n: torch.stack([parsed[n][p[i]] for p in picks]) for i, n in enumerate(names)})

    @classmethod
    def from_texts(cls, run: Run, texts: Sequence[str], given: Mapping[str, Tensor] | None = None) -> SampleRows:
        """The rows of ``--condition NAME=VALUE`` texts (each value may give several conditions: one row
        for each combination). ``given`` holds the conditions ``{name: (K, ...)}`` a command takes from
        its own flags (``condgen inpaint``: the image and mask), which combine with the rest the same way;
        every other conditioner must be in ``texts``, but one trained with condition dropout."""
        given = dict(given or {})
        return cls.combining(run, {**run.parse_conditions(texts, given=list(given)), **given})

    def sample(self, run: Run, per_row: int, seed: int | None = None) -> Tensor:
        """``per_row`` samples of each row, row by row: ``(R * per_row, *data_shape)`` (see :meth:`condgen.Run.sample`)."""
        per_row = whole_number("per_row", per_row, minimum=1)
        run.check_sample_memory(len(self) * per_row)  # before the conditions are repeated per_row times
        conditions = {n: c.repeat_interleave(per_row, dim=0) for n, c in self.conditions.items()}
        return run.sample(conditions, num=len(self) * per_row, seed=seed)
