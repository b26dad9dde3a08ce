"""The toolkit's own data sets, registered through the same hook as any plugin's."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..plugin.hookspecs import hookimpl

if TYPE_CHECKING:
    from ..data.splits import DatasetLoader


@hookimpl
def condgen_register_datasets(register: Callable[[str, DatasetLoader], None]) -> None:
    # imported here, not above: this module loads with every command, `condgen --help` too, without torch
    from ..data.arrays import load_npz_splits
    from ..data.fashion import load_fashion_mnist_splits
    from ..data.folder import load_image_folder_splits
    from ..data.mnist import load_mnist_splits

    register("mnist", load_mnist_splits)
    register("npz", load_npz_splits)
    register("fashion-mnist", load_fashion_mnist_splits)
    register("image-folder", load_image_folder_splits)
