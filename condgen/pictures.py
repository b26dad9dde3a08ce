"""Pictures of a run: sample grids with labelled rows, reconstructions, and the latent space."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor

from .data.splits import iter_batches, split_size
from .errors import CondgenError

#: At most this many rows in a run's samples.png (several conditioners multiply their examples).
MAX_ROWS = 20


def is_image_shape(shape: Sequence[int]) -> bool:
    return len(shape) == 3 and shape[0] in (1, 3)


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def save_grid(images: Tensor, path: str | Path, per_row: int, row_labels: Sequence[str] | None = None) -> None:
    """Write ``images`` ``(N, C, H, W)`` in [0, 1] as a PNG grid of ``per_row`` columns, rows labelled."""
    from torchvision.utils import make_grid

    grid = make_grid(images.detach().float().cpu().clamp(0, 1), nrow=per_row, padding=2, pad_value=1.0)
    plt = _plt()
    h, w = grid.shape[1:]
    label_width = 1.4 if row_labels else 0.0  # inches kept left of the images for the row labels
    width = w / 56 + label_width  # 56 grid pixels an inch: about two screen pixels per image pixel
    fig = plt.figure(figsize=(width, h / 56), dpi=100)
    ax = fig.add_axes((label_width / width, 0, 1 - label_width / width, 1))
    ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    if row_labels:
        cell = images.shape[2] + 2
        ax.set_yticks([2 + cell * i + images.shape[2] / 2 for i in range(len(row_labels))])
        ax.set_yticklabels(row_labels, fontsize=9)
        ax.tick_params(length=0)
    else:
        ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    _save(fig, path)


def _save(fig, path: str | Path) -> None:
    try:
        fig.savefig(str(path))
    except OSError as exc:
        raise CondgenError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    finally:
        _plt().close(fig)


def write_samples(run, path: Path, per_row: int = 10, seed: int = 0) -> None:
    """``samples.png``: one row per example condition (e.g. per digit); a plain VAE gets an 8x8 grid."""
    examples = {n: c.example_conditions() for n, c in run.conditioners.items()}
    if any(v is None for v in examples.values()):
        return
    if not examples:
        save_grid(run.sample({}, num=64, seed=seed), path, per_row=8)
        return
    grid, labels = run.condition_grid(examples)
    grid = {n: v[:MAX_ROWS] for n, v in grid.items()}
    labels = labels[:MAX_ROWS]
    conds = {n: v.repeat_interleave(per_row, dim=0) for n, v in grid.items()}
    images = run.sample(conds, num=len(labels) * per_row, seed=seed)
    save_grid(images, path, per_row, labels)


def write_reconstructions(run, test: Mapping[str, Tensor], path: Path, count: int = 16) -> None:
    """``reconstructions.png``: rows of test images, each followed by a row of their reconstructions."""
    n = min(count * 2, split_size(test))
    _, batch = next(iter_batches(test, n))
    x = batch[run.config.data.x_field]
    recon = run.model.reconstruct(x, run.conditions_from_batch(batch))
    per_row = min(count, n)
    rows, labels = [], []
    for start in range(0, n, per_row):
        rows += [x[start : start + per_row], recon[start : start + per_row]]
        labels += ["test images", "reconstructions"]
    if rows[-1].shape[0] < per_row:  # keep whole rows only
        rows, labels = rows[:-2], labels[:-2]
    save_grid(torch.cat(rows), path, per_row, labels)


@torch.no_grad()
def latent_means(run, split: Mapping[str, Tensor], limit: int = 10000, batch_size: int = 1000) -> Tensor:
    """Means of q(z|x, c) for the first ``limit`` items: ``(N, L)`` on the CPU."""
    out = []
    for _, batch in iter_batches(split, batch_size, limit):
        e = run.model.embed(run.conditions_from_batch(batch), batch[run.config.data.x_field].shape[0])
        out.append(run.model.encode(batch[run.config.data.x_field], e)[0].cpu())
    return torch.cat(out)


def project_2d(z: Tensor) -> tuple[Tensor, str]:
    """``(N, L)`` -> ``(N, 2)``: the latent itself for L <= 2, else its first two principal components."""
    if z.shape[1] == 1:
        return torch.cat([z, torch.zeros_like(z)], dim=1), "z"
    if z.shape[1] == 2:
        return z, "z"
    centred = z - z.mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    return centred @ v[:2].T, "principal component"


def write_latent(run, test: Mapping[str, Tensor], path: Path, colour_field: str = "label") -> None:
    """``latent.png``: posterior means on the test set, coloured by ``colour_field`` when the data has it."""
    z = latent_means(run, test)
    xy, axis = project_2d(z)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 6), dpi=110)
    colour = test.get(colour_field)
    c = colour[: xy.shape[0]].cpu() if colour is not None and colour.dim() == 1 else None
    values = sorted(set(c.tolist())) if c is not None else []
    if 0 < len(values) <= 20:  # a few classes: one colour and legend entry each
        cmap = plt.get_cmap("tab10" if len(values) <= 10 else "tab20")
        for i, v in enumerate(values):
            pts = xy[c == v]
            ax.scatter(pts[:, 0], pts[:, 1], s=3, alpha=0.6, color=cmap(i), label=f"{v:g}", rasterized=True)
        ax.legend(title=colour_field, markerscale=4, loc="best", fontsize=8)
    elif values:
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=c, s=3, alpha=0.7, rasterized=True)
        fig.colorbar(sc, ax=ax, label=colour_field)
    else:
        ax.scatter(xy[:, 0], xy[:, 1], s=3, alpha=0.7, rasterized=True)
    ax.set_xlabel(f"{axis} 1")
    ax.set_ylabel(f"{axis} 2")
    title = f"means of q(z|x, c) on {xy.shape[0]} test items, latent size {z.shape[1]}"
    ax.set_title(title if z.shape[1] <= 2 else title + " (PCA)", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def write_run_pictures(run, test: Mapping[str, Tensor], out: Path) -> list[Path]:
    """Write samples.png, reconstructions.png and latent.png (image data) into ``out``."""
    written = []
    if is_image_shape(run.model.data_shape):
        write_samples(run, out / "samples.png")
        write_reconstructions(run, test, out / "reconstructions.png")
        written += [out / "samples.png", out / "reconstructions.png"]
    write_latent(run, test, out / "latent.png")
    written.append(out / "latent.png")
    return [p for p in written if p.exists()]
