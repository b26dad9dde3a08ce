"""The ``tensorboard`` callback (``--log tensorboard``): a run's training as TensorBoard event files in
``RUN_DIR/tensorboard/``, so that ``tensorboard --logdir runs/`` shows and compares runs, offline.

Each epoch: every term of ``metrics.jsonl`` for train and test (``train/neg_elbo``, ``test/kl``, ... in nats per
item), the learning rate (``lr``), the epoch's seconds (``seconds/train``, ``seconds/eval``) and a grid of samples
(``samples``: the first rows of samples.png, 8 each, the same noise every epoch, so the grids show the model
learning); the run's config as text and, for a new run, the untrained model's grid (step 0). Nothing is
written before this training's first epoch is saved. After ``--resume`` the events of epochs the checkpoint
does not hold are purged, as ``metrics.jsonl``'s lines are.
The ``tensorboard`` package is an optional extra: ``pip install 'condgen[tensorboard]'``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from torch import Tensor

from ..common.errors import ConfigError
from ..pictures.drawing import dashboard_rows, sample_grid
from ..plugin.callback import Callback
from ..runs.run import Run

#: The directory of the event files, in the run directory.
TENSORBOARD_DIR = "tensorboard"
#: The grid of samples: at most this many rows, this many samples a row.
ROWS, PER_ROW = 10, 8


def scalar_tag(key: str) -> str | None:
    """The TensorBoard tag of a ``metrics.jsonl`` key: ``train_kl`` -> ``train/kl``, ``eval_seconds`` ->
    ``seconds/eval``, ``lr`` -> ``lr``; None for ``epoch`` (the step)."""
    if key == "epoch":
        return None
    if key.endswith("_seconds"):
        return f"seconds/{key[: -len('_seconds')]}"
    for split in ("train", "test"):
        if key.startswith(split + "_"):
            return f"{split}/{key[len(split) + 1:]}"
    return key


class TensorBoardCallback(Callback):
    """Writes the event files of ``RUN_DIR/tensorboard/`` (see the module's documentation)."""

    name = "tensorboard"

    def __init__(self, log: Callable[[str], None]) -> None:
        super().__init__(log)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # torch's writer needs the tensorboard package
            raise ConfigError(f"--log tensorboard needs the tensorboard package ({exc}); install it with: pip "
                              "install 'condgen[tensorboard]'") from None
        self._writer_class = SummaryWriter
        self.writer = None
        self.rows = None
        #: What the writer writes first, once it is made: the config as text, the untrained model's grid.
        self.config_text = ""
        self.first_grid: Tensor | None = None
        self.start_epoch = 0

    def on_train_start(self, run: Run, test: Mapping[str, Tensor]) -> None:
        self.rows = dashboard_rows(run, test, ROWS)
        config = json.dumps(run.config.model_dump(mode="json"), indent=2)
        self.config_text = "    " + config.replace("\n", "\n    ")  # indented: shown as code
        self.first_grid = sample_grid(run, self.rows, PER_ROW) if self.rows is not None and run.epoch == 0 else None
        self.start_epoch = run.epoch

    def _open(self, run: Run):
        """The writer, made once the first epoch of this training is saved: a training that fails before
        leaves no file of its own behind (its run directory is removed whole)."""
        if self.writer is None:
            # a resumed run's events after its checkpoint's epoch are another attempt's: hidden, as
            # metrics.jsonl drops their lines
            self.writer = self._writer_class(log_dir=str(run.directory / TENSORBOARD_DIR),
                                             purge_step=self.start_epoch + 1 if self.start_epoch else None)
            self.writer.add_text("config", self.config_text, global_step=self.start_epoch)
            if self.first_grid is not None:
                self.writer.add_image("samples", self.first_grid, global_step=0)
        return self.writer

    def on_epoch_end(self, run: Run, metrics: Mapping[str, float]) -> None:
        writer = self._open(run)
        epoch = int(metrics["epoch"])
        for key, value in metrics.items():
            tag = scalar_tag(key)
            if tag is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
                writer.add_scalar(tag, value, global_step=epoch)
        if self.rows is not None:
            writer.add_image("samples", sample_grid(run, self.rows, PER_ROW), global_step=epoch)
        writer.flush()

    def on_train_end(self, run: Run, test: Mapping[str, Tensor]) -> None:
        self._close()

    def on_fault(self, run: Run, fault: BaseException) -> None:
        self._close()

    def _close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
