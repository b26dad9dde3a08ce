"""The image-folder data set on real folders: MNIST digits written as PNG and JPEG, colour images of several
sizes; its layouts, the seeded split, sizes and modes, every bad input as one line, and training through the
command line in grey and in colour."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import condgen
from condgen.cli import main
from condgen.data.folder import ImageFolderOptions, read_image_folder

NAMES = {0: "zero", 1: "one", 2: "two"}


@pytest.fixture(scope="module")
def digits(mnist_dir) -> dict[int, torch.Tensor]:
    """The first 30 real MNIST training images of each of the digits 0, 1, 2: ``{digit: (30, 28, 28) uint8}``."""
    from condgen.data.mnist import read_mnist_dir

    train = read_mnist_dir(mnist_dir).train
    return {d: (train["image"][train["label"] == d][:30, 0] * 255).round().to(torch.uint8) for d in NAMES}


def write(path: Path, pixels: np.ndarray, **save) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **save)
    return path


def digit_folder(root: Path, digits, layout: str = "train-test", suffix: str = ".png") -> Path:
    """``root`` laid out as train/<name>/ (20 a class) and test/<name>/ (10), or one <name>/ folder of 30."""
    for d, images in digits.items():
        for i, image in enumerate(images.numpy()):
            where = (root / ("train" if i < 20 else "test") if layout == "train-test" else root) / NAMES[d]
            write(where / f"{i:03d}{suffix}", image, **({"quality": 95} if suffix == ".jpg" else {}))
    return root


def test_a_train_and_test_layout_reads_the_pixels_exactly_with_the_folder_names(tmp_path, digits):
    data = read_image_folder(digit_folder(tmp_path / "d", digits))
    assert data.classes == {"label": ["one", "two", "zero"]}  # sorted, as torchvision's ImageFolder does
    assert data.train["image"].shape == (60, 1, 28, 28) and data.test["image"].shape == (30, 1, 28, 28)
    assert data.train["image"].dtype == torch.float32 and data.train["label"].tolist() == [0] * 20 + [1] * 20 + [2] * 20
    # PNG is lossless: the pixels are MNIST's, class by class in name order (one, two, zero)
    expected = torch.cat([digits[1][:20], digits[2][:20], digits[0][:20]]).float().div(255).unsqueeze(1)
    assert torch.equal(data.train["image"], expected)
    jpeg = read_image_folder(digit_folder(tmp_path / "j", digits, suffix=".jpg"))
    assert (jpeg.train["image"] - expected).abs().mean() < 0.02  # JPEG: close, not equal


def test_one_folder_is_split_by_a_seeded_fraction_of_each_class(tmp_path, digits):
    root = digit_folder(tmp_path / "d", digits, layout="one")
    options = ImageFolderOptions(test_fraction=0.2, split_seed=7)
    a, b = read_image_folder(root, options), read_image_folder(root, options)
    assert a.test["label"].tolist() == [0] * 6 + [1] * 6 + [2] * 6 and len(a.train["label"]) == 72
    assert torch.equal(a.test["image"], b.test["image"])  # the same seed, the same split
    other = read_image_folder(root, ImageFolderOptions(test_fraction=0.2, split_seed=8))
    assert not torch.equal(a.test["image"], other.test["image"])
    # every image is in exactly one split
    every = {tuple(x.flatten().tolist()) for x in torch.cat([a.train["image"], a.test["image"]])}
    assert len(every) == 90


def colour_folder(root: Path) -> Path:
    """Two classes of colour images of several sizes: red-ish squares and blue-ish stripes."""
    gen = np.random.default_rng(0)
    for i in range(12):
        h, w = (40, 50) if i % 2 else (30, 30)
        red = np.zeros((h, w, 3), np.uint8)
        red[..., 0] = 200 + gen.integers(0, 55, (h, w))
        blue = np.zeros((h, w, 3), np.uint8)
        blue[::2, :, 2] = 200 + gen.integers(0, 55, (len(range(0, h, 2)), w))
        for name, pixels in (("red", red), ("blue", blue)):
            write(root / ("train" if i < 9 else "test") / name / f"{i}.png", pixels)
    return root


@pytest.mark.parametrize("method", ["resize", "resize-crop", "crop"])
def test_colour_images_of_several_sizes_are_made_one_size(tmp_path, method):
    root = colour_folder(tmp_path / "c")
    data = read_image_folder(root, ImageFolderOptions(size=[16, 24], method=method))
    assert data.train["image"].shape == (18, 3, 16, 24) and data.classes["label"] == ["blue", "red"]
    red = data.train["image"][data.train["label"] == 1]
    assert red[:, 0].mean() > 0.75 and red[:, 1:].max() == 0  # red stays red, whatever the method
    side = 40 if method != "crop" else 28  # a crop cannot make a 30x30 image 40 high
    tall = read_image_folder(root, ImageFolderOptions(size=[side, 10], method=method, mode="grey"))
    assert tall.train["image"].shape == (18, 1, side, 10)  # non-square, and grey from colour


@pytest.mark.parametrize("make, options, message", [
    (lambda root: root.mkdir(), {}, "has no class subfolders; lay it out as DIR/<class>/<image>"),
    (lambda root: write(root / "a.png", np.zeros((4, 4), np.uint8)), {},
     "has no class subfolders (it holds 1 image(s) directly: put them in one subfolder per class"),
    (lambda root: ((root / "cats").mkdir(parents=True), (root / "cats" / "notes.txt").write_text("x")), {},
     "class folder '{root}/cats' holds no images"),
    (lambda root: colour_folder(root), {}, "holds images of several sizes (0.png is 30x30, 1.png 40x50); make them "
                                           "one with --data-option 'size=[H,W]'"),
    (lambda root: colour_folder(root), {"size": [50, 60], "method": "crop"},
     "is 30x30, smaller than size [50, 60], which method crop cannot make; use --data-option method=resize-crop"),
])
def test_a_bad_folder_is_one_data_error_naming_it(tmp_path, make, options, message):
    root = tmp_path / "f"
    make(root)
    with pytest.raises(condgen.DataError) as err:
        read_image_folder(root, ImageFolderOptions(**options))
    assert message.format(root=root) in str(err.value) and "\n" not in str(err.value)


def test_bad_files_mixed_modes_and_shared_images_are_refused_or_skipped(tmp_path, digits):
    root = digit_folder(tmp_path / "d", digits)
    (root / "train" / "one" / "broken.png").write_text("not an image")
    good = (root / "train" / "two" / "000.png").read_bytes()
    (root / "train" / "two" / "cut.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(condgen.DataError, match=r"train/one/broken.png' is not a readable image \(UnidentifiedImage"
                                                r"Error: .*\), and 1 more file\(s\) are not either; replace or remove "
                                                r"it, or skip such files with --data-option bad_files=skip"):
        read_image_folder(root)
    with pytest.warns(UserWarning, match=r"skipped 2 file\(s\) that are not readable images"):
        data = read_image_folder(root, ImageFolderOptions(bad_files="skip"))
    assert data.train["image"].shape[0] == 60
    write(root / "train" / "one" / "colour.png", np.zeros((28, 28, 3), np.uint8))
    with pytest.raises(condgen.DataError, match=r"mixes greyscale and colour images \(000.png is L, colour.png is "
                                                r"RGB\); choose one with --data-option mode=grey or mode=rgb"):
        read_image_folder(root, ImageFolderOptions(bad_files="skip"))
    with pytest.warns(UserWarning, match="skipped 2 file"):
        assert read_image_folder(root, ImageFolderOptions(bad_files="skip", mode="rgb")).train["image"].shape[1] == 3
    (root / "train" / "one" / "colour.png").unlink()
    (root / "test" / "zero" / "copy.png").write_bytes((root / "train" / "zero" / "003.png").read_bytes())
    with pytest.raises(condgen.DataError, match=r"the test image '.*test/zero/copy.png' is also a training image "
                                                r"\('.*train/zero/003.png'\), and so are 0 more"):
        read_image_folder(root, ImageFolderOptions(bad_files="skip"))


def test_its_options_are_checked_when_the_config_is_parsed(capsys, tmp_path):
    for flags, message in [(["--data-option", "size=[0,4]"], "data.options.size = [0, 4]: size must be [H, W], two "
                                                              "whole numbers from 1 to 4096"),
                           (["--data-option", "method=stretch"], "data.options.method = 'stretch': Input should be "
                                                                 "'resize', 'crop' or 'resize-crop'"),
                           ([], "dataset 'image-folder' needs --data-dir DIR")]:
        assert main(["train", "--dataset", "image-folder", "--conditioner", "label", *flags, "--out",
                     str(tmp_path / "run")]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "run").exists()


def test_grey_and_colour_folders_train_and_sample_through_the_command_line(tmp_path, digits, capsys):
    root = digit_folder(tmp_path / "d", digits)
    run = tmp_path / "run"
    assert main(["train", "--dataset", "image-folder", "--data-dir", str(root), "--conditioner", "label:num_classes=3",
                 "--latent-dim", "2", "--hidden", "32", "--epochs", "1", "--device", "cpu", "--out", str(run)]) == 0
    stored = json.loads((run / "config.json").read_text())["data"]
    assert stored["options"] == {"size": None, "method": "resize", "mode": "auto", "test_fraction": 0.1,
                                 "split_seed": 0, "bad_files": "refuse"}  # stored with its defaults filled in
    assert (run / "samples.png").exists() and main(["sample", str(run), "--condition", "label=1", "--num", "4",
                                                     "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (4, 1, 28, 28)

    colour = tmp_path / "colour-run"
    assert main(["train", "--dataset", "image-folder", "--data-dir", str(colour_folder(tmp_path / "c")),
                 "--data-option", "size=[12,12]", "--conditioner", "label:num_classes=2", "--latent-dim", "2",
                 "--hidden", "32", "--epochs", "1", "--device", "cpu", "--out", str(colour)]) == 0
    assert main(["sample", str(colour), "--condition", "label=0,1", "--num", "3", "--out", str(tmp_path / "c.png")]) == 0
    picture = np.asarray(Image.open(tmp_path / "c.png").convert("RGB")).astype(int)
    assert (picture[..., 0] != picture[..., 2]).mean() > 0.05  # a colour picture, not a grey one
    assert main(["sample", str(colour), "--condition", "label=1", "--num", "2", "--out", str(tmp_path / "c.npy")]) == 0
    assert np.load(tmp_path / "c.npy").shape == (2, 3, 12, 12)
    capsys.readouterr()
