"""Random generators: every random draw in condgen comes from a seeded ``torch.Generator``."""

from __future__ import annotations

import torch

from .arguments import MAX_SEED, seed_value
from .errors import ArgumentError

__all__ = ["EVAL_SEED", "MAX_SEED", "seeded_generator"]

#: Evaluation draws its own z's (and any random conditions) from this seed, so a run's figures do
#: not depend on training randomness and two evaluations of one run agree.
EVAL_SEED = 1234


def seeded_generator(device: torch.device | str, seed: int | None) -> torch.Generator:
    """A generator on ``device`` seeded with ``seed`` (or from the OS when None); a seed that is not a
    whole number in ``[0, 2**64 - 1]`` is an :class:`condgen.ArgumentError`."""
    seed = seed_value("seed", seed)
    try:
        gen = torch.Generator(device=device)
    except (RuntimeError, TypeError):
        raise ArgumentError(f"device must be a torch device such as 'cpu' or 'cuda:0', got {device!r}") from None
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)
    return gen
