"""A run: a model together with its conditioners and config, and what one does with it.

This is the Python API behind ``condgen sample`` and ``condgen evaluate``::

    run = condgen.load_run("runs/mnist-label")
    images = run.sample({"label": 5}, num=16, seed=0)     # (16, 1, 28, 28) in [0, 1]

Building a run is :mod:`condgen.runs.build`, storing and loading it :mod:`condgen.runs.store`,
turning user values into conditions :mod:`condgen.runs.conditions`, and rows of samples for a
picture or a file :mod:`condgen.pictures.rows`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..common.arguments import whole_number
from ..common.errors import ArgumentError, DataError, NumericalError, PluginError
from ..common.memory import BYTES_PER_FLOAT, check_fits
from ..common.rng import seeded_generator
from ..engine import CVAE, Objective, make_objective
from ..plugin.conditioner import Conditioner
from . import conditions as _conditions
from .config import RunConfig
from .datasets import StoredDataset


def missing_values_of(name: str, cond: Conditioner, batch: Mapping[str, Tensor], size: int) -> dict[str, Tensor]:
    """Conditioner ``name``'s :meth:`~condgen.Conditioner.missing_values` of ``batch`` (of ``size`` items), checked:
    ``{field: (B,) bool}``; anything else is a :class:`condgen.PluginError` (a bug in its plugin)."""
    masks = cond.missing_values(batch)
    if not isinstance(masks, Mapping) or not all(
            isinstance(f, str) and isinstance(m, Tensor) and m.dtype == torch.bool and tuple(m.shape) == (size,)
            for f, m in masks.items()):
        raise PluginError(f"conditioner {name!r}'s missing_values gave {masks!r:.120}; it must give {{field: (B,) "
                          f"bool tensor}}, here B = {size} (a bug in its plugin)")
    return dict(masks)


#: Most samples generated at once by :meth:`Run.sample`; more are drawn chunk by chunk into the output.
SAMPLE_CHUNK = 16_384
#: Working memory of one chunk's widest layer: wide models sample in smaller chunks.
CHUNK_BYTES = 2**28


@dataclass(eq=False)
class Run:
    """A trained (or training) CVAE with everything needed to use it. Shapes: ``B`` batch, ``D`` = x's size."""

    config: RunConfig
    conditioners: dict[str, Conditioner]
    model: CVAE
    device: torch.device
    epoch: int = 0
    directory: Path | None = field(default=None)
    #: The class names of the data it was trained on (:attr:`condgen.DataSplits.classes`); None for a run
    #: stored before they were kept.
    classes: dict[str, list[str]] | None = field(default=None)
    #: The data set it was trained on and its provider, as its checkpoint records it (None for a new run,
    #: or one stored before they were kept).
    trained_on: StoredDataset | None = field(default=None)

    @cached_property
    def objective(self) -> Objective:
        """The training objective of ``config.train`` (see :mod:`condgen.engine.objective`)."""
        return make_objective(self.config.train.objective, self.config.train.gsnn_weight)

    # -- scoring data ----------------------------------------------------------------------
    def conditions_from_batch(
        self, batch: Mapping[str, Tensor], generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """``{name: (B, ...)}`` for every conditioner, from a data batch."""
        return {n: c.condition_from_batch(batch, generator) for n, c in self.conditioners.items()}

    def scored_part(
        self, conditions: Mapping[str, Tensor], drop: Mapping[str, Tensor] | None = None
    ) -> Tensor | None:
        """``(B, D)``: 1 for the elements of x that no condition gives, which are the ones scored;
        None when every element is scored (no conditioner gives any). A condition left out, or
        dropped for the items ``drop[name]`` ``(B,)`` marks, gives nothing."""
        scored = None
        for name in self.conditioners:
            if name not in conditions:
                continue
            given = self._given_part(name, conditions[name])
            if given is None:
                continue
            given = given.flatten(1).to(self.device, torch.float32)
            if drop is not None and name in drop:
                given = given * (~drop[name]).unsqueeze(1)
            scored = 1.0 - given if scored is None else scored * (1.0 - given)
        return scored

    @cached_property
    def dropout(self) -> dict[str, float]:
        """``{conditioner: p}`` of condition dropout in training (``train.condition_dropout``, p > 0)."""
        return self.config.dropout_probabilities()

    @property
    def optional(self) -> list[str]:
        """The conditioners whose condition may be absent (the model learnt an "absent" embedding for them: condition
        dropout, or missing values with p = 0): left out when sampling, or missing from an item's data."""
        return [n for n in self.conditioners if n in self.model.absent]

    def absent_items(self, batch: Mapping[str, Tensor], *, check: bool = True) -> dict[str, Tensor]:
        """``{name: (B,) bool}``: the items of ``batch`` whose condition of conditioner ``name`` the data leave out
        (a missing value in a field it reads: :meth:`condgen.Conditioner.missing_values`), for each conditioner
        with an absent embedding (:attr:`optional`); those items get it in place of their condition.

        ``check``: a :class:`condgen.DataError` naming the field and the count where the batch leaves out a
        condition of a conditioner without one (it costs a host round trip; training, whose split was checked
        when the run was made, skips it).
        """
        out: dict[str, Tensor] = {}
        if not batch:
            return out
        size = batch[self.config.data.x_field].shape[0] if self.config.data.x_field in batch else len(
            next(iter(batch.values())))
        for name, cond in self.conditioners.items():
            if name not in self.model.absent and not check:
                continue
            masks = missing_values_of(name, cond, batch, size)
            if name in self.model.absent:
                if masks:
                    out[name] = torch.stack(list(masks.values())).any(0).to(self.device)
                continue
            for field_, mask in masks.items():
                count = int(mask.sum())
                if count:
                    raise DataError(
                        f"{count} of {mask.shape[0]} items have no value in data field {field_!r} (a missing "
                        f"value), which conditioner {name!r} reads, and this run learnt no absent condition for it "
                        f"(it was trained without condition dropout for {name!r}); fill the values in, or train a "
                        f"run with --condition-dropout {name}=P")
        return out

    def draw_dropout(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Which items' conditions to drop in a training step: ``{name: (B,) bool}`` for each droppable one."""
        return {n: torch.rand(batch_size, generator=generator, device=self.device) < p
                for n, p in self.dropout.items()}

    def _absent(self, absent: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
        """``absent`` given to :meth:`terms`, checked: only conditioners with an absent embedding may be marked."""
        if not isinstance(absent, Mapping):
            raise ArgumentError(f"absent must be a mapping {{conditioner: (B,) bool tensor}}, got {absent!r:.80}")
        wrong = [n for n in absent if n not in self.optional]
        if wrong:
            raise ArgumentError(f"absent marks conditioner {wrong[0]!r}, which has no absent condition in this run "
                                f"(those that have: {self.optional or 'none'})")
        return absent

    def _given_part(self, name: str, c: Tensor) -> Tensor | None:
        """Conditioner ``name``'s :meth:`~condgen.Conditioner.given_part` of ``c``, its shape checked."""
        given = self.conditioners[name].given_part(c)
        if given is not None and tuple(given.shape) != (c.shape[0], *self.model.data_shape):
            raise PluginError(
                f"conditioner {name!r} gave a given_part of shape {tuple(given.shape)}; it must be "
                f"{(c.shape[0], *self.model.data_shape)}, one mask per condition (a bug in its plugin)"
            )
        return given

    def terms(
        self,
        batch: Mapping[str, Tensor],
        conditions: Mapping[str, Tensor] | None = None,
        generator: torch.Generator | None = None,
        *,
        objective: bool = True,
        dropout: bool = False,
        module: torch.nn.Module | None = None,
        absent: Mapping[str, Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """Per-item terms ``{name: (B,)}`` in nats on the scored part of x: ``recon_nll``, ``kl`` and
        ``neg_elbo``; with ``objective`` also ``gsnn_nll`` (when the objective uses it) and ``loss``.

        ``conditions`` default to the batch's own; z is drawn from ``generator``. ``objective=False``
        spares the GSNN decoder pass when only the bound is wanted; ``dropout`` applies the
        training's condition dropout (:meth:`draw_dropout`). ``absent`` ``{name: (B,) bool}`` marks the items
        whose condition is absent (they get its absent embedding, whatever ``conditions`` hold); default: the
        batch's missing values (:meth:`absent_items`), ``{}`` for none. ``module`` is called in place of
        ``model`` for the forward pass: training across processes passes ``model`` wrapped in
        DistributedDataParallel (:func:`condgen.training.distributed.data_parallel`).
        """
        if conditions is None:
            conditions = self.conditions_from_batch(batch, generator)
        x = batch[self.config.data.x_field]
        gsnn = objective and self.objective.needs_gsnn
        drawn = self.draw_dropout(x.shape[0], generator) if dropout and self.dropout else {}
        drop = _either(drawn, self.absent_items(batch, check=not dropout) if absent is None else self._absent(absent))
        forward = self.model if module is None else module
        out = forward(x, conditions, generator, scored=self.scored_part(conditions, drop), gsnn=gsnn,
                      drop=drop).named()
        if objective:
            out["loss"] = self.objective.loss(out)
        return out

    def log_likelihood(
        self,
        batch: Mapping[str, Tensor],
        conditions: Mapping[str, Tensor] | None = None,
        samples: int = 100,
        generator: torch.Generator | None = None,
        *,
        absent: Mapping[str, Tensor] | None = None,
    ) -> Tensor:
        """Importance-sampled log p(x | c) per item ``(B,)`` in nats, on the scored part of x.

        ``samples`` z's per item from q(z|x, c) (see :meth:`condgen.engine.CVAE.log_likelihood`); ``absent``
        as in :meth:`terms` (default: the batch's missing values).
        """
        samples = whole_number("samples", samples, minimum=1)
        x = batch[self.config.data.x_field]
        # the S x B latent draws and their log-weights live at once (the decoder works through them in chunks)
        check_fits(samples * x.shape[0] * (3 * self.model.latent_dim + 4) * BYTES_PER_FLOAT,
                   f"{samples:,} importance samples for each of {x.shape[0]:,} items", "use fewer samples (or a "
                   "smaller evaluation batch, train.eval_batch_size)")
        if conditions is None:
            conditions = self.conditions_from_batch(batch, generator)
        drop = _either({}, self.absent_items(batch) if absent is None else self._absent(absent))
        return self.model.log_likelihood(x, conditions, samples, generator, scored=self.scored_part(conditions, drop),
                                         drop=drop)

    # -- conditions from a user ---------------------------------------------------------------
    def check_conditions(self, values: Mapping[str, Any], num: int | None = None) -> dict[str, Tensor]:
        """Python values or tensors -> ``{name: (num, ...)}`` on the run's device (see :mod:`condgen.runs.conditions`).

        A conditioner trained with condition dropout may be left out: its condition is then absent.
        """
        conds = _conditions.conditions_from_values(self.conditioners, values, num, optional=self.optional)
        return {n: c.to(self.device) for n, c in conds.items()}

    def parse_conditions(self, texts: Sequence[str], given: Collection[str] = ()) -> dict[str, Tensor]:
        """``["label=5", ...]`` -> ``{name: (K, ...)}``; each conditioner must be given exactly once,
        except those trained with condition dropout, which may be left out, and the ``given`` ones,
        whose conditions a command takes from flags of its own (``condgen inpaint``: the image and mask)."""
        return _conditions.parse_condition_texts(self.conditioners, texts, optional=self.optional, given=given)

    # -- sampling ---------------------------------------------------------------------------
    def sample(self, conditions: Mapping[str, Any] | None = None, num: int = 1, seed: int | None = None) -> Tensor:
        """``num`` samples ``(num, *data_shape)``: the mean of p(x | z, c) for z drawn from the prior p(z | c).

        ``conditions`` maps each conditioner to a value: one condition for all samples, or
        ``num`` of them, one per sample (see :mod:`condgen.runs.conditions`). A conditioner trained with
        condition dropout may be left out; the samples then range over all its values. A ``num``
        whose samples cannot fit in memory is refused before any is drawn (:class:`condgen.common.memory.ResourceError`).
        """
        num = whole_number("num", num, minimum=1)
        gen = seeded_generator(self.device, seed)
        self.check_sample_memory(num)
        conds = self.check_conditions({} if conditions is None else conditions, num)
        self.model.eval()
        out: Tensor | None = None
        chunk = self._chunk_rows()
        for start in range(0, num, chunk):  # bounded working memory, whatever num is
            part = {n: c[start : start + chunk] for n, c in conds.items()}
            size = min(chunk, num - start)
            x = self.keep_given(self.model.generate(part, size, generator=gen), part)
            if not bool(torch.isfinite(x).all()):  # one check a chunk: a NaN picture is never written
                raise NumericalError(f"the samples hold NaN or inf: {self.non_finite_source(part)}")
            if size == num:
                return x
            out = x.new_empty(num, *x.shape[1:]) if out is None else out
            out[start : start + size] = x
        assert out is not None
        return out

    def non_finite_source(self, conditions: Mapping[str, Tensor]) -> str:
        """Where the NaN or inf of a sample or score of ``conditions`` (name -> ``(B, ...)``) come from, in words
        with the fix: the weights, a conditioner's embedding of these conditions (its stored state), or the decoder."""
        where = self._named()
        bad = [n for n, t in [*self.model.named_parameters(), *self.model.named_buffers()]
               if t.is_floating_point() and not bool(torch.isfinite(t).all())]
        if bad:
            return (f"{where}'s weights {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} are not finite: the "
                    "checkpoint was damaged or its training diverged; train it again or use an earlier copy")
        for name, c in conditions.items():
            try:
                with torch.no_grad():
                    finite = name not in self.model.embeddings or bool(torch.isfinite(self.model.embeddings[name](c)).all())
                state = self.conditioners[name].state() if not finite else None
            except Exception:  # noqa: BLE001 - a plugin's fault while the cause is looked for: go on to the next
                continue
            if not finite:
                return (f"conditioner {name!r}'s embedding of these conditions is not finite: its stored state "
                        f"{state!r:.160} (in {where}) or conditions beyond what it can embed; give conditions in the "
                        "training data's range, or train the run again (or put back an earlier checkpoint)")
        return (f"{where}'s decoder overflows for these conditions: its weights are finite but too large; train it "
                "again (a lower --lr) or use an earlier checkpoint")

    def _named(self) -> str:
        return f"run {str(self.directory)!r}" if self.directory is not None else "the run"

    def _chunk_rows(self) -> int:
        """Samples per chunk: :data:`SAMPLE_CHUNK`, fewer where a layer is so wide its activations would exceed
        :data:`CHUNK_BYTES`."""
        m = self.config.model
        widest = max([self.model.row_width, *m.hidden, *(m.prior_widths if self.model.prior else [])])
        return max(1, min(SAMPLE_CHUNK, CHUNK_BYTES // (widest * BYTES_PER_FLOAT)))

    def check_sample_memory(self, num: int) -> None:
        """ResourceError, before anything is drawn, if ``num`` samples (and their conditions) cannot fit in memory."""
        x_bytes = math.prod(self.model.data_shape) * BYTES_PER_FLOAT
        cond_bytes = sum(math.prod(c.condition_shape) for c in self.conditioners.values()) * 8
        check_fits(num * (x_bytes + cond_bytes), f"{num:,} samples of shape {self.model.data_shape}",
                   "ask for fewer at a time")

    def keep_given(self, x: Tensor, conditions: Mapping[str, Tensor]) -> Tensor:
        """``x`` ``(B, *data_shape)`` with the elements that conditions give set to their given values."""
        for name, cond in self.conditioners.items():
            if name not in conditions:
                continue
            given = self._given_part(name, conditions[name])
            values = cond.given_values(conditions[name]) if given is not None else None
            if values is not None:
                x = torch.where(given.to(x.device) > 0, values.to(x.device, x.dtype), x)
        return x

    def check_classes(self, classes: Mapping[str, Sequence[str]], what: str) -> None:
        """DataError if the class names of data the run is given (``what``: "the data to resume on") are not
        those it was trained with: a class index would then mean another class."""
        if self.classes is None:
            return
        now = {k: list(v) for k, v in classes.items()}
        if now != self.classes:
            field_ = next(f for f in sorted(set(now) | set(self.classes)) if now.get(f) != self.classes.get(f))
            raise DataError(f"{what} names the classes of field {field_!r} {now.get(field_)}, but this run was trained "
                            f"with {self.classes.get(field_)}: its class numbers would mean other classes; restore the "
                            "data (its class folders, say) or train a new run")


def _either(*marks: Mapping[str, Tensor]) -> dict[str, Tensor] | None:
    """``{name: (B,) bool}`` marked in any of ``marks`` (None for none): condition dropout's draw and the data's
    missing values together."""
    out: dict[str, Tensor] = {}
    for mark in marks:
        for name, m in mark.items():
            out[name] = out[name] | m if name in out else m
    return out or None
