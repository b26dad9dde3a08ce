"""The Callback contract: what a plugin does while a run trains (a dashboard, a logger, an alert).

A callback class is registered through ``condgen_register_callbacks`` and chosen by name for a run:
``--log NAME`` (``train.log: [NAME, ...]``). The toolkit's own are ``pictures`` (the run's pictures when
training ends, on unless ``--no-pictures``) and ``tensorboard``.

The training loop builds each chosen callback once per training, ``cls(log)``, on rank 0 only (under
torchrun the other processes run none), and calls its methods at four events. Every method is optional:
the base class's do nothing. The loop writes an epoch's checkpoint and its line of ``metrics.jsonl``
before any callback hears of the epoch, so a callback cannot lose a run:

- a method that raises is reported, a one-line :class:`~condgen.plugin.registry.PluginWarning` naming the
  callback, its plugin and the event, and that callback is dropped for the rest of the training; the run
  and the other callbacks go on;
- a constructor that raises a :class:`condgen.CondgenError` (the callback's own "install tensorboard") stops
  the training before its first epoch, in that one line; any other exception from it is reported and the
  callback skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from torch import Tensor

    from ..runs.run import Run


class Callback:
    """Subclass and override the events you need. ``name`` is what ``--log NAME`` selects
    (``[a-z][a-z0-9_-]*``); ``self.log(text)`` writes a line where the training's log goes."""

    #: The name ``--log`` (``train.log``) selects it by.
    name: ClassVar[str] = ""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log

    def on_train_start(self, run: Run, test: Mapping[str, Tensor]) -> None:
        """Before this training's first epoch. ``run.epoch`` epochs are already done (0, or the epoch a
        ``--resume`` continues from); ``run.directory`` is the run directory and ``run.config`` its config.
        ``test`` is the test split ``{field: (N, ...)}`` on the run's device, the same object at every event
        (keep it for the others)."""

    def on_epoch_end(self, run: Run, metrics: Mapping[str, float]) -> None:
        """After epoch ``metrics["epoch"]`` is trained, evaluated and saved: ``metrics`` is its line of
        ``metrics.jsonl`` (``train_<term>``, ``test_<term>`` in nats per item, ``lr``, ``train_seconds``,
        ``eval_seconds``). A callback may sample the run (:meth:`condgen.Run.sample`, which draws from its own
        seeded generator without gradients): the next epoch puts the model back in training mode, and the
        training's random stream is its own, so the training goes on as it would have without it."""

    def on_train_end(self, run: Run, test: Mapping[str, Tensor]) -> None:
        """Once the last epoch is saved: ``run`` is the trained run, in eval mode."""

    def on_fault(self, run: Run, fault: BaseException) -> None:
        """The training stops on ``fault``: a :class:`condgen.NumericalError` (the loss was not finite), a
        ``KeyboardInterrupt``, or another :class:`condgen.CondgenError` (a disk that filled, say). It is
        raised again once the callbacks have heard of it; the last epoch's checkpoint is intact
        (``run.epoch`` is its epoch)."""
