"""Choosing the torch device from ``cpu``, ``cuda``, ``cuda:N`` or ``auto``."""

from __future__ import annotations

import torch

from .errors import CondgenError


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when there is one; asking for CUDA without one is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise CondgenError(
                f"--device {name} was asked for, but this torch ({torch.__version__}) sees no CUDA device; "
                "use --device cpu or --device auto"
            )
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise CondgenError(
                f"--device {name}: there are only {torch.cuda.device_count()} CUDA devices (0..{torch.cuda.device_count() - 1})"
            )
    elif name != "cpu":
        raise CondgenError(f"unknown device {name!r}; use cpu, cuda, cuda:N or auto")
    return torch.device(name)
