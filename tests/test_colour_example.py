"""The colour-digit example's data maker (examples/colour_digits/make_data.py), on a few fake digits: no MNIST."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "colour_digits"))
import make_data  # noqa: E402


def fake_digits(n: int) -> torch.Tensor:
    """``(n, 28, 28)`` uint8: a ring or a bar of full ink, with grey edges, in MNIST's central 20x20 box."""
    rows, cols = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    radius = ((rows - 13.5) ** 2 + (cols - 13.5) ** 2).sqrt()
    ring = (2.5 - (radius - 7).abs()).clamp(0, 1)
    bar = ((2 - (cols - 13.5).abs()).clamp(0, 1) * ((rows >= 5) & (rows <= 22))).float()
    return (torch.stack([ring if i % 2 else bar for i in range(n)]) * 255).round().to(torch.uint8)


def test_hsv_round_trip() -> None:
    hues = torch.linspace(0, 0.99, 100)
    assert torch.allclose(make_data.rgb_to_hue(make_data.hsv_to_rgb(hues, 0.8, 0.45)), hues, atol=1e-5)
    assert make_data.hsv_to_rgb(torch.tensor(0.0), 1.0, 1.0).tolist() == [1.0, 0.0, 0.0]  # red
    assert make_data.hsv_to_rgb(torch.tensor(1 / 3), 1.0, 1.0).tolist() == pytest.approx([0.0, 1.0, 0.0], abs=1e-6)
    # the measured hue of a red just below 1 is put just below 0, on the line of the data's hues
    assert make_data.linear_hue(torch.tensor([0.95, 0.85, 0.5])).tolist() == pytest.approx([-0.05, 0.85, 0.5])


def test_colours_are_drawn_apart_in_range() -> None:
    fg, bg = make_data.draw_hues(5000, torch.Generator().manual_seed(1))
    for h in (fg, bg):
        assert float(h.min()) >= 0 and float(h.max()) < make_data.HUE_RANGE
    assert float(make_data.hue_gap(fg, bg).min()) >= make_data.MIN_HUE_GAP
    assert float(fg.std()) > 0.2 and float(bg.std()) > 0.2  # spread over the range, not stuck


def test_images_and_measured_hues_recover_the_requested(tmp_path: Path) -> None:
    grey = fake_digits(40)
    split = make_data.make_split(grey, torch.arange(40) % 10, torch.Generator().manual_seed(0))
    images = split["image"]
    assert images.shape == (40, 3, 32, 32) and images.dtype == np.uint8
    assert split["label"].dtype == np.int64 and split["fg_hue"].dtype == np.float32
    x = torch.from_numpy(images)
    fg_rgb, bg_rgb = make_data.colours(torch.from_numpy(split["fg_hue"]), torch.from_numpy(split["bg_hue"]))
    # the frame is the background colour, the ink's core the digit colour (8-bit rounding apart)
    assert torch.allclose(x[:, :, 0, 0].float() / 255, bg_rgb, atol=1 / 255)
    core = torch.stack([x[i, :, 16, 22 if i % 2 else 16] for i in range(40)])  # full ink: the ring's, the bar's
    assert torch.allclose(core.float() / 255, fg_rgb, atol=1 / 255)
    seen = make_data.measure(x)
    for target in make_data.TARGETS:
        asked = torch.from_numpy(split[target])
        assert float((seen[target] - asked).abs().max()) < 0.01, target
        assert float(torch.corrcoef(torch.stack([asked, seen[target]]))[0, 1]) > 0.999
    # a faint digit (every pixel halfway back to the background) still has the digit's hue: the ray from the
    # background through its core leaves the RGB cube at the digit colour; the core's own hue has moved off
    bg = seen["bg_rgb"][:, :, None, None]
    faint = make_data.measure(bg + 0.5 * (x.float() / 255 - bg))
    asked = torch.from_numpy(split["fg_hue"])
    assert float((faint["fg_hue"] - asked).abs().max()) < 0.01
    assert float((faint["fg_core_hue"] - asked).abs().max()) > 0.02
    # the grey level read back is the digit's, padding cropped off
    assert seen["grey"].shape == (40, 1, 28, 28)
    assert float((seen["grey"][:, 0] - grey.float() / 255).abs().mean()) < 0.01
    # a colour the images do not hold is not what is measured: the test can fail
    assert float((seen["fg_hue"] - torch.from_numpy(split["bg_hue"])).abs().min()) > 0.2



def test_the_npz_data_set_reads_the_file(tmp_path: Path) -> None:
    import condgen
    from condgen.data.arrays import load_npz_splits

    split = make_data.make_split(fake_digits(6), torch.arange(6), torch.Generator().manual_seed(0))
    path = make_data.save_npz({"train": split, "test": split}, tmp_path / "colour.npz")
    test = load_npz_splits(condgen.DataConfig(dataset="npz", data_dir=str(path))).test
    assert test["image"].dtype == torch.uint8 and tuple(test["image"].shape) == (6, 3, 32, 32)
    assert test["label"].dtype == torch.int64 and test["fg_hue"].dtype == torch.float32
    assert torch.equal(test["bg_hue"], torch.from_numpy(split["bg_hue"]))
