"""Pictures of a run: rows chosen and headed by their conditions, labels that fit, latent colours."""

from __future__ import annotations

import pytest
import torch

import condgen
from condgen import pictures

from helpers import make_toy_splits, toy_config


def captured_grid(monkeypatch) -> dict:
    seen: dict = {}

    def fake_save_grid(images, path, per_row, row_labels=None, row_heads=None):
        seen.update(images=images, per_row=per_row, labels=row_labels, heads=row_heads)

    monkeypatch.setattr(pictures, "save_grid", fake_save_grid)
    return seen


def test_rows_are_headed_by_the_conditions_picture(toy, tmp_path, monkeypatch):
    config = condgen.RunConfig.parse({"conditioners": [{"name": "left"}], "model": {"hidden": [8]},
                                      "data": {"dataset": "toy"}, "train": {"epochs": 1, "device": "cpu"}})
    run = condgen.train(config, tmp_path / "run", pictures=False)
    seen = captured_grid(monkeypatch)
    test = make_toy_splits().test
    assert pictures.write_samples(run, test, tmp_path / "s.png", per_row=4, log=lambda s: None)
    assert seen["per_row"] == 4 and seen["images"].shape == (3 * 4, 1, 6, 6)
    observed = test["image"][:3].clone()
    observed[..., 3:] = 0
    assert torch.equal(seen["heads"], observed)
    rows = pictures.with_row_heads(seen["images"], seen["heads"]).reshape(3, 6, 1, 6, 6)  # picture, blank, 4 samples
    assert torch.equal(rows[:, 0], observed) and torch.equal(rows[:, 1], torch.ones(3, 1, 6, 6))
    assert torch.equal(rows[:, 2:], seen["images"].reshape(3, 4, 1, 6, 6))


def test_long_row_labels_are_not_cut_off(tmp_path, monkeypatch):
    boxes, tights = [], []

    def inspect(fig, path, tight=False):
        fig.canvas.draw()
        boxes.extend(t.get_window_extent() for t in fig.axes[0].get_yticklabels())
        tights.append(tight)
        pictures._plt().close(fig)

    monkeypatch.setattr(pictures, "_save", inspect)
    labels = ["label=1 ink=0.25 slant=-0.30 thickness=0.125 (1, 28, 28)", "a"]
    pictures.save_grid(torch.rand(4, 1, 28, 28), tmp_path / "g.png", per_row=2, row_labels=labels)
    assert len(boxes) == 2 and all(b.x0 >= 0 for b in boxes)  # the room left for labels holds them
    assert tights == [True]  # and a wider one (capitals, say) still makes the saved picture grow


def test_latent_is_coloured_by_the_conditioner(toy, tmp_path, monkeypatch):
    run = condgen.train(toy_config(epochs=1), tmp_path / "run", pictures=False)
    z, colours, name = pictures.latent_means(run, make_toy_splits().test)
    assert name == "label" and colours.tolist() == make_toy_splits().test["label"].tolist()
    legends = []
    monkeypatch.setattr(pictures, "_save", lambda fig, path: legends.append(fig.axes[0].get_legend()))
    assert pictures.write_latent(run, make_toy_splits().test, tmp_path / "l.png")
    assert legends[0].get_title().get_text() == "label"
    assert [t.get_text() for t in legends[0].get_texts()] == ["0", "1"]


def test_samples_of_one_conditioner_are_capped_and_it_is_said(toy, tmp_path, monkeypatch):
    config = condgen.RunConfig.parse({"conditioners": [{"name": "label", "config": {"num_classes": 25}}],
                                      "model": {"hidden": [8]}, "data": {"dataset": "toy"},
                                      "train": {"epochs": 1, "device": "cpu"}})
    run = condgen.train(config, tmp_path / "run", pictures=False)
    seen = captured_grid(monkeypatch)
    said = []
    assert pictures.write_samples(run, make_toy_splits().test, tmp_path / "s.png", per_row=2, log=said.append)
    assert len(seen["labels"]) == pictures.MAX_ROWS == 20
    assert said == ["samples.png shows the first 20 of 'label''s 25 example conditions"]


@pytest.mark.parametrize("composed", [False, True])
def test_run_pictures_are_written(toy, tmp_path, composed):
    names = [{"name": "left"}, {"name": "label", "config": {"num_classes": 2}}] if composed else [{"name": "left"}]
    config = condgen.RunConfig.parse({"conditioners": names, "model": {"hidden": [8]},
                                      "data": {"dataset": "toy"}, "train": {"epochs": 1, "device": "cpu"}})
    said = []
    condgen.train(config, tmp_path / "run", pictures=True, log=said.append)
    for name in ("samples.png", "reconstructions.png", "latent.png"):
        assert (tmp_path / "run" / name).stat().st_size > 1000, name
    assert any(line.startswith("samples.png: 10 rows") for line in said) == composed


def test_a_picture_that_fails_is_reported_and_the_run_is_kept(toy, tmp_path, monkeypatch):
    from condgen.errors import CondgenError

    def broken(*args, **kwargs):
        raise CondgenError("cannot write 'samples.png': Permission denied")

    monkeypatch.setattr(pictures, "write_samples", broken)
    said = []
    run = condgen.train(toy_config(epochs=1), tmp_path / "run", pictures=True, log=said.append)
    assert "samples.png skipped: cannot write 'samples.png': Permission denied (the run itself is saved)" in said
    assert (tmp_path / "run" / "latent.png").exists() and run.epoch == 1


def test_row_heads_are_checked_and_drawn(tmp_path, monkeypatch):
    with pytest.raises(condgen.CondgenError, match=r"2 row heads of shape \(1, 6, 6\) need 2 x 3 images"):
        pictures.save_grid(torch.rand(5, 1, 6, 6), tmp_path / "g.png", per_row=3, row_heads=torch.rand(2, 1, 6, 6))
    grids = []
    monkeypatch.setattr(pictures, "_save", lambda fig, path, tight=False: grids.append(
        fig.axes[0].get_images()[0].get_array().shape))
    pictures.save_grid(torch.rand(6, 1, 6, 6), tmp_path / "g.png", per_row=3, row_heads=torch.rand(2, 1, 6, 6))
    pictures.save_grid(torch.rand(6, 1, 6, 6), tmp_path / "g.png", per_row=3)
    (with_heads_h, with_heads_w, _), (plain_h, plain_w, _) = grids
    assert with_heads_h == plain_h == 2 + 2 * 8 and with_heads_w == 2 + 5 * 8 and plain_w == 2 + 3 * 8
