"""The ``pictures`` callback: a run's samples.png, reconstructions.png and latent.png when its training ends."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from ..pictures.drawing import write_run_pictures
from ..plugin.callback import Callback
from ..runs.run import Run


class PicturesCallback(Callback):
    """:func:`condgen.pictures.drawing.write_run_pictures` into the run directory once the last epoch is
    saved; a picture that fails is said and skipped."""

    name = "pictures"

    def on_train_end(self, run: Run, test: Mapping[str, Tensor]) -> None:
        write_run_pictures(run, test, run.directory, log=self.log)
