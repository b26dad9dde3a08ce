"""Test-split evaluation: the negative ELBO in nats per item and its two terms."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from .data.splits import iter_batches, split_size
from .run import Run, seeded_generator

#: Evaluation draws its own z's from this seed, so a run's figures do not depend on training randomness.
EVAL_SEED = 1234


@torch.no_grad()
def evaluate_split(run: Run, split: Mapping[str, Tensor], batch_size: int = 1000) -> dict[str, float]:
    """Mean negative ELBO, reconstruction NLL and KL over ``split`` (one z sample per item)."""
    run.model.eval()
    gen = seeded_generator(run.device, EVAL_SEED)
    n = split_size(split)
    totals = {"neg_elbo": 0.0, "recon_nll": 0.0, "kl": 0.0}
    x_field = run.config.data.x_field
    for _, batch in iter_batches(split, batch_size):
        terms = run.model(batch[x_field], run.conditions_from_batch(batch, gen), generator=gen)
        totals["recon_nll"] += float(terms.recon_nll.sum())
        totals["kl"] += float(terms.kl.sum())
    totals["neg_elbo"] = totals["recon_nll"] + totals["kl"]
    return {k: v / n for k, v in totals.items()}
