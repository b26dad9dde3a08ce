"""Building a run from its config: the conditioners, the CVAE, and a fresh run fitted to its data."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor

from ..common.errors import CondgenError, ConfigError, PluginError
from ..common.memory import BYTES_PER_FLOAT, check_fits
from ..data.checks import value_range
from ..data.splits import FloatView, is_levels, split_size
from ..engine import CVAE
from ..engine.architecture import Architecture, NetworkShapes
from ..engine.likelihood import Likelihood, make_likelihood
from ..engine.networks import full_precision
from ..plugin.conditioner import Conditioner
from ..plugin.registry import registry
from .config import RunConfig, likelihood_class
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


def _embed_shape(name: str, cond: Conditioner) -> tuple[int, ...]:
    """Conditioner ``name``'s :attr:`~condgen.Conditioner.embed_shape`: ``(E,)`` or ``(E, H, W)`` of whole numbers
    >= 1; anything else is a PluginError naming it."""
    try:
        shape = tuple(cond.embed_shape)
    except CondgenError:
        raise
    except Exception as exc:
        raise PluginError(f"conditioner {name!r}: its embed_shape raised {type(exc).__name__}: {_first_line(exc)} "
                          "(a bug in its plugin)") from None
    if len(shape) not in (1, 3) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape):
        raise PluginError(f"conditioner {name!r} gives embed_shape {shape!r} (embed_dim {cond.embed_dim!r}, "
                          f"spatial_size {cond.spatial_size!r}); it must be (E,) or (E, H, W) of whole numbers >= 1 "
                          "(a bug in its plugin)")
    return shape


def _first_line(exc: BaseException) -> str:
    """An exception's message as one line: its first."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def build_likelihood(config: RunConfig, data_shape: Sequence[int]) -> Likelihood:
    """The registered likelihood of ``model.likelihood`` (:class:`condgen.Likelihood`) for items of ``data_shape``;
    a failure of a plugin's class, or a ``params`` that is not a whole number >= 1, is a PluginError naming its
    plugin."""
    reg = registry()
    m = config.model
    name = m.likelihood.partition(":")[0]
    try:
        likelihood = make_likelihood(m.likelihood, tuple(data_shape), m.gaussian_std, m.gaussian_min_std,
                                     known=reg.likelihoods)
    except CondgenError:
        raise
    except Exception as exc:
        raise PluginError(f"likelihood {name!r} raised {type(exc).__name__} when built: {_first_line(exc)} (a bug in "
                          f"{reg.owner('likelihood', name).describe()})") from None
    params = getattr(likelihood, "params", None)
    if not (isinstance(likelihood, Likelihood) and isinstance(params, int) and params >= 1):
        raise PluginError(f"likelihood {name!r} gives params = {params!r}, the numbers per element of x its decoder "
                          f"must give; it must be a whole number >= 1 (a bug in "
                          f"{reg.owner('likelihood', name).describe()})")
    return likelihood


def build_architecture(config: RunConfig) -> Architecture:
    """The registered architecture of ``model.arch`` (:class:`condgen.Architecture`), made for the model config;
    a failure of a plugin's class is a PluginError naming its plugin."""
    reg = registry()
    name = config.model.arch
    cls = reg.architecture_class(name)
    try:
        return _Checked(cls(config.model), name, reg.owner("architecture", name).describe())
    except CondgenError:
        raise
    except Exception as exc:
        raise PluginError(f"architecture {name!r}: {cls.__name__}(model) raised {type(exc).__name__}: {_first_line(exc)} "
                          f"(a bug in {reg.owner('architecture', name).describe()})") from None


