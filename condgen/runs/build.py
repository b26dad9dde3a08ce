"""Building a run from its config: the conditioners, the CVAE, and a fresh run fitted to its data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from ..common.errors import CondgenError, ConfigError, PluginError
from ..common.memory import BYTES_PER_FLOAT, check_fits
from ..data.splits import FloatView, is_levels, split_size
from ..engine import CVAE
from ..engine.likelihood import LIKELIHOODS
from ..plugin.conditioner import Conditioner
from ..plugin.registry import registry
from .config import RunConfig
from .run import Run, missing_values_of


def build_conditioners(config: RunConfig) -> dict[str, Conditioner]:
    """Instantiate the config's conditioners, in order, validating each one's own config: ``{instance name:
    conditioner}``, each conditioner's :attr:`~condgen.Conditioner.name` set to its instance name."""
    reg = registry()
    conditioners = {}
    for spec in config.conditioners:
        cond = reg.conditioner_class(spec.name)(spec.config)
        cond.name = spec.instance_name  # what the user calls it, in its own messages too
        conditioners[spec.instance_name] = cond
    return conditioners


def engine_parameters(config: RunConfig, data_shape: Sequence[int], embed_dim: int) -> int:
    """How many weights the engine's networks have (the conditioners' embeddings aside), before any is made:
    counted on the ``meta`` device, which builds every architecture without memory or random numbers."""
    with torch.device("meta"):
        model = CVAE(data_shape, config.model, embed_dims={"e": embed_dim}, embeddings={"e": torch.nn.Identity()})
    return sum(p.numel() for name, p in model.named_parameters() if not name.startswith("embeddings."))


def embedding_parameters(conditioners: Mapping[str, Conditioner]) -> int:
    """How many weights the conditioners' embeddings have, counted on the ``meta`` device (no memory taken)."""
    total = 0
    for cond in conditioners.values():
        try:
            with torch.device("meta"):
                total += sum(p.numel() for p in cond.build_embedding().parameters())
        except Exception:  # an embedding that needs real tensors to be built is left to the real build
            continue
    return total


def build_model(
    config: RunConfig,
    data_shape: Sequence[int],
    conditioners: Mapping[str, Conditioner],
    *,
    copies: int = 1,
    absent: Sequence[str] | None = None,
) -> CVAE:
    """The CVAE with each conditioner's embedding module, in config order (after fit / load_state), and an
    "absent" embedding for each of ``absent`` (default: :meth:`condgen.RunConfig.absent_conditioners`).

    A model that would not fit in memory ``copies`` times (4 in training: weights, gradients and
    Adam's two moments) is a :class:`condgen.common.memory.ResourceError`, raised before any is allocated.
    """
    count = engine_parameters(config, data_shape, sum(c.embed_dim for c in conditioners.values()))
    count += embedding_parameters(conditioners)
    check_fits(count * BYTES_PER_FLOAT * copies, f"a model of {count:,} weights"
               + (f" (x {copies}: weights, gradients and optimizer state)" if copies > 1 else ""),
               "make it smaller (model.hidden, model.decoder_hidden, model.prior_hidden, model.latent_dim, or a "
               "conditioner's own sizes)")
    return CVAE(
        data_shape,
        config.model,
        embeddings={n: c.build_embedding() for n, c in conditioners.items()},
        embed_dims={n: c.embed_dim for n, c in conditioners.items()},
        absent=config.absent_conditioners() if absent is None else list(absent),
    )


def _hand_class_names(name: str, cond: Conditioner, classes: Mapping[str, Sequence[str]]) -> None:
    """Hand conditioner ``name`` the data's class names (:meth:`condgen.Conditioner.learn_class_names`);
    a plugin's failure other than a CondgenError is a PluginError naming it (a bug in its plugin)."""
    try:
        cond.learn_class_names({field: list(names) for field, names in classes.items()})  # a copy it may keep
    except CondgenError:
        raise
    except Exception as exc:
        raise PluginError(f"conditioner {name!r}'s learn_class_names raised {type(exc).__name__}: {exc} "
                          "(a bug in its plugin)") from None


def _check_arch_fits(config: RunConfig, x: Tensor) -> None:
    """ConfigError unless the data have the shape ``model.arch`` takes: a conv net, images ``(C, H, W)``."""
    if config.model.arch == "conv" and x.dim() != 4:
        raise ConfigError(f"model.arch = 'conv' takes images (C, H, W), but data field {config.data.x_field!r} holds "
                          f"items of shape {list(x.shape[1:])}; use --arch mlp, or data of images")


