"""The ``regression`` conditioner: a vector of named real-valued targets, in their own units.

A condition is ``(B, T)`` floats, one column per target in the order of ``targets``. Each
target comes from a data field of its name or, where the data has none, from a registered
attribute function of the images (``ink``, ``slant``, or a plugin's own).
:meth:`RegressionConditioner.fit` learns each target's mean and std on the training split; they are stored in the checkpoint and the
embedding standardises with them, so users always give raw values::

    condgen sample RUN --condition regression=ink:0.25,slant:-0.3
    condgen sample RUN --condition regression=ink:0.1..0.4/5,slant:0     # a sweep: one row per value
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import torch
from pydantic import Field, field_validator
from torch import Tensor, nn

import condgen
from condgen import ConditionError, Conditioner, ConditionerConfig, PluginError, is_missing

from .parsing import FLOAT32_MAX, parse_targets, targets_from_mapping

#: Images read at once when computing an attribute over a whole split.
ATTRIBUTE_CHUNK = 10_000
#: Rows of a run's samples.png: this many values of each target, the others held at their median.
EXAMPLE_STEPS = 5
#: The span of those values: these quantiles of the test split.
EXAMPLE_QUANTILES = (0.05, 0.95)
#: Test items ``evaluate`` generates from, to check samples against their requested attributes.
EVALUATE_ITEMS = 2000


class RegressionConfig(ConditionerConfig):
    targets: list[str] = Field(min_length=1, description="target names: a data field of that name, else an "
                                                          "attribute function of the images (ink, slant, ...)")
    image_field: str = Field("image", description="data field the attribute functions read")
    hidden: int = Field(64, ge=1, description="width of the embedding MLP's hidden layer")
    embed_dim: int = Field(16, ge=1, description="width of the embedding")

    @field_validator("targets", mode="before")
    @classmethod
    def _one_name_is_a_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v  # --conditioner regression:targets=ink

    @field_validator("targets")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        twice = sorted({t for t in v if v.count(t) > 1})
        if twice:
            raise ValueError(f"target {twice[0]!r} is listed twice")
        return v


class Standardise(nn.Module):
    """``(B, T)`` raw values -> ``(B, T)`` standardised with the training split's mean and std."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        # not persistent: they are the conditioner's state, stored as JSON in the checkpoint
        self.register_buffer("mean", torch.tensor(mean), persistent=False)
        self.register_buffer("std", torch.tensor(std), persistent=False)

    def forward(self, c: Tensor) -> Tensor:
        return (c - self.mean) / self.std


