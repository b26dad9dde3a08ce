"""Completing images from Python: ``condgen_inpaint.inpaint(run, image, mask, num)``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from torch import Tensor

import condgen
from condgen import ArgumentError, CondgenError

if TYPE_CHECKING:
    from .conditioner import InpaintConditioner


def inpaint_conditioner(run: condgen.Run) -> InpaintConditioner:
    """The run's ``inpaint`` conditioner, under whatever instance name (its ``name``); CondgenError for a run
    conditioned without one, or with several."""
    from .conditioner import InpaintConditioner

    found = [c for c in run.conditioners.values() if isinstance(c, InpaintConditioner)]
    if not found:
        raise CondgenError(f"inpainting needs a run conditioned on 'inpaint'; this one is conditioned on "
                           f"{list(run.conditioners) or 'nothing'}")
    if len(found) > 1:
        raise CondgenError(f"this run has {len(found)} inpaint conditioners ({', '.join(c.name for c in found)}); "
                           "inpainting completes one image, for a run with one")
    return found[0]


def inpaint(
    run: condgen.Run,
    image: Any,
    mask: Any,
    num: int = 16,
    seed: int | None = None,
    conditions: Mapping[str, Any] | None = None,
) -> Tensor:
    """``num`` completions of each image: ``(K * num, C, H, W)``, image k's in rows ``k*num ... k*num+num-1``.

    ``image``: ``(H, W)``, ``(C, H, W)`` or ``(K, C, H, W)`` in [0, 1]; ``mask``: the same forms
    (1 = observed) or a mask name (``"quadrants:2"``, ``"bottom-half"``, ...). The observed pixels
    are kept exactly; the missing ones are drawn from the model. A run with other conditioners
    as well takes one value for each of them in ``conditions`` (``{"label": 3}``).
    """
    cond = inpaint_conditioner(run)
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:  # the message of condgen's own num checks
        raise ArgumentError(f"num must be a whole number >= 1, got {num!r}")
    if conditions is not None and not isinstance(conditions, Mapping):
        raise condgen.ConditionError(f"conditions must be a mapping of the run's other conditioners to values, e.g. "
                                     f"{{'label': 3}}, got {conditions!r:.80}")
    others = dict(conditions or {})
    if cond.name in others:
        raise CondgenError("the image and mask are given on their own (inpaint(run, image, mask)); conditions holds "
                           "only the values of the run's other conditioners")
    images, masks = cond.image_and_mask(image, mask)
    run.check_sample_memory(images.shape[0] * num)  # before the conditions are repeated num times
    completing = cond.condition(images, masks).repeat_interleave(num, dim=0)
    return run.sample({cond.name: completing, **others}, num=completing.shape[0], seed=seed)
