"""Training: in-memory batches, the objective, per-epoch test evaluation, metrics, atomic checkpoints, resume.

A run directory holds ``config.json``, ``checkpoint.safetensors`` (weights, optimizer and
random-generator state, written after every epoch), ``metrics.jsonl`` (one line per
epoch) and, at the end, the pictures. An interrupted run loses at most the epoch it was
in: ``--resume`` restores the generator and optimizer and continues bit for bit.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .arguments import MAX_SEED
from .build import create_run
from .checkpoint import CHECKPOINT_NAME, optimizer_from_flat, optimizer_to_flat
from .config import RunConfig
from .data.loading import load_dataset
from .data.splits import DataSplits, index_batch, split_size, to_device
from .device import resolve_device
from .errors import ArgumentError, CheckpointError, CondgenError, NumericalError
from .evaluation import evaluate_split
from .files import read_text, write_text_atomic
from .pictures import write_run_pictures
from .run import Run
from .rundir import CONFIG_NAME, METRICS_NAME, RunDirectory, check_out_path, check_writable_run_dir, claim_run_dir
from .store import StoredRun, read_run, run_from_stored, save_run

#: Fields of a stored config that ``--resume`` may change.
RESUMABLE_CHANGES = {"train.epochs", "train.device"}


def make_optimizer(config: RunConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    cls = torch.optim.AdamW if config.train.optimizer == "adamw" else torch.optim.Adam
    kwargs = {"lr": config.train.lr, "weight_decay": config.train.weight_decay}
    try:
        # the fused kernel updates all parameters in one op: the same Adam step, and seed-model
        # epochs 1.2-1.7x faster on this 2-core CPU (paired runs), where small ops dominate
        return cls(model.parameters(), fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):  # older torch, or a device without the kernel
        return cls(model.parameters(), **kwargs)


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


def _resume_config(stored: RunConfig, given: RunConfig | None, out: Path) -> RunConfig:
    """The stored config, with only the changes that ``--resume`` allows taken from ``given``."""
    if given is None:
        return stored
    old, new = _flatten(stored.model_dump()), _flatten(given.model_dump())
    for field in sorted(set(old) | set(new)):
        if old.get(field) != new.get(field) and field not in RESUMABLE_CHANGES:
            raise CondgenError(
                f"--resume continues the run in {str(out)!r}, whose {field} is {old.get(field)!r}, not "
                f"{new.get(field)!r}; only train.epochs and train.device may change (or start a new run "
                "with another --out)"
            )
    return given


def _keep_metrics_up_to(path: Path, epoch: int) -> None:
    """Drop metric lines of epochs after the checkpoint's, so every epoch appears exactly once."""
    if not path.exists():
        return
    kept = []
    for line in read_text(path, "metrics file").splitlines():
        try:
            if json.loads(line)["epoch"] <= epoch:
                kept.append(line)
        except (ValueError, KeyError, TypeError):  # a line cut short by the crash being resumed from
            continue
    write_text_atomic(path, "".join(ln + "\n" for ln in kept), "metrics file")


def _train_epoch(
    run: Run,
    opt: torch.optim.Optimizer,
    train_split: dict[str, torch.Tensor],
    gen: torch.Generator,
    epoch: int,
    progress: bool | None,
    out: Path,
) -> tuple[dict[str, float], float]:
    """One pass over the shuffled training split; returns the mean of each term per item and the last lr."""
    config, model = run.config, run.model
    model.train()
    n, bs = split_size(train_split), config.train.batch_size
    steps = math.ceil(n / bs)
    perm = torch.randperm(n, generator=gen, device=gen.device)
    loss_sum = torch.zeros((), device=perm.device)
    term_sums: torch.Tensor | None = None
    names: list[str] = []
    bar = tqdm(total=steps, desc=f"epoch {epoch}/{config.train.epochs}", unit="batch", leave=False,
               disable=None if progress is None else not progress)
    lr = config.train.lr
    for step in range(steps):
        lr = learning_rate(config, (epoch - 1) * steps + step, steps * config.train.epochs)
        for group in opt.param_groups:
            group["lr"] = lr
        idx = perm[step * bs : (step + 1) * bs]
        batch = index_batch(train_split, idx)
        terms = run.terms(batch, generator=gen, dropout=True)
        loss = terms.pop("loss").mean()
        if not torch.isfinite(loss):
            saved = (f"the checkpoint of epoch {epoch - 1} in {str(out)!r} is intact" if epoch > 1
                     else "no epoch had finished, so no checkpoint was written")
            raise NumericalError(
                f"the loss became {float(loss.detach())} at epoch {epoch}, step {step + 1}; {saved} (try a lower --lr)"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += loss.detach() * idx.numel()
        names = list(terms)
        sums = torch.stack(list(terms.values()), dim=1).detach().sum(0)  # two ops for all terms: steps are short
        term_sums = sums if term_sums is None else term_sums + sums
        if step % 100 == 0:
            bar.set_postfix(loss=f"{float(loss.detach()):.2f}", refresh=False)
        bar.update()
    bar.close()
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
    pictures: bool = True,
    log: Callable[[str], None] = tqdm.write,
) -> Run:
    """Train a CVAE described by ``config`` into ``out_dir`` and return the trained :class:`Run`.

    With ``resume=True`` the config comes from the checkpoint in ``out_dir``; a ``config`` given
    too may only raise ``train.epochs`` or change ``train.device``. ``resume`` may also be the
    checkpoint already read (:func:`condgen.store.read_run`); it is read again only if another
    process wrote a newer one before this one locked the run.
    ``progress=None`` shows a progress bar only on a terminal.

    ``out_dir`` must be new, empty, or a run directory (see :mod:`condgen.rundir`), and only one
    process may write it at a time. Everything that can be checked (config, data, conditioners,
    model size) is checked before a new directory is made; a run that fails before its first
    epoch ends removes the directory it made.
    """
    out = check_out_path(out_dir)
    if not isinstance(resume, (bool, StoredRun)):
        raise ArgumentError(f"resume must be True, False or a StoredRun, got {resume!r}")
    if config is not None and not isinstance(config, RunConfig):
        raise ArgumentError(f"config must be a condgen.RunConfig (or None with resume=True), got "
                            f"{type(config).__name__}; build one with condgen.RunConfig.parse(dict)")
    check_writable_run_dir(out, bool(resume))
    if config is not None:  # validated whole, as parse() does, even when built or copied directly
        config = RunConfig.parse(config.model_dump(mode="json"))
    if resume:
        with claim_run_dir(out, resume=True) as claim:
            # under the lock, so no other process moves the run on; read again only if it moved since
            current = (isinstance(resume, StoredRun) and resume.path.resolve() == (out / CHECKPOINT_NAME).resolve()
                       and resume.is_current())
            stored = resume if current else read_run(out / CHECKPOINT_NAME)
            config = _resume_config(stored.config, config, out)
            device = resolve_device(config.train.device)
            data = load_dataset(config.data)
            run = run_from_stored(stored, device, config, copies=4)
            x_shape = tuple(data.train[config.data.x_field].shape[1:])
            if x_shape != run.model.data_shape:
                raise CheckpointError(f"checkpoint {str(stored.path)!r} has data_shape {list(run.model.data_shape)}, "
                                      f"but its data's {config.data.x_field!r} items are {list(x_shape)}")
            return _train_in(claim, run, data, stored, progress, pictures, log)
    if config is None:
        raise ArgumentError("train() needs a config unless resume=True")
    device = resolve_device(config.train.device)
    data = load_dataset(config.data)
    run = create_run(config, data.train, device)
    with claim_run_dir(out, resume=False, own_files=(CONFIG_NAME, METRICS_NAME)) as claim:
        return _train_in(claim, run, data, None, progress, pictures, log)