class RegressionConditioner(Conditioner):
    """Condition on named real-valued targets, given in their own units; a condition is (B, T) floats.

    A target read from a data field may be missing for some items (NaN, :func:`condgen.is_missing`: an empty
    cell of an attributes CSV read with ``missing=absent``): such an item has no condition
    (:meth:`missing_values`), and the model gives it its absent one. :meth:`fit` learns each target's mean
    and std from the items that have a condition, and :meth:`condition_from_batch` gives a missing value the mean.
    """

    name = "regression"
    Config = RegressionConfig
    config: RegressionConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.sources: dict[str, str] = {}  # target -> "field" or "attribute", found by fit()
        self.mean: list[float] | None = None
        self.std: list[float] | None = None

    @property
    def targets(self) -> list[str]:
        return list(self.config.targets)

    @property
    def condition_shape(self) -> tuple[int, ...]:
        return (len(self.targets),)

    # -- where the targets come from ------------------------------------------------------------
    def _source(self, target: str, data: Mapping[str, Tensor]) -> str:
        if target in data:
            return "field"
        if target in condgen.attributes():
            return "attribute"
        raise ConditionError(
            f"regression target {target!r} is neither a data field (the data has {sorted(data)}) nor an "
            f"attribute function (registered: {sorted(condgen.attributes()) or 'none'})"
        )

    def target_values(self, data: Mapping[str, Tensor]) -> Tensor:
        """The targets of every item: ``(N, T)`` float32, from fields or computed from the images."""
        columns = []
        for target in self.targets:
            source = self.sources.get(target) or self._source(target, data)
            if source == "field":
                values = self.require_field(data, target)
                if values.dim() == 2 and values.shape[1] == 1:
                    values = values[:, 0]
                if values.dim() != 1 or values.dtype == torch.bool or values.is_complex():
                    raise ConditionError(f"regression target {target!r}: data field {target!r} must hold one number "
                                         f"per item, shape (N,); it has shape {tuple(values.shape)}")
            else:
                images = self.require_field(data, self.config.image_field)
                function = condgen.attributes().get(target)
                if function is None:
                    raise ConditionError(f"regression target {target!r} is computed by attribute function "
                                         f"{target!r}, which no installed plugin registers now")
                values = torch.cat([self._attribute(target, function, images[i : i + ATTRIBUTE_CHUNK])
                                    for i in range(0, images.shape[0], ATTRIBUTE_CHUNK)])
            columns.append(values.float())
        return torch.stack(columns, dim=1)

    @staticmethod
    def _attribute(name: str, function: Any, images: Tensor) -> Tensor:
        """``function(images)`` ``(B,)``, checked: a plugin's attribute function must give one number per image."""
        values = function(images)
        if not isinstance(values, Tensor) or tuple(values.shape) != (images.shape[0],):
            got = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
            raise PluginError(f"attribute function {name!r} returned {got} for {images.shape[0]} images; it must "
                              f"return a tensor ({images.shape[0]},), one number per image (a bug in its plugin)")
        return values

    # -- data ---------------------------------------------------------------------------------
    def _missing(self, values: Tensor) -> Tensor:
        """``(N, T)`` bool: the missing values (NaN) of ``values`` ``(N, T)``, in the targets read from data fields
        (an attribute function's NaN is its own bug, refused by fit)."""
        from_field = [self.sources.get(t) == "field" for t in self.targets]
        if all(from_field):
            return torch.isnan(values)
        return torch.isnan(values) & torch.tensor(from_field, device=values.device)

    def fit(self, train: Mapping[str, Tensor]) -> None:
        self.sources = {t: self._source(t, train) for t in self.targets}
        values = self.target_values(train)
        missing = self._missing(values)
        bad = ~torch.isfinite(values) & ~missing
        if bad.any():
            raise ConditionError(f"regression target {self.targets[int(bad.any(0).nonzero()[0])]!r} is not finite "
                                 "for every training item")
        values = values[~missing.any(1)]  # an item missing a value has no condition: nothing to learn from it
        if values.shape[0] < 2:
            raise ConditionError(f"conditioner {self.name!r} needs at least 2 training items with a value of every "
                                 f"target to standardise them; the training split has {values.shape[0]}")
        mean, std = values.mean(0), values.std(0)
        flat = (std == 0) | ~torch.isfinite(std)
        if flat.any():
            raise ConditionError(f"regression target {self.targets[int(flat.nonzero()[0])]!r} has the same "
                                 "value for every training item; there is nothing to condition on")
        self.mean, self.std = mean.tolist(), std.tolist()
        self._tensors = {}

    def state(self) -> dict[str, Any]:
        return {"sources": self.sources, "mean": self.mean, "std": self.std}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """The fitted state from a checkpoint, checked: a source, a mean and a positive std for each target."""
        t = len(self.targets)
        sources, mean, std = (state.get(k) for k in ("sources", "mean", "std"))

        def numbers(v: Any) -> bool:
            return (isinstance(v, list) and len(v) == t and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v))

        if not (isinstance(sources, Mapping) and sorted(sources) == sorted(self.targets)
                and all(v in ("field", "attribute") for v in sources.values())
                and numbers(mean) and numbers(std) and all(x > 0 for x in std)):
            raise condgen.CondgenError(
                f"the regression conditioner's stored state does not fit its targets {self.targets}: it needs "
                f"sources (field or attribute), {t} finite means and {t} positive stds; got {dict(state)!r:.200}"
            )
        # checked as they are used, in float32: a std of 1e-45 is 0 there (and 1e-39 has no finite inverse), a
        # mean of 1e39 is inf, and either would make every sample NaN
        mean32, std32 = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
        bad = [f"mean {m!r}" for m, m32 in zip(mean, mean32.tolist()) if not math.isfinite(m32)]
        bad += [f"std {s!r}" for s, s32 in zip(std, std32.tolist())
                if not (0 < s32 <= FLOAT32_MAX and 1 / s32 <= FLOAT32_MAX)]
        if bad:
            raise condgen.CondgenError(
                f"the regression conditioner's stored state holds {', '.join(bad)} for targets {self.targets}, which "
                f"float32 (the dtype conditions are standardised in) cannot hold or invert: the state was not "
                "written by a fit of real data; train the run again")
        self.sources, self.mean, self.std = dict(sources), list(mean), list(std)
        self._tensors = {}

    def condition_from_batch(self, batch: Mapping[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        values = self.target_values(batch)
        if not any(self.sources.get(t) == "field" for t in self.targets):
            return values  # every target from an attribute function: nothing can be missing, no work a step
        missing = self._missing(values)
        if self.mean is None:
            return values.masked_fill(missing, 0.0)
        # the fitted mean stands in for a missing value (a NaN would poison the embedding's gradients even where
        # the absent embedding replaces its output)
        return torch.where(missing, self._on(values, "mean", self.mean), values)

    def _on(self, like: Tensor, key: str, value: list) -> Tensor:
        """``value`` as a tensor on ``like``'s device, made once per device: a step makes no copy to it."""
        cache = self.__dict__.setdefault("_tensors", {})  # emptied where the values are set: fit, load_state
        made = cache.get((key, like.device, like.dtype))
        if made is None:
            made = cache[(key, like.device, like.dtype)] = torch.tensor(value, device=like.device, dtype=like.dtype)
        return made

    def missing_values(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{target: (B,) bool}``: the items with no value (NaN) in the data field of each target read from one."""
        out = {}
        for target in self.targets:
            if (self.sources.get(target) or self._source(target, batch)) == "field":
                values = self.require_field(batch, target)
                out[target] = is_missing(values) if values.is_floating_point() else torch.zeros(
                    values.shape[0], dtype=torch.bool, device=values.device)
        return out

    def check_condition(self, c: Tensor) -> Tensor:
        t = len(self.targets)
        if c.dim() != 2 or c.shape[1] != t or c.dtype == torch.bool or c.is_complex():
            raise ConditionError(
                f"regression conditions must be numbers of shape (B, {t}), one column per target "
                f"({', '.join(self.targets)}); got a {str(c.dtype).removeprefix('torch.')} tensor of shape "
                f"{tuple(c.shape)}"
            )
        wide = c.double()  # checked before float32 could turn 1e308 into inf
        for bad, rule in ((~torch.isfinite(wide), "a finite number"),
                          (wide.abs() > FLOAT32_MAX, f"within +-{FLOAT32_MAX:.3g} (a float32 condition)")):
            if bad.any():
                column = int(bad.any(0).nonzero()[0])
                raise ConditionError(f"regression target {self.targets[column]!r} must be {rule}, "
                                     f"got {wide[:, column][bad[:, column]][0].item()}")
        return c.float()

    def parse_condition(self, text: str) -> Tensor:
        return parse_targets(text, self.targets)

    def conditions_from_value(self, value: Any) -> Tensor:
        """``{"ink": 0.25, "slant": -0.3}`` (a list of values for a target gives one condition per
        combination), the text form ``"ink:0.25,slant:-0.3"``, or numbers ``(T,)`` / ``(K, T)``; with
        one target, a plain number."""
        if isinstance(value, Mapping):
            return targets_from_mapping(value, self.targets)
        if len(self.targets) == 1 and isinstance(value, numbers.Real) and not isinstance(value, bool):
            return targets_from_mapping({self.targets[0]: value}, self.targets)  # one target: a plain number
        return super().conditions_from_value(value)

    # -- pictures -----------------------------------------------------------------------------
    def sweeps(self, data: Mapping[str, Tensor], steps: int = EXAMPLE_STEPS) -> Tensor:
        """For each target in turn, ``steps`` values from its 5 % to its 95 % quantile in ``data``, the other
        targets at their median: ``(T * steps, T)``, target j's sweep in rows ``j*steps ... j*steps+steps-1``."""
        values = self.target_values(data)
        values = values.masked_fill(self._missing(values), math.nan)  # left out of the quantiles
        median = values.nanmedian(0).values
        low, high = torch.nanquantile(values, torch.tensor(EXAMPLE_QUANTILES, device=values.device), dim=0)
        rows = []
        for j in range(len(self.targets)):
            sweep = median.repeat(steps, 1)
            sweep[:, j] = torch.linspace(float(low[j]), float(high[j]), steps)
            rows.append(sweep)
        return torch.cat(rows)

    def example_conditions(self, test: Mapping[str, Tensor], generator: torch.Generator) -> Tensor:
        """Each target swept across the test split's range, the others at their median (:meth:`sweeps`)."""
        return self.sweeps({k: v[:EVALUATE_ITEMS] for k, v in test.items()})

    def describe_condition(self, c: Tensor) -> str:
        return ",".join(f"{t}:{v:.3g}" for t, v in zip(self.targets, c.tolist()))

    def latent_colour(self, c: Tensor) -> Tensor:
        return c[:, 0].float()

    # -- embedding ----------------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def build_embedding(self) -> nn.Module:
        if self.mean is None or self.std is None:
            raise ConditionError("the regression conditioner has not seen its data yet (fit or load it first)")
        return nn.Sequential(Standardise(self.mean, self.std), nn.Linear(len(self.targets), self.config.hidden),
                             nn.SiLU(), nn.Linear(self.config.hidden, self.config.embed_dim))

    # -- evaluation ---------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, run: condgen.Run, test: Mapping[str, Tensor]) -> dict[str, float]:
        """``<target>_r`` for each attribute target: the Pearson correlation between the values asked
        for and the values measured on the samples, one sample for each of the first 2,000 test items
        (with the item's own conditions) that have all of them (no missing value of any conditioner)."""
        attributes = [t for t in self.targets if self.sources.get(t) == "attribute" and t in condgen.attributes()]
        if not attributes:
            return {}
        asked, measured = [], []
        for start, batch in condgen.iter_batches({k: v[:EVALUATE_ITEMS] for k, v in test.items()}, 500):
            absent = run.absent_items(batch)
            if absent:  # samples are drawn for conditions given, so only for items with every condition
                keep = ~torch.stack(list(absent.values())).any(0)
                batch = {k: v[keep.to(v.device)] for k, v in batch.items()}
                if not int(keep.sum()):
                    continue
            conds = run.conditions_from_batch(batch, condgen.seeded_generator(run.device, condgen.EVAL_SEED))
            samples = run.sample(conds, num=conds[self.name].shape[0], seed=condgen.EVAL_SEED + start)
            asked.append(conds[self.name].cpu())
            measured.append(torch.stack([condgen.attributes()[t](samples.cpu()) for t in attributes], dim=1))
        if not asked:
            return {}
        a, m = torch.cat(asked), torch.cat(measured)
        return {f"{t}_r": float(torch.corrcoef(torch.stack([a[:, self.targets.index(t)], m[:, i]]))[0, 1])
                for i, t in enumerate(attributes)}