class _Checked(Architecture):
    """An architecture whose builders' failures are PluginErrors naming its plugin, and whose networks' output
    shapes are checked on a probe batch (:func:`check_networks`)."""

    def __init__(self, inner: Architecture, name: str, plugin: str) -> None:
        super().__init__(inner.model)
        self.inner, self.name, self.plugin = inner, name, plugin  # type: ignore[misc]

    def check_data(self, data_shape: Sequence[int]) -> None:
        self._call("check_data", data_shape)

    def build_encoder(self, shapes: NetworkShapes) -> torch.nn.Module:
        return self._module("build_encoder", shapes)

    def build_decoder(self, shapes: NetworkShapes) -> torch.nn.Module:
        return self._module("build_decoder", shapes)

    def _module(self, method: str, shapes: NetworkShapes) -> torch.nn.Module:
        module = self._call(method, shapes)
        if not isinstance(module, torch.nn.Module):
            raise PluginError(f"architecture {self.name!r}: {method} gave {type(module).__name__}, not a "
                              f"torch.nn.Module (a bug in {self.plugin})")
        return module

    def _call(self, method: str, *args: object) -> object:
        try:
            return getattr(self.inner, method)(*args)
        except CondgenError:
            raise
        except Exception as exc:
            if method == "check_data" and isinstance(exc, ValueError):  # the data do not fit: the user's to fix
                raise ConfigError(f"model.arch = {self.name!r} {_first_line(exc)}") from None
            raise PluginError(f"architecture {self.name!r}: {method} raised {type(exc).__name__}: {_first_line(exc)} "
                              f"(a bug in {self.plugin})") from None


def check_networks(model: CVAE) -> None:
    """PluginError unless, for a probe batch of two rows, the model's encoder and decoder give the shapes of the
    contract (:mod:`condgen.engine.architecture`) and its likelihood scores the decoder's output as ``(2,)`` and
    gives means ``(2, D)``. Run in eval mode without gradients (so no statistic of a normalisation layer moves),
    on the model's device. Not on the ``meta`` device: its ``torch.cat`` imports ``torch._dynamo``, 2 s."""
    arch = model.architecture
    name, plugin = (arch.name, arch.plugin) if isinstance(arch, _Checked) else (model.config.arch, "its plugin")
    device = next(model.parameters()).device
    x = torch.zeros(2, *model.data_shape, device=device)
    e = torch.zeros(2, model.e_dim, device=device)
    latent = [2, model.latent_dim]
    expected = {"decoder": f"a tensor {[2, model.params, *model.data_shape]}",
                "encoder": f"(mu, logvar), tensors {latent} each"}
    with _probing(model, f"architecture {name!r}: its networks fail on a probe batch of data {list(x.shape)} with "
                         f"embeddings {list(e.shape)}", plugin):
        out = model.decoder(torch.zeros(*latent, device=device), e)
        got = {"decoder": _described(out)}
        if model.encoder is not None:
            got["encoder"] = _described_pair(model.encoder(x, e))
    _check_contract(f"architecture {name!r}", plugin, got, expected)

    lik = model.config.likelihood.partition(":")[0]
    reg = registry()
    lik_plugin = reg.owner("likelihood", lik).describe() if lik in reg.likelihoods else "its plugin"
    target = x.flatten(1)
    with _probing(model, f"likelihood {lik!r} fails on a probe batch of data {list(target.shape)}", lik_plugin):
        params = full_precision(out.reshape(2, -1))  # what model.decode gives, without decoding again
        got = {"nll": _described(model.likelihood.nll(params, target)),
               "mean": _described(model.likelihood.mean(params))}
    _check_contract(f"likelihood {lik!r}", lik_plugin, got,
                    {"nll": "a tensor [2]", "mean": f"a tensor {[2, target.shape[1]]}"})


@contextmanager
def _probing(model: CVAE, failing: str, plugin: str) -> Iterator[None]:
    """The probe's context: ``model`` in eval mode without gradients (its mode restored after); an exception other
    than a CondgenError is the PluginError ``failing: Type: message (a bug in plugin)``."""
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    except CondgenError:
        raise
    except Exception as exc:
        raise PluginError(f"{failing}: {type(exc).__name__}: {_first_line(exc) or 'no message'} "
                          f"(a bug in {plugin})") from None
    finally:
        model.train(training)


def _check_contract(who: str, plugin: str, got: Mapping[str, str], expected: Mapping[str, str]) -> None:
    """PluginError naming the first of ``got`` (part -> what it gave) that is not what ``expected`` says."""
    for part, text in got.items():
        if text != expected[part]:
            raise PluginError(f"{who}: for two rows its {part} gives {text}, where the contract is {expected[part]} "
                              f"(a bug in {plugin})")


