"""Training across processes: the processes that torchrun starts, joined into one training.

``torchrun --nproc_per_node N -m condgen train ...`` starts N processes with ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK`` in their environment. :func:`condgen.train` sees ``WORLD_SIZE > 1``,
joins them (:func:`process_group`) and trains one model with DistributedDataParallel
(:func:`data_parallel`): tensors on the CPU travel through ``gloo``, tensors on CUDA through
``nccl``, each process on ``cuda:LOCAL_RANK`` (:func:`device_for`). Without torchrun, or with
one process, every function here does nothing (or what one process would).

Rank 0 is the main process: it alone draws each epoch's permutation, claims and writes the run
directory and logs. A step that only some processes take sits in :func:`agreed`, so a failure in
it stops every process with one line instead of leaving the others waiting at a collective.

torch is imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..common.errors import CondgenError

if TYPE_CHECKING:
    import torch

#: Spreads the ranks' seeds over the 64-bit range (an odd constant: 2**64 / the golden ratio).
_SEED_STRIDE = 0x9E3779B97F4A7C15


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise CondgenError(f"environment variable {name}={text!r} is not a whole number; start condgen's "
                           "processes with torchrun, which sets it") from None


def _joined() -> Any:
    """``torch.distributed`` when a process group is already made (by the caller, or by
    :func:`process_group`), else None; never imports torch."""
    dist = sys.modules.get("torch.distributed")
    return dist if dist is not None and dist.is_available() and dist.is_initialized() else None


def world_size() -> int:
    """How many processes train together: those of a group already made, else ``WORLD_SIZE``
    (torchrun sets it), else 1."""
    dist = _joined()
    return dist.get_world_size() if dist is not None else max(1, _env_int("WORLD_SIZE", 1))


def is_distributed() -> bool:
    """Whether more than one process trains (see :func:`world_size`)."""
    return world_size() > 1


def rank() -> int:
    """This process's rank in ``0 .. world_size() - 1`` (of a group already made, else ``RANK``); 0 in one process."""
    dist = _joined()
    if dist is not None:
        return dist.get_rank()
    return _env_int("RANK", 0) if is_distributed() else 0


def is_main() -> bool:
    """Whether this is rank 0, the process that writes the run directory and logs."""
    return rank() == 0


def rank_seed(seed: int, of_rank: int) -> int:
    """The seed of rank ``of_rank``'s training generator: ``seed`` itself on rank 0 (so one process
    draws exactly what it always did), others far apart, so the ranks draw different noise."""
    return (seed + of_rank * _SEED_STRIDE) % 2**64


def check_share(n: int) -> None:
    """CondgenError if ``n`` training items leave a process none: each trains on ``n // world_size()``."""
    if is_distributed() and n < world_size():
        raise CondgenError(f"the training split has {n} item(s), fewer than the {world_size()} processes that "
                           "share it; start fewer processes (--nproc_per_node) or train on more items")


def device_for(name: str) -> torch.device:
    """This process's device for ``--device name`` (see :func:`condgen.common.device.resolve_device`).

    Across processes ``cpu`` stays the CPU, and ``cuda`` (or ``auto`` where there is CUDA) is
    ``cuda:LOCAL_RANK``, one GPU per process; ``cuda:N`` names one GPU for all, so it is refused.
    """
    from ..common.device import resolve_device

    if not is_distributed():
        return resolve_device(name)
    if name.startswith("cuda:"):
        raise CondgenError(f"--device {name} names one GPU, but under torchrun each process takes its own "
                           "(cuda:LOCAL_RANK); use --device cuda or auto")
    device = resolve_device(name)
    if device.type != "cuda":
        return device
    import torch

    index, count = _env_int("LOCAL_RANK", 0), torch.cuda.device_count()
    if index >= count:
        raise CondgenError(f"torchrun started process {index} (LOCAL_RANK) on this node, which has only {count} "
                           "CUDA device(s); start at most that many per node (--nproc_per_node) or use --device cpu")
    torch.cuda.set_device(index)  # the current device of nccl's collectives
    return torch.device("cuda", index)


