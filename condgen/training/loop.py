"""Training: in-memory batches, the objective, per-epoch test evaluation, metrics, atomic checkpoints, resume.

A run directory holds ``config.json``, ``checkpoint.safetensors`` (weights, optimizer and
random-generator state, written after every epoch), ``metrics.jsonl`` (one line per
epoch) and what the training's callbacks write (:class:`condgen.Callback`: ``train.log`` names them, and
``condgen.train`` adds ``pictures``, :mod:`condgen.pictures`). An interrupted run loses at most the epoch it
was in: ``--resume`` restores the generator and optimizer and continues bit for bit. Callbacks hear of an
epoch only once it is saved.

Under torchrun the processes train one model together (:mod:`condgen.training.distributed`): each
trains on its share of every epoch, and rank 0 alone writes the run directory.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..common.arguments import MAX_SEED
from ..common.errors import ArgumentError, CheckpointError, CondgenError, DataError, NumericalError
from ..common.files import PreparedFile, read_text, write_text_atomic
from ..data.checks import value_range
from ..data.splits import DataSplits, index_batch, split_size, to_device
from ..runs.build import create_run
from ..runs.checkpoint import CHECKPOINT_NAME, optimizer_from_flat, optimizer_to_flat
from ..runs.config import RunConfig
from ..runs.datasets import load_dataset
from ..runs.run import Run
from ..runs.rundir import (
    CONFIG_NAME,
    MARKER_NAME,
    METRICS_NAME,
    RunDirectory,
    check_out_path,
    check_writable_run_dir,
    claim_run_dir,
    new_run_id,
)
from ..runs.store import StoredRun, read_run, run_from_stored, save_run
from . import distributed
from .callbacks import TrainingCallbacks
from .evaluation import evaluate_split
from .optimizer import make_optimizer, stepper

#: Fields of a stored config that ``--resume`` may change.
RESUMABLE_CHANGES = {"train.epochs", "train.device", "train.log"}

#: Steps between checks that the loss is finite (and progress-bar loss updates).
CHECK_EVERY = 100


def learning_rate(config: RunConfig, step: int, total_steps: int) -> float:
    if config.train.lr_schedule == "cosine":
        return config.train.lr * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
    return config.train.lr


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


#: The sections of a config that make a run the run it is; the rest (``train``) ``--resume`` may partly change.
_IDENTITY_SECTIONS = ("conditioners", "model", "data")


def _identity_fields(config: Any) -> dict[str, Any]:
    """A config's fields that make it the run it is, flat (``model.latent_dim``): its conditioners by name, then
    each one's settings under its instance name (``conditioners.label.num_classes``), so a difference names the
    setting rather than a whole list."""
    if not isinstance(config, dict):
        raise ValueError("not a config")
    specs = [c for c in config.get("conditioners") or [] if isinstance(c, dict)]
    conds = {str(c.get("instance") or c.get("name")): c for c in specs}
    names = [n if conds[n].get("name") == n else f"{n}={conds[n].get('name')}" for n in conds]
    fields = _flatten({k: config.get(k) for k in _IDENTITY_SECTIONS[1:]})
    fields["conditioners"] = names
    fields.update(_flatten({"conditioners": {n: c.get("config") or {} for n, c in conds.items()}}))
    return fields


def _config_differences(claim: RunDirectory, stored: StoredRun) -> list[str] | None:
    """How the checkpoint's config differs from the directory's ``config.json`` in what makes a run (up to three
    fields, then a count; other conditioners are one field); None where the directory has no config of its own."""
    try:
        here = _identity_fields(json.loads(read_text(claim.path / CONFIG_NAME, "config file")))
    except (CondgenError, ValueError, TypeError, AttributeError):  # none, or not a config: nothing to compare
        return None
    there = _identity_fields(stored.config.model_dump(mode="json"))
    fields = sorted(f for f in set(here) | set(there) if here.get(f) != there.get(f))
    if "conditioners" in fields:  # other conditioners: their settings' differences say nothing more
        fields = ["conditioners", *(f for f in fields if not f.startswith("conditioners"))]
    shown = [f"{f} {there.get(f)!r:.60} (this run: {here.get(f)!r:.60})" for f in fields[:3]]
    return shown + ([f"{len(fields) - 3} more"] if len(fields) > 3 else [])


def _check_own_checkpoint(claim: RunDirectory, stored: StoredRun) -> None:
    """Refuse to resume a checkpoint that is another run's (copied into this directory), naming the two runs
    and how their configs differ. Where the marker or the checkpoint is from before run identities, the
    checkpoint is the run's if its conditioners, model and data are those of the directory's ``config.json``."""
    mine, its = claim.run_id, stored.meta.run_id
    if mine is not None and mine == its:
        return
    differences = _config_differences(claim, stored)
    fix = "it was copied from another run; resume that run in its own directory, or put this run's checkpoint back"
    if mine is None or its is None:
        if differences:
            raise CheckpointError(f"checkpoint {str(stored.path)!r} is not this directory's run: its config differs "
                                  f"from the directory's {CONFIG_NAME}: {', '.join(differences)}; {fix}")
        return
    differs = f"another config: {', '.join(differences)}" if differences else "the same config"
    raise CheckpointError(
        f"checkpoint {str(stored.path)!r} is run {its[:12]}'s, not this directory's run {mine[:12]} (its marker "
        f"{MARKER_NAME}), with {differs}: {fix}")


def _resume_config(stored: RunConfig, given: RunConfig | None, out: Path) -> RunConfig:
    """The stored config, with only the changes that ``--resume`` allows taken from ``given``."""
    if given is None:
        return stored
    old, new = _flatten(stored.model_dump()), _flatten(given.model_dump())
    for field in sorted(set(old) | set(new)):
        if old.get(field) != new.get(field) and field not in RESUMABLE_CHANGES:
            raise CondgenError(
                f"--resume continues the run in {str(out)!r}, whose {field} is {old.get(field)!r}, not "
                f"{new.get(field)!r}; only train.epochs, train.device and train.log may change (or start a new "
                "run with another --out)"
            )
    return given


def _metric_lines(path: Path, epoch: int) -> list[str]:
    """The lines of ``metrics.jsonl`` up to ``epoch``'s, each epoch once (a line cut short is dropped)."""
    if not path.exists():
        return []
    kept = []
    for line in read_text(path, "metrics file").splitlines():
        try:
            if json.loads(line)["epoch"] <= epoch:
                kept.append(line)
        except (ValueError, KeyError, TypeError):  # a line cut short by the crash being resumed from
            continue
    return kept


