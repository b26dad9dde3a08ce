"""The image-folder data set on real folders: MNIST digits written as PNG and JPEG, colour images of several
sizes; its layouts, the seeded split, sizes and modes, every bad input as one line, and training through the
command line in grey and in colour."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import condgen
from condgen.cli import main
from condgen.data.folder import ImageFolderOptions, read_image_folder

NAMES = {0: "zero", 1: "one", 2: "two"}


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
    assert data.train["image"].dtype == torch.uint8 and torch.bincount(data.train["label"]).tolist() == [20, 20, 20]
    # the classes are mixed, so the first items (--train-limit, the pictures) are of every class
    assert set(data.limited(9, 9).train["label"].tolist()) == {0, 1, 2}
    # PNG is lossless: each class's pixels are its MNIST digits' levels (one, two, zero: the names, sorted)
    for index, digit in enumerate((1, 2, 0)):
        got = sorted(map(bytes, data.train["image"][data.train["label"] == index].flatten(1).numpy()))
        assert got == sorted(map(bytes, digits[digit][:20].flatten(1).numpy())), digit
    jpeg = read_image_folder(digit_folder(tmp_path / "j", digits, suffix=".jpg"))
    order = torch.argsort(data.train["label"] * 1000 + torch.arange(60))  # same files, same order per class
    assert torch.equal(jpeg.train["label"], data.train["label"])  # one seed: one order
    diff = (jpeg.train["image"].float() - data.train["image"].float()).abs()[order].mean()
    assert 0 < diff < 0.02 * 255  # JPEG: close, not equal


def test_one_folder_is_split_by_a_seeded_fraction_of_each_class(tmp_path, digits):
    root = digit_folder(tmp_path / "d", digits, layout="one")
    options = ImageFolderOptions(test_fraction=0.2, split_seed=7)
    a, b = read_image_folder(root, options), read_image_folder(root, options)
    held = torch.bincount(a.test["label"]).tolist()
    assert len(held) == 3 and all(2 <= h <= 11 for h in held) and len(a.train["label"]) + sum(held) == 90
    assert torch.equal(a.test["image"], b.test["image"])  # the same seed, the same split
    other = read_image_folder(root, ImageFolderOptions(test_fraction=0.2, split_seed=8))
    assert not torch.equal(a.test["image"], other.test["image"])
    # every image is in exactly one split
    tests = {bytes(x.numpy()) for x in a.test["image"]}
    every = {bytes(x.numpy()) for x in torch.cat([a.train["image"], a.test["image"]])}
    assert len(every) == 90
    # a file's split is its own: more files, or another class, move none of the others
    write(root / "zero" / "new.png", digits[0][29].numpy()[::-1].copy())
    write(root / "aaa" / "0.png", digits[1][0].numpy().T.copy())
    write(root / "aaa" / "1.png", digits[2][0].numpy().T.copy())
    grown = read_image_folder(root, options)
    assert tests <= {bytes(x.numpy()) for x in grown.test["image"]}
    assert grown.classes["label"] == ["aaa", "one", "two", "zero"]


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
    assert red[:, 0].float().mean() > 0.75 * 255 and red[:, 1:].max() == 0  # red stays red, whatever the method
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
                                                r"\('.*train/zero/003.png'\); a test split must hold images the model "
                                                r"never trained on: remove one of each copy"):
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
                                 "split_seed": 0, "bad_files": "refuse", "attributes": None, "file_column": "file",
                                 "missing": "refuse", "attribute_types": {}, "background": "white", "cache": True,
                                 "keep": "auto"}  # stored with its defaults filled in
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


def write_csv(path: Path, rows: list[list[object]]) -> Path:
    path.write_text("\n".join(",".join(str(v) for v in row) for row in rows) + "\n")
    return path


def test_a_csv_beside_the_images_adds_a_field_for_each_column(tmp_path, digits):
    root = digit_folder(tmp_path / "d", digits)
    images = sorted(root.rglob("*.png"))
    ink = {p: float(np.asarray(Image.open(p)).mean() / 255) for p in images}
    rows = [["file", "ink", "stroke"]]
    for p in images:  # by path under the folder (the flat test below names images by file name alone)
        rows.append([p.relative_to(root).as_posix(), f"{ink[p]:.6f}", "thick" if ink[p] > 0.15 else "thin"])
    write_csv(root / "attributes.csv", rows)
    data = read_image_folder(root, ImageFolderOptions(attributes="attributes.csv"))
    assert data.train["ink"].dtype == torch.float32 and data.train["stroke"].dtype == torch.int64
    # each image's own values: the ink column is the mean of its pixels
    assert torch.allclose(data.train["ink"], data.train["image"].float().div(255).mean((1, 2, 3)), atol=1e-5)
    assert data.classes == {"label": ["one", "two", "zero"], "stroke": ["thick", "thin"]}
    thick = data.train["ink"] > 0.15
    assert torch.equal(data.train["stroke"], (~thick).long())
    # declared a category, numbers are class names too
    typed = read_image_folder(root, ImageFolderOptions(attributes="attributes.csv", attribute_types={"ink": "category"}))
    assert typed.train["ink"].dtype == torch.int64 and len(typed.classes["ink"]) == 90


def test_a_flat_folder_with_a_csv_needs_no_class_subfolders(tmp_path, digits):
    root = tmp_path / "flat"
    rows = [["name", "digit", "odd"]]
    for d, images in digits.items():
        for i, image in enumerate(images[:10].numpy()):
            write(root / f"{d}-{i}.png", image)
            rows.append([f"{d}-{i}.png", NAMES[d], d % 2])
    write_csv(root / "digits.csv", rows)
    data = read_image_folder(root, ImageFolderOptions(attributes=str(root / "digits.csv"), file_column="name"))
    assert "label" not in data.train and data.classes == {"digit": ["one", "two", "zero"]}
    assert data.train["image"].shape[0] + data.test["image"].shape[0] == 30
    assert sorted(data.train) == ["digit", "image", "odd"] and data.train["odd"].dtype == torch.float32


@pytest.mark.parametrize("rows, options, message", [
    ([["name", "ink"]], {}, "has no column 'file' (its columns: name, ink); name the column of file names with "
                            "--data-option file_column=NAME"),
    ([["file", "ink"], ["zero/000.png", "0.1"], ["zero/000.png", "0.2"]], {},
     "lists file 'zero/000.png' twice (rows 2 and 3); give each file one row"),
    ([["file", "ink"], ["zero/nine.png", "0.1"]], {}, "row 2 names 'zero/nine.png', which is not an image of"),
    ([["file", "ink"], ["zero/000.png", "0.1"]], {}, "has no row in attributes CSV"),
    ("dark", {"attribute_types": {"ink": "number"}}, "column 'ink': 'dark' is not a finite number, which the column "
                                                     "is declared to hold"),
    ("", {}, "column 'ink' is empty; give every file a value"),
    ([["file", "label"], ["zero/000.png", "3"]], {}, "has a column 'label', a name the data set gives a field of its own"),
    ([["file", "ink"]], {"attribute_types": {"colour": "category"}}, "attribute_types names column 'colour', which "
                                                                      "attributes CSV"),
])
def test_a_bad_csv_is_one_data_error_naming_the_row_and_column(tmp_path, digits, rows, options, message):
    small = {d: images[:4] for d, images in digits.items()}
    root = digit_folder(tmp_path / "d", small, layout="one")
    if isinstance(rows, str):  # every image has a row, and the third's ink is this
        cell = rows
        rows = [["file", "ink"]] + [[p.relative_to(root).as_posix(), "0.1"] for p in sorted(root.rglob("*.png"))]
        rows[3][1] = cell
    write_csv(root / "a.csv", rows)
    with pytest.raises(condgen.DataError) as err:
        read_image_folder(root, ImageFolderOptions(attributes="a.csv", **options))
    assert message in str(err.value), str(err.value)


def test_csv_attributes_condition_a_model_through_the_command_line(tmp_path, digits, capsys):
    root = digit_folder(tmp_path / "d", digits)
    rows = [["file", "ink", "stroke"]]
    for p in sorted(root.rglob("*.png")):
        ink = float(np.asarray(Image.open(p)).mean() / 255)
        rows.append([p.relative_to(root).as_posix(), f"{ink:.5f}", "thick" if ink > 0.15 else "thin"])
    write_csv(root / "attributes.csv", rows)
    run = tmp_path / "run"
    assert main(["train", "--dataset", "image-folder", "--data-dir", str(root), "--data-option",
                 "attributes=attributes.csv", "--conditioner", "label:field=stroke,num_classes=2", "--conditioner",
                 "regression:targets=ink", "--latent-dim", "2", "--hidden", "32", "--epochs", "1", "--device", "cpu",
                 "--no-pictures", "--out", str(run)]) == 0, capsys.readouterr().err
    assert main(["sample", str(run), "--condition", "label=thick,thin", "--condition", "regression=ink:0.1",
                 "--num", "2", "--out", str(tmp_path / "s.png")]) == 0
    assert condgen.load_run(run).conditioners["label"].describe_condition(torch.tensor(1)) == "thin"


def test_numbered_class_folders_are_in_number_order_and_train_and_test_must_match(tmp_path, digits):
    root = tmp_path / "n"
    for k in range(12):
        for split in ("train", "test"):
            write(root / split / str(k) / "a.png", digits[k % 3][k + (split == "test") * 12].numpy())
    data = read_image_folder(root)
    assert data.classes["label"] == [str(k) for k in range(12)]  # folder 2 is class 2, not the 5th name as text
    other = tmp_path / "o"
    write(other / "train" / "a" / "0.png", np.zeros((8, 8), np.uint8))
    write(other / "test" / "a" / "0.png", np.full((6, 6), 9, np.uint8))
    with pytest.raises(condgen.DataError, match=r"holds images of several sizes \(0.png is 8x8, 0.png 6x6\)"):
        read_image_folder(other)  # the splits are one data set: a model cannot take two sizes
    (other / "test" / "a" / "0.png").unlink()
    write(other / "test" / "a" / "0.png", np.full((8, 8, 3), 9, np.uint8))
    with pytest.raises(condgen.DataError, match="mixes greyscale and colour images"):
        read_image_folder(other)


def test_16_bit_and_float_images_are_scaled_not_clipped_and_a_val_folder_is_explained(tmp_path):
    root = tmp_path / "deep"
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)  # 0 .. 63,000 of 65,535
    for k in range(2):  # each file its own (a test image may not be a training image)
        Image.fromarray(ramp + k).save(write_dir(root / "train" / "a") / f"{k}.png")
        Image.fromarray(ramp + 2 + k).save(write_dir(root / "test" / "a") / f"{k}.png")
    data = read_image_folder(root)
    assert data.train["image"].dtype == torch.uint8
    assert data.train["image"][0, 0].flatten()[[0, 1, 63]].tolist() == [0, 4, 245]  # 1001 / 257 ≈ 4; 63000 / 257 ≈ 245
    tiff = tmp_path / "float"
    Image.fromarray(np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4), mode="F").save(
        write_dir(tiff / "a") / "0.tif")
    Image.fromarray(np.full((4, 4), 0.5, np.float32), mode="F").save(write_dir(tiff / "a") / "1.tif")
    assert read_image_folder(tiff).train["image"].max() > 100  # not 0 or 1 out of 255
    val = tmp_path / "val"
    write(val / "train" / "a" / "0.png", np.zeros((4, 4), np.uint8))
    write(val / "val" / "a" / "0.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(condgen.DataError, match=r"class folder '.*/train' holds folders, not images; .* \(a validation "
                                                r"folder is the test split: rename it test/\)"):
        read_image_folder(val)


def write_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_a_run_refuses_to_resume_or_evaluate_on_data_whose_classes_changed(tmp_path, digits, capsys):
    root = digit_folder(tmp_path / "d", digits)
    run = tmp_path / "run"
    train = ["train", "--dataset", "image-folder", "--data-dir", str(root), "--conditioner", "label:num_classes=3",
             "--latent-dim", "2", "--hidden", "16", "--epochs", "1", "--device", "cpu", "--no-pictures"]
    assert main([*train, "--out", str(run)]) == 0
    assert condgen.load_run(run).classes == {"label": ["one", "two", "zero"]}  # kept in the checkpoint
    assert "test_neg_elbo" in condgen.evaluate(condgen.load_run(run), samples=0)
    (root / "train" / "zero").rename(root / "train" / "nought")
    (root / "test" / "zero").rename(root / "test" / "nought")
    message = ("names the classes of field 'label' ['nought', 'one', 'two'], but this run was trained with ['one', "
               "'two', 'zero']: its class numbers would mean other classes")
    with pytest.raises(condgen.DataError, match=re.escape(message)):
        condgen.evaluate(condgen.load_run(run), samples=0)
    assert main(["train", "--resume", "--epochs", "2", "--out", str(run)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("background, level", [("white", 255), ("black", 0)])
def test_transparent_pixels_are_laid_over_the_background_not_dropped(tmp_path, background, level):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = (10, 200, 30)  # colour under the transparent pixels: what dropping the alpha would show
    rgba[:2, :, 3] = 255  # the top half opaque, the bottom half transparent
    rgba[1, 0] = (255, 0, 0, 128)  # one red pixel half transparent
    la = np.zeros((4, 4, 2), np.uint8)
    la[..., 0], la[:, :2, 1] = 90, 255  # grey with alpha: the left half opaque
    rgba_test, la_test = rgba.copy(), la.copy()
    rgba_test[0, 0, 0], la_test[0, 0, 0] = 11, 91  # the test images differ from the training ones in one pixel
    for split, colour, grey in (("train", rgba, la), ("test", rgba_test, la_test)):
        write(tmp_path / "rgb" / split / "a" / "0.png", colour)
        write(tmp_path / "grey" / split / "a" / "0.png", grey)
    image = read_image_folder(tmp_path / "rgb", ImageFolderOptions(background=background)).train["image"][0]
    assert image[:, 0, 0].tolist() == [10, 200, 30]  # opaque: as it is
    assert image[:, 3, 0].tolist() == [level] * 3  # transparent: the background
    half = (level * 127) / 255  # the half transparent red: 128/255 of red over 127/255 of the background
    assert torch.allclose(image[:, 1, 0].float(), torch.tensor([(255 * 128 + level * 127) / 255, half, half]), atol=1)
    grey = read_image_folder(tmp_path / "grey", ImageFolderOptions(background=background)).train["image"]
    assert grey.shape == (1, 1, 4, 4)  # greyscale with alpha stays one channel
    assert grey[0, 0, :, 0].tolist() == [90] * 4 and grey[0, 0, :, 3].tolist() == [level] * 4
