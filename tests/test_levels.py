"""Images kept as their 256 levels (uint8): a quarter of float32's memory, seen as floats in [0, 1] by every batch
and every whole split a conditioner is given, so training on them is training on the floats, bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import condgen
from condgen.data.splits import FloatView, as_floats, index_batch, is_levels
from condgen.plugin.registry import get_plugin_manager

from helpers import make_toy_splits, toy_config


def levels_of(data: condgen.DataSplits) -> tuple[condgen.DataSplits, condgen.DataSplits]:
    """The toy data with its images as uint8 levels, and the same images as the floats those levels mean."""
    def split(fields, as_levels):
        levels = (fields["image"] * 255).round().to(torch.uint8)
        return {**fields, "image": levels if as_levels else levels.float() / 255}

    return (condgen.DataSplits(split(data.train, True), split(data.test, True)),
            condgen.DataSplits(split(data.train, False), split(data.test, False)))


def test_batches_and_views_see_levels_as_floats_and_leave_the_rest():
    levels = torch.tensor([[[[0, 51, 255]]]], dtype=torch.uint8).expand(4, 1, 1, 3)
    split = {"image": levels, "label": torch.arange(4), "code": torch.arange(4, dtype=torch.uint8)}
    assert is_levels(levels) and not is_levels(split["code"])  # a (N,) uint8 field is a number, not an image
    batch = index_batch(split, torch.tensor([2, 0]))
    assert batch["image"].dtype == torch.float32 and batch["image"][0].flatten().tolist() == pytest.approx([0, 0.2, 1])
    assert batch["label"].tolist() == [2, 0] and batch["code"].dtype == torch.uint8
    (_, first), = list(condgen.iter_batches(split, 4))
    assert torch.equal(first["image"], as_floats(split)["image"])
    view = FloatView(split)
    assert view["image"] is view["image"] and torch.equal(view["image"], first["image"]) and len(view) == 3
    assert split["image"].dtype == torch.uint8  # the split itself stays levels


class LevelsData:
    def __init__(self, data: condgen.DataSplits) -> None:
        self.data = data

    @condgen.hookimpl
    def condgen_register_datasets(self, register):
        register("toy", lambda config: self.data)


def test_training_on_levels_is_training_on_their_floats(register_plugin, tmp_path):
    from helpers import SignPlugin

    levels, floats = levels_of(make_toy_splits())
    register_plugin(SignPlugin(), "sign-plugin")
    metrics = {}
    for name, data in (("levels", levels), ("floats", floats)):
        register_plugin(LevelsData(data), f"toy-{name}")
        config = toy_config(epochs=2).model_copy(update={"conditioners": [condgen.ConditionerSpec(name="label"),
                                                                          condgen.ConditionerSpec(name="sign")]})
        run = condgen.train(condgen.RunConfig.parse(config.model_dump()), tmp_path / name, log=lambda s: None)
        metrics[name] = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        assert (tmp_path / name / "samples.png").exists() and (tmp_path / name / "reconstructions.png").exists()
        figures = condgen.evaluate(run, data.test, samples=3)
        metrics[name].append({k: v for k, v in figures.items() if k.startswith("test_")})
        get_plugin_manager().unregister(name=f"toy-{name}")
    for a, b in zip(*metrics.values()):
        assert {k: v for k, v in a.items() if "seconds" not in k} == {k: v for k, v in b.items() if "seconds" not in k}


def test_mnist_and_npz_images_are_kept_as_levels(mnist_dir, tmp_path):
    from condgen.runs.datasets import load_dataset

    data = load_dataset(condgen.DataConfig(dataset="mnist", data_dir=str(mnist_dir)))
    assert data.train["image"].dtype == torch.uint8 and data.train["image"].shape == (60000, 1, 28, 28)
    assert data.train["image"].nbytes == 47_040_000  # 45 MiB, where float32 took 180 MiB
    path = tmp_path / "a.npz"
    pixels = np.random.default_rng(0).integers(0, 256, (6, 1, 4, 4), dtype=np.uint8)
    np.savez(path, train_x=pixels, test_x=pixels[:2], train_n=np.arange(6, dtype=np.uint8),
             test_n=np.arange(2, dtype=np.uint8))
    npz = load_dataset(condgen.DataConfig(dataset="npz", data_dir=str(path), x_field="x"))
    assert npz.train["x"].dtype == torch.uint8 and npz.train["n"].dtype == torch.int64
    with pytest.raises(condgen.DataError, match="the model generates floats of shape"):
        load_dataset(condgen.DataConfig(dataset="npz", data_dir=str(path), x_field="n"))