def _described_pair(out: object) -> str:
    """``(mu, logvar), tensors [2, 3] each`` (or ``... [2, 3] and [2, 4]``), or what else ``out`` is."""
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(t, Tensor) for t in out)):
        return _described(out)
    a, b = (list(t.shape) for t in out)
    return f"(mu, logvar), tensors {a} each" if a == b else f"(mu, logvar), tensors {a} and {b}"


def _described(out: object) -> str:
    """``a tensor [2, 3]``, or what else ``out`` is."""
    if isinstance(out, Tensor):
        return f"a tensor {list(out.shape)}"
    if isinstance(out, (tuple, list)):
        return f"a {type(out).__name__} of {len(out)}"
    return f"a {type(out).__name__}"


def engine_parameters(config: RunConfig, data_shape: Sequence[int], embed_shapes: Sequence[Sequence[int]]) -> int:
    """How many weights the engine's networks have (the conditioners' embeddings aside), before any is made:
    counted on the ``meta`` device, which builds every architecture without memory or random numbers.
    ``embed_shapes``: each conditioner's
    :attr:`~condgen.Conditioner.embed_shape`, in config order."""
    names = [f"e{i}" for i in range(len(embed_shapes))]
    with torch.device("meta"):
        model = CVAE(data_shape, config.model, embed_dims=dict(zip(names, embed_shapes)),
                     embeddings={n: torch.nn.Identity() for n in names}, architecture=build_architecture(config),
                     likelihood=build_likelihood(config, data_shape))
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
    shapes = {n: _embed_shape(n, c) for n, c in conditioners.items()}
    count = engine_parameters(config, data_shape, list(shapes.values()))
    count += embedding_parameters(conditioners)
    check_fits(count * BYTES_PER_FLOAT * copies, f"a model of {count:,} weights"
               + (f" (x {copies}: weights, gradients and optimizer state)" if copies > 1 else ""),
               "make it smaller (model.hidden, model.decoder_hidden, model.prior_hidden, model.latent_dim, or a "
               "conditioner's own sizes)")
    model = CVAE(
        data_shape,
        config.model,
        embeddings={n: c.build_embedding() for n, c in conditioners.items()},
        embed_dims=shapes,
        absent=config.absent_conditioners() if absent is None else list(absent),
        architecture=build_architecture(config),
        likelihood=build_likelihood(config, data_shape),
    )
    return model


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
    """ConfigError unless ``model.arch`` takes items of the data's shape (a conv net, images ``(C, H, W)``)."""
    try:
        build_architecture(config).check_data(tuple(x.shape[1:]))
    except ConfigError as exc:
        raise ConfigError(f"data field {config.data.x_field!r}: {exc}") from None


def _check_likelihood_fits(config: RunConfig, splits: Mapping[str, Mapping[str, Tensor]]) -> None:
    """ConfigError unless the data of every split in ``splits`` (``{"training": split, ...}``) are what
    ``model.likelihood`` scores: a discrete likelihood of 8-bit levels needs a field kept as its 256 levels
    (``uint8``), the Bernoulli values in [0, 1]. A likelihood is discrete where its class says so (``DISCRETE``:
    ``logistic``, ``logistic-mixture:K``)."""
    field = config.data.x_field
    x = splits["training"][field]
    if config.model.likelihood == "bernoulli":
        for name, split in splits.items():
            seen = value_range(split, field, f"the {name} split's {field!r}")
            if seen.low < 0 or seen.high > 1:
                raise ConfigError(
                    f"model.likelihood = 'bernoulli' scores values in [0, 1], but the {name} split's data field "
                    f"{field!r} holds values from {seen.low:.4g} to {seen.high:.4g}; use --likelihood gaussian for "
                    "real values, or scale the data into [0, 1]")
    if likelihood_class(config.model.likelihood).DISCRETE and not is_levels(x):
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
    _check_likelihood_fits(config, {"training": train, **({"test": test} if test is not None else {})})
    _check_arch_fits(config, train[config.data.x_field])
    data_shape = train[config.data.x_field].shape[1:]
    with torch.random.fork_rng(devices=[]):  # seed the initial weights without touching the caller's RNG
        torch.manual_seed(config.train.seed)
        model = build_model(config, data_shape, conditioners, copies=4).to(device)
    check_networks(model)
    return Run(config, conditioners, model, device, classes={k: list(v) for k, v in (classes or {}).items()})
