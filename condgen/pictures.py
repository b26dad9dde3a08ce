"""Pictures of a run: sample grids with labelled rows, reconstructions, and the latent space."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from pathlib import Path

import torch
from torch import Tensor

from .arguments import whole_number
from .conditions import describe
from .data.splits import iter_batches, split_size
from .errors import ArgumentError, CondgenError
from .files import access_error
from .rng import EVAL_SEED, seeded_generator

#: At most this many rows in a run's samples.png.
MAX_ROWS = 20
#: Rows (test items) in the samples.png of a model with several conditioners.
COMPOSED_ROWS = 10
#: The most images one picture holds (100 x 100 digits is already 2800 px square).
MAX_GRID_IMAGES = 10_000
#: The most images in one row of a picture (1,000 digits make a row 30,000 px wide).
MAX_GRID_COLUMNS = 1_000
Log = Callable[[str], None]


def is_image_shape(shape: Sequence[int]) -> bool:
    return len(shape) == 3 and shape[0] in (1, 3)


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


#: Font size of row labels, and the width of one of their characters in inches (DejaVu Sans, generous).
LABEL_FONTSIZE = 9
_CHAR_INCHES = LABEL_FONTSIZE * 0.62 / 72


def with_row_heads(images: Tensor, heads: Tensor) -> Tensor:
    """Rows ``(R * K, C, H, W)`` of K images, each headed by its picture in ``heads`` ``(R, C, H, W)`` and
    a blank: ``(R * (K + 2), C, H, W)``."""
    rows = images.reshape(heads.shape[0], -1, *images.shape[1:])
    blank = torch.ones(heads.shape[0], 1, *images.shape[1:], dtype=images.dtype)
    return torch.cat([heads.to(images.dtype).unsqueeze(1), blank, rows], dim=1).flatten(0, 1)


def save_grid(images: Tensor, path: str | Path, per_row: int, row_labels: Sequence[str] | None = None,
              row_heads: Tensor | None = None) -> None:
    """Write ``images`` ``(N, C, H, W)`` in [0, 1] as a PNG grid of ``per_row`` columns, rows labelled.

    ``row_heads`` ``(N / per_row, C, H, W)``: a picture at the head of each row (what the row's
    images were made from, say), set off from them by a blank.
    """
    from torchvision.utils import make_grid

    if not (isinstance(images, Tensor) and images.dim() == 4 and images.shape[0] >= 1):
        shown = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ArgumentError(f"save_grid: images must be a tensor (N, C, H, W) with N >= 1, got {shown}")
    per_row = whole_number("save_grid: per_row", per_row, minimum=1)
    if per_row > MAX_GRID_COLUMNS:
        raise ArgumentError(f"a picture's rows hold at most {MAX_GRID_COLUMNS:,} images, not {per_row:,}; save them "
                            "as an array (.npy) instead, or draw fewer per row")
    if images.shape[0] > MAX_GRID_IMAGES:
        raise ArgumentError(f"a picture holds at most {MAX_GRID_IMAGES:,} images, not {images.shape[0]:,}; "
                            "save them as an array (.npy) instead, or draw fewer")
    if not isinstance(path, (str, PathLike)) or not str(path).strip():
        raise ArgumentError(f"save_grid: path must name the PNG file to write, got {path!r}")
    if row_labels is not None and (isinstance(row_labels, str) or not all(isinstance(s, str) for s in row_labels)):
        raise ArgumentError(f"save_grid: row_labels must be a list of strings, got {row_labels!r}")
    if row_heads is not None:
        if images.shape[0] != row_heads.shape[0] * per_row or row_heads.shape[1:] != images.shape[1:]:
            raise CondgenError(f"save_grid: {row_heads.shape[0]} row heads of shape {tuple(row_heads.shape[1:])} "
                               f"need {row_heads.shape[0]} x {per_row} images of that shape, got "
                               f"{tuple(images.shape)}")
        images = with_row_heads(images.detach().float().cpu(), row_heads.detach().float().cpu())
        per_row += 2

    grid = make_grid(images.detach().float().cpu().clamp(0, 1), nrow=per_row, padding=2, pad_value=1.0)
    plt = _plt()
    h, w = grid.shape[1:]
    # room left of the images for the longest row label, so no label is cut off
    label_width = (max(len(s) for s in row_labels) * _CHAR_INCHES + 0.2) if row_labels else 0.0
    width = w / 56 + label_width  # 56 grid pixels an inch: about two screen pixels per image pixel
    fig = plt.figure(figsize=(width, h / 56), dpi=100)
    ax = fig.add_axes((label_width / width, 0, 1 - label_width / width, 1))
    ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    if row_labels:
        cell = images.shape[2] + 2
        ax.set_yticks([2 + cell * i + images.shape[2] / 2 for i in range(len(row_labels))])
        ax.set_yticklabels(row_labels, fontsize=LABEL_FONTSIZE)
        ax.tick_params(length=0)
    else:
        ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    _save(fig, path, tight=bool(row_labels))


def _save(fig, path: str | Path, tight: bool = False) -> None:
    try:
        # tight: the saved picture grows to hold any label wider than the room estimated for it
        fig.savefig(str(path), **({"bbox_inches": "tight", "pad_inches": 0.03} if tight else {}))
    except OSError as exc:
        raise access_error("picture", path, exc, verb="write") from None
    finally:
        _plt().close(fig)


def _sample_rows(run, test: Mapping[str, Tensor], gen: torch.Generator, log: Log) -> tuple[dict[str, Tensor], list[str]] | None:
    """The conditions ``{name: (R, ...)}`` and labels of samples.png's rows; None (said why) for none."""
    if len(run.conditioners) == 1:
        (name, cond), = run.conditioners.items()
        examples = cond.example_conditions(test, gen)
        if examples is None:
            log(f"samples.png skipped: conditioner {name!r} offers no example conditions "
                "(draw samples with: condgen sample RUN_DIR --condition ...)")
            return None
        if examples.shape[0] > MAX_ROWS:
            log(f"samples.png shows the first {MAX_ROWS} of {name!r}'s {examples.shape[0]} example conditions")
            examples = examples[:MAX_ROWS]
        return run.condition_grid({name: examples})
    # Several conditioners: their examples' product could pair conditions that contradict each other
    # (a label with another digit's image), so the rows are the joint conditions of test items.
    rows = min(COMPOSED_ROWS, split_size(test))
    _, batch = next(iter_batches(test, rows))
    conds = run.conditions_from_batch(batch, gen)
    labels = [describe(run.conditioners, {n: c[i] for n, c in conds.items()}) for i in range(rows)]
    log(f"samples.png: {rows} rows, each with the conditions of one test item, which agree with each other; "
        f"the conditioners' own example conditions are left out, since their product could pair contradicting ones")
    return conds, labels


