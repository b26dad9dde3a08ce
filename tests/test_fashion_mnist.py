"""The `fashion-mnist` data set: the real files, where they are looked for, MNIST's files told apart, the CLI."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_mnist import tiny_mnist

import condgen
from condgen.cli import main
from condgen.common.errors import DataError
from condgen.data import fashion, mnist
from condgen.data.config import DataConfig
from condgen.runs.datasets import load_dataset

FILES = [f"{stem}.gz" for stem in mnist.FILES.values()]
NOT_FOUND_TAIL = (
    "install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or put train-images-idx3-ubyte.gz, "
    "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz in a directory and pass "
    "--data-dir DIR"
)


def one_line(capsys, *argv: str) -> str:
    """The CLI in-process: exit 2 and one ``error:`` line, returned."""
    assert main(list(argv)) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.fixture(scope="module")
def real(fashion_mnist_dir):
    return fashion.load_fashion_mnist_splits(DataConfig(dataset="fashion-mnist", data_dir=str(fashion_mnist_dir)))


@pytest.fixture(scope="module")
def copies(fashion_mnist_dir, tmp_path_factory) -> Path:
    """``ROOT/fashion-mnist/`` holding copies of the real files (ROOT as $CONDGEN_DATA_DIR would be)."""
    root = tmp_path_factory.mktemp("data")
    shutil.copytree(fashion_mnist_dir, root / "fashion-mnist")
    return root


def test_the_real_files_load_with_shapes_ranges_counts_and_class_names(real):
    train, test = real.train, real.test
    assert train["image"].shape == (60000, 1, 28, 28) and test["image"].shape == (10000, 1, 28, 28)
    # kept as their levels, a quarter of float32's memory; every batch sees floats in [0, 1]
    assert train["image"].dtype == torch.uint8 and train["label"].dtype == torch.int64
    assert int(train["image"].min()) == 0 and int(train["image"].max()) == 255
    assert float(train["image"].float().mean()) / 255 == pytest.approx(0.2860, abs=1e-4)  # not MNIST's 0.1307
    assert torch.bincount(train["label"]).tolist() == [6000] * 10
    assert torch.bincount(test["label"]).tolist() == [1000] * 10
    assert train["label"][:4].tolist() == [9, 0, 0, 3]  # an ankle boot, two T-shirts, a dress
    assert real.classes == {"label": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                                      "Sneaker", "Bag", "Ankle boot"]}
    assert real.limited(10, 5).classes == real.classes  # --train-limit keeps the names


def test_data_dir_wins_then_condgen_data_dir_fashion_mnist(copies, monkeypatch):
    monkeypatch.setenv("CONDGEN_DATA_DIR", str(copies))
    assert fashion.locate_fashion_mnist(None) == copies / "fashion-mnist"
    other = copies / "elsewhere"
    shutil.copytree(copies / "fashion-mnist", other, dirs_exist_ok=True)
    assert fashion.locate_fashion_mnist(str(other)) == other
    # through the registered loader, with the limits applied after it: a copy read as the real thing
    splits = load_dataset(DataConfig(dataset="fashion-mnist", data_dir=str(other), train_limit=2000, test_limit=500))
    assert splits.train["image"].shape == (2000, 1, 28, 28) and splits.test["label"].shape == (500,)
    assert splits.classes["label"][9] == "Ankle boot"
    (other / "t10k-labels-idx1-ubyte.gz").unlink()  # --data-dir is taken as given, and its gaps named
    with pytest.raises(DataError, match=r"Fashion-MNIST directory '.*elsewhere' lacks t10k-labels-idx1-ubyte.gz;"):
        fashion.load_fashion_mnist_splits(DataConfig(dataset="fashion-mnist", data_dir=str(other)))


def test_the_debian_directory_is_the_last_place(fashion_mnist_dir, tmp_path, monkeypatch):
    assert fashion_mnist_dir == Path(fashion.DEBIAN_DIR)
    monkeypatch.delenv("CONDGEN_DATA_DIR", raising=False)
    assert fashion.locate_fashion_mnist(None) == fashion_mnist_dir
    monkeypatch.setenv("CONDGEN_DATA_DIR", str(tmp_path))  # as in CI: set, but without a fashion-mnist/ in it
    assert fashion.locate_fashion_mnist(None) == fashion_mnist_dir
    (tmp_path / "fashion-mnist").mkdir()  # an empty one is passed over too
    assert fashion.locate_fashion_mnist(None) == fashion_mnist_dir


def test_mnist_files_are_refused_as_fashion_mnist_and_back(mnist_dir, fashion_mnist_dir, tmp_path, monkeypatch, capsys):
    train = ["train", "--conditioner", "label", "--epochs", "1", "--out", str(tmp_path / "r")]
    line = one_line(capsys, *train, "--dataset", "fashion-mnist", "--data-dir", str(mnist_dir))
    assert line == (f"error: '{mnist_dir}' holds MNIST's files, not Fashion-MNIST's; --dataset mnist reads them, "
                    "or give --data-dir the directory of Fashion-MNIST's four files")
    line = one_line(capsys, *train, "--dataset", "mnist", "--data-dir", str(fashion_mnist_dir))
    assert line == (f"error: '{fashion_mnist_dir}' holds Fashion-MNIST's files, not MNIST's; --dataset "
                    "fashion-mnist reads them, or give --data-dir the directory of MNIST's four files")
    # MNIST's files found through $CONDGEN_DATA_DIR/fashion-mnist, one of them uncompressed: told by content
    d = tmp_path / "data" / "fashion-mnist"
    d.mkdir(parents=True)
    for name in FILES[:3]:
        (d / name).symlink_to(mnist_dir / name)
    (d / "t10k-labels-idx1-ubyte").write_bytes(gzip.decompress((mnist_dir / FILES[3]).read_bytes()))
    (d / FILES[1]).unlink()  # only the test labels left to tell: still told
    shutil.copy(fashion_mnist_dir / FILES[1], d / FILES[1])
    monkeypatch.setenv("CONDGEN_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(DataError, match=f"^'{d}' holds MNIST's files, not Fashion-MNIST's; --dataset mnist"):
        fashion.load_fashion_mnist_splits(DataConfig(dataset="fashion-mnist"))
    assert mnist.read_mnist_dir(mnist_dir).train["label"][:4].tolist() == [5, 0, 4, 1]  # MNIST itself still reads


def test_files_of_neither_data_set_read_with_their_labels_checked(tmp_path):
    d = tiny_mnist(tmp_path / "m", n=12)  # labels 0..11: two more than Fashion-MNIST's ten classes
    with pytest.raises(DataError, match=r"^Fashion-MNIST train labels in '.*m' go up to 11, not 9$"):
        fashion.load_fashion_mnist_splits(DataConfig(dataset="fashion-mnist", data_dir=str(d)))
    splits = condgen.read_idx_dir(d, name="Twelve", classes=[f"c{i}" for i in range(12)])
    assert splits.train["label"].tolist() == list(range(12)) and splits.classes["label"][11] == "c11"
    (d / "t10k-labels-idx1-ubyte.gz").write_bytes((d / "t10k-images-idx3-ubyte.gz").read_bytes())
    with pytest.raises(DataError, match=r"^'.*t10k-labels-idx1-ubyte.gz' is not a Fashion-MNIST label file"):
        fashion.load_fashion_mnist_splits(DataConfig(dataset="fashion-mnist", data_dir=str(d)))


def test_missing_everywhere_is_one_line_saying_where_it_looked_and_how_to_install(tmp_path, monkeypatch, capsys):
    debian = tmp_path / "debian"
    monkeypatch.setattr(fashion, "PLACES", (fashion.PLACES[0], str(debian)))  # as on a machine without the package
    assert fashion.PLACES[0] == "$CONDGEN_DATA_DIR/fashion-mnist"
    monkeypatch.delenv("CONDGEN_DATA_DIR", raising=False)
    line = one_line(capsys, "train", "--dataset", "fashion-mnist", "--conditioner", "label",
                    "--out", str(tmp_path / "r"))
    assert line == ("error: Fashion-MNIST was not found (no --data-dir was given; $CONDGEN_DATA_DIR/fashion-mnist: "
                    f"CONDGEN_DATA_DIR is unset; '{debian}' does not exist): " + NOT_FOUND_TAIL)
    monkeypatch.setenv("CONDGEN_DATA_DIR", str(tmp_path / "env"))
    (tmp_path / "env" / "fashion-mnist").mkdir(parents=True)
    debian.mkdir()
    with pytest.raises(DataError) as err:
        fashion.locate_fashion_mnist(None)
    assert str(err.value) == (
        f"Fashion-MNIST was not found (no --data-dir was given; $CONDGEN_DATA_DIR/fashion-mnist = "
        f"'{tmp_path}/env/fashion-mnist' holds none of its files; '{debian}' holds none of its files): "
        + NOT_FOUND_TAIL
    )


def test_a_plugin_finds_its_files_with_the_helper(tmp_path, monkeypatch):
    tiny_mnist(tmp_path / "home" / "kmnist")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KMNIST_DIR", raising=False)
    places = ["${KMNIST_DIR}", "~/kmnist"]
    assert condgen.find_data_dir(None, places, name="KMNIST") == tmp_path / "home" / "kmnist"
    monkeypatch.setenv("KMNIST_DIR", str(tmp_path / "mine"))
    tiny_mnist(tmp_path / "mine")
    assert condgen.find_data_dir(None, places, name="KMNIST") == tmp_path / "mine"
    labels = condgen.read_idx(tmp_path / "mine" / "train-labels-idx1-ubyte.gz", "label", name="KMNIST")
    assert labels.dtype == torch.uint8 and labels.tolist() == [0, 1, 2, 3, 4]


def test_train_one_epoch_then_sample_through_the_cli(fashion_mnist_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("CONDGEN_DATA_DIR", raising=False)  # found in the Debian package's directory
    run = tmp_path / "run"
    assert main(["train", "--dataset", "fashion-mnist", "--train-limit", "2000", "--test-limit", "500",
                 "--conditioner", "label", "--epochs", "1", "--hidden", "128", "--device", "cpu",
                 "--out", str(run)]) == 0
    for name in ("config.json", "checkpoint.safetensors", "metrics.jsonl", "samples.png"):
        assert (run / name).is_file(), name
    loaded = condgen.load_run(run)
    assert loaded.config.data.dataset == "fashion-mnist" and loaded.config.data.train_limit == 2000
    assert main(["sample", str(run), "--condition", "label=all", "--num", "3", "--out", str(tmp_path / "g.npy")]) == 0
    grid = np.load(tmp_path / "g.npy")
    assert grid.shape == (30, 1, 28, 28) and 0.0 <= grid.min() and grid.max() <= 1.0


def test_a_name_of_no_known_data_set_reads_mnists_and_fashion_mnists_files(mnist_dir, fashion_mnist_dir):
    # only "MNIST" and "Fashion-MNIST" ask for one data set's files; the default "IDX" or a plugin's name does not
    splits = condgen.read_idx_dir(mnist_dir)
    assert splits.train["label"][:4].tolist() == [5, 0, 4, 1] and splits.train["image"].shape == (60000, 1, 28, 28)
    assert splits.classes == {}
    kmnist = condgen.read_idx_dir(fashion_mnist_dir, name="KMNIST", num_classes=10, levels=True)
    assert kmnist.train["label"][:4].tolist() == [9, 0, 0, 3] and kmnist.test["image"].dtype == torch.uint8
    with pytest.raises(DataError, match="holds Fashion-MNIST's files, not MNIST's"):
        condgen.read_idx_dir(fashion_mnist_dir, name="MNIST")


def test_read_idx_refuses_an_unknown_kind_naming_the_kinds(tmp_path):
    d = tiny_mnist(tmp_path / "m")
    with pytest.raises(condgen.ArgumentError) as err:
        condgen.read_idx(d / "train-labels-idx1-ubyte.gz", "labels")
    assert str(err.value) == "read_idx: kind must be 'image' or 'label', got 'labels'"
    assert condgen.read_idx(d / "train-images-idx3-ubyte.gz", "image").shape == (5, 28, 28)


def test_classes_and_num_classes_that_disagree_are_an_argument_error(tmp_path):
    d = tiny_mnist(tmp_path / "m", n=3)
    with pytest.raises(condgen.ArgumentError) as err:
        condgen.read_idx_dir(d, classes=["a", "b", "c"], num_classes=4)
    assert str(err.value) == ("read_idx_dir: classes names 3 classes but num_classes is 4; give one of them, or as "
                              "many names as num_classes")
    assert condgen.read_idx_dir(d, classes=("a", "b", "c"), num_classes=3).classes == {"label": ["a", "b", "c"]}