def _keep_metrics_up_to(path: Path, epoch: int, last: dict[str, Any] | None = None) -> None:
    """Make ``metrics.jsonl`` agree with the checkpoint of ``epoch``: drop lines of later epochs, and put back
    the checkpoint's own line (``last``) where a crash between the two writes lost it."""
    kept = _metric_lines(path, epoch)
    if last is not None and last.get("epoch") == epoch and not any(
            json.loads(line)["epoch"] == epoch for line in kept):
        kept.append(json.dumps(last))
    write_text_atomic(path, "".join(ln + "\n" for ln in kept), "metrics file")


#: Data whose x reach beyond this are named when the loss turns NaN: the encoder's log-variance, linear in x,
#: overflows exp() long before float32 does (an MLP's first step at |x| ~ 1e4).
UNSTANDARDISED = 100.0


def _check_finite(losses: torch.Tensor, first_step: int, epoch: int, out: Path, x: torch.Tensor, field: str) -> None:
    """Raise :class:`NumericalError` naming the first step whose loss in ``losses`` ``(K,)`` is not finite, and
    the training data ``x`` ``(N, ...)`` (its ``field``) where their size is the likely cause."""
    bad = ~torch.isfinite(losses)
    if not bool(bad.any()):
        return
    at = int(bad.nonzero()[0, 0])
    saved = (f"the checkpoint of epoch {epoch - 1} in {str(out)!r} is intact" if epoch > 1
             else "no epoch had finished, so no checkpoint was written")
    try:
        seen = value_range({field: x}, field, f"the training split's {field!r}")
    except DataError as exc:  # data that bypassed the loader's checks (Python API splits): they are the cause
        fix = str(exc)
    else:
        largest = max(abs(seen.low), abs(seen.high))
        fix = (f"the data's {field!r} reach {largest:.3g}: standardise them (mean 0, std 1), or try a lower --lr"
               if largest > UNSTANDARDISED else "try a lower --lr")
    raise NumericalError(f"the loss became {float(losses[at])} at epoch {epoch}, step {first_step + at + 1}; "
                         f"{saved} ({fix})")