def _row_picture(run, conds: Mapping[str, Tensor], row: int, shape: Sequence[int]) -> Tensor | None:
    """The first conditioner's picture of row ``row``'s condition, as an image of ``shape``; None if none fits."""
    for name, cond in run.conditioners.items():
        pic = cond.condition_picture(conds[name][row])
        if pic is None:
            continue
        pic = pic.detach().float().cpu()
        if pic.dim() == 3 and pic.shape[1:] == tuple(shape[1:]) and pic.shape[0] in (1, shape[0]):
            return pic.expand(shape[0], *pic.shape[1:])
    return None


def write_samples(run, test: Mapping[str, Tensor], path: Path, per_row: int = 10, seed: int = 0,
                  log: Log = print) -> bool:
    """``samples.png``: one row per example condition (a digit, a masked test image), headed by the
    condition's picture when its conditioner draws one; a plain VAE gets an 8x8 grid. False if skipped."""
    if not run.conditioners:
        save_grid(run.sample({}, num=64, seed=seed), path, per_row=8)
        return True
    chosen = _sample_rows(run, test, seeded_generator(run.device, seed), log)
    if chosen is None:
        return False
    grid, labels = chosen
    conds = {n: v.repeat_interleave(per_row, dim=0) for n, v in grid.items()}
    images = run.sample(conds, num=len(labels) * per_row, seed=seed).cpu()
    shape = images.shape[1:]
    pictures = [_row_picture(run, grid, r, shape) for r in range(len(labels))]
    if any(p is None for p in pictures) and any(p is not None for p in pictures):
        log(f"samples.png: the conditions' pictures are left out, as only {sum(p is not None for p in pictures)} "
            f"of {len(pictures)} rows have one of the samples' shape {tuple(shape)}")
    heads = torch.stack(pictures) if all(p is not None for p in pictures) else None  # type: ignore[arg-type]
    save_grid(images, path, per_row, labels, row_heads=heads)
    return True


def write_reconstructions(run, test: Mapping[str, Tensor], path: Path, count: int = 16) -> None:
    """``reconstructions.png``: rows of test images, each followed by a row of their reconstructions."""
    n = min(count * 2, split_size(test))
    _, batch = next(iter_batches(test, n))
    x = batch[run.config.data.x_field]
    recon = run.model.reconstruct(x, run.conditions_from_batch(batch, seeded_generator(run.device, EVAL_SEED)))
    per_row = min(count, n)
    rows, labels = [], []
    for start in range(0, n, per_row):
        rows += [x[start : start + per_row], recon[start : start + per_row]]
        labels += ["test images", "reconstructions"]
    if rows[-1].shape[0] < per_row:  # keep whole rows only
        rows, labels = rows[:-2], labels[:-2]
    save_grid(torch.cat(rows), path, per_row, labels)


