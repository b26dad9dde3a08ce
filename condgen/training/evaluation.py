"""Test-split evaluation: the objective's terms, the -ELBO bound and the importance-sampled NLL.

Every figure is in nats per item, on the scored part of x (all of x unless a conditioner
gives part of it), averaged over the split.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..common.arguments import whole_number
from ..common.errors import ArgumentError, CondgenError, DataError, NumericalError
from ..common.files import write_text_atomic
from ..common.rng import EVAL_SEED, seeded_generator
from ..data.config import DataConfig
from ..data.splits import FloatView, iter_batches, split_size, to_device
from ..data.stored import StoredArray
from ..runs.datasets import load_dataset
from ..runs.run import Run
from ..runs.rundir import EVALUATION_NAME

#: Importance samples per item for ``condgen evaluate`` (Sohn et al. use 100).
DEFAULT_IS_SAMPLES = 100


def _check_samples(samples: object) -> int:
    try:
        return whole_number("samples", samples, minimum=0)
    except ArgumentError:
        raise ArgumentError(f"samples must be a whole number >= 0 (0 skips the IS estimate), got {samples!r}") from None


def _check_split(run: Run, test: Mapping[str, Tensor]) -> None:
    """DataError if ``test`` does not fit the run: another item shape, or conditions its conditioners refuse
    (labels beyond the run's classes, say), so another data set is named instead of failing mid-way."""
    x_field = run.config.data.x_field
    if x_field not in test:
        raise DataError(f"the data to evaluate on has no field {x_field!r} (its fields: {sorted(test)})")
    shape = tuple(test[x_field].shape[1:])
    if shape != run.model.data_shape:
        raise DataError(f"the data to evaluate on has {x_field!r} items of shape {list(shape)}, but this run was "
                        f"trained on {list(run.model.data_shape)}")
    gen = seeded_generator("cpu", EVAL_SEED)
    # batch by batch: a whole split's conditions would be the split's size again (images bigger than memory)
    for _, batch in iter_batches(test, CHECK_BATCH):
        for name, cond in run.conditioners.items():
            try:
                cond.check_condition(cond.condition_from_batch(batch, gen))
            except CondgenError as exc:
                raise DataError(f"the data to evaluate on does not fit conditioner {name!r}: {exc}") from None
        run.absent_items(batch)  # missing values for a conditioner without an absent condition: refused now


#: Items a batch when the data to evaluate on are checked.
CHECK_BATCH = 1000


@torch.no_grad()
def evaluate_split(
    run: Run,
    split: Mapping[str, Tensor],
    batch_size: int = 1000,
    samples: int = 0,
    progress: bool | None = False,
) -> dict[str, float]:
    """Mean per-item terms over ``split``: ``neg_elbo``, ``recon_nll``, ``kl``, ``loss`` (and
    ``gsnn_nll`` for the hybrid objective) with one z per item, and with ``samples`` > 0 the
    importance-sampled ``is_nll`` = -log p(x | c) from that many z's per item."""
    samples = _check_samples(samples)
    run.model.eval()
    gen = seeded_generator(run.device, EVAL_SEED)
    is_gen = seeded_generator(run.device, EVAL_SEED + 1)  # its own stream: the bound does not depend on S
    n = split_size(split)
    if n == 0:
        raise DataError("the split to evaluate has no items")
    sums: dict[str, Tensor] = {}  # float64 on the device: one host round trip at the end, not per batch
    bar = tqdm(total=n, desc="evaluate", unit="item", leave=False, disable=None if progress is None else not progress)
    for _, batch in iter_batches(split, batch_size):
        conds = run.conditions_from_batch(batch, gen)
        absent = run.absent_items(batch, check=False)  # once a batch (the split was checked): no host round trip
        terms = run.terms(batch, conds, gen, absent=absent)
        if samples:
            terms["is_nll"] = -run.log_likelihood(batch, conds, samples, is_gen, absent=absent)
            scored = run.scored_part(conds, absent or None)  # the dimensions is_nll scores
            x = batch[run.config.data.x_field]
            terms["scored_dims"] = (scored.sum(1) if scored is not None
                                    else x.new_full((x.shape[0],), float(run.model.x_dim)))
        for name, value in terms.items():
            if name != "neg_elbo":  # summed from its parts below, as the seed's figures were
                part = value.sum().double()
                sums[name] = part if name not in sums else sums[name] + part
        bar.update(next(iter(batch.values())).shape[0])
    bar.close()
    totals = dict(zip(sums, torch.stack(list(sums.values())).tolist()))
    totals["neg_elbo"] = totals["recon_nll"] + totals["kl"]
    order = ["neg_elbo", "recon_nll", "kl", "gsnn_nll", "loss", "is_nll"]  # scored_dims: for bits/dim only
    figures = {k: totals[k] / n for k in order if k in totals}
    if "is_nll" in figures and run.model.likelihood.DISCRETE and totals["scored_dims"] > 0:
        # a probability of the 256 levels: -log p in bits per scored dimension, the literature's unit
        figures["is_nll_bits_per_dim"] = totals["is_nll"] / (totals["scored_dims"] * math.log(2))
    return figures


def evaluate(
    run: Run,
    test: Mapping[str, Tensor] | None = None,
    *,
    samples: int = DEFAULT_IS_SAMPLES,
    data_dir: str | None = None,
    progress: bool | None = False,
) -> dict[str, Any]:
    """What ``condgen evaluate`` reports: test-split figures (``test_neg_elbo``, ``test_is_nll``
    with ``samples`` importance samples, 0 for none, ...) and each conditioner's own.

    ``test`` defaults to the test split of the run's data set (from ``data_dir`` if given).
    """
    if not isinstance(run, Run):
        raise ArgumentError(f"run must be a condgen.Run (from condgen.load_run or condgen.train), got "
                            f"{type(run).__name__}")
    samples = _check_samples(samples)
    if test is not None and not (isinstance(test, Mapping)
                                 and all(isinstance(v, (Tensor, StoredArray)) for v in test.values())):
        raise ArgumentError(f"test must be a split {{field: tensor (N, ...)}}, like a DataSplits' .test, got "
                            f"{type(test).__name__}")
    if data_dir is not None and not (isinstance(data_dir, str) and data_dir.strip()):
        raise ArgumentError(f"data_dir must be a directory (or file) name, got {data_dir!r}")
    if test is None:
        data_config = run.config.data
        if data_dir:
            data_config = DataConfig.model_validate({**data_config.model_dump(), "data_dir": data_dir})
        data = load_dataset(data_config, run.trained_on, f"run {str(run.directory)!r}" if run.directory else "the run")
        run.check_classes(data.classes, "the data to evaluate on")
        test = data.test
    _check_split(run, test)
    test = to_device(test, run.device)
    result: dict[str, Any] = {
        "run": str(run.directory) if run.directory else None,
        "epoch": run.epoch,
        "test_items": split_size(test),
        "is_samples": samples,
    }
    figures = evaluate_split(run, test, run.config.train.eval_batch_size, samples, progress)
    _check_finite_figures(run, test, figures)
    result.update({f"test_{k}": v for k, v in figures.items()})
    view = FloatView(test)
    for name, cond in run.conditioners.items():
        result.update({f"{name}_{k}": v for k, v in cond.evaluate(run, view).items()})
    return result


def _check_finite_figures(run: Run, test: Mapping[str, Tensor], figures: Mapping[str, float]) -> None:
    """NumericalError naming the cause where a figure is NaN or inf: the data, else the run (its weights or a
    conditioner's state, :meth:`condgen.Run.non_finite_source`), never a NaN reported as a result."""
    bad = [k for k, v in figures.items() if not math.isfinite(v)]
    if not bad:
        return
    said = ", ".join(f"test_{k} = {figures[k]}" for k in bad)
    for start, batch in iter_batches(test, CHECK_BATCH):
        x = batch[run.config.data.x_field]
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            item = start + int((~torch.isfinite(x.flatten(1))).any(1).nonzero()[0])
            raise NumericalError(f"{said}: the data to evaluate on hold NaN or inf ({run.config.data.x_field!r} of "
                                 f"item {item}); clean or drop those items")
    _, first = next(iter_batches(test, CHECK_BATCH))
    conds = run.conditions_from_batch(first, seeded_generator(run.device, EVAL_SEED))
    raise NumericalError(f"{said}: {run.non_finite_source(conds)}")


def keep_evaluation(run: Run, result: Mapping[str, Any]) -> Path | None:
    """Write :func:`evaluate`'s ``result`` to the run directory's ``evaluation.json`` (atomically, with the time it
    was computed), where ``condgen export`` finds it for the model card; the path written, or None (with a
    warning saying why) where the run has no directory or it cannot be written: the figures were shown anyway."""
    if run.directory is None:
        return None
    path = Path(run.directory) / EVALUATION_NAME
    kept = {**result, "evaluated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    try:
        write_text_atomic(path, json.dumps(kept, indent=2) + "\n", what="evaluation figures")
    except CondgenError as exc:
        warnings.warn(f"the figures were not kept: {exc}", stacklevel=2)
        return None
    return path