@contextmanager
def process_group() -> Iterator[None]:
    """Join the other processes for the block (nothing without torchrun); a group the caller
    already made is used as it is and left in place.

    One group carries both kinds of tensors: ``gloo`` those on the CPU (and the small objects of
    :func:`agreed`), ``nccl`` those on CUDA where torch has it. nccl connects only when a CUDA
    tensor first travels, so ``--device cpu`` on a GPU machine never touches it.
    """
    if not is_distributed():
        yield
        return
    import torch
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        raise CondgenError(f"WORLD_SIZE={world_size()} asks to train across processes, but this torch "
                           f"({torch.__version__}) was built without torch.distributed's gloo backend")
    if dist.is_initialized():
        yield
        return
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    try:
        dist.init_process_group(backend)
    except (ValueError, RuntimeError) as exc:  # no MASTER_ADDR (not started by torchrun), a rendezvous timeout
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CondgenError(f"cannot join the other {world_size() - 1} training process(es): {first}; start "
                           "condgen with torchrun (see docs/distributed.md)") from None
    try:
        yield
        # every process out of its last collective before any tears its connections down: a gloo process
        # that shut down while its peer still finished the last exchange was seen to abort (SIGABRT) at exit
        dist.barrier()
    finally:
        dist.destroy_process_group()


@contextmanager
def agreed() -> Iterator[None]:
    """Run the block, then learn whether it succeeded on every process: a failure (an ``Exception``)
    on any raises on all, so none waits at a collective for one that stopped. The failed process
    raises its own error, the others a :class:`CondgenError` naming the process and its error.
    A block that only rank 0 does real work in is how the others wait for it. In one process: the block."""
    if not is_distributed():
        yield
        return
    try:
        yield
    except Exception as exc:
        _failures(exc)
        raise
    failures = _failures(None)
    if failures:
        failed, text = failures[0]
        raise CondgenError(f"process {failed} of {world_size()} stopped: {text}")


def _failures(exc: Exception | None) -> list[tuple[int, str]]:
    """Every process's failure of the current :func:`agreed` block, as ``(rank, message)``."""
    import torch.distributed as dist

    text = None if exc is None else str(exc) if isinstance(exc, CondgenError) else f"{type(exc).__name__}: {exc}"
    mine = None if text is None else (text.strip().splitlines() or [type(exc).__name__])[0]  # one line each
    everyone: list[Any] = [None] * world_size()
    dist.all_gather_object(everyone, mine)
    return [(r, text) for r, text in enumerate(everyone) if text is not None]


def data_parallel(model: torch.nn.Module, device: torch.device) -> torch.nn.Module | None:
    """``model`` in DistributedDataParallel, to call for the training forward: its backward averages
    the gradients over the processes. Making it copies rank 0's weights to all. None in one process."""
    if not is_distributed():
        return None
    from torch.nn.parallel import DistributedDataParallel

    # the engine's buffers never change in training: copied once here, not at every forward
    # (torch 2.14 renamed the switch and deprecated the old name)
    known = inspect.signature(DistributedDataParallel).parameters
    no_sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in known else {"broadcast_buffers": False}
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None, **no_sync)


def broadcast_from_main(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` overwritten, on every process, with rank 0's (in place; the same tensor back)."""
    if is_distributed():
        import torch.distributed as dist

        dist.broadcast(tensor, src=0)
    return tensor


def sum_over_processes(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of every process's ``tensor`` (same shape on all); ``tensor`` itself in one process."""
    if not is_distributed():
        return tensor
    import torch.distributed as dist

    total = tensor.clone()
    dist.all_reduce(total)
    return total


def mean_over_processes(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of every process's ``tensor`` (same shape on all); ``tensor`` itself in one process."""
    return sum_over_processes(tensor) / world_size() if is_distributed() else tensor


def gather_to_main(obj: Any) -> list[Any] | None:
    """Every process's ``obj`` in rank order on rank 0 (None on the others); ``[obj]`` in one process."""
    if not is_distributed():
        return [obj]
    import torch.distributed as dist

    everyone: list[Any] | None = [None] * world_size() if is_main() else None
    dist.gather_object(obj, everyone, dst=0)
    return everyone