def _colour(run, conds: Mapping[str, Tensor]) -> tuple[Tensor, str] | None:
    """The first conditioner's :meth:`condgen.Conditioner.latent_colour` of a batch's conditions ``(B,)``,
    with its name."""
    for name, cond in run.conditioners.items():
        colour = cond.latent_colour(conds[name])
        if colour is not None:
            return colour.detach().cpu(), name
    return None


@torch.no_grad()
def latent_means(
    run, split: Mapping[str, Tensor], limit: int = 10000, batch_size: int = 1000
) -> tuple[Tensor, Tensor | None, str]:
    """Means of q(z|x, c) for the first ``limit`` items ``(N, L)`` on the CPU, with their colours ``(N,)``
    from the first conditioner that offers one (None if none does) and that conditioner's name."""
    gen = seeded_generator(run.device, EVAL_SEED)
    means, colours, colour_name = [], [], ""
    for _, batch in iter_batches(split, batch_size, limit):
        conds = run.conditions_from_batch(batch, gen)
        e = run.model.embed(conds, batch[run.config.data.x_field].shape[0])
        means.append(run.model.encode(batch[run.config.data.x_field], e)[0].cpu())
        coloured = _colour(run, conds)
        if coloured is not None:
            colours.append(coloured[0])
            colour_name = coloured[1]
    return torch.cat(means), (torch.cat(colours) if colours else None), colour_name


def project_2d(z: Tensor) -> tuple[Tensor, str]:
    """``(N, L)`` -> ``(N, 2)``: the latent itself for L <= 2, else its first two principal components."""
    if z.shape[1] == 1:
        return torch.cat([z, torch.zeros_like(z)], dim=1), "z"
    if z.shape[1] == 2:
        return z, "z"
    centred = z - z.mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    return centred @ v[:2].T, "principal component"


def write_latent(run, test: Mapping[str, Tensor], path: Path, log: Log = print) -> bool:
    """``latent.png``: posterior means on the test set, coloured by a conditioner's
    :meth:`condgen.Conditioner.latent_colour`.
    False (and said why) for a model without a latent."""
    if run.model.latent_dim == 0:
        log("latent.png skipped: this model has no latent (model.latent_dim = 0)")
        return False
    z, c, colour_field = latent_means(run, test)
    xy, axis = project_2d(z)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 6), dpi=110)
    categorical = c is not None and not c.is_floating_point()
    values = sorted(set(c.tolist())) if categorical else []
    if 0 < len(values) <= 20:  # a few classes: one colour and legend entry each
        cmap = plt.get_cmap("tab10" if len(values) <= 10 else "tab20")
        for i, v in enumerate(values):
            pts = xy[c == v]
            ax.scatter(pts[:, 0], pts[:, 1], s=3, alpha=0.6, color=cmap(i), label=f"{v:g}", rasterized=True)
        ax.legend(title=colour_field, markerscale=4, loc="best", fontsize=8)
    elif c is not None:
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=c.float(), s=3, alpha=0.7, rasterized=True)
        fig.colorbar(sc, ax=ax, label=colour_field)
    else:
        ax.scatter(xy[:, 0], xy[:, 1], s=3, alpha=0.7, rasterized=True)
    ax.set_xlabel(f"{axis} 1")
    ax.set_ylabel(f"{axis} 2")
    title = f"means of q(z|x, c) on {xy.shape[0]} test items, latent size {z.shape[1]}"
    ax.set_title(title if z.shape[1] <= 2 else title + " (PCA)", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    return True


def write_run_pictures(run, test: Mapping[str, Tensor], out: Path, log: Log = print) -> list[Path]:
    """Write samples.png, reconstructions.png (image data) and latent.png into ``out``; say what is skipped.

    The run is saved before its pictures are drawn, so a picture that fails (a plugin's picture
    method raising, say) is reported and skipped rather than failing the finished run.
    """
    if split_size(test) == 0:
        log("pictures skipped: the test split is empty")
        return []
    jobs: list[tuple[str, Callable[[], bool]]] = []
    if is_image_shape(run.model.data_shape):
        jobs.append(("samples.png", lambda: write_samples(run, test, out / "samples.png", log=log)))
        jobs.append(("reconstructions.png", lambda: write_reconstructions(run, test, out / "reconstructions.png")))
    else:
        log(f"samples.png and reconstructions.png skipped: data of shape {run.model.data_shape} are not images")
    jobs.append(("latent.png", lambda: write_latent(run, test, out / "latent.png", log=log)))
    written = []
    for name, job in jobs:
        try:
            if job() is not False:
                written.append(out / name)
        except CondgenError as exc:  # e.g. the file cannot be written
            log(f"{name} skipped: {exc} (the run itself is saved)")
        except Exception as exc:
            log(f"{name} skipped: drawing it raised {type(exc).__name__}: {exc} (the run itself is saved)")
    return written
