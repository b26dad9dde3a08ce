"""A model together with its conditioners and config: build, save, load, sample.

This is the Python API behind ``condgen sample`` and ``condgen evaluate``::

    run = condgen.load_run("runs/mnist-label")
    images = run.sample({"label": 5}, num=16, seed=0)     # (16, 1, 28, 28) in [0, 1]
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from . import __version__
from .checkpoint import CHECKPOINT_NAME, read_checkpoint, save_checkpoint
from .conditioner import Conditioner, as_tensor
from .config import RunConfig
from .device import resolve_device
from .engine import CVAE
from .errors import ConditionError, PluginError
from .plugins import PluginWarning, registry


def build_conditioners(config: RunConfig) -> dict[str, Conditioner]:
    """Instantiate the config's conditioners, in order, validating each one's own config."""
    reg = registry()
    return {spec.name: reg.conditioner_class(spec.name)(spec.config) for spec in config.conditioners}


def build_model(config: RunConfig, data_shape: Sequence[int], conditioners: Mapping[str, Conditioner]) -> CVAE:
    return CVAE(
        data_shape,
        config.model,
        embeddings={n: c.build_embedding() for n, c in conditioners.items()},
        embed_dims={n: c.embed_dim for n, c in conditioners.items()},
    )


@dataclass
class Run:
    """A trained (or training) CVAE with everything needed to use it."""

    config: RunConfig
    conditioners: dict[str, Conditioner]
    model: CVAE
    device: torch.device
    epoch: int = 0
    directory: Path | None = None

    # -- construction -------------------------------------------------------------------
    @classmethod
    def create(cls, config: RunConfig, train: Mapping[str, Tensor], device: torch.device) -> "Run":
        """A fresh run: conditioners fitted on the training split, weights initialised from the seed."""
        conditioners = build_conditioners(config)
        for cond in conditioners.values():
            cond.fit(train)
        data_shape = train[config.data.x_field].shape[1:]
        with torch.random.fork_rng(devices=[]):  # seed the initial weights without touching the caller's RNG
            torch.manual_seed(config.train.seed)
            model = build_model(config, data_shape, conditioners).to(device)
        return cls(config, conditioners, model, device)

    def checkpoint_meta(self, **extra: Any) -> dict[str, Any]:
        reg = registry()
        conds = []
        for name, cond in self.conditioners.items():
            plugin = reg.plugin_of(name) if name in reg.conditioner_plugin else None
            conds.append(
                {
                    "name": name,
                    "plugin": plugin.name if plugin else None,
                    "distribution": plugin.distribution if plugin else None,
                    "version": plugin.version if plugin else None,
                    "state": cond.state(),
                }
            )
        return {
            "condgen_version": __version__,
            "config": self.config.model_dump(mode="json"),
            "data_shape": list(self.model.data_shape),
            "conditioners": conds,
            "epoch": self.epoch,
            **extra,
        }

    def save(self, path: str | Path, extra_tensors: Mapping[str, Tensor] | None = None, **meta: Any) -> None:
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors.update(extra_tensors or {})
        save_checkpoint(path, tensors, self.checkpoint_meta(**meta))

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> "Run":
        """Load a run directory (or a checkpoint file) onto ``device``."""
        path = Path(path)
        file = path / CHECKPOINT_NAME if path.is_dir() else path
        target = resolve_device(device)
        tensors, meta = read_checkpoint(file, prefix="model.")
        run = cls.from_meta(meta, target, str(file), tensors)
        run.model.eval()
        run.directory = file.parent
        return run

    @classmethod
    def from_meta(
        cls,
        meta: Mapping[str, Any],
        device: torch.device,
        source: str = "checkpoint",
        tensors: Mapping[str, Tensor] | None = None,
    ) -> "Run":
        """Rebuild config, conditioners (with their fitted state) and the model from checkpoint metadata.

        The model's weights come from the ``model.*`` entries of ``tensors`` when given.
        """
        config = RunConfig.parse(meta["config"])
        reg = registry()
        for cmeta in meta["conditioners"]:
            name = cmeta["name"]
            if name not in reg.conditioners and name not in reg.conflicts:
                dist = cmeta.get("distribution")
                origin = f"distribution {dist} {cmeta.get('version')}" if dist else "no distribution"
                hint = f"; install it: pip install {dist}" if dist else ""
                raise PluginError(
                    f"{source} needs conditioner {name!r} from plugin {cmeta.get('plugin')!r} ({origin}), "
                    f"which is not installed{hint}"
                )
            have = reg.plugin_of(name) if name in reg.conditioner_plugin else None
            if have is not None and cmeta.get("version") and have.version != cmeta["version"]:
                warnings.warn(
                    f"{source} was written with {cmeta.get('distribution')} {cmeta['version']}; "
                    f"loading it with {have.distribution} {have.version}",
                    PluginWarning,
                    stacklevel=2,
                )
        conditioners = build_conditioners(config)
        for cmeta in meta["conditioners"]:
            conditioners[cmeta["name"]].load_state(cmeta.get("state") or {})
        model = build_model(config, meta["data_shape"], conditioners).to(device)
        if tensors is not None:
            model.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
        return cls(config, conditioners, model, device, epoch=int(meta.get("epoch", 0)))

    # -- conditions -----------------------------------------------------------------------
    def conditions_from_batch(
        self, batch: Mapping[str, Tensor], generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """``{name: (B, ...)}`` for every conditioner, from a data batch."""
        return {n: c.condition_from_batch(batch, generator) for n, c in self.conditioners.items()}

    def check_conditions(self, conditions: Mapping[str, Any], num: int | None = None) -> dict[str, Tensor]:
        """Validate user conditions (tensors or Python values), broadcasting single ones to ``num`` rows."""
        unknown = sorted(set(conditions) - set(self.conditioners))
        if unknown:
            raise ConditionError(
                f"this model has no conditioner {unknown[0]!r}; its conditioners are {list(self.conditioners) or 'none'}"
            )
        missing = [n for n in self.conditioners if n not in conditions]
        if missing:
            raise ConditionError(
                f"a condition for {missing[0]!r} is needed (e.g. --condition {missing[0]}=...); "
                f"this model is conditioned on {list(self.conditioners)}"
            )
        out = {}
        for name, cond in self.conditioners.items():
            value = as_tensor(conditions[name])
            # a single condition given without its batch dimension
            if num is not None and value.dim() == len(cond.condition_shape):
                value = value.unsqueeze(0)
            value = cond.check_condition(value)
            if num is not None and value.shape[0] == 1:
                value = value.expand(num, *value.shape[1:])
            if num is not None and value.shape[0] != num:
                raise ConditionError(f"condition {name!r} has {value.shape[0]} rows, but num is {num}")
            out[name] = value.to(self.device)
        return out

    def parse_conditions(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """``["label=5", ...]`` -> ``{name: (K, ...)}``; each conditioner must be given exactly once."""
        parsed: dict[str, Tensor] = {}
        for text in texts:
            name, sep, value = text.partition("=")
            name = name.strip()
            if not sep or not name:
                raise ConditionError(f"--condition {text!r} must look like NAME=VALUE, e.g. label=5")
            if name not in self.conditioners:
                raise ConditionError(
                    f"--condition {text!r}: this model has no conditioner {name!r}; "
                    f"its conditioners are {list(self.conditioners) or 'none'}"
                )
            if name in parsed:
                raise ConditionError(f"--condition {name}=... is given twice; give several values as {name}=a,b")
            parsed[name] = self.conditioners[name].parse_condition(value.strip())
        return parsed

    def condition_grid(self, parsed: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
        """Every combination of the given conditions: ``({name: (R, ...)}, row labels)``."""
        names = list(self.conditioners)
        rows = list(itertools.product(*[range(parsed[n].shape[0]) for n in names])) if names else [()]
        grid = {n: torch.stack([parsed[n][r[i]] for r in rows]) for i, n in enumerate(names)}
        labels = [
            " ".join(f"{n}={self.conditioners[n].describe_condition(parsed[n][r[i]])}" for i, n in enumerate(names))
            for r in rows
        ]
        return grid, labels

    # -- use ------------------------------------------------------------------------------
    def sample(self, conditions: Mapping[str, Any] | None = None, num: int = 1, seed: int | None = None) -> Tensor:
        """``num`` samples ``(num, *data_shape)`` given one condition per conditioner (or ``num`` of them)."""
        if num < 1:
            raise ConditionError(f"num must be at least 1, got {num}")
        conds = self.check_conditions(conditions or {}, num)
        gen = seeded_generator(self.device, seed)
        self.model.eval()
        return self.model.generate(conds, num, generator=gen)

    def sample_rows(
        self, parsed: Mapping[str, Tensor], per_row: int, seed: int | None = None
    ) -> tuple[Tensor, list[str]]:
        """One row of ``per_row`` samples for each combination of conditions: ``(R * per_row, *data_shape)``."""
        if per_row < 1:
            raise ConditionError(f"the number of samples per row must be at least 1, got {per_row}")
        grid, labels = self.condition_grid(parsed)
        conds = {n: c.repeat_interleave(per_row, dim=0) for n, c in grid.items()}
        total = len(labels) * per_row
        return self.sample(conds, num=total, seed=seed), labels


def load_run(path: str | Path, device: str = "auto") -> Run:
    """Load a trained run directory (see :class:`Run`)."""
    return Run.load(path, device)


def seeded_generator(device: torch.device, seed: int | None) -> torch.Generator:
    """A generator on ``device`` seeded with ``seed`` (or from the OS when None)."""
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)
    return gen
