"""Saving and loading runs: checkpoint contents, and the check that a run's plugins are installed.

The file format (safetensors with a JSON header, atomic writes) is :mod:`condgen.runs.checkpoint`;
this module decides what goes in: the model's weights, and a header (:class:`CheckpointMeta`) with the
validated config and, for each conditioner, its plugin, distribution, version and fitted state.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import torch
from pydantic import ConfigDict, Field, ValidationError
from safetensors.torch import load_file
from torch import Tensor

from .._version import __version__
from ..common.device import resolve_device
from ..common.errors import ArgumentError, CondgenError, PluginError, ResourceError, describe_validation_error
from ..common.files import check_readable, is_file
from ..common.schema import StrictModel
from ..plugin.registry import PluginWarning, filtered_out, registry
from .build import build_conditioners, build_model, check_networks
from .checkpoint import CHECKPOINT_NAME, CheckpointError, read_checkpoint, save_checkpoint
from .config import RunConfig
from .datasets import StoredDataset, provider_words
from .run import Run

MODEL_PREFIX = "model."
#: A model folder (:mod:`condgen.runs.export`): its weights' file, its header's file and the header's format.
EXPORT_WEIGHTS_NAME = "model.safetensors"
EXPORT_CONFIG_NAME = "config.json"
EXPORT_FORMAT = "condgen-model/1"


class StoredConditioner(StrictModel):
    """One conditioner of a stored run: its registered name and, where another, its instance name in the
    model; who provided it, and its fitted state."""

    model_config = ConfigDict(extra="ignore")  # fields a later condgen adds are not errors

    name: str
    instance: Optional[str] = None
    plugin: Optional[str] = None
    distribution: Optional[str] = None
    version: Optional[str] = None
    state: Optional[dict[str, Any]] = Field(default_factory=dict)

    @property
    def instance_name(self) -> str:
        return self.instance or self.name


class CheckpointMeta(StrictModel):
    """The JSON header of a checkpoint: built from the run when it is saved (:meth:`of_run`), validated
    once when it is read (:meth:`parse`), before anything is built from it, and held by :class:`StoredRun`.

    Keys a later condgen adds are ignored. ``config`` stays the stored dict: it is parsed into a
    :class:`condgen.RunConfig` only once its conditioners' plugins are known to be installed.
    """

    model_config = ConfigDict(extra="ignore")

    condgen_version: Optional[str] = None
    config: dict[str, Any]
    data_shape: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)
    conditioners: list[StoredConditioner]
    epoch: int = Field(0, ge=0)
    #: The optimizer's state besides its tensors (:func:`condgen.runs.checkpoint.optimizer_to_flat`); only
    #: a checkpoint written by training has it, and only resuming needs it.
    optimizer: Optional[dict[str, Any]] = None
    #: Whether the run had trained all its epochs when this was written (training writes it).
    complete: Optional[bool] = None
    #: How many processes trained the run (written under torchrun only; see :mod:`condgen.training.distributed`).
    world_size: int = Field(1, ge=1)
    #: The class names of the data the run was trained on (:attr:`condgen.DataSplits.classes`); a checkpoint
    #: from before condgen 0.3 has none.
    classes: Optional[dict[str, list[str]]] = None
    #: The line of ``metrics.jsonl`` for this epoch (training writes it): the line is written after the
    #: checkpoint, so a resume puts it back where a crash in between lost it.
    metrics: Optional[dict[str, Any]] = None
    #: The identity of the run (its directory's marker holds it too): ``--resume`` refuses a checkpoint of
    #: another run copied into the directory. A checkpoint from before run identities has none.
    run_id: Optional[str] = None
    #: Who provides the data set the run was trained on, to say what to install where it is missing.
    dataset: Optional[StoredDataset] = None

    @classmethod
    def of_run(
        cls, run: Run, *, optimizer: dict[str, Any] | None = None, complete: bool | None = None, world_size: int = 1,
        metrics: dict[str, Any] | None = None, run_id: str | None = None,
    ) -> CheckpointMeta:
        """The header of ``run``'s checkpoint now, with the training state that only training has."""
        reg = registry()
        conds = []
        for spec in run.config.conditioners:
            name, instance = spec.name, spec.instance_name
            plugin = reg.plugin_of(name) if name in reg.conditioner_plugin else None
            conds.append({"name": name, **({"instance": spec.instance} if spec.instance else {}),
                          "plugin": plugin.name if plugin else None,
                          "distribution": plugin.distribution if plugin else None, "version": plugin.version if plugin
                          else None, "state": _as_stored(instance, run.conditioners[instance].state())})
        fields: dict[str, Any] = {"condgen_version": __version__, "config": run.config.model_dump(mode="json"),
                                  "data_shape": list(run.model.data_shape), "conditioners": conds, "epoch": run.epoch,
                                  **({"classes": run.classes} if run.classes is not None else {})}
        # what is not given is not written (see to_json), so the file holds the keys it always held
        # the provider installed now (a resume under a newer plugin records its version), else the run's record
        dataset = StoredDataset.installed(run.config.data.dataset) or run.trained_on
        given = {"optimizer": optimizer, "complete": complete, "world_size": None if world_size == 1 else world_size,
                 "metrics": metrics, "run_id": run_id,
                 "dataset": dataset.model_dump() if dataset else None}
        fields.update({k: v for k, v in given.items() if v is not None})
        try:
            return cls.model_validate(fields)
        except ValidationError as err:  # a plugin's state() that is not a mapping, say
            raise CheckpointError(f"the run's checkpoint cannot be written: {describe_validation_error(err)}") from None

    def to_json(self) -> dict[str, Any]:
        """The header as the file holds it: the fields set (Python values that ``json.dumps`` writes; a
        JSON-mode dump would write a state's NaN as null)."""
        return self.model_dump(exclude_unset=True)

    @classmethod
    def parse(cls, meta: Any, source: str) -> CheckpointMeta:
        """A checkpoint's header validated: a missing or wrong field is one line naming the file and field."""
        try:
            return cls.model_validate(meta)
        except ValidationError as err:
            raise CheckpointError(f"checkpoint {source!r} has bad metadata: {describe_validation_error(err)}") from None

    def check_against(self, config: RunConfig, source: str) -> None:
        stored = [_described(c.name, c.instance) for c in self.conditioners]
        configured = [_described(c.name, c.instance) for c in config.conditioners]
        if stored != configured:
            raise CheckpointError(f"checkpoint {source!r}: its conditioners {stored} differ from its config's "
                                  f"{configured}")


