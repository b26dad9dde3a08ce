"""Data sets: in-memory splits of tensors, the built-in MNIST reader, loading by name (``loading``).

The exports are imported on first use, so the default plugin (``condgen.builtins.datasets``) loads
without torch: ``condgen --help`` imports it to build the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .splits import DatasetLoader, DataSplits, iter_batches

__all__ = ["DataSplits", "DatasetLoader", "iter_batches"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import splits

        return getattr(splits, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
