"""A run's own pictures, drawn when its training ends: samples.png (labelled rows, each headed by its
condition's picture), reconstructions.png and latent.png.

The grid itself is :mod:`condgen.pictures.grid`; which rows samples.png shows and how they are labelled,
:mod:`condgen.pictures.rows`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import Tensor

from ..common.errors import CondgenError, NumericalError
from ..common.rng import EVAL_SEED, seeded_generator
from ..data.splits import FloatView, iter_batches, split_size
from .grid import grid_image, is_image_shape, pyplot, save_figure, save_grid
from .rows import SampleRows

#: At most this many rows in a run's samples.png.
MAX_ROWS = 20
#: Rows (test items) in the samples.png of a model with several conditioners.
COMPOSED_ROWS = 10
#: At most this many categories (integer colours) in latent.png get a colour and legend entry each.
LEGEND_CATEGORIES = 20
Log = Callable[[str], None]


def _sample_rows(run, test: Mapping[str, Tensor], gen: torch.Generator, log: Log) -> SampleRows | None:
    """The rows of samples.png; None (said why) for none."""
    if len(run.conditioners) == 1:
        (name, cond), = run.conditioners.items()
        examples = cond.example_conditions(FloatView(test), gen)
        if examples is None:
            log(f"samples.png skipped: conditioner {name!r} offers no example conditions "
                "(draw samples with: condgen sample RUN_DIR --condition ...)")
            return None
        if examples.shape[0] > MAX_ROWS:
            log(f"samples.png shows the first {MAX_ROWS} of {name!r}'s {examples.shape[0]} example conditions")
            examples = examples[:MAX_ROWS]
        return SampleRows.combining(run, {name: examples})
    # Several conditioners: their examples' product could pair conditions that contradict each other
    # (a label with another digit's image), so the rows are the joint conditions of test items.
    _, batch = next(iter_batches(test, min(10 * COMPOSED_ROWS, split_size(test))))
    absent = run.absent_items(batch)
    if absent:  # a row is drawn for the conditions it names: test items that have every condition
        keep = ~torch.stack(list(absent.values())).any(0)
        batch = {k: v[keep.to(v.device)] for k, v in batch.items()}
    rows = min(COMPOSED_ROWS, split_size(batch))
    if rows == 0:
        log("samples.png skipped: no test item among the first ones has every condition (draw samples with: "
            "condgen sample RUN_DIR --condition ...)")
        return None
    batch = {k: v[:rows] for k, v in batch.items()}
    log(f"samples.png: {rows} rows, each with the conditions of one test item, which agree with each other; "
        f"the conditioners' own example conditions are left out, since their product could pair contradicting ones")
    return SampleRows.of(run, run.conditions_from_batch(batch, gen))


def write_samples(run, test: Mapping[str, Tensor], path: Path, per_row: int = 10, seed: int = 0,
                  log: Log = print) -> bool:
    """``samples.png``: one row per example condition (a digit, a masked test image), headed by the
    condition's picture when its conditioner draws one; a plain VAE gets an 8x8 grid. False if skipped."""
    if not run.conditioners:
        save_grid(run.sample({}, num=64, seed=seed), path, per_row=8)
        return True
    rows = _sample_rows(run, test, seeded_generator(run.device, seed), log)
    if rows is None:
        return False
    rows = rows.with_heads()
    images = rows.sample(run, per_row, seed=seed).cpu()
    if rows.heads is None and rows.pictured:
        log(f"samples.png: the conditions' pictures are left out, as only {rows.pictured} of {len(rows)} rows "
            f"have one of the samples' shape {tuple(images.shape[1:])}")
    save_grid(images, path, per_row, rows.labels, row_heads=rows.heads)
    return True


def write_reconstructions(run, test: Mapping[str, Tensor], path: Path, count: int = 16) -> None:
    """``reconstructions.png``: rows of test images, each followed by a row of their reconstructions."""
    n = min(count * 2, split_size(test))
    _, batch = next(iter_batches(test, n))
    x = batch[run.config.data.x_field]
    conds = run.conditions_from_batch(batch, seeded_generator(run.device, EVAL_SEED))
    recon = run.model.reconstruct(x, conds, run.absent_items(batch))  # a missing value: the absent condition
    if not bool(torch.isfinite(recon).all()):  # never a NaN picture (the callback says why it is skipped)
        raise NumericalError(f"the reconstructions hold NaN or inf: {run.non_finite_source(conds)}")
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
            return colour.detach(), name
    return None


