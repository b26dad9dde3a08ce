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
    condgen.add_sample_arguments(
        p, num=16, num_help="completions per image",
        condition_help="a value for each other conditioner of the run (e.g. label=3; label=0,1 gives a row each)",
        out_help=".png: per image, the observed part then its completions; .npy: (K * num, C, H, W)")


def run_command(args: argparse.Namespace) -> int:
    from .completion import inpaint_conditioner

    out = condgen.SampleFile(args.out, args.num)  # a wrong --out or --num is refused before the run loads
    run = condgen.load_run(args.run_dir, device=args.device)
    cond = inpaint_conditioner(run)
    image, mask = read_array(args.image, "image"), _mask_argument(args.mask)  # each file read once
    # the images' conditions are built once: they head the picture's rows and the samples are drawn for them
    rows = out.rows(run, args.condition, given={cond.name: cond.condition(*cond.image_and_mask(image, mask))})
    completions = rows.sample(run, out.num, seed=args.seed)
    out.write(completions, rows)
    print(f"wrote {completions.shape[0]} completions {tuple(completions.shape)} to {out.path}")
    return 0


COMMAND = condgen.Command(
    name="inpaint",
    help="complete the missing pixels of an image with a run trained with --conditioner inpaint",
    add_arguments=add_arguments,
    run=run_command,
)