def _restore_training_state(
    run: Run, stored: StoredRun, opt: torch.optim.Optimizer, gen: torch.Generator, log: Callable[[str], None]
) -> None:
    """The optimizer and random generator of ``stored``, for ``--resume``."""
    config = run.config
    try:
        optimizer_from_flat(opt, {k: v for k, v in stored.tensors.items() if k.startswith("optim.")},
                            stored.meta["optimizer"])
        state = stored.tensors["rng.train"]
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {str(stored.path)!r}: its optimizer or generator state cannot be "
                              f"restored ({type(exc).__name__}: {exc}); it can be sampled, not resumed") from None
    try:
        gen.set_state(state)
    except RuntimeError:  # a generator state of another device type (--resume --device changed it)
        gen.manual_seed((config.train.seed + run.epoch) % (MAX_SEED + 1))
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
    pictures: bool,
    log: Callable[[str], None],
) -> Run:
    """Train ``run`` in the claimed directory, from its epoch to the config's last."""
    out, config, device = claim.path, run.config, run.device
    ckpt = out / CHECKPOINT_NAME
    write_text_atomic(out / CONFIG_NAME, json.dumps(config.model_dump(mode="json"), indent=2) + "\n", "config file")
    train_split, test_split = to_device(data.train, device), to_device(data.test, device)
    run.directory = out
    opt = make_optimizer(config, run.model)
    gen = torch.Generator(device=device)
    gen.manual_seed(config.train.seed)
    if stored:
        _restore_training_state(run, stored, opt, gen, log)
    metrics_path = out / METRICS_NAME
    _keep_metrics_up_to(metrics_path, run.epoch)

    if run.epoch >= config.train.epochs:
        log(f"{out}: already trained for {run.epoch} epochs (config asks {config.train.epochs}); nothing to do")
    for epoch in range(run.epoch + 1, config.train.epochs + 1):
        start = time.perf_counter()
        train_terms, lr = _train_epoch(run, opt, train_split, gen, epoch, progress, out)
        train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        test = evaluate_split(run, test_split, config.train.eval_batch_size)
        record = {
            "epoch": epoch,
            "train_seconds": round(train_seconds, 4),
            **{f"train_{k}": v for k, v in train_terms.items()},
            **{f"test_{k}": v for k, v in test.items()},
            "eval_seconds": round(time.perf_counter() - start, 4),
            "lr": lr,
        }
        # metrics first: a crash before the checkpoint lands leaves a line that resume drops
        with metrics_path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        run.epoch = epoch
        optim_tensors, optim_meta = optimizer_to_flat(opt)
        save_run(run, ckpt, {**optim_tensors, "rng.train": gen.get_state()}, optimizer=optim_meta,
                 complete=epoch == config.train.epochs)
        log(
            f"epoch {epoch}/{config.train.epochs}  train_loss {record['train_loss']:.2f}  "
            f"test_neg_elbo {record['test_neg_elbo']:.2f} nats  ({train_seconds:.1f} s)"
        )
    run.model.eval()
    if pictures:
        write_run_pictures(run, test_split, out, log=log)
    return run
