"""What a run directory records of its training, for ``condgen report``: its config, one line of figures per
epoch (``metrics.jsonl``), ``condgen evaluate``'s kept figures and its pictures.

Read from the files alone, with no plugin and no model: a report can be made of any run, on any machine, even
one whose conditioners' plugins are not installed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..common.errors import CondgenError, DataError
from ..common.files import read_bytes, read_text
from .rundir import CONFIG_NAME, METRICS_NAME, kept_evaluation

#: The pictures a run writes when its training ends (the ``pictures`` callback), in the order a report shows them.
PICTURES = ("samples.png", "reconstructions.png", "latent.png")
#: Figures of a metrics line that are not a term of the objective.
NOT_TERMS = ("epoch", "lr", "train_seconds", "eval_seconds")


@dataclass
class RunHistory:
    """One run directory's record: ``epochs`` its ``metrics.jsonl`` lines in order, ``evaluation`` ``condgen
    evaluate``'s figures (None where it has not run), ``pictures`` each PNG's bytes by file name."""

    directory: Path
    config: dict[str, Any]
    epochs: list[dict[str, Any]]
    evaluation: dict[str, Any] | None = None
    pictures: dict[str, bytes] = field(default_factory=dict)

    @property
    def terms(self) -> list[str]:
        """The objective's terms the epochs hold (``loss``, ``neg_elbo``, ``recon_nll``, ``kl``, ...), in the order
        of their first appearance, each once whether it was logged for the training split, the test split or both."""
        seen: dict[str, None] = {}
        for line in self.epochs:
            for key in line:
                if key not in NOT_TERMS and key.startswith(("train_", "test_")):
                    seen.setdefault(key.split("_", 1)[1], None)
        return list(seen)

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """``(epochs, values)`` of figure ``key`` (``test_neg_elbo``, ``lr``) over the epochs that logged it."""
        points = [(line["epoch"], float(line[key])) for line in self.epochs
                  if isinstance(line.get(key), (int, float)) and not isinstance(line.get(key), bool)]
        return [e for e, _ in points], [v for _, v in points]


def read_history(path: str | Path) -> RunHistory:
    """The record of the run directory ``path``; a one-line :class:`condgen.CondgenError` where it is not one, or
    where its metrics are damaged (naming the file and the line)."""
    directory = Path(path)
    if not directory.is_dir():
        raise CondgenError(f"no run directory at {str(path)!r}; give one that condgen train wrote")
    metrics = directory / METRICS_NAME
    if not metrics.is_file():
        what = ("a model folder of condgen export, which keeps no learning curves"
                if (directory / "model.safetensors").is_file() else "not a run directory condgen train wrote")
        raise CondgenError(f"{str(directory)!r} has no {METRICS_NAME}: it is {what}; give the run directory")
    try:
        config = json.loads(read_text(directory / CONFIG_NAME, "run config")) if (directory / CONFIG_NAME).is_file() \
            else {}
    except ValueError as exc:
        raise DataError(f"{str(directory / CONFIG_NAME)!r} is not JSON ({exc}); the run's config file is damaged") \
            from None
    epochs = []
    for number, line in enumerate(read_text(metrics, "metrics file").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            figures = json.loads(line)
        except ValueError as exc:
            raise DataError(f"{str(metrics)!r} line {number} is not JSON ({exc}); the file is damaged: remove the "
                            "line, or train the run again") from None
        if not isinstance(figures, dict) or not isinstance(figures.get("epoch"), int):
            raise DataError(f"{str(metrics)!r} line {number} is not a line of figures with an epoch number "
                            f"({line[:80]!r}); the file is damaged: remove the line, or train the run again")
        epochs.append({k: v for k, v in figures.items()
                       if not (isinstance(v, float) and not math.isfinite(v)) or k == "epoch"})
    if not epochs:
        raise CondgenError(f"{str(metrics)!r} holds no epoch yet: the run's first epoch has not finished")
    pictures = {name: read_bytes(directory / name, "picture") for name in PICTURES if (directory / name).is_file()}
    return RunHistory(directory, config if isinstance(config, dict) else {}, epochs,
                      kept_evaluation(directory), pictures)
