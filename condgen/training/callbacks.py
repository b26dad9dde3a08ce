"""The callbacks of one training (:class:`condgen.Callback`): the ones it names, built on rank 0, every event
passed to each of them, and a callback that raises reported (a :class:`PluginWarning`, as every broken
plugin is) and dropped, so it never stops the run."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

from ..common.errors import CondgenError, PluginError
from ..plugin.callback import Callback
from ..plugin.registry import PluginWarning, registry


class TrainingCallbacks:
    """Each callback named in ``names``, built as ``cls(log)``, in that order (a name given twice is built once).

    An unknown name, or one two plugins register, is a :class:`condgen.PluginError` naming it; so is a constructor's :class:`condgen.CondgenError` (the callback's own "install X"). Any
    other exception of a constructor, and any exception of an event, is a :class:`PluginWarning` of one line
    (``warning: ...`` on the command line), and that callback is dropped for the rest of the training.
    """

    def __init__(self, names: Sequence[str], log: Callable[[str], None]) -> None:
        self.active: list[tuple[str, Callback]] = []
        for name in dict.fromkeys(names):
            try:
                cls = registry().get("callback", name)
            except PluginError as exc:
                raise PluginError(f"train.log names callback {name!r}: {exc}") from None
            try:
                callback = cls(log)
            except CondgenError:
                raise
            except Exception as exc:
                self._report(name, "its constructor", exc)
                continue
            self.active.append((name, callback))

    def _report(self, name: str, where: str, exc: BaseException) -> None:
        owner = registry().owner("callback", name).describe()
        warnings.warn(f"callback {name!r} ({owner}) raised {type(exc).__name__} in {where}: {exc}; it is dropped "
                      "for the rest of this training (the run itself is saved)", PluginWarning, stacklevel=3)

    def __call__(self, event: str, *args: Any) -> None:
        """Call ``event`` (``on_train_start``, ``on_epoch_end``, ``on_train_end`` or ``on_fault``) on every
        callback still running."""
        for name, callback in list(self.active):
            try:
                getattr(callback, event)(*args)
            except Exception as exc:  # a callback's bug or its disk: never the run's end
                self.active.remove((name, callback))
                self._report(name, event, exc)
