"""Fashion-MNIST (Zalando's 70,000 pictures of clothes in MNIST's layout), from its four IDX files.

Where to look, in order: ``data.data_dir`` (``--data-dir``), ``$CONDGEN_DATA_DIR/fashion-mnist/``,
then the Debian package's directory (``apt-get install dataset-fashion-mnist``). Never downloaded.
Its files bear MNIST's names; the shared reader tells the two apart by their label files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .idx import DATA_DIR_ENV, find_data_dir, read_idx_dir
from .splits import DataSplits

if TYPE_CHECKING:
    from .config import DataConfig

#: Zalando's class names, label ``i`` named ``CLASSES[i]``.
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"  # where the dataset-fashion-mnist package puts the files
PLACES = (f"${DATA_DIR_ENV}/fashion-mnist", DEBIAN_DIR)
INSTALL = "install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu)"


def locate_fashion_mnist(data_dir: str | None) -> Path:
    """The directory to read Fashion-MNIST from: ``data_dir``, else the first of :data:`PLACES` holding its files."""
    return find_data_dir(data_dir, PLACES, name="Fashion-MNIST", install=INSTALL)


def load_fashion_mnist_splits(config: DataConfig) -> DataSplits:
    """Zalando's Fashion-MNIST: 28 x 28 grey pictures of clothes in 10 named classes (T-shirt/top to Ankle boot),
    60,000 to train on and 10,000 to test.

    The ``fashion-mnist`` data set: ``{"image": (N, 1, 28, 28) uint8, "label": (N,) int64}``, 60,000 train
    and 10,000 test items (images kept as their levels), with the class names. Read from ``--data-dir``,
    else the first of :data:`PLACES` that holds its files (:func:`locate_fashion_mnist`).
    """
    return read_idx_dir(locate_fashion_mnist(config.data_dir), name="Fashion-MNIST", classes=CLASSES, levels=True)
