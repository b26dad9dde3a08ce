"""Pictures of a run: rows chosen and headed by their conditions, labels that fit, latent colours."""

from __future__ import annotations

import pytest
import torch

import condgen
from condgen.pictures import drawing as pictures
from condgen.pictures import grid

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
    rows = grid.with_row_heads(seen["images"], seen["heads"]).reshape(3, 6, 1, 6, 6)  # picture, blank, 4 samples
    assert torch.equal(rows[:, 0], observed) and torch.equal(rows[:, 1], torch.ones(3, 1, 6, 6))
    assert torch.equal(rows[:, 2:], seen["images"].reshape(3, 4, 1, 6, 6))


def test_long_row_labels_are_not_cut_off(tmp_path, monkeypatch):
    boxes, tights = [], []

    def inspect(fig, path, tight=False):
        fig.canvas.draw()
        boxes.extend(t.get_window_extent() for t in fig.axes[0].get_yticklabels())
        tights.append(tight)
        grid.pyplot().close(fig)

    monkeypatch.setattr(grid, "save_figure", inspect)
    labels = ["label=1 ink=0.25 slant=-0.30 thickness=0.125 (1, 28, 28)", "a"]
    grid.save_grid(torch.rand(4, 1, 28, 28), tmp_path / "g.png", per_row=2, row_labels=labels)
    assert len(boxes) == 2 and all(b.x0 >= 0 for b in boxes)  # the room left for labels holds them
    assert tights == [True]  # and a wider one (capitals, say) still makes the saved picture grow


def test_latent_is_coloured_by_the_conditioner(toy, tmp_path, monkeypatch):
    run = condgen.train(toy_config(epochs=1), tmp_path / "run", pictures=False)
    z, colours, name = pictures.latent_means(run, make_toy_splits().test)
    assert name == "label" and colours.tolist() == make_toy_splits().test["label"].tolist()
    legends = []
    monkeypatch.setattr(pictures, "save_figure", lambda fig, path: legends.append(fig.axes[0].get_legend()))
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
    from condgen.common.errors import CondgenError

    def broken(*args, **kwargs):
        raise CondgenError("cannot write 'samples.png': Permission denied")

    monkeypatch.setattr(pictures, "write_samples", broken)
    said = []
    run = condgen.train(toy_config(epochs=1), tmp_path / "run", pictures=True, log=said.append)
    assert "samples.png skipped: cannot write 'samples.png': Permission denied (the run itself is saved)" in said
    assert (tmp_path / "run" / "latent.png").exists() and run.epoch == 1


def test_row_heads_are_checked_and_drawn(tmp_path, monkeypatch):
    with pytest.raises(condgen.CondgenError, match=r"2 row heads of shape \(1, 6, 6\) need 2 x 3 images"):
        grid.save_grid(torch.rand(5, 1, 6, 6), tmp_path / "g.png", per_row=3, row_heads=torch.rand(2, 1, 6, 6))
    grids = []
    monkeypatch.setattr(grid, "save_figure", lambda fig, path, tight=False: grids.append(
        fig.axes[0].get_images()[0].get_array().shape))
    grid.save_grid(torch.rand(6, 1, 6, 6), tmp_path / "g.png", per_row=3, row_heads=torch.rand(2, 1, 6, 6))
    grid.save_grid(torch.rand(6, 1, 6, 6), tmp_path / "g.png", per_row=3)
    (with_heads_h, with_heads_w, _), (plain_h, plain_w, _) = grids
    assert with_heads_h == plain_h == 2 + 2 * 8 and with_heads_w == 2 + 5 * 8 and plain_w == 2 + 3 * 8


# -- rows of samples and the file they go to (condgen sample, condgen inpaint, a plugin's command) --------------
def _left_and_label_run(tmp_path):
    config = condgen.RunConfig.parse({"conditioners": [{"name": "left"}, {"name": "label", "config": {"num_classes": 2}}],
                                      "model": {"hidden": [8]}, "data": {"dataset": "toy"},
                                      "train": {"epochs": 1, "device": "cpu"}})
    return condgen.train(config, tmp_path / "run", pictures=False, log=lambda s: None)


