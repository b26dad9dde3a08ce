"""Checkpoint files: tensors in safetensors, everything else as JSON in its header.

safetensors stores raw arrays and a JSON header, so loading a checkpoint never runs code
from it (unlike pickle). Files are written to a temporary name, flushed, then renamed
over the old one, so a crash leaves either the previous checkpoint or the new one; the
temporary name is unique, so two writers never mix their bytes (see :mod:`condgen.common.files`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from ..common.errors import CheckpointError
from ..common.files import check_readable, is_file, write_atomic

FORMAT = "condgen-checkpoint/1"
CHECKPOINT_NAME = "checkpoint.safetensors"


def save_checkpoint(path: str | Path, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    """Atomically write ``tensors`` and JSON-serialisable ``meta`` to ``path``."""
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    header = {"format": FORMAT, "meta": json.dumps(meta)}
    write_atomic(path, lambda tmp: save_file(flat, str(tmp), metadata=header), what="checkpoint")


def read_checkpoint(
    path: str | Path, prefix: str | None = None, load_tensors: bool = True
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Tensors (only those whose key starts with ``prefix``, if given) and metadata of a checkpoint."""
    path = Path(path)
    if not is_file(path, "checkpoint"):
        raise CheckpointError(f"no checkpoint at {str(path)!r}")
    check_readable(path, "checkpoint")  # "permission denied" is not "corrupt"
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
            if header.get("format") != FORMAT:
                raise CheckpointError(
                    f"{str(path)!r} is a safetensors file but not a condgen checkpoint "
                    f"(format {header.get('format')!r}, expected {FORMAT!r})"
                )
            tensors = {
                k: fh.get_tensor(k)
                for k in fh.keys()
                if load_tensors and (prefix is None or k.startswith(prefix))
            }
        meta = json.loads(header["meta"])
    except CheckpointError:
        raise
    except Exception as exc:  # safetensors raises its own types for truncated or garbage files
        raise CheckpointError(
            f"cannot read checkpoint {str(path)!r}: {type(exc).__name__}: {exc} (truncated or corrupt?)"
        ) from None
    return tensors, meta


def optimizer_to_flat(opt: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split an optimizer's state into tensors (``optim.<param>.<key>``) and JSON metadata."""
    sd = opt.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, Any] = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{idx}.{key}"] = value
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_flat(opt: torch.optim.Optimizer, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    """Inverse of :func:`optimizer_to_flat`."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = value
    for key, value in meta["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
