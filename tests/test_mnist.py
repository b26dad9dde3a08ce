"""Reading MNIST's IDX files, and the errors for missing, truncated or foreign files."""

from __future__ import annotations

import gzip
import shutil
import struct

import pytest
import torch

from condgen.data import mnist
from condgen.common.errors import DataError


def write_idx(path, magic, dims, payload: bytes):
    with gzip.open(path, "wb") as fh:
        fh.write(struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + payload)


def tiny_mnist(directory, n=5):
    directory.mkdir(parents=True, exist_ok=True)
    for split in ("train", "t10k"):
        images = bytes(range(256)) * (n * 784 // 256 + 1)
        start = 0 if split == "train" else 1  # the test images differ from the training ones, as in MNIST
        write_idx(directory / f"{split}-images-idx3-ubyte.gz", 0x803, (n, 28, 28), images[start : start + n * 784])
        write_idx(directory / f"{split}-labels-idx1-ubyte.gz", 0x801, (n,), bytes(range(n)))
    return directory


def test_reads_real_mnist(mnist_dir):
    splits = mnist.read_mnist_dir(mnist_dir)
    assert splits.train["image"].shape == (60000, 1, 28, 28) and splits.test["image"].shape == (10000, 1, 28, 28)
    assert splits.train["image"].dtype == torch.float32
    assert float(splits.train["image"].min()) == 0.0 and float(splits.train["image"].max()) == 1.0
    assert splits.train["label"].dtype == torch.int64
    assert torch.bincount(splits.test["label"]).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_reads_a_tiny_directory_and_scales_pixels(tmp_path):
    splits = mnist.read_mnist_dir(tiny_mnist(tmp_path / "m"))
    assert splits.train["image"].shape == (5, 1, 28, 28)
    assert splits.train["image"].flatten()[255].item() == 1.0 and splits.train["image"].flatten()[51].item() == pytest.approx(0.2)
    assert splits.test["label"].tolist() == [0, 1, 2, 3, 4]


def test_missing_files_are_listed(tmp_path):
    d = tiny_mnist(tmp_path / "m")
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="lacks t10k-labels-idx1-ubyte.gz; it needs the four files"):
        mnist.read_mnist_dir(d)
    with pytest.raises(DataError, match="does not exist"):
        mnist.read_mnist_dir(tmp_path / "nowhere")


def test_truncated_file_is_named(tmp_path, mnist_dir):
    d = tmp_path / "m"
    shutil.copytree(mnist_dir, d)
    raw = gzip.decompress((d / "t10k-labels-idx1-ubyte.gz").read_bytes())
    with gzip.open(d / "t10k-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(raw[:5000])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz' holds 5000 bytes but its header \(10000,\)"):
        mnist.read_mnist_dir(d)
    (d / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match="cannot read MNIST file .*t10k-labels"):
        mnist.read_mnist_dir(d)


def test_swapped_files_fail_on_the_magic_number(tmp_path):
    d = tiny_mnist(tmp_path / "m")
    (d / "train-labels-idx1-ubyte.gz").write_bytes((d / "train-images-idx3-ubyte.gz").read_bytes())
    with pytest.raises(DataError, match="is not an MNIST label file: IDX magic 00000801 expected, found 00000803"):
        mnist.read_mnist_dir(d)


def test_no_directory_and_no_download_gives_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.delenv(mnist.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CONDGEN_CACHE_DIR")

    def offline(root):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(mnist, "_download", offline)
    with pytest.raises(DataError) as err:
        mnist.locate_mnist(None)
    msg = str(err.value)
    assert "no --data-dir was given, CONDGEN_DATA_DIR is unset, and torchvision's download failed" in msg
    assert "pass --data-dir DIR or set CONDGEN_DATA_DIR=DIR" in msg


def test_directory_order_flag_then_env_then_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(mnist.DATA_DIR_ENV, str(tmp_path / "env"))
    assert mnist.locate_mnist(str(tmp_path / "flag")) == tmp_path / "flag"
    assert mnist.locate_mnist(None) == tmp_path / "env"
    monkeypatch.delenv(mnist.DATA_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CONDGEN_CACHE_DIR")
    cached = mnist.cache_dir() / "MNIST" / "raw"
    cached.mkdir(parents=True)
    tiny_mnist(cached)
    assert mnist.locate_mnist(None) == cached