def test_sample_rows_combine_the_values_given_and_keep_each_rows_condition(toy, tmp_path):
    run = _left_and_label_run(tmp_path)
    images = make_toy_splits().test["image"][:2]
    lefts = run.conditioners["left"].condition_from_batch({"image": images})  # (2, 1, 6, 6), as a command's own flag gives
    rows = condgen.SampleFile(tmp_path / "s.png", 3).rows(run, ["label=0,1"], given={"left": lefts})
    # every combination, in the run's conditioner order (the last varies fastest), labelled and headed by its picture
    assert len(rows) == 4 and rows.conditions["label"].tolist() == [0, 1, 0, 1]
    assert rows.labels == ["left=(1, 6, 6) label=0", "left=(1, 6, 6) label=1"] * 2
    assert rows.heads is None and rows.pictured == 0  # drawn only for a picture: an array needs none
    headed = rows.with_heads()
    assert headed.pictured == 4 and torch.equal(headed.heads, lefts.repeat_interleave(2, dim=0))
    samples = rows.sample(run, 3, seed=0)
    assert samples.shape == (12, 1, 6, 6)
    # row r's 3 samples keep the left half of its image exactly (the left conditioner gives it)
    for r, image in enumerate([0, 0, 1, 1]):
        kept = samples[3 * r : 3 * r + 3, :, :, :3]
        assert torch.equal(kept, images[image, :, :, :3].expand(3, 1, 6, 3)), r
    assert torch.equal(samples, rows.sample(run, 3, seed=0)) and not torch.equal(samples, rows.sample(run, 3, seed=1))
    with pytest.raises(condgen.ConditionError, match="this command takes the conditions of 'left' from its own flags"):
        condgen.SampleRows.from_texts(run, ["label=0", "left=x"], given={"left": lefts})
    with pytest.raises(condgen.ConditionError, match="a condition for 'label' is needed"):
        condgen.SampleRows.from_texts(run, [], given={"left": lefts})
    with pytest.raises(condgen.ArgumentError, match="per_row must be a whole number >= 1, got 0"):
        rows.sample(run, 0)


def test_a_conditioner_picture_is_drawn_only_for_a_picture_and_its_failure_is_one_plugin_error(toy, tmp_path):
    import numpy as np

    run = _left_and_label_run(tmp_path)
    asked = []

    def broken(c):
        asked.append(c)
        raise RuntimeError("no pictures today")

    run.conditioners["left"].condition_picture = broken
    lefts = run.conditioners["left"].condition_from_batch({"image": make_toy_splits().test["image"][:2]})
    array = condgen.SampleFile(tmp_path / "s.npy", 2)
    rows = array.rows(run, ["label=0"], given={"left": lefts})
    array.write(rows.sample(run, 2, seed=0), rows)
    assert np.load(tmp_path / "s.npy").shape == (4, 1, 6, 6) and asked == []  # an array asks for no picture
    picture = condgen.SampleFile(tmp_path / "s.png", 2)
    with pytest.raises(condgen.PluginError, match=r"conditioner 'left''s condition_picture raised RuntimeError: "
                                                  r"no pictures today \(a bug in its plugin\)"):
        picture.write(rows.sample(run, 2, seed=0), picture.rows(run, ["label=0"], given={"left": lefts}))
    assert not (tmp_path / "s.png").exists()


def test_a_sample_file_is_checked_before_a_run_is_loaded(tmp_path):
    from types import SimpleNamespace

    for path, num, message in [
        ("x.jpg", 3, "--out 'x.jpg': the file must end in .png (a picture) or .npy (an array)"),
        ("x.png", 0, "--num must be at least 1, got 0"),
        ("x.png", "3", "--num must be a whole number >= 1, got '3'"),
        ("x.png", 1001, "--out 'x.png': a picture's rows hold at most 1,000 samples, not --num 1001"),
        ("", 3, "--out must name the .png or .npy file to write, got ''"),
    ]:
        with pytest.raises(condgen.CondgenError) as err:
            condgen.SampleFile(path, num)
        assert message in str(err.value), (path, num)
    assert condgen.SampleFile("x.NPY", 1001).num == 1001  # an array has no row limit
    images = SimpleNamespace(model=SimpleNamespace(data_shape=(1, 6, 6)))
    out = condgen.SampleFile(tmp_path / "x.png", 1000)
    out.check(images, 10)
    with pytest.raises(condgen.CondgenError, match="a picture holds at most 10,000 samples, and 11 row.s. of --num "
                       "1000 make 11,000; write --out FILE.npy"):
        out.check(images, 11)
    with pytest.raises(condgen.CondgenError, match=r"this model's data \(5,\) are not images; write --out FILE.npy"):
        out.check(SimpleNamespace(model=SimpleNamespace(data_shape=(5,))), 1)
    condgen.SampleFile(tmp_path / "x.npy", 1000).check(SimpleNamespace(model=SimpleNamespace(data_shape=(5,))), 11)


def test_a_sample_file_writes_an_array_or_a_grid_of_labelled_headed_rows(tmp_path, monkeypatch):
    import numpy as np

    samples, heads = torch.rand(6, 1, 6, 6), torch.rand(2, 1, 6, 6)
    rows = condgen.SampleRows({"label": torch.tensor([0, 1])}, ["label=0", "label=1"], heads, 2)
    condgen.SampleFile(tmp_path / "s.npy", 3).write(samples, rows)
    assert np.array_equal(np.load(tmp_path / "s.npy"), samples.numpy())
    seen = []
    monkeypatch.setattr(grid, "save_grid", lambda images, path, per_row, row_labels=None, row_heads=None:
                        seen.append((images, path, per_row, row_labels, row_heads)))
    condgen.SampleFile(tmp_path / "s.png", 3).write(samples, rows)
    condgen.SampleFile(tmp_path / "v.png", 6).write(samples, condgen.SampleRows({}, [""]))  # no conditioners
    (images, path, per_row, labels, drawn), plain = seen
    assert images is samples and path == tmp_path / "s.png" and per_row == 3
    assert labels == ["label=0", "label=1"] and drawn is heads
    assert plain[2:] == (6, None, None)
