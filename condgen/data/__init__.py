"""Data sets: in-memory splits of tensors, the built-in MNIST reader, loading by name (``loading``)."""

from .splits import DataSplits, DatasetLoader, iter_batches

__all__ = ["DataSplits", "DatasetLoader", "iter_batches"]
