"""Data is checked whole, and named when it is the cause (issue "Reliability 2", class 3).

Every data set's loader output passes through one checker (:func:`condgen.data.checks.check_splits`, called by
:func:`condgen.runs.datasets.load_dataset`) before a run directory is made: the test split like the training
split, values of x finite and of a size float32 can score, the likelihood's domain in both splits. The npz
file is read whole, and an MNIST folder holding two different versions of one file is refused.
"""

from __future__ import annotations

import gzip
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import make_toy_splits, toy_config
from test_mnist import tiny_mnist
from test_reliability import one_line

import condgen
from condgen import DataError
from condgen.cli import main
from condgen.data.mnist import read_mnist_dir


def arrays(n: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for split in ("train", "test"):
        out[f"{split}_x"] = rng.uniform(0, 1, (n, 5)).astype(np.float32)
        out[f"{split}_label"] = rng.integers(0, 2, n)
    return out


def train_npz(capsys, tmp_path: Path, data: dict[str, np.ndarray] | Path, *extra: str, x_field: str = "x",
              likelihood: str = "gaussian") -> str:
    """Train on ``data`` (arrays, or a file); it must be refused with one line, returned; nothing is written."""
    path = data if isinstance(data, Path) else tmp_path / "data.npz"
    if not isinstance(data, Path):
        np.savez(path, **data)
    out = tmp_path / "run"
    line = one_line(capsys, "train", "--dataset", "npz", "--data-dir", str(path), "--x-field", x_field,
                    "--likelihood", likelihood, "--conditioner", "label:num_classes=2", "--hidden", "8", "--epochs",
                    "1", "--device", "cpu", "--no-pictures", "--out", str(out), *extra)
    assert not out.exists()  # checked before the run directory is made
    return line


# -- the npz file, read whole ------------------------------------------------------------------------------
def test_an_object_array_in_an_unused_field_is_named(capsys, tmp_path):
    data = {**arrays(), "train_notes": np.array([{"a": 1}, "text"] * 32, dtype=object),
            "test_notes": np.array(["x"] * 64, dtype=object)}
    np.savez(tmp_path / "data.npz", **data)  # numpy pickles object arrays
    line = train_npz(capsys, tmp_path, tmp_path / "data.npz")
    assert line == (f"error: dataset 'npz': array 'train_notes' in '{tmp_path / 'data.npz'}' holds Python objects "
                    "(dtype object), which are not read (they could run code); save it as numbers, or leave it out")


def test_a_member_with_a_bad_crc_is_named(capsys, tmp_path):
    np.savez(tmp_path / "good.npz", **arrays())
    with zipfile.ZipFile(tmp_path / "good.npz") as zf:
        info = zf.getinfo("train_x.npy")
        offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200  # inside the stored data
    raw = bytearray((tmp_path / "good.npz").read_bytes())
    raw[offset] ^= 0xFF
    (tmp_path / "bad.npz").write_bytes(bytes(raw))
    line = train_npz(capsys, tmp_path, tmp_path / "bad.npz")
    assert line.startswith(f"error: dataset 'npz': array 'train_x' in '{tmp_path / 'bad.npz'}' is damaged (Bad CRC-32")
    assert line.endswith("write the file again")


def test_an_empty_or_cut_file_is_named(capsys, tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    line = train_npz(capsys, tmp_path, tmp_path / "empty.npz")
    assert line == f"error: dataset 'npz': '{tmp_path / 'empty.npz'}' is empty (0 bytes); write it again with numpy.savez"
    np.savez(tmp_path / "whole.npz", **arrays())
    (tmp_path / "cut.npz").write_bytes((tmp_path / "whole.npz").read_bytes()[:300])
    line = train_npz(capsys, tmp_path, tmp_path / "cut.npz")
    assert f"'{tmp_path / 'cut.npz'}'" in line and ("is not a readable .npz file" in line or "is damaged" in line)


# -- the test split checked like the training split ------------------------------------------------------
def test_a_test_split_of_another_item_shape_is_refused_before_training(capsys, tmp_path):
    data = arrays()
    data["test_x"] = np.zeros((64, 6), np.float32)
    line = train_npz(capsys, tmp_path, data)
    assert line == ("error: dataset 'npz': the test split's 'x' items are float32 of shape [6], the training "
                    "split's float32 of shape [5]; one model takes both: give both splits the same shape")


def test_image_levels_in_one_split_and_floats_in_the_other_are_refused(capsys, tmp_path):
    data = {"train_image": np.zeros((8, 1, 6, 6), np.uint8), "test_image": np.zeros((8, 1, 6, 6), np.float32),
            "train_label": np.zeros(8, np.int64), "test_label": np.zeros(8, np.int64)}
    line = train_npz(capsys, tmp_path, data, x_field="image", likelihood="bernoulli")
    assert line == ("error: dataset 'npz': the test split's 'image' items are float32 of shape [1, 6, 6], the "
                    "training split's uint8 of shape [1, 6, 6]; one model takes both: give both splits the same dtype "
                    "(images as uint8 levels in both, or floats in both)")
    data["test_image"] = data["test_image"].astype(np.uint8)
    data["test_label"] = np.full(8, np.nan, np.float32)  # a missing class given as NaN: a condition field by kind
    line = train_npz(capsys, tmp_path, data, x_field="image", likelihood="bernoulli")
    assert line.endswith("the test split's 'label' items are floats of shape [], the training split's whole numbers "
                         "of shape []; one model takes both: give both splits the same kind (a missing class is -1 in "
                         "whole numbers, a missing number NaN in floats)"), line


def test_a_condition_field_of_another_shape_in_the_test_split_is_refused(capsys, tmp_path):
    data = arrays()
    data["test_label"] = np.zeros((64, 2), np.int64)
    line = train_npz(capsys, tmp_path, data)
    assert line == ("error: dataset 'npz': the test split's 'label' items are whole numbers of shape [2], the "
                    "training split's whole numbers of shape []; one model takes both: give both splits the same shape")


@pytest.mark.parametrize("split, name", [("train", "training"), ("test", "test")])
@pytest.mark.parametrize("value, shown", [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_nan_or_inf_in_either_split_names_the_split_and_the_item(capsys, tmp_path, split, name, value, shown):
    data = arrays()
    data[f"{split}_x"][17, 3] = value
    line = train_npz(capsys, tmp_path, data)
    assert line == (f"error: dataset 'npz': the {name} split's 'x' holds {shown} (item 17, element 3): x must be "
                    "finite numbers; drop or fill those items")


def test_values_too_large_for_float32_arithmetic_are_named(capsys, tmp_path):
    data = arrays()
    data["train_x"][5, 0] = 1e30
    line = train_npz(capsys, tmp_path, data)
    assert line == ("error: dataset 'npz': the training split's 'x' holds 1e+30 (item 5, element 0), beyond +-1e+08: "
                    "values this large overflow the loss in float32; standardise the data (subtract the mean, divide "
                    "by the std)")
    data["train_x"][5, 0] = 1e4  # within float32's reach, but it overflows the encoder: the loss names the data
    np.savez(tmp_path / "big.npz", **data)
    line = one_line(capsys, "train", "--dataset", "npz", "--data-dir", str(tmp_path / "big.npz"), "--x-field", "x",
                    "--likelihood", "gaussian", "--hidden", "8", "--epochs", "1", "--no-pictures", "--out",
                    str(tmp_path / "big"))
    assert line == ("error: the loss became nan at epoch 1, step 1; no epoch had finished, so no checkpoint was "
                    "written (the data's 'x' reach 1e+04: standardise them (mean 0, std 1), or try a lower --lr)")
    data["train_x"][5, 0] = 50.0  # standardisable: trains
    np.savez(tmp_path / "ok.npz", **data)
    assert main(["train", "--dataset", "npz", "--data-dir", str(tmp_path / "ok.npz"), "--x-field", "x", "--likelihood",
                 "gaussian", "--hidden", "8", "--epochs", "1", "--no-pictures", "--out", str(tmp_path / "ok")]) == 0


# -- the likelihood's domain -------------------------------------------------------------------------------
@pytest.mark.parametrize("split, name", [("train", "training"), ("test", "test")])
def test_bernoulli_on_data_outside_0_1_is_refused_in_either_split(capsys, tmp_path, split, name):
    data = arrays()
    data[f"{split}_x"] = data[f"{split}_x"] * 2.1 - 1.05
    path = tmp_path / "signed.npz"
    np.savez(path, **data)
    line = one_line(capsys, "train", "--dataset", "npz", "--data-dir", str(path), "--x-field", "x", "--likelihood",
                    "bernoulli", "--hidden", "8", "--epochs", "1", "--no-pictures", "--out", str(tmp_path / "run"))
    assert line.startswith(f"error: model.likelihood = 'bernoulli' scores values in [0, 1], but the {name} split's "
                           "data field 'x' holds values from -1.0"), line
    assert line.endswith("use --likelihood gaussian for real values, or scale the data into [0, 1]")
    assert not (tmp_path / "run").exists()


# -- a plugin's data set passes through the same checker --------------------------------------------------
class NaNData:
    @condgen.hookimpl
    def condgen_register_datasets(self, register):
        def load(config):
            splits = make_toy_splits()
            splits.test["image"][3, 0, 2, 2] = float("nan")
            return splits

        register("toy-nan", load)


def test_a_plugins_data_set_is_checked_the_same_way(register_plugin, tmp_path):
    register_plugin(NaNData(), "nan-data")
    config = toy_config(epochs=1).model_copy(update={"data": condgen.RunConfig.parse(
        {"data": {"dataset": "toy-nan"}}).data})
    with pytest.raises(DataError, match=r"^dataset 'toy-nan': the test split's 'image' holds nan \(item 3, element 14\)"):
        condgen.train(config, tmp_path / "run", pictures=False)
    assert not (tmp_path / "run").exists()


# -- two versions of one file in an MNIST folder -----------------------------------------------------------
def test_an_mnist_folder_with_two_different_versions_of_a_file_is_refused(tmp_path):
    folder = tiny_mnist(tmp_path / "mnist")
    gz = folder / "t10k-images-idx3-ubyte.gz"
    plain = folder / "t10k-images-idx3-ubyte"
    plain.write_bytes(gzip.decompress(gz.read_bytes()))  # the same data twice: fine
    splits = read_mnist_dir(folder)
    raw = bytearray(plain.read_bytes())
    raw[-1] ^= 0xFF
    plain.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=rf"^MNIST directory '{folder}' holds t10k-images-idx3-ubyte.gz and "
                                        r"t10k-images-idx3-ubyte, with different data .*: remove the one that is not "
                                        "meant$"):
        read_mnist_dir(folder)
    plain.unlink()
    assert torch.equal(read_mnist_dir(folder).test["image"], splits.test["image"])
    shutil.rmtree(folder)
