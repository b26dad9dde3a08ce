"""Shared fixtures. Plugin objects are registered on the process-wide plugin manager and
unregistered after each test, the way a third-party plugin would be seen by the toolkit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from condgen.plugin.registry import get_plugin_manager
from browser import browser  # noqa: F401  (the headless Chromium fixture, for the tests of condgen's pages)
from helpers import LeftPlugin, SignPlugin, ToyData

# The in-process models here are tiny: one thread is faster than two fighting over them.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session", autouse=True)
def data_cache(tmp_path_factory) -> Iterator[Path]:
    """The data cache of every test (and of the commands they run) in a folder of the session's, not the user's."""
    path = tmp_path_factory.mktemp("data-cache")
    patch = pytest.MonkeyPatch()
    patch.setenv("CONDGEN_CACHE_DIR", str(path))
    yield path
    patch.undo()


@pytest.fixture
def register_plugin() -> Iterator:
    """``register_plugin(obj, name)`` registers a plugin object for the duration of one test."""
    pm = get_plugin_manager()
    names: list[str] = []

    def register(obj: object, name: str) -> None:
        pm.register(obj, name=name)
        names.append(name)

    yield register
    for name in names:
        pm.unregister(name=name)


@pytest.fixture
def toy(register_plugin) -> None:
    """The ``toy`` data set and the ``sign`` and ``left`` conditioners, registered as plugins."""
    register_plugin(ToyData(), "toy-data")
    register_plugin(SignPlugin(), "sign-plugin")
    register_plugin(LeftPlugin(), "left-plugin")


@pytest.fixture(scope="session")  # session-wide, so module-scoped fixtures (one torchrun launch) may use it
def mnist_dir() -> Path:
    """The real MNIST files: $CONDGEN_DATA_DIR, else ../shared/data/mnist beside the repo.

    Skipped where neither exists, unless CONDGEN_REQUIRE_MNIST=1 (as CI sets), where it fails.
    """
    path = Path(os.environ.get("CONDGEN_DATA_DIR") or SHARED_MNIST)
    if not any((path / name).is_file() for name in ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte")):
        if os.environ.get("CONDGEN_REQUIRE_MNIST") == "1":
            pytest.fail(f"real MNIST is required but not found at {path}")
        pytest.skip(f"real MNIST not found at {path}")
    return path


@pytest.fixture(scope="session")
def fashion_mnist_dir() -> Path:
    """The real Fashion-MNIST files, where the Debian package dataset-fashion-mnist puts them.

    Skipped where the package is absent, unless CONDGEN_REQUIRE_FASHION_MNIST=1 (as CI sets), where it fails.
    """
    path = Path("/usr/share/datasets/fashion-mnist")
    if not (path / "train-images-idx3-ubyte.gz").is_file():
        if os.environ.get("CONDGEN_REQUIRE_FASHION_MNIST") == "1":
            pytest.fail(f"real Fashion-MNIST is required but not found at {path} "
                        "(apt-get install dataset-fashion-mnist)")
        pytest.skip(f"real Fashion-MNIST not found at {path} (apt-get install dataset-fashion-mnist)")
    return path


@pytest.fixture(scope="session")
def digits(mnist_dir) -> dict[int, torch.Tensor]:
    """The first 30 real MNIST training images of each of the digits 0, 1, 2: ``{digit: (30, 28, 28) uint8}``,
    the images of the small folders the image-folder tests write (read once; tests do not change them)."""
    from condgen.data.mnist import read_mnist_dir

    train = read_mnist_dir(mnist_dir).train
    return {d: (train["image"][train["label"] == d][:30, 0] * 255).round().to(torch.uint8) for d in (0, 1, 2)}