def _check_likelihood_fits(config: RunConfig, x: Tensor) -> None:
    """ConfigError unless the data are what ``model.likelihood`` scores: a discrete likelihood of 8-bit levels
    needs a field kept as its 256 levels (``uint8``), the Bernoulli values in [0, 1]."""
    if config.model.likelihood == "bernoulli" and isinstance(x, Tensor) and x.is_floating_point() and x.numel():
        low, high = float(x.min()), float(x.max())
        if low < 0 or high > 1:
            raise ConfigError(
                f"model.likelihood = 'bernoulli' scores values in [0, 1], but data field {config.data.x_field!r} "
                f"holds values from {low:.4g} to {high:.4g}; use --likelihood gaussian for real values, or scale "
                "the data into [0, 1]")
    if LIKELIHOODS[config.model.likelihood].DISCRETE and not is_levels(x):
        raise ConfigError(
            f"model.likelihood = {config.model.likelihood!r} is a probability of 8-bit images' 256 levels, but data "
            f"field {config.data.x_field!r} holds {str(x.dtype).removeprefix('torch.')} values of shape "
            f"{list(x.shape[1:])}, not uint8 levels; use --likelihood bernoulli or gaussian, or data kept as levels "
            "(mnist, fashion-mnist, image-folder, an npz of uint8 images)")


def _check_missing_values(config: RunConfig, conditioners: Mapping[str, Conditioner],
                          views: Mapping[str, tuple[Mapping[str, Tensor], int]]) -> None:
    """ConfigError unless each conditioner whose data leave some items' condition out (missing values) learns an
    absent condition, and each one named in ``train.condition_dropout`` with p = 0 has such items to learn it from.
    ``views``: ``{"training": (split, size), "test": ...}``."""
    absent, dropout = set(config.absent_conditioners()), config.dropout_probabilities()
    for name, cond in conditioners.items():
        counts = {split: {f: int(m.sum()) for f, m in missing_values_of(name, cond, view, size).items()}
                  for split, (view, size) in views.items()}
        missing = next(((split, f, n) for split, c in counts.items() for f, n in c.items() if n), None)
        if missing is not None and name not in absent:
            split, field, count = missing
            size = views[split][1]
            raise ConfigError(
                f"{count} of the {size} {split} items have no value in data field {field!r} (a missing value), "
                f"which conditioner {name!r} reads, and it learns no absent condition to give them; train it with "
                f"condition dropout, --condition-dropout {name}=P (P = 0: learnt from those items alone, none "
                "dropped at random), or fill the values in")
        if name in absent and name not in dropout and not any(counts.get("training", {}).values()):
            raise ConfigError(
                f"train.condition_dropout gives conditioner {name!r} p = 0, which learns its absent condition from the "
                "training items whose data leave it out (missing values), and its training split has none; give it "
                f"a probability above 0 (--condition-dropout {name}=0.1) or leave it out of train.condition_dropout")


def create_run(
    config: RunConfig,
    train: Mapping[str, Tensor],
    device: torch.device,
    classes: Mapping[str, Sequence[str]] | None = None,
    test: Mapping[str, Tensor] | None = None,
) -> Run:
    """A fresh run: conditioners told the data's class names (``classes``, :attr:`condgen.DataSplits.classes`:
    field -> names) and fitted on the training split, weights initialised from the seed.

    Data that leave some items' condition out (missing values, :meth:`condgen.Conditioner.missing_values`) in
    the training split, or in ``test`` where it is given, are refused for a conditioner that learns no absent
    condition (:meth:`condgen.RunConfig.absent_conditioners`), naming the field and the count."""
    conditioners = build_conditioners(config)
    view = FloatView(train)  # image levels as floats, converted once for all the conditioners
    for name, cond in conditioners.items():
        # the names first: 12 named classes against num_classes = 10 is then the names' count error with its
        # fix, not fit's "holds class 11, out of range"
        _hand_class_names(name, cond, classes or {})
        cond.fit(view)
    # each split's size from the split itself: a FloatView would convert a field of images to tell it
    views = {"training": (view, split_size(train))}
    if test is not None:
        views["test"] = (FloatView(test), split_size(test))
    _check_missing_values(config, conditioners, views)
    _check_likelihood_fits(config, train[config.data.x_field])
    _check_arch_fits(config, train[config.data.x_field])
    data_shape = train[config.data.x_field].shape[1:]
    with torch.random.fork_rng(devices=[]):  # seed the initial weights without touching the caller's RNG
        torch.manual_seed(config.train.seed)
        model = build_model(config, data_shape, conditioners, copies=4).to(device)
    return Run(config, conditioners, model, device, classes={k: list(v) for k, v in (classes or {}).items()})
