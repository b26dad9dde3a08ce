"""Building a run from its config: the conditioners, the CVAE, and a fresh run fitted to its data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from .conditioner import Conditioner
from .config import RunConfig
from .engine import CVAE
from .plugins import registry
from .run import Run


def build_conditioners(config: RunConfig) -> dict[str, Conditioner]:
    """Instantiate the config's conditioners, in order, validating each one's own config."""
    reg = registry()
    return {spec.name: reg.conditioner_class(spec.name)(spec.config) for spec in config.conditioners}


def build_model(config: RunConfig, data_shape: Sequence[int], conditioners: Mapping[str, Conditioner]) -> CVAE:
    """The CVAE with each conditioner's embedding module, in config order (after fit / load_state)."""
    return CVAE(
        data_shape,
        config.model,
        embeddings={n: c.build_embedding() for n, c in conditioners.items()},
        embed_dims={n: c.embed_dim for n, c in conditioners.items()},
        absent=list(config.dropout_probabilities()),
    )


def create_run(config: RunConfig, train: Mapping[str, Tensor], device: torch.device) -> Run:
    """A fresh run: conditioners fitted on the training split, weights initialised from the seed."""
    conditioners = build_conditioners(config)
    for cond in conditioners.values():
        cond.fit(train)
    data_shape = train[config.data.x_field].shape[1:]
    with torch.random.fork_rng(devices=[]):  # seed the initial weights without touching the caller's RNG
        torch.manual_seed(config.train.seed)
        model = build_model(config, data_shape, conditioners).to(device)
    return Run(config, conditioners, model, device)