class _Categories:
    """The one condition behind each integer colour of latent.png, where every item of that colour has the
    same condition (a class): its legend entry is then the conditioner's own description of it."""

    def __init__(self) -> None:
        self.first: dict[int, Tensor] = {}  # colour -> the condition ``(...)`` of its first item, on the CPU
        self.mixed: set[int] = set()  # colours whose items' conditions differ

    def add(self, colour: Tensor, conditions: Tensor) -> None:
        """Note a batch's integer colours ``(B,)`` and its conditions ``(B, ...)``."""
        if colour.is_floating_point() or len(self.first) + len(self.mixed) > LEGEND_CATEGORIES:
            return  # a colour scale, or too many categories for a legend: nothing to name
        for value in colour.unique().tolist():
            if value in self.mixed:
                continue
            items = conditions[colour == value]
            first = self.first.setdefault(value, items[0].cpu())
            if not bool((items == first.to(items.device)).all()):
                self.mixed.add(value)
                del self.first[value]

    def condition(self, value: int) -> Tensor | None:
        """The condition every item coloured ``value`` has; None where they differ."""
        return self.first.get(value)


@torch.no_grad()
def _latent(
    run, split: Mapping[str, Tensor], limit: int = 10000, batch_size: int = 1000
) -> tuple[Tensor, Tensor | None, str, _Categories]:
    """:func:`latent_means`, with the conditions behind the colours (for the legend)."""
    gen = seeded_generator(run.device, EVAL_SEED)
    means, colours, colour_name, categories = [], [], "", _Categories()
    for _, batch in iter_batches(split, batch_size, limit):
        conds = run.conditions_from_batch(batch, gen)
        e = run.model.embed(conds, batch[run.config.data.x_field].shape[0], run.absent_items(batch))
        means.append(run.model.encode(batch[run.config.data.x_field], e)[0].cpu())
        coloured = _colour(run, conds)
        if coloured is not None:
            colour, colour_name = coloured
            categories.add(colour, conds[colour_name])
            colours.append(colour.cpu())
    return torch.cat(means), (torch.cat(colours) if colours else None), colour_name, categories


def latent_means(
    run, split: Mapping[str, Tensor], limit: int = 10000, batch_size: int = 1000
) -> tuple[Tensor, Tensor | None, str]:
    """Means of q(z|x, c) for the first ``limit`` items ``(N, L)`` on the CPU, with their colours ``(N,)``
    from the first conditioner that offers one (None if none does) and that conditioner's name."""
    return _latent(run, split, limit, batch_size)[:3]


def _legend_labels(cond, values: list[int], categories: _Categories, log: Log) -> list[str]:
    """A legend entry per colour value: the conditioner's :meth:`~condgen.Conditioner.describe_condition`
    of the one condition behind it (a class's name), else the value itself."""
    labels = []
    for value in values:
        c = categories.condition(value)
        try:
            text = cond.describe_condition(c) if c is not None else None
        except Exception as exc:  # a plugin's bug costs the legend its names, not the picture
            log(f"latent.png: the legend shows colour values, as conditioner {cond.name!r}'s describe_condition "
                f"raised {type(exc).__name__}: {exc}")
            return [f"{v:g}" for v in values]
        labels.append(text if isinstance(text, str) and text else f"{value:g}")
    return labels


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
    :meth:`condgen.Conditioner.latent_colour`; a few categories get a legend entry each, named by the
    conditioner's :meth:`~condgen.Conditioner.describe_condition` where a colour stands for one condition
    (a class's name). False (and said why) for a model without a latent."""
    if run.model.latent_dim == 0:
        log("latent.png skipped: this model has no latent (model.latent_dim = 0)")
        return False
    z, c, colour_field, categories = _latent(run, test)
    xy, axis = project_2d(z)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 6), dpi=110)
    categorical = c is not None and not c.is_floating_point()
    values = sorted(set(c.tolist())) if categorical else []
    if 0 < len(values) <= LEGEND_CATEGORIES:  # a few classes: one colour and legend entry each
        cmap = plt.get_cmap("tab10" if len(values) <= 10 else "tab20")
        labels = _legend_labels(run.conditioners[colour_field], values, categories, log)
        for i, (v, label) in enumerate(zip(values, labels)):
            pts = xy[c == v]
            ax.scatter(pts[:, 0], pts[:, 1], s=3, alpha=0.6, color=cmap(i), label=label, rasterized=True)
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
    save_figure(fig, path)
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


def dashboard_rows(run, test: Mapping[str, Tensor], most: int = 10) -> SampleRows | None:
    """The first ``most`` rows of samples.png (the same conditions, chosen without a word), for a picture drawn
    every epoch; one row for a model without conditioners. None where samples.png would have no rows, or the
    data are not images."""
    if split_size(test) == 0 or not is_image_shape(run.model.data_shape):
        return None
    if not run.conditioners:
        return SampleRows.of(run, {})
    rows = _sample_rows(run, test, seeded_generator(run.device, 0), log=lambda text: None)
    if rows is None:
        return None
    return SampleRows.of(run, {n: c[:most] for n, c in rows.conditions.items()}, rows.labels[:most])


def sample_grid(run, rows: SampleRows, per_row: int = 8, seed: int = 0) -> Tensor:
    """``per_row`` samples of each of ``rows`` (the same noise for the same seed) as one grid image
    ``(3, H', W')`` in [0, 1], white between the images, no labels (:func:`~condgen.pictures.grid.grid_image`)."""
    return grid_image(rows.sample(run, per_row, seed=seed), per_row)
