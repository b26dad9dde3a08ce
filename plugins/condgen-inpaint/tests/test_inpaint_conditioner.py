"""The inpaint conditioner: conditions, what they give, bad inputs, and the command on real MNIST."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch
from condgen_inpaint import InpaintConditioner, inpaint, parse_mask_spec, quadrant_mask
from condgen_inpaint.conditioner import DEFAULT_MASKS

import condgen
from condgen import ConditionError, ConfigError
from helpers import condgen_cli


@pytest.fixture
def cond() -> InpaintConditioner:
    c = InpaintConditioner()
    c.fit({"image": torch.rand(4, 1, 8, 8)})
    return c


def test_a_condition_is_the_observed_image_and_its_mask(cond):
    x = torch.rand(2, 1, 8, 8)
    m = quadrant_mask(2, 8, 8, 2)
    c = cond.condition(x, m)
    assert c.shape == (2, 2, 8, 8) and cond.condition_shape == (2, 8, 8)
    assert torch.equal(c[:, 0], (x * m)[:, 0]) and torch.equal(c[:, 1], m[:, 0])
    assert torch.equal(cond.given_part(c), m) and torch.equal(cond.given_values(c), x * m)
    assert cond.describe_condition(c[0]) == "50% observed"
    picture = cond.condition_picture(c[0])
    assert torch.equal(picture[:, :, :4], x[0, :, :, :4]) and (picture[:, :, 4:] == 0.5).all()


def test_training_masks_are_fresh_per_batch_and_seeded(cond):
    batch = {"image": torch.rand(64, 1, 8, 8)}
    a = cond.condition_from_batch(batch, torch.Generator().manual_seed(1))
    b = cond.condition_from_batch(batch, torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(1)
    c1, c2 = cond.condition_from_batch(batch, gen), cond.condition_from_batch(batch, gen)
    assert torch.equal(a, b) and not torch.equal(c1[:, 1], c2[:, 1])
    observed = a[:, 1].sum((1, 2))
    assert ((observed > 0) & (observed < 64)).all()  # every item sees something and misses something
    assert len(a[:, 1].unique(dim=0)) > 3  # a mask per item, not one per batch


def test_the_default_mix_covers_quadrants_halves_the_centre_and_rectangles():
    cond = InpaintConditioner()
    assert cond.config.masks == DEFAULT_MASKS and cond.config.weights is None
    cond.fit({"image": torch.rand(1, 1, 28, 28)})
    masks = cond.condition_from_batch({"image": torch.rand(400, 1, 28, 28)}, torch.Generator().manual_seed(0))[:, 1]
    fixed = {name: parse_mask_spec(name).sample(1, 28, 28)[0, 0] for name in
             ["quadrants:1", "quadrants:2", "quadrants:3", "top-half", "bottom-half", "left-half", "right-half", "centre"]}
    seen: Counter[str] = Counter()
    rects = []
    for m in masks:
        names = [name for name, f in fixed.items() if torch.equal(m, f)]  # quadrants:2 is also the right half
        if not names:  # then it must be a random rectangle: its missing pixels fill their bounding box
            rows, cols = (m == 0).any(1).nonzero().squeeze(1), (m == 0).any(0).nonzero().squeeze(1)
            assert (m[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] == 0).all()
            names = ["random-rect"]
            rects.append(m)
        seen.update(names)
    assert set(seen) == {*fixed, "random-rect"}
    assert all(n >= 25 for n in seen.values()), seen  # 8 kinds equally often: about 50 each of 400
    assert len(torch.stack(rects).unique(dim=0)) > len(rects) // 2  # rectangles of many sizes and places


def test_python_values_become_conditions(cond):
    x = torch.rand(8, 8)
    by_name = cond.conditions_from_value({"image": x, "mask": "quadrants:3"})
    assert by_name.shape == (1, 2, 8, 8) and by_name[0, 1].sum() == 48
    stack = cond.conditions_from_value((torch.rand(5, 1, 8, 8), torch.ones(8, 8) - torch.eye(8)))
    assert stack.shape == (5, 2, 8, 8)
    assert torch.equal(cond.conditions_from_value(stack), stack)


@pytest.mark.parametrize(
    "image, mask, message",
    [
        (torch.rand(7, 7), "quadrants:1", "the image has shape (1, 1, 7, 7); this model needs (H, W) = (8, 8)"),
        (torch.rand(8, 8) + 1, "quadrants:1", "the image's values must lie in [0, 1]"),
        (torch.rand(8, 8), torch.full((8, 8), 0.5), "0"),
        (torch.rand(8, 8), torch.ones(8, 8), "observe"),
        (torch.rand(8, 8), torch.zeros(8, 8), "observe"),
        (torch.rand(8, 8), torch.ones(6, 6), "6"),
        (torch.rand(8, 8), "quadrants:4", "quadrants K = 4 is not allowed"),
        (torch.rand(8, 8), "upside-down", "unknown mask name 'upside-down'"),
    ],
)
def test_bad_images_and_masks_are_condition_errors(cond, image, mask, message):
    with pytest.raises(ConditionError) as err:
        cond.conditions_from_value({"image": image, "mask": mask})
    assert message in str(err.value)


def test_bad_conditions_and_configs(cond):
    with pytest.raises(ConditionError, match=r"must be float tensors \(B, 2, 8, 8\)"):
        cond.check_condition(torch.rand(3, 1, 8, 8))
    bad = torch.cat([torch.rand(1, 1, 8, 8), torch.full((1, 1, 8, 8), 0.3)], 1)
    with pytest.raises(ConditionError, match="mask channel must hold only 0"):
        cond.check_condition(bad)
    with pytest.raises(ConditionError, match="give them with `condgen inpaint RUN_DIR"):
        cond.parse_condition("digit.png")
    with pytest.raises(ConfigError, match="masks"):
        InpaintConditioner({"masks": ["quadrants:5"]})
    with pytest.raises(ConfigError, match=r"hidden = 64 apply to embedding mlp or conv; a spatial embedding is the "
                                          r"condition itself"):
        InpaintConditioner({"embedding": "spatial", "hidden": 64})


def test_a_spatial_embedding_is_the_condition_as_maps_and_its_config_round_trips(cond):
    spatial = InpaintConditioner({"embedding": "spatial"})
    spatial.image_shape = (1, 8, 8)
    assert (spatial.embed_dim, spatial.spatial_size, spatial.embed_shape) == (2, (8, 8), (2, 8, 8))
    c = spatial.condition(torch.rand(3, 1, 8, 8), torch.ones(3, 1, 8, 8))
    assert torch.equal(spatial.build_embedding()(c), c)
    # a stored config holds every default (hidden 512, embed_dim 256): it loads again, for resume and load_run
    stored = spatial.config.model_dump(mode="json")
    assert (stored["hidden"], stored["embed_dim"]) == (512, 256)
    assert InpaintConditioner(stored).config == spatial.config


def test_only_missing_pixels_are_scored_by_hand(toy, tmp_path):
    config = condgen.RunConfig.parse({"conditioners": [{"name": "inpaint", "config": {"hidden": 8, "embed_dim": 4}}],
                                      "model": {"latent_dim": 0, "hidden": [8]}, "data": {"dataset": "toy"},
                                      "train": {"epochs": 1, "device": "cpu"}})
    run = condgen.train(config, tmp_path / "run", pictures=False, log=lambda s: None)
    x = torch.rand(3, 1, 6, 6).round()
    m = quadrant_mask(3, 6, 6, 1)
    conds = {"inpaint": run.conditioners["inpaint"].condition(x, m)}
    terms = run.terms({"image": x}, conds, objective=False)
    logits = run.model.decode(torch.zeros(3, 0), run.model.embed(conds, 3)).reshape(3, 1, 6, 6)
    by_hand = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none") * (1 - m)
    assert torch.allclose(terms["recon_nll"], by_hand.sum((1, 2, 3)), atol=1e-5)
    # observed pixels are kept exactly in completions
    out = inpaint(run, x, m, num=2, seed=0)
    assert out.shape == (6, 1, 6, 6) and not hasattr(run, "inpaint")  # a function of the plugin, not a run method
    assert torch.equal(out[m.repeat_interleave(2, 0).bool()], x.repeat_interleave(2, 0)[m.repeat_interleave(2, 0).bool()])


def test_inpainting_a_run_with_another_conditioner_takes_its_value(toy, tmp_path):
    config = condgen.RunConfig.parse({
        "conditioners": [{"name": "inpaint", "config": {"hidden": 8, "embed_dim": 4}},
                         {"name": "label", "config": {"num_classes": 2}}],
        "model": {"latent_dim": 2, "hidden": [16]}, "data": {"dataset": "toy"},
        "train": {"epochs": 1, "device": "cpu"}})
    run = condgen.train(config, tmp_path / "run", pictures=False, log=lambda s: None)
    x, m = torch.rand(2, 1, 6, 6), quadrant_mask(2, 6, 6, 2)
    out = inpaint(run, x, m, num=3, seed=1, conditions={"label": 1})
    same = run.sample({"inpaint": run.conditioners["inpaint"].condition(x, m).repeat_interleave(3, 0), "label": 1},
                      num=6, seed=1)
    assert out.shape == (6, 1, 6, 6) and torch.equal(out, same)
    assert not torch.equal(out, inpaint(run, x, m, num=3, seed=1, conditions={"label": 0}))
    with pytest.raises(ConditionError, match="a condition for 'label' is needed"):
        inpaint(run, x, m, num=3)
    with pytest.raises(condgen.CondgenError, match="the image and mask are given on their own"):
        inpaint(run, x, m, conditions={"inpaint": x, "label": 1})
    with pytest.raises(condgen.ArgumentError, match="num must be a whole number >= 1, got 0"):
        inpaint(run, x, m, num=0, conditions={"label": 1})
    label_run = condgen.train(condgen.RunConfig.parse({**config.model_dump(), "conditioners": [config.conditioners[1]]}),
                              tmp_path / "label", pictures=False, log=lambda s: None)
    with pytest.raises(condgen.CondgenError, match=r"inpainting needs a run conditioned on 'inpaint'; this one "
                       r"is conditioned on \['label'\]"):
        inpaint(label_run, x, m)


def test_the_command_writes_what_inpaint_gives_through_condgens_sample_file(toy, tmp_path, capsys):
    from condgen.cli import main

    config = condgen.RunConfig.parse({
        "conditioners": [{"name": "inpaint", "config": {"hidden": 8, "embed_dim": 4}},
                         {"name": "label", "config": {"num_classes": 2}}],
        "model": {"latent_dim": 2, "hidden": [16]}, "data": {"dataset": "toy"},
        "train": {"epochs": 1, "device": "cpu"}})
    condgen.train(config, tmp_path / "run", pictures=False, log=lambda s: None)
    run = condgen.load_run(tmp_path / "run", device="cpu")
    x = torch.rand(2, 1, 6, 6)
    np.save(tmp_path / "x.npy", x.numpy())
    common = ["inpaint", str(tmp_path / "run"), "--image", str(tmp_path / "x.npy"), "--mask", "quadrants:2",
              "--num", "3", "--device", "cpu"]
    assert main([*common, "--condition", "label=1", "--out", str(tmp_path / "one.npy")]) == 0
    same = inpaint(run, x, "quadrants:2", 3, seed=0, conditions={"label": 1})
    assert np.array_equal(np.load(tmp_path / "one.npy"), same.numpy())  # the command and the function agree
    # several values of another conditioner: a row for each, per image (the run's order: inpaint, then label)
    assert main([*common, "--condition", "label=0,1", "--out", str(tmp_path / "two.npy")]) == 0
    two = np.load(tmp_path / "two.npy")
    observed = quadrant_mask(1, 6, 6, 2)[0].bool().numpy()  # the left half
    assert two.shape == (12, 1, 6, 6)
    for row, image in enumerate([0, 0, 1, 1]):
        assert np.array_equal(two[3 * row : 3 * row + 3][:, observed], np.broadcast_to(
            x[image].numpy()[observed], (3, int(observed.sum())))), row
    assert main([*common, "--condition", "label=0,1", "--out", str(tmp_path / "two.png")]) == 0
    assert (tmp_path / "two.png").stat().st_size > 1000
    capsys.readouterr()
    for args, message in [
        (["--condition", "label=1", "--condition", "inpaint=x"], "this command takes the conditions of 'inpaint' from its own"),
        (["--condition", "label=1", "--num", "0"], "--num must be at least 1, got 0"),
    ]:
        assert main([*common, *args, "--out", str(tmp_path / "bad.npy")]) == 2
        lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert len(lines) == 1 and message in lines[0], lines
    assert main(["inpaint", str(tmp_path / "nowhere"), "--image", "x", "--mask", "x", "--out", "x.jpg"]) == 2
    assert "must end in .png" in capsys.readouterr().err  # checked before the run is looked for


def test_train_inpaint_and_evaluate_on_real_mnist(mnist_dir, tmp_path):
    run = tmp_path / "run"
    condgen_cli("train", "--conditioner", "inpaint", "--latent-dim", "8", "--hidden", "256", "--epochs", "1",
                "--data-dir", str(mnist_dir), "--train-limit", "3000", "--test-limit", "300", "--out", str(run))
    assert (run / "samples.png").stat().st_size > 10_000
    from condgen.data.mnist import read_mnist_dir

    digit = read_mnist_dir(mnist_dir).test["image"][0, 0].numpy()
    np.save(tmp_path / "digit.npy", digit)
    condgen_cli("inpaint", str(run), "--image", str(tmp_path / "digit.npy"), "--mask", "bottom-half", "--num", "5",
                "--out", str(tmp_path / "c.npy"))
    completions = np.load(tmp_path / "c.npy")
    assert completions.shape == (5, 1, 28, 28)
    assert np.array_equal(completions[:, 0, :14], np.broadcast_to(digit[:14], (5, 14, 28)))  # kept exactly
    condgen_cli("inpaint", str(run), "--image", str(tmp_path / "digit.npy"), "--mask", "quadrants:1",
                "--out", str(tmp_path / "c.png"))
    assert (tmp_path / "c.png").stat().st_size > 5_000
    result = json.loads(condgen_cli("evaluate", str(run), "--samples", "10", "--json").stdout)
    assert result["test_is_nll"] < result["test_neg_elbo"] < 200  # nats over the missing pixels only
    for args, message in [
        (["--mask", "quadrants:7"], "quadrants K = 7 is not allowed"),
        (["--mask", str(tmp_path / "nope.png")], "no such file"),
        (["--mask", "bottom-half", "--out", str(tmp_path / "c.jpg")], "must end in .png"),
        (["--mask", "bottom-half", "--condition", "label=3"], "this model has no conditioner 'label'"),
        (["--mask", "bottom-half", "--condition", "label"], "must look like NAME=VALUE"),
    ]:
        args = args if "--out" in args else [*args, "--out", str(tmp_path / "x.npy")]
        bad = condgen_cli("inpaint", str(run), "--image", str(tmp_path / "digit.npy"), *args, ok=False)
        lines = [ln for ln in bad.stderr.splitlines() if ln.strip()]
        assert bad.returncode == 2 and len(lines) == 1 and message in lines[0], bad.stderr
