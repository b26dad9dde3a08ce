"""Lay Fashion-MNIST out as your own images would be: an image folder with a CSV of attributes, end to end.

Writes ``OUT/train/<class>/<n>.png`` and ``OUT/test/<class>/<n>.png`` (the class folders named after
Fashion-MNIST's classes, ``T-shirt/top`` as ``T-shirt-top``) and ``OUT/attributes.csv`` with two columns
for each image: ``ink`` (the share of its pixels' brightness, a number) and ``fill`` (``light`` or ``dense``,
a category)::

    python examples/image_folder/make_folder.py --out photos --per-class 300
    condgen train --dataset image-folder --data-dir photos --data-option attributes=attributes.csv \\
        --conditioner label:num_classes=10 --conditioner regression:targets=ink --epochs 20 --out runs/photos
    condgen sample runs/photos --condition label=Sneaker,Bag --condition regression=ink:0.1..0.4/4 --out ink.png

Any folder of PNG, JPEG, WebP, BMP or TIFF files laid out the same way works (see docs/image-folder.md).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from PIL import Image

import condgen
from condgen.data.fashion import CLASSES, locate_fashion_mnist


def folder_name(name: str) -> str:
    return name.replace("/", "-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the folder to write (must not exist)")
    parser.add_argument("--per-class", type=int, default=300, help="training images per class (a quarter as many "
                        "test images)")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST's four files (default: where condgen looks)")
    args = parser.parse_args()
    out = Path(args.out)
    if out.exists():
        raise SystemExit(f"error: {out} exists; choose a new folder")
    data = condgen.read_idx_dir(locate_fashion_mnist(args.data_dir), name="Fashion-MNIST", classes=CLASSES, levels=True)
    rows = [["file", "ink", "fill"]]
    for split, count in (("train", args.per_class), ("test", max(1, args.per_class // 4))):
        images = data.train if split == "train" else data.test
        labels = images["label"]
        for k, name in enumerate(CLASSES):
            where = out / split / folder_name(name)
            where.mkdir(parents=True)
            for n, i in enumerate((labels == k).nonzero().flatten()[:count].tolist()):
                pixels = images["image"][i, 0].numpy()
                path = where / f"{n:04d}.png"
                Image.fromarray(pixels).save(path)
                ink = float(pixels.mean() / 255)
                rows.append([path.relative_to(out).as_posix(), f"{ink:.4f}", "dense" if ink > 0.3 else "light"])
    with open(out / "attributes.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    print(f"wrote {len(rows) - 1} images in {len(CLASSES)} class folders and {out / 'attributes.csv'}")


if __name__ == "__main__":
    main()