def _check_finite_test(figures: dict[str, float], epoch: int, out: Path) -> None:
    """NumericalError where an epoch's test figures are NaN or inf (the data were checked finite when loaded: the
    model is the cause), before the epoch is saved: no NaN line in ``metrics.jsonl``, and the last good checkpoint
    stays."""
    bad = next(((k, v) for k, v in figures.items() if not math.isfinite(v)), None)
    if bad is None:
        return
    saved = (f"the checkpoint of epoch {epoch - 1} in {str(out)!r} is intact" if epoch > 1
             else "no epoch had finished, so no checkpoint was written")
    raise NumericalError(f"the test split's {bad[0]} became {bad[1]} at epoch {epoch} (the training loss was finite: "
                         f"the model overflows on test items); {saved} (try a lower --lr, or --grad-clip)")


def precision_context(precision: str, device: torch.device) -> AbstractContextManager:
    """A fresh context for a training step's forward pass: autocast to bfloat16 for ``bf16`` (the engine takes the
    networks' outputs back to fp32 for the likelihood and the KL; bf16 has fp32's range, so no loss scaling),
    nothing for ``fp32``."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def _epoch_order(n: int, gen: torch.Generator) -> torch.Tensor:
    """This process's items of an epoch of ``n``, in order: a permutation ``(n,)`` in one process.

    Across W processes rank 0 draws the permutation and shares it, and each rank takes every W-th
    item from its rank on, ``(n // W,)``: every rank has as many steps, and the batches of step s
    together are one consecutive slice of the permutation. The last ``n mod W`` items sit the epoch out.
    """
    if not distributed.is_distributed():
        return torch.randperm(n, generator=gen, device=gen.device)
    world, rank = distributed.world_size(), distributed.rank()
    perm = (torch.randperm(n, generator=gen, device=gen.device) if rank == 0
            else torch.empty(n, dtype=torch.int64, device=gen.device))
    return distributed.broadcast_from_main(perm)[rank : n - n % world : world]


def _train_epoch(
    run: Run,
    opt: torch.optim.Optimizer,
    train_split: dict[str, torch.Tensor],
    gen: torch.Generator,
    epoch: int,
    progress: bool | None,
    out: Path,
    forward: torch.nn.Module | None = None,
) -> tuple[dict[str, float], float]:
    """One pass over the shuffled training split; returns the mean of each term per item and the last lr.

    ``forward`` is the module to call for the forward pass (see :meth:`condgen.Run.terms`). Across
    processes the means are over every process's items, and the loss checks see the mean loss of
    the processes, so all raise together.
    """
    config, model = run.config, run.model
    model.train()
    bs = config.train.batch_size
    perm = _epoch_order(split_size(train_split), gen)
    n = perm.numel()
    steps = math.ceil(n / bs)
    loss_sum = torch.zeros((), device=perm.device)
    # each step's loss stays on the device and is checked every CHECK_EVERY steps: a check is a host
    # round trip, which on a GPU would stall every step
    step_losses = torch.empty(steps, device=perm.device)
    term_sums: torch.Tensor | None = None
    names: list[str] = []
    bar = tqdm(total=steps, desc=f"epoch {epoch}/{config.train.epochs}", unit="batch", leave=False,
               disable=None if progress is None else not progress)
    lr = config.train.lr
    step_optimizer = stepper(opt)
    clip = config.train.grad_clip
    params = [p for group in opt.param_groups for p in group["params"]]
    checked = 0
    for step in range(steps):
        lr = learning_rate(config, (epoch - 1) * steps + step, steps * config.train.epochs)
        for group in opt.param_groups:
            group["lr"] = lr
        idx = perm[step * bs : (step + 1) * bs]
        batch = index_batch(train_split, idx)
        with precision_context(config.train.precision, run.device):
            terms = run.terms(batch, generator=gen, dropout=True, module=forward)
        loss = terms.pop("loss").mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:  # after backward: across processes the gradients are already the ranks' mean
            torch.nn.utils.clip_grad_norm_(params, clip, foreach=True)
        step_optimizer()
        step_losses[step] = loss.detach()
        loss_sum += loss.detach() * idx.numel()
        names = list(terms)
        sums = torch.stack(list(terms.values()), dim=1).detach().sum(0)  # two ops for all terms: steps are short
        term_sums = sums if term_sums is None else term_sums + sums
        if step % CHECK_EVERY == 0 or step == steps - 1:
            losses = distributed.mean_over_processes(step_losses[checked : step + 1])
            _check_finite(losses, checked, epoch, out, train_split[run.config.data.x_field], run.config.data.x_field)
            checked = step + 1
            bar.set_postfix(loss=f"{float(losses[-1]):.2f}", refresh=False)
        bar.update()
    bar.close()
    if distributed.is_distributed() and term_sums is not None:  # every process's items, for rank 0's record
        sums = distributed.sum_over_processes(torch.cat([loss_sum.reshape(1), term_sums]))
        loss_sum, term_sums = sums[0], sums[1:]
    n *= distributed.world_size()  # the items of all processes
    means = {"loss": float(loss_sum) / n}
    if term_sums is not None:
        means.update({name: float(v) / n for name, v in zip(names, term_sums.tolist())})
    return means, lr


def train(
    config: RunConfig | None,
    out_dir: str | Path,
    *,
    resume: bool | StoredRun = False,
    progress: bool | None = None,
    log: Callable[[str], None] = tqdm.write,
    callbacks: Sequence[str] = (),
) -> Run:
    """Train a CVAE described by ``config`` into ``out_dir`` and return the trained :class:`Run`.

    With ``resume=True`` the config comes from the checkpoint in ``out_dir``; a ``config`` given too may
    only raise ``train.epochs`` or change ``train.device`` or ``train.log``. ``resume`` may also be the
    checkpoint already read (:func:`condgen.runs.store.read_run`); it is read again only if another
    process wrote a newer one before this one locked the run.
    ``progress=None`` shows a progress bar only on a terminal. ``callbacks`` names callbacks
    (:class:`condgen.Callback`) to run besides those of the config's ``train.log``; they run on rank 0 only,
    and hear of each epoch once it is saved.

    ``out_dir`` must be new, empty, or a run directory (see :mod:`condgen.runs.rundir`), and only one
    process may write it at a time. Everything that can be checked (config, data, conditioners,
    model size) is checked before a new directory is made; a run that fails before its first
    epoch ends removes the directory it made.

    Started by torchrun (``WORLD_SIZE > 1``), the processes train one model together: each on
    its share of every epoch, rank 0 alone claiming and writing ``out_dir`` and logging; every
    process returns the same trained run. See :mod:`condgen.training.distributed`.
    """
    out = check_out_path(out_dir)
    if not isinstance(resume, (bool, StoredRun)):
        raise ArgumentError(f"resume must be True, False or a StoredRun, got {resume!r}")
    if config is not None and not isinstance(config, RunConfig):
        raise ArgumentError(f"config must be a condgen.RunConfig (or None with resume=True), got "
                            f"{type(config).__name__}; build one with condgen.RunConfig.parse(dict)")
    if isinstance(callbacks, str) or not all(isinstance(c, str) for c in callbacks):
        raise ArgumentError(f"callbacks must be a list of callback names, got {callbacks!r}")
    if not distributed.is_main():  # one voice: rank 0 logs and shows progress
        log, progress = _silent, False
    with distributed.process_group():
        return _train(config, out, resume, progress, log, tuple(callbacks))


def _silent(text: str) -> None:
    """The log of the processes other than rank 0."""


@contextmanager
def _claim(out: Path, resume: bool, own_files: tuple[str, ...] = ()) -> Iterator[RunDirectory]:
    """:func:`claim_run_dir` on rank 0 for the ``with`` block (the only claim in one process); the
    other processes write nothing, and learn whether rank 0 could claim it."""
    with ExitStack() as stack:
        with distributed.agreed():
            claim = (stack.enter_context(claim_run_dir(out, resume, own_files)) if distributed.is_main()
                     else RunDirectory(out, created=False))
        yield claim


def _train(
    config: RunConfig | None,
    out: Path,
    resume: bool | StoredRun,
    progress: bool | None,
    log: Callable[[str], None],
    callbacks: tuple[str, ...],
) -> Run:
    """:func:`train` after its arguments are checked, with the processes joined under torchrun."""
    with distributed.agreed():
        if distributed.is_main():  # the others must not probe the lock that rank 0 is about to take
            check_writable_run_dir(out, bool(resume))
        if config is not None:  # validated whole, as parse() does, even when built or copied directly
            config = RunConfig.parse(config.model_dump(mode="json"))
    if resume:
        with _claim(out, resume=True) as claim:
            with distributed.agreed():
                # under the lock, so no other process moves the run on; read again only if it moved since
                current = (isinstance(resume, StoredRun)
                           and resume.path.resolve() == (out / CHECKPOINT_NAME).resolve() and resume.is_current())
                stored = resume if current else read_run(out / CHECKPOINT_NAME)
                if distributed.is_main():
                    _check_own_checkpoint(claim, stored)
                config = _resume_config(stored.config, config, out)
                device = distributed.device_for(config.train.device)
                data = load_dataset(config.data, stored.meta.dataset, f"checkpoint {str(stored.path)!r}")
                distributed.check_share(split_size(data.train))
                run = run_from_stored(stored, device, config, copies=4)
                x_shape = tuple(data.train[config.data.x_field].shape[1:])
                if x_shape != run.model.data_shape:
                    raise CheckpointError(f"checkpoint {str(stored.path)!r} has data_shape "
                                          f"{list(run.model.data_shape)}, but its data's {config.data.x_field!r} "
                                          f"items are {list(x_shape)}")
                run.check_classes(data.classes, "the data to resume on")
                run.absent_items(data.train)  # missing values only where the run learnt an absent condition
                hooks = _callbacks(config, callbacks, log)
            return _train_in(claim, run, data, stored, progress, log, hooks)
    if config is None:
        raise ArgumentError("train() needs a config unless resume=True")
    with distributed.agreed():
        device = distributed.device_for(config.train.device)
        data = load_dataset(config.data)
        distributed.check_share(split_size(data.train))
        run = create_run(config, data.train, device, data.classes, test=data.test)
        hooks = _callbacks(config, callbacks, log)
    with _claim(out, resume=False, own_files=(CONFIG_NAME, METRICS_NAME)) as claim:
        return _train_in(claim, run, data, None, progress, log, hooks)


def _callbacks(config: RunConfig, extra: tuple[str, ...], log: Callable[[str], None]) -> TrainingCallbacks:
    """The training's callbacks, ``extra`` and then ``train.log``'s; none but on rank 0."""
    if not distributed.is_main():
        return TrainingCallbacks((), log)
    return TrainingCallbacks([*extra, *config.train.log], log)


def _rng_key(rank: int) -> str:
    """The checkpoint's name for rank ``rank``'s training generator; rank 0's is the one process's."""
    return "rng.train" if rank == 0 else f"rng.train.rank{rank}"


def _generator_states(gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Every process's training-generator state by its checkpoint name (:func:`_rng_key`), on rank 0;
    gathered from all processes (a collective), empty on the others."""
    states = distributed.gather_to_main(gen.get_state())
    return {} if states is None else {_rng_key(r): state for r, state in enumerate(states)}


def _restore_training_state(
    run: Run, stored: StoredRun, opt: torch.optim.Optimizer, gen: torch.Generator, log: Callable[[str], None]
) -> None:
    """The optimizer and random generator of ``stored``, for ``--resume``: under torchrun this process's
    generator, if the run was trained by as many processes (rank 0 takes the first process's in any case)."""
    config, rank, world = run.config, distributed.rank(), distributed.world_size()
    stored_world, optimizer = stored.meta.world_size, stored.meta.optimizer
    cannot = f"checkpoint {str(stored.path)!r}: its optimizer or generator state cannot be restored"
    if optimizer is None:
        raise CheckpointError(f"{cannot} (it holds none); it can be sampled, not resumed")
    try:
        optimizer_from_flat(opt, {k: v for k, v in stored.tensors.items() if k.startswith("optim.")}, optimizer)
        state = stored.tensors[_rng_key(rank)] if rank == 0 or stored_world == world else None
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{cannot} ({type(exc).__name__}: {exc}); it can be sampled, not resumed") from None
    if stored_world != world:
        bs = config.train.batch_size
        log(f"note: this run was trained by {stored_world} process(es) and continues with {world}: a step now takes "
            f"{world} x {bs} items instead of {stored_world} x {bs}, so it is not the uninterrupted run")
    restart = (distributed.rank_seed(config.train.seed, rank) + run.epoch) % (MAX_SEED + 1)
    try:
        if state is None:  # a process the stored run did not have: a stream of its own, from its seed and the epoch
            gen.manual_seed(restart)
        else:
            gen.set_state(state)
    except RuntimeError:  # a generator state of another device type (--resume --device changed it)
        gen.manual_seed(restart)
        log(f"note: resuming on {run.device.type} from a run trained on another device: the random stream "
            f"restarts from seed {config.train.seed} + epoch {run.epoch}, so this run is not bit for bit "
            "the uninterrupted one")
    stored_epochs = stored.config.train.epochs
    if config.train.lr_schedule != "constant" and stored_epochs != config.train.epochs:
        log(f"note: the {config.train.lr_schedule} learning-rate schedule now spans {config.train.epochs} "
            f"epochs instead of {stored_epochs}, so the rate changes from epoch {run.epoch + 1} on")


def _train_in(
    claim: RunDirectory,
    run: Run,
    data: DataSplits,
    stored: StoredRun | None,
    progress: bool | None,
    log: Callable[[str], None],
    hooks: TrainingCallbacks,
) -> Run:
    """Train ``run`` in the claimed directory, from its epoch to the config's last.

    Across processes all train, and rank 0 alone evaluates and writes; the others wait for it in
    :func:`condgen.training.distributed.agreed`, so a failure of its writes stops them too.
    """
    out, config, device = claim.path, run.config, run.device
    main = distributed.is_main()
    with distributed.agreed():
        if main:
            # the run's identity: the checkpoint's (a run of an older condgen gets one now), else its marker's
            claim.adopt((stored.meta.run_id if stored else None) or claim.run_id or new_run_id())
            write_text_atomic(out / CONFIG_NAME, json.dumps(config.model_dump(mode="json"), indent=2) + "\n",
                              "config file")
        train_split = to_device(data.train, device)
        test_split = to_device(data.test, device) if main else None  # rank 0 alone evaluates and draws
        run.directory = out
        opt = make_optimizer(config, run.model)
        gen = torch.Generator(device=device)
        gen.manual_seed(distributed.rank_seed(config.train.seed, distributed.rank()))
        if stored:
            _restore_training_state(run, stored, opt, gen, log)
        if main:
            _keep_metrics_up_to(out / METRICS_NAME, run.epoch, stored.meta.metrics if stored else None)
    forward = distributed.data_parallel(run.model, device)  # None in one process

    if run.epoch >= config.train.epochs:
        log(f"{out}: already trained for {run.epoch} epochs (config asks {config.train.epochs}); nothing to do")
    hooks("on_train_start", run, test_split)
    try:
        _epochs(run, claim.run_id, opt, train_split, test_split, gen, progress, forward, log, hooks)
    except (CondgenError, KeyboardInterrupt) as fault:
        hooks("on_fault", run, fault)
        raise
    run.model.eval()
    with distributed.agreed():  # the others wait for rank 0: the run is complete when train() returns
        hooks("on_train_end", run, test_split)
    return run


def _save_epoch(run: Run, run_id: str | None, opt: torch.optim.Optimizer, record: dict[str, Any],
                rng_states: dict[str, torch.Tensor], ckpt: Path, metrics_path: Path) -> None:
    """Write the epoch's checkpoint and its line of metrics so that they agree after any fault: the new metrics
    file is written in full first, then the checkpoint, and only then is the metrics file put in place (a
    rename, which needs no space). A full disk fails before either has changed; a crash between the two
    renames leaves the line in the checkpoint's header, and ``--resume`` puts it back."""
    config = run.config
    metrics: PreparedFile | None = None
    try:
        lines = _metric_lines(metrics_path, run.epoch - 1)
        text = "".join(ln + "\n" for ln in [*lines, json.dumps(record)])
        metrics = PreparedFile(metrics_path, lambda tmp: tmp.write_text(text, encoding="utf-8"), "metrics file")
        optim_tensors, optim_meta = optimizer_to_flat(opt)
        save_run(run, ckpt, {**optim_tensors, **rng_states}, optimizer=optim_meta,
                 complete=run.epoch == config.train.epochs, world_size=distributed.world_size(), metrics=record,
                 run_id=run_id)
    except BaseException:
        if metrics is not None:
            metrics.discard()
        run.epoch -= 1  # the run is still at the checkpoint on disk
        raise
    metrics.commit()


def _epochs(
    run: Run,
    run_id: str | None,
    opt: torch.optim.Optimizer,
    train_split: dict[str, torch.Tensor],
    test_split: dict[str, torch.Tensor] | None,
    gen: torch.Generator,
    progress: bool | None,
    forward: torch.nn.Module | None,
    log: Callable[[str], None],
    hooks: TrainingCallbacks,
) -> None:
    """The epochs from the run's next to the config's last: each trained, evaluated and saved, then its callbacks."""
    config, main = run.config, distributed.is_main()
    out = run.directory
    ckpt, metrics_path = out / CHECKPOINT_NAME, out / METRICS_NAME
    for epoch in range(run.epoch + 1, config.train.epochs + 1):
        start = time.perf_counter()
        train_terms, lr = _train_epoch(run, opt, train_split, gen, epoch, progress, out, forward)
        train_seconds = time.perf_counter() - start
        rng_states = _generator_states(gen)
        with distributed.agreed():  # rank 0 evaluates and writes the epoch; the others learn here that it did
            if main:
                start = time.perf_counter()
                test = evaluate_split(run, test_split, config.train.eval_batch_size)
                _check_finite_test(test, epoch, out)
                record = {
                    "epoch": epoch,
                    "train_seconds": round(train_seconds, 4),
                    **{f"train_{k}": v for k, v in train_terms.items()},
                    **{f"test_{k}": v for k, v in test.items()},
                    "eval_seconds": round(time.perf_counter() - start, 4),
                    "lr": lr,
                }
            run.epoch = epoch
            if main:
                _save_epoch(run, run_id, opt, record, rng_states, ckpt, metrics_path)
                log(
                    f"epoch {epoch}/{config.train.epochs}  train_loss {record['train_loss']:.2f}  "
                    f"test_neg_elbo {record['test_neg_elbo']:.2f} nats  ({train_seconds:.1f} s)"
                )
        if main:  # saved: a callback that fails now cannot lose the epoch
            hooks("on_epoch_end", run, dict(record))
