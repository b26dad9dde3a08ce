"""The built-in ``npz`` dataset: a user's own arrays, here 2-D points that are not images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import condgen
from condgen.cli import main
from condgen.data.arrays import load_npz_splits


def write_points(path, n_train=400, n_test=100):
    rng = np.random.default_rng(0)
    s = rng.uniform(-1, 1, n_train + n_test).astype(np.float32)
    x = np.stack([s, 2 * s + 0.1 * rng.standard_normal(s.shape)], axis=1).astype(np.float32)
    np.savez(path, train_x=x[:n_train], train_s=s[:n_train], train_k=np.arange(n_train),
             test_x=x[n_train:], test_s=s[n_train:], test_k=np.arange(n_test))


def test_arrays_become_float_and_integer_fields(tmp_path):
    write_points(tmp_path / "p.npz")
    splits = load_npz_splits(condgen.DataConfig(dataset="npz", data_dir=str(tmp_path / "p.npz")))
    assert splits.train["x"].shape == (400, 2) and splits.train["x"].dtype == torch.float32
    assert splits.test["k"].dtype == torch.int64 and splits.test["s"].shape == (100,)


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"train_x": np.zeros(3), "test_y": np.zeros(3)}, "must hold the same fields for train_ and test_"),
        ({"x": np.zeros(3)}, "array 'x' in"),
        ({"train_x": np.array(["a"]), "test_x": np.array(["b"])}, "holds <U1, not numbers"),
        ({"train_x": np.zeros(3), "train_y": np.zeros(4), "test_x": np.zeros(1), "test_y": np.zeros(1)},
         "fields must share their first dimension"),
        ({"train_x": np.zeros(3), "test_x": np.array(5.0)}, "array 'test_x' is a single number"),
    ],
)
def test_malformed_files_are_data_errors(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(condgen.DataError, match=message):
        load_npz_splits(condgen.DataConfig(dataset="npz", data_dir=str(tmp_path / "bad.npz")))
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(condgen.DataError, match="is not a readable .npz file"):
        load_npz_splits(condgen.DataConfig(dataset="npz", data_dir=str(tmp_path / "junk.npz")))
    with pytest.raises(condgen.DataError, match="no such file"):
        load_npz_splits(condgen.DataConfig(dataset="npz", data_dir=str(tmp_path / "none.npz")))
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(condgen.DataError, match="holds one array"):
        load_npz_splits(condgen.DataConfig(dataset="npz", data_dir=str(tmp_path / "one.npy")))


@pytest.mark.parametrize("x, message", [(np.zeros(8, np.float32), "shape (8,); give one value per item as shape (N, 1)"),
                                        (np.zeros((8, 2), np.int64), "holds int64 of shape (8, 2)")])
def test_a_field_the_model_cannot_generate_is_a_data_error(tmp_path, x, message):
    np.savez(tmp_path / "p.npz", train_x=x, test_x=x)
    config = condgen.RunConfig.parse({"data": {"dataset": "npz", "data_dir": str(tmp_path / "p.npz"), "x_field": "x"},
                                      "train": {"device": "cpu"}})
    with pytest.raises(condgen.DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        condgen.train(config, tmp_path / "run", log=lambda s: None)


def test_training_on_points_through_the_cli(tmp_path, capsys):
    write_points(tmp_path / "p.npz")
    out = tmp_path / "run"
    assert main(["train", "--dataset", "npz", "--data-dir", str(tmp_path / "p.npz"), "--x-field", "x",
                 "--likelihood", "gaussian", "--conditioner", "regression:targets=s", "--hidden", "32",
                 "--epochs", "20", "--device", "cpu", "--out", str(out)]) == 0
    run = condgen.load_run(out)
    x = run.sample({"regression": 0.5}, num=200, seed=0)
    assert x.shape == (200, 2)
    assert abs(float(x[:, 0].mean()) - 0.5) < 0.15 and abs(float(x[:, 1].mean()) - 1.0) < 0.3  # x ~ (s, 2s)
    assert main(["sample", str(out), "--condition", "regression=s:-0.5..0.5/3", "--num", "4",
                 "--out", str(tmp_path / "x.npy")]) == 0
    assert np.load(tmp_path / "x.npy").shape == (12, 2)
