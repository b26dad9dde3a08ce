"""Data sets: in-memory splits of tensors, and the built-in MNIST reader."""

from .splits import DataSplits, DatasetLoader, load_dataset

__all__ = ["DataSplits", "DatasetLoader", "load_dataset"]
