"""The Python API's :func:`train`: the training loop, with the run's pictures drawn at its end.

The loop (:mod:`condgen.training.loop`) knows nothing of pictures; this is the caller that adds their
callback (``pictures``, :mod:`condgen.builtins.callbacks`), as the command line does, so
``condgen.train(config, out)`` writes the same run directory as ``condgen train``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from .common.errors import ArgumentError
from .runs.config import RunConfig
from .runs.run import Run
from .runs.store import StoredRun
from .training import loop


def train(
    config: RunConfig | None,
    out_dir: str | Path,
    *,
    resume: bool | StoredRun = False,
    progress: bool | None = None,
    pictures: bool = True,
    log: Callable[[str], None] = tqdm.write,
) -> Run:
    """Train a CVAE described by ``config`` into ``out_dir`` and return the trained :class:`condgen.Run`.

    With ``pictures`` (the default), ``samples.png``, ``reconstructions.png`` and ``latent.png`` are
    drawn into ``out_dir`` once the last epoch is saved (the ``pictures`` callback, :mod:`condgen.pictures`);
    a picture that fails is reported through ``log`` and skipped, never failing the saved run. The
    callbacks that ``train.log`` names (``--log``: ``tensorboard``, a plugin's) run as well.

    The rest is :func:`condgen.training.loop.train`: with ``resume=True`` the config comes from the
    checkpoint in ``out_dir``, and a ``config`` given too may only raise ``train.epochs`` or change
    ``train.device`` or ``train.log``; ``progress=None`` shows a progress bar only on a terminal; ``out_dir``
    must be new, empty, or a run directory, written by one process at a time; under torchrun the processes
    train one model together.
    """
    if not isinstance(pictures, bool):
        raise ArgumentError(f"pictures must be True or False, got {pictures!r}")
    return loop.train(config, out_dir, resume=resume, progress=progress, log=log,
                      callbacks=("pictures",) if pictures else ())