def _described(name: str, instance: str | None) -> str:
    """A conditioner as a checkpoint's message lists it: ``label``, or ``colour=label`` for an instance."""
    return f"{instance}={name}" if instance and instance != name else name


def _as_stored(name: str, state: Any) -> Any:
    """A conditioner's ``state()`` as the checkpoint will hold it and give back: through JSON, so what
    is validated and held now is what a later read gives (``{0: x}`` is ``{"0": x}``, NaN stays NaN)."""
    try:
        return json.loads(json.dumps(state))
    except (TypeError, ValueError) as exc:  # a tensor in it, say: the plugin's bug, said before any file is written
        raise PluginError(f"conditioner {name!r} gave a state() that is not JSON ({exc}); the checkpoint "
                          "cannot hold it (a bug in its plugin)") from None


def save_run(
    run: Run,
    path: str | Path,
    extra_tensors: Mapping[str, Tensor] | None = None,
    *,
    optimizer: dict[str, Any] | None = None,
    complete: bool | None = None,
    world_size: int = 1,
    metrics: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> None:
    """Write the run's checkpoint to ``path`` atomically, with ``extra_tensors`` beside its weights and the
    training state given in its header (see :meth:`CheckpointMeta.of_run`)."""
    meta = CheckpointMeta.of_run(run, optimizer=optimizer, complete=complete, world_size=world_size, metrics=metrics,
                                 run_id=run_id)
    tensors = {f"{MODEL_PREFIX}{k}": v for k, v in run.model.state_dict().items()}
    tensors.update(extra_tensors or {})
    save_checkpoint(path, tensors, meta.to_json())


@dataclass
class StoredRun:
    """A checkpoint read once: its validated config, its validated header and its tensors."""

    path: Path
    config: RunConfig
    meta: CheckpointMeta
    tensors: dict[str, Tensor]
    #: The file's identity when read (inode, size, modification time), to tell whether it was replaced since.
    fingerprint: tuple[int, int, int] | None = None

    def is_current(self) -> bool:
        """Whether the file on disk is still the one read (no epoch was written since)."""
        return self.fingerprint is not None and self.fingerprint == file_fingerprint(self.path)


def file_fingerprint(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _check_plugins(meta: CheckpointMeta, source: str) -> None:
    """A missing plugin is an error naming what to install (or the filter leaving it out); another
    version of it is a warning."""
    reg = registry()
    for cmeta in meta.conditioners:
        name = cmeta.name
        if name not in reg.conditioners and name not in reg.conflicts:
            dist = cmeta.distribution
            origin = f"distribution {dist} {cmeta.version}" if dist else "no distribution"
            wanted = f"conditioner {name!r} from plugin {cmeta.plugin!r} ({origin})"
            skipped = filtered_out(cmeta.plugin, dist)
            if skipped:
                raise PluginError(f"{source} needs {wanted}, which is installed but not loaded: {skipped}")
            hint = f"; install it: pip install {dist}" if dist else ""
            raise PluginError(f"{source} needs {wanted}, which is not installed{hint}")
        have = reg.plugin_of(name) if name in reg.conditioner_plugin else None
        if have is None:
            continue
        if (cmeta.distribution, cmeta.plugin) != (have.distribution, have.name) and (cmeta.distribution or cmeta.plugin):
            # another provider of the name: its state and embedding may mean something else
            warnings.warn(f"{source} was written with conditioner {name!r} from {provider_words(cmeta.plugin, cmeta.distribution, cmeta.version)}; the "
                          f"installed one is from {provider_words(have.name, have.distribution, have.version)}: check that it is the same conditioner", PluginWarning,
                          stacklevel=3)
        elif cmeta.version and have.version != cmeta.version:
            warnings.warn(
                f"{source} was written with {cmeta.distribution} {cmeta.version}; "
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
    if path.is_dir() and not is_file(file, "checkpoint"):
        if is_file(path / EXPORT_WEIGHTS_NAME, "model weights"):  # a model folder (condgen export)
            return _read_export(path)
        raise CheckpointError(f"{str(path)!r} is not a run directory: it holds no {CHECKPOINT_NAME} "
                              "(a run writes one when its first epoch ends)")
    fingerprint = file_fingerprint(file)
    tensors, raw = read_checkpoint(file, prefix=MODEL_PREFIX if model_only else None)
    meta, config = _validated(raw, str(file), f"checkpoint {str(file)!r}")
    return StoredRun(file, config, meta, tensors, None if model_only else fingerprint)


def _validated(raw: Any, source: str, described: str) -> tuple[CheckpointMeta, RunConfig]:
    """A stored header and its run config, validated, once its plugins are known to be installed."""
    meta = CheckpointMeta.parse(raw, source)
    _check_plugins(meta, source)
    try:
        config = RunConfig.parse(meta.config, data_options=False)  # checked when its data are loaded
    except CondgenError as exc:
        raise type(exc)(f"{described}: {exc}") from None
    meta.check_against(config, source)
    return meta, config


def _read_export(folder: Path) -> StoredRun:
    """A model folder written by ``condgen export``: its ``config.json`` header and ``model.safetensors`` weights,
    checked as a checkpoint's are."""
    config_file, weights_file = folder / EXPORT_CONFIG_NAME, folder / EXPORT_WEIGHTS_NAME
    source = str(weights_file)
    try:
        raw = json.loads(config_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{str(folder)!r} holds {EXPORT_WEIGHTS_NAME} but no {EXPORT_CONFIG_NAME}; a model "
                              "folder needs both (condgen export writes them)") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {str(config_file)!r}: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != EXPORT_FORMAT:
        got = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise CheckpointError(f"{str(config_file)!r} is not a condgen model folder's config (format {got!r}, "
                              f"expected {EXPORT_FORMAT!r})")
    meta, config = _validated(raw, str(config_file), repr(str(config_file)))
    try:
        check_readable(weights_file, "model weights")
        tensors = {f"{MODEL_PREFIX}{k}": v for k, v in load_file(source).items()}
    except CondgenError:
        raise
    except Exception as exc:  # safetensors' own types for a truncated or garbage file
        raise CheckpointError(f"cannot read {source!r}: {type(exc).__name__}: {exc} (truncated or corrupt?)") from None
    return StoredRun(weights_file, config, meta, tensors, None)


def _check_weights(model: torch.nn.Module, tensors: Mapping[str, Tensor], source: str) -> dict[str, Tensor]:
    """The stored model weights, each checked against the model's name and shape."""
    n = len(MODEL_PREFIX)
    stored = {k[n:]: v for k, v in tensors.items() if k.startswith(MODEL_PREFIX)}
    wanted = model.state_dict()
    for name, value in wanted.items():
        if name not in stored:
            raise CheckpointError(f"checkpoint {source!r} lacks the weight {MODEL_PREFIX}{name}")
        if tuple(stored[name].shape) != tuple(value.shape):
            raise CheckpointError(f"checkpoint {source!r}: weight {MODEL_PREFIX}{name} has shape "
                                  f"{tuple(stored[name].shape)}, but its config builds {tuple(value.shape)}")
    extra = sorted(set(stored) - set(wanted))
    if extra:
        raise CheckpointError(f"checkpoint {source!r} holds weight {MODEL_PREFIX}{extra[0]}, which its config's "
                              "model does not have")
    return stored


def run_from_stored(
    stored: StoredRun, device: torch.device, config: RunConfig | None = None, *, copies: int = 1
) -> Run:
    """Rebuild the conditioners (with their fitted state) and the model, with the stored weights.

    ``config`` replaces the stored one (``--resume`` may change the epochs or the device); ``copies``
    is how many model-sized things must fit in memory (4 to train on: see :func:`condgen.runs.build.build_model`).
    """
    config, meta = config or stored.config, stored.meta
    conditioners = build_conditioners(config)
    for cmeta in meta.conditioners:
        try:
            conditioners[cmeta.instance_name].load_state(cmeta.state or {})
        except CondgenError:
            raise
        except Exception as exc:  # a state the plugin cannot read: the file's fault, not the toolkit's
            raise CheckpointError(f"checkpoint {str(stored.path)!r}: conditioner {cmeta.instance_name!r} cannot load "
                                  f"its stored state ({type(exc).__name__}: {exc})") from None
    # a run stored when p = 0 meant no condition dropout at all has no absent weight for it: built as it was trained
    dropout = config.dropout_probabilities()
    absent = [n for n in config.absent_conditioners()
              if n in dropout or f"{MODEL_PREFIX}absent.{n}" in stored.tensors]
    try:
        model = build_model(config, meta.data_shape, conditioners, copies=copies, absent=absent)
    except ResourceError as exc:
        raise ResourceError(f"checkpoint {str(stored.path)!r} (data_shape {meta.data_shape}): {exc}") from None
    except CondgenError:
        raise
    except Exception as exc:  # an embedding built from a stored state that its plugin did not check
        raise CheckpointError(f"checkpoint {str(stored.path)!r}: its model cannot be built from the stored "
                              f"conditioner states ({type(exc).__name__}: {exc})") from None
    model.load_state_dict(_check_weights(model, stored.tensors, str(stored.path)))
    model = model.to(device)
    check_networks(model)
    return Run(config, conditioners, model, device, epoch=meta.epoch, directory=stored.path.parent,
               classes=meta.classes, trained_on=meta.dataset)


def load_run(path: str | Path, device: str = "auto") -> Run:
    """Load a trained run directory, a checkpoint file or a model folder of ``condgen export`` onto ``device``
    (see :class:`condgen.Run`)."""
    if not isinstance(path, (str, Path)) or not str(path):
        raise ArgumentError(f"path must name a run directory or checkpoint file, got {path!r}")
    if not isinstance(device, str):
        raise ArgumentError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")
    run = run_from_stored(read_run(path, model_only=True), resolve_device(device))
    run.model.eval()
    return run
