"""``condgen inpaint``: complete an image's missing pixels with a trained inpainting run.

Declaring the command (:data:`COMMAND`, its flags) imports neither torch nor numpy, so ``condgen --help``
lists it cheaply; running it imports them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import condgen
from condgen import CondgenError

from .names import MASK_KINDS

if TYPE_CHECKING:
    import numpy as np


def read_array(path: str, what: str) -> np.ndarray:
    """A ``.npy`` array, or a ``.png`` as floats in [0, 1] (grey: the mean of its colour channels)."""
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise CondgenError(f"--{what} {path!r}: no such file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            array = np.load(p, allow_pickle=False)
            if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
                kind = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
                raise CondgenError(f"--{what} {path!r} holds {kind}, not real numbers")
            return array.astype(np.float32)
        if suffix == ".png":
            import matplotlib.image

            pixels = matplotlib.image.imread(str(p)).astype(np.float32)  # PNG: floats in [0, 1]
            return pixels[..., :3].mean(axis=-1) if pixels.ndim == 3 else pixels
    except CondgenError:
        raise
    except Exception as exc:  # numpy's and Pillow's own errors for a file that is not what its name says
        raise CondgenError(f"--{what} {path!r} cannot be read as a {suffix} file: {type(exc).__name__}: {exc}") from None
    raise CondgenError(f"--{what} {path!r}: use a .png or .npy file")


def _mask_argument(text: str) -> Any:
    if Path(text).suffix.lower() in (".png", ".npy"):
        return read_array(text, "mask")
    return text  # a mask name; parse_mask_spec names the allowed ones if it is not one


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run trained with --conditioner inpaint")
    p.add_argument("--image", required=True, metavar="FILE",
                   help=".png (grey, or colour averaged) or .npy: (H, W), (C, H, W) or a stack (K, C, H, W)")
    p.add_argument("--mask", required=True, metavar="FILE_OR_NAME",
                   help=f"a .png/.npy mask (1 or white = observed) or a name: {', '.join(MASK_KINDS)} "
                   "(quadrants:K observes K quadrants; the others name what is missing)")
    p.add_argument("--condition", action="append", default=[], metavar="NAME=VALUE",
                   help="one value for each other conditioner of the run (e.g. label=3)")
    p.add_argument("--num", type=int, default=16, help="completions per image (default 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, metavar="FILE",
                   help=".png: per image, the observed part then its completions; .npy: (K * num, C, H, W)")
    p.add_argument("--device", default="auto")


def run_command(args: argparse.Namespace) -> int:
    import torch

    from .completion import inpaint

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".npy"):
        raise CondgenError(f"--out {args.out!r}: the file must end in .png (a picture) or .npy (an array)")
    run = condgen.load_run(args.run_dir, device=args.device)
    image, mask = read_array(args.image, "image"), _mask_argument(args.mask)  # each file read once
    others = {}
    for text in args.condition:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise CondgenError(f"--condition {text!r} must look like NAME=VALUE, e.g. label=3")
        if name.strip() in others:
            raise CondgenError(f"--condition {name.strip()}=... is given twice; give one value for each conditioner")
        others[name.strip()] = value.strip()  # parsed by the conditioner, as `condgen sample` does
    completions = inpaint(run, image, mask, args.num, args.seed, conditions=others).cpu()
    if out.suffix.lower() == ".npy":
        condgen.save_array(completions, out)
    else:
        cond = run.conditioners["inpaint"]
        conditions = cond.condition(*cond.image_and_mask(image, mask))
        heads = torch.stack([cond.condition_picture(c) for c in conditions])
        labels = [f"image {i + 1}, {cond.describe_condition(c)}" for i, c in enumerate(conditions)]
        condgen.save_grid(completions, out, per_row=args.num, row_labels=labels, row_heads=heads)
    print(f"wrote {completions.shape[0]} completions {tuple(completions.shape)} to {out}")
    return 0


COMMAND = condgen.Command(
    name="inpaint",
    help="complete the missing pixels of an image with a run trained with --conditioner inpaint",
    add_arguments=add_arguments,
    run=run_command,
)
