"""Saving and loading runs: checkpoint contents, and the check that a run's plugins are installed.

The file format (safetensors with a JSON header, atomic writes) is :mod:`condgen.checkpoint`;
this module decides what goes in: the model's weights, the validated config, and for each
conditioner its plugin, distribution, version and fitted state.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ._version import __version__
from .build import build_conditioners, build_model
from .checkpoint import CHECKPOINT_NAME, read_checkpoint, save_checkpoint
from .config import RunConfig
from .device import resolve_device
from .errors import PluginError
from .plugins import PluginWarning, registry
from .run import Run

MODEL_PREFIX = "model."


def checkpoint_meta(run: Run, **extra: Any) -> dict[str, Any]:
    """The JSON metadata of a run's checkpoint; ``extra`` adds fields (e.g. the optimizer's)."""
    reg = registry()
    conds = []
    for name, cond in run.conditioners.items():
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
        "config": run.config.model_dump(mode="json"),
        "data_shape": list(run.model.data_shape),
        "conditioners": conds,
        "epoch": run.epoch,
        **extra,
    }


def save_run(run: Run, path: str | Path, extra_tensors: Mapping[str, Tensor] | None = None, **meta: Any) -> None:
    """Write the run's checkpoint to ``path`` atomically, with ``extra_tensors`` and ``meta`` beside it."""
    tensors = {f"{MODEL_PREFIX}{k}": v for k, v in run.model.state_dict().items()}
    tensors.update(extra_tensors or {})
    save_checkpoint(path, tensors, checkpoint_meta(run, **meta))


@dataclass
class StoredRun:
    """A checkpoint read once: its validated config, its metadata and its tensors."""

    path: Path
    config: RunConfig
    meta: dict[str, Any]
    tensors: dict[str, Tensor]


def _check_plugins(meta: Mapping[str, Any], source: str) -> None:
    """A missing plugin is an error naming what to install; another version of it is a warning."""
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
                stacklevel=3,
            )


def read_run(path: str | Path, *, model_only: bool = False) -> StoredRun:
    """Read a run directory's checkpoint (or a checkpoint file) once, checking its plugins are installed.

    ``model_only`` reads just the model's weights, not the optimizer and generator state.
    """
    path = Path(path)
    file = path / CHECKPOINT_NAME if path.is_dir() else path
    tensors, meta = read_checkpoint(file, prefix=MODEL_PREFIX if model_only else None)
    _check_plugins(meta, str(file))
    return StoredRun(file, RunConfig.parse(meta["config"]), meta, tensors)


def run_from_stored(stored: StoredRun, device: torch.device, config: RunConfig | None = None) -> Run:
    """Rebuild the conditioners (with their fitted state) and the model, with the stored weights.

    ``config`` replaces the stored one (``--resume`` may change the epochs or the device).
    """
    config = config or stored.config
    conditioners = build_conditioners(config)
    for cmeta in stored.meta["conditioners"]:
        conditioners[cmeta["name"]].load_state(cmeta.get("state") or {})
    model = build_model(config, stored.meta["data_shape"], conditioners).to(device)
    n = len(MODEL_PREFIX)
    model.load_state_dict({k[n:]: v for k, v in stored.tensors.items() if k.startswith(MODEL_PREFIX)})
    return Run(config, conditioners, model, device, epoch=int(stored.meta.get("epoch", 0)), directory=stored.path.parent)


def load_run(path: str | Path, device: str = "auto") -> Run:
    """Load a trained run directory (or a checkpoint file) onto ``device`` (see :class:`condgen.Run`)."""
    run = run_from_stored(read_run(path, model_only=True), resolve_device(device))
    run.model.eval()
    return run
