"""Random generators: every random draw in condgen comes from a seeded ``torch.Generator``."""

from __future__ import annotations

import torch

#: Evaluation draws its own z's (and any random conditions) from this seed, so a run's figures do
#: not depend on training randomness and two evaluations of one run agree.
EVAL_SEED = 1234


def seeded_generator(device: torch.device | str, seed: int | None) -> torch.Generator:
    """A generator on ``device`` seeded with ``seed`` (or from the OS when None)."""
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)
    return gen
