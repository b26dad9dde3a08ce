"""Validated configuration of a run: what to condition on, the model, the data, the training.

Every model here forbids unknown fields, so a typo is an error naming the field rather
than a silently ignored setting. ``RunConfig`` is stored whole in each checkpoint.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from ..common.arguments import MAX_SEED
from ..common.errors import ConfigError, PluginError, config_error, describe_validation_error
from ..common.files import is_file, read_text
from ..common.options import descriptions
from ..common.schema import StrictModel
from ..data.config import DataConfig
from ..plugin.registry import ENGINE_NAME, registry
from .options import MODEL_OPTIONS, RUN_OPTIONS, TRAIN_OPTIONS, parse_conditioner_option  # noqa: F401 (re-export)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


# each field's description is its flag's help (.options), written once
_RUN, _MODEL, _TRAIN = descriptions(RUN_OPTIONS), descriptions(MODEL_OPTIONS), descriptions(TRAIN_OPTIONS)

#: Widest hidden layer a config may ask for; wider ones are refused before any memory is taken.
MAX_WIDTH = 65536
#: The most stages (halvings) and channels a convolutional stage may have.
MAX_STAGES, MAX_CHANNELS = 8, 4096


#: What an instance name may be: the pattern of a conditioner's registered name.
INSTANCE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


class ConditionerSpec(StrictModel):
    """One conditioner of a model: its registered name, the name the model knows it by, and its own config
    (checked by the plugin).

    ``instance`` is that name (``--conditioner colour=label:...``), used wherever the conditioner is named:
    ``--condition colour=...``, ``train.condition_dropout``, ``run.sample({"colour": ...})``, metrics, the
    model's weights. Without one it is ``name``, and the spec is stored without it, as before instances.
    """

    name: str = Field(min_length=1)
    instance: Optional[str] = Field(None, description="the conditioner's name in the model (default: name), so a "
                                    "model may hold several conditioners of one plugin")
    config: dict[str, Any] = Field(default_factory=dict)

    @field_validator("instance")
    @classmethod
    def _instance_name(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        if not INSTANCE_PATTERN.match(v):
            raise ValueError(f"an instance name must match {INSTANCE_PATTERN.pattern} (lower-case letters, digits "
                             f"and _, a letter first), got {v!r}")
        from torch import nn  # the model keys its modules and parameters by it

        if hasattr(nn.ModuleDict(), v) or hasattr(nn.ParameterDict(), v):
            raise ValueError(f"instance name {v!r} is reserved (an attribute of torch.nn.Module); choose another")
        return v

    @model_validator(mode="before")
    @classmethod
    def _no_instance_of_its_own_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("instance") is not None and data.get("instance") == data.get("name"):
            data = {k: v for k, v in data.items() if k != "instance"}  # the default, said: held (and stored) as it
        return data

    @model_serializer(mode="wrap")
    def _without_default_instance(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if data.get("instance") is None:  # stored as before instances: config files and checkpoints unchanged
            data.pop("instance", None)
        return data

    @property
    def instance_name(self) -> str:
        """The conditioner's name in the model: ``instance``, else its registered ``name``."""
        return self.instance or self.name


def _likelihoods() -> Mapping[str, Any]:
    """The likelihood classes by name, which ``model.likelihood`` may name: those the plugins register (the
    toolkit's own through the same hook)."""
    return registry().likelihoods


def likelihood_class(spec: str) -> Any:
    """The likelihood class ``model.likelihood`` names (``name[:ARG]``); ValueError naming the value and the
    known names, or what its argument should be, or that two plugins register the name."""
    from ..engine.likelihood import parse_likelihood

    reg = registry()
    name = spec.partition(":")[0]
    if name not in reg.likelihoods:
        try:  # the registry's message: a name two plugins register, or an unknown one with the install hint
            reg.get("likelihood", name)
        except PluginError as exc:
            raise ValueError(str(exc)) from None
    try:
        return parse_likelihood(spec, _likelihoods())[0]
    except ValueError:
        raise
    except Exception as exc:  # a plugin's parse_argument failing in another way: its bug, said in one line
        raise ValueError(f"likelihood {name!r}: parse_argument raised {type(exc).__name__}: {exc} (a bug in "
                         f"{reg.owner('likelihood', name).describe()})") from None


class ModelConfig(StrictModel):
    """Shape of the CVAE. The defaults are the seed: latent 2, one hidden layer of 512 ReLU units."""

    latent_dim: int = Field(2, ge=0, le=4096, description=_MODEL["latent_dim"])
    arch: str = Field("mlp", min_length=1, description=_MODEL["arch"])
    channels: list[int] = Field(default_factory=lambda: [32, 64], description=_MODEL["channels"])
    hidden: list[int] = Field(default_factory=lambda: [512], description=_MODEL["hidden"])
    decoder_hidden: Optional[list[int]] = Field(None, description=_MODEL["decoder_hidden"])
    activation: Literal["relu", "elu", "gelu", "silu", "tanh", "leaky_relu"] = Field(
        "relu", description=_MODEL["activation"]
    )
    likelihood: str = Field("bernoulli", description=_MODEL["likelihood"])
    gaussian_std: Optional[float] = Field(None, gt=0, description=_MODEL["gaussian_std"])
    gaussian_min_std: Optional[float] = Field(None, gt=0, description=_MODEL["gaussian_min_std"])
    prior: Literal["standard", "conditional"] = Field("standard", description=_MODEL["prior"])
    prior_hidden: Optional[list[int]] = Field(None, description=_MODEL["prior_hidden"])

    @field_validator("channels")
    @classmethod
    def _stages(cls, v: list[int]) -> list[int]:
        if not 1 <= len(v) <= MAX_STAGES or any(not 1 <= c <= MAX_CHANNELS for c in v):
            raise ValueError(f"model.channels must be 1 to {MAX_STAGES} stages' channels, each from 1 to "
                             f"{MAX_CHANNELS}, got {v}")
        return v

    @field_validator("hidden", "decoder_hidden", "prior_hidden")
    @classmethod
    def _positive_widths(cls, v: Optional[list[int]]) -> Optional[list[int]]:
        if v is not None and any(not 1 <= w <= MAX_WIDTH for w in v):
            raise ValueError(f"every hidden width must be between 1 and {MAX_WIDTH}, got {v}")
        return v

    @field_validator("likelihood")
    @classmethod
    def _known_likelihood(cls, v: str) -> str:
        likelihood_class(v)  # a ValueError naming the value and the known names, or the fix of its argument
        return v

    @model_validator(mode="before")
    @classmethod
    def _default_min_std(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("gaussian_min_std") is None and isinstance(data.get("likelihood"), str):
            try:
                kind = likelihood_class(data["likelihood"])
            except ValueError:  # refused, naming it, by _known_likelihood
                return data
            if "gaussian_min_std" in kind.SETTINGS:
                data = {**data, "gaussian_min_std": kind.DEFAULT_MIN_STD}  # stored filled in, like every other default
        return data

    @model_validator(mode="after")
    def _prior_needs_a_latent(self) -> "ModelConfig":
        if self.latent_dim == 0 and self.prior != "standard":
            raise ValueError(
                f"model.prior = {self.prior!r} needs a latent, but model.latent_dim = 0 (the deterministic "
                "baseline has no z); use model.prior: standard or a latent_dim >= 1"
            )
        if self.prior_hidden is not None and self.prior != "conditional":
            raise ValueError("model.prior_hidden applies only to model.prior: conditional; remove it")
        for setting in ("gaussian_std", "gaussian_min_std"):
            if getattr(self, setting) is not None and setting not in likelihood_class(self.likelihood).SETTINGS:
                takers = " or ".join(name for name, kind in _likelihoods().items() if setting in kind.SETTINGS)
                raise ValueError(f"model.{setting} applies only to model.likelihood: {takers} (it is "
                                 f"{self.likelihood!r}); remove it")
        return self

    @property
    def decoder_widths(self) -> list[int]:
        return list(self.decoder_hidden) if self.decoder_hidden is not None else self.hidden[::-1]

    @property
    def prior_widths(self) -> list[int]:
        return list(self.prior_hidden) if self.prior_hidden is not None else list(self.hidden)


class TrainConfig(StrictModel):
    """Optimisation. The defaults are the seed: Adam 1e-3, batch 50, 20 epochs."""

    epochs: int = Field(20, ge=1, description=_TRAIN["epochs"])
    batch_size: int = Field(50, ge=1, description=_TRAIN["batch_size"])
    lr: float = Field(1e-3, gt=0, description=_TRAIN["lr"])
    optimizer: Literal["adam", "adamw"] = Field("adam", description=_TRAIN["optimizer"])
    weight_decay: float = Field(0.0, ge=0, description=_TRAIN["weight_decay"])
    lr_schedule: Literal["constant", "cosine"] = Field("constant", description=_TRAIN["lr_schedule"])
    objective: Literal["elbo", "hybrid"] = Field("elbo", description=_TRAIN["objective"])
    gsnn_weight: Optional[float] = Field(None, gt=0, le=1, description=_TRAIN["gsnn_weight"])
    grad_clip: Optional[float] = Field(None, gt=0, description=_TRAIN["grad_clip"])
    precision: Literal["fp32", "bf16"] = Field("fp32", description=_TRAIN["precision"])
    condition_dropout: Union[float, dict[str, float]] = Field(0.0, description=_TRAIN["condition_dropout"])
    seed: int = Field(0, ge=0, le=MAX_SEED, description=_TRAIN["seed"])
    device: str = Field("auto", description=_TRAIN["device"])
    eval_batch_size: int = Field(1000, ge=1, description=_TRAIN["eval_batch_size"])
    log: list[str] = Field(default_factory=list, description=_TRAIN["log"])

    @field_validator("condition_dropout", mode="before")
    @classmethod
    def _number_or_mapping(cls, v: Any) -> Any:
        if isinstance(v, dict) or (isinstance(v, (int, float)) and not isinstance(v, bool)):
            return v
        raise ValueError("give a probability such as 0.1 (for every conditioner) or {name: probability} "
                         "(on the command line --condition-dropout NAME=P,...)")

    @field_validator("condition_dropout")
    @classmethod
    def _probabilities(cls, v: Union[float, dict[str, float]]) -> Union[float, dict[str, float]]:
        for p in (v.values() if isinstance(v, dict) else [v]):
            if not 0 <= p < 1:
                raise ValueError(f"a condition dropout probability must be in [0, 1), got {p}")
        return v

    @field_validator("log")
    @classmethod
    def _callback_names(cls, v: list[str]) -> list[str]:
        # only the names' form: a stored run must load where its callbacks' plugins are gone, so whether each
        # is installed is checked when a training starts
        for name in v:
            if not ENGINE_NAME.match(name):
                raise ValueError(f"a callback name matches {ENGINE_NAME.pattern}, got {name!r}; `condgen plugins` "
                                 "lists the installed callbacks")
        if "pictures" in v:
            raise ValueError("the pictures callback runs unless --no-pictures (condgen.train(..., pictures=False)); "
                             "leave 'pictures' out of train.log")
        twice = next((n for n in v if v.count(n) > 1), None)
        if twice is not None:
            raise ValueError(f"callback {twice!r} is listed twice; list it once")
        return v

    @field_validator("device")
    @classmethod
    def _device_name(cls, v: str) -> str:
        if v in ("cpu", "cuda", "auto") or (v.startswith("cuda:") and v[5:].isdigit()):
            return v
        raise ValueError("device must be cpu, cuda, cuda:N or auto")

    @model_validator(mode="before")
    @classmethod
    def _default_weight_for_hybrid(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("objective") == "hybrid" and data.get("gsnn_weight") is None:
            data = {**data, "gsnn_weight": 0.5}  # stored filled in, like every other default
        return data

    @model_validator(mode="after")
    def _weight_only_with_hybrid(self) -> "TrainConfig":
        if self.objective != "hybrid" and self.gsnn_weight is not None:
            raise ValueError(
                f"train.gsnn_weight = {self.gsnn_weight} applies only to train.objective: hybrid "
                f"(it is {self.objective!r}); remove it or set objective: hybrid"
            )
        return self


class RunConfig(StrictModel):
    """Everything that defines a run; saved in every checkpoint and as ``config.json``."""

    conditioners: list[ConditionerSpec] = Field(default_factory=list, description=_RUN["conditioners"])
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @field_validator("conditioners")
    @classmethod
    def _unique(cls, v: list[ConditionerSpec]) -> list[ConditionerSpec]:
        names = [s.instance_name for s in v]
        twice = next((n for n in names if names.count(n) > 1), None)
        if twice is None:
            return v
        if any(s.instance for s in v if s.instance_name == twice):
            raise ValueError(f"instance name {twice!r} is given to more than one conditioner; give each its own")
        raise ValueError(f"conditioner {twice!r} is listed more than once; give each an instance name: "
                         f"--conditioner INSTANCE={twice}:... (in a config file, \"instance\": \"INSTANCE\"), e.g. "
                         f"--conditioner {twice}_a={twice}:... --conditioner {twice}_b={twice}:...")

    @model_validator(mode="after")
    def _engine_features_fit_together(self) -> "RunConfig":
        if self.model.prior == "conditional" and not self.conditioners:
            raise ValueError(
                "model.prior = 'conditional' needs at least one conditioner: the prior network p(z|c) is "
                "computed from the condition; add one (--conditioner NAME) or use model.prior: standard"
            )
        if self.model.latent_dim == 0 and not self.conditioners:
            raise ValueError(
                "model.latent_dim = 0 with no conditioner leaves the decoder no input (it could only learn one "
                "fixed image); give a conditioner (--conditioner NAME) or a latent_dim >= 1"
            )
        names = [c.instance_name for c in self.conditioners]
        dropout = self.train.condition_dropout
        unknown = [n for n in dropout if n not in names] if isinstance(dropout, dict) else []
        if unknown:
            raise ValueError(f"train.condition_dropout names {unknown[0]!r}, which is not one of this model's "
                             f"conditioners ({', '.join(names) or 'none'})")
        if dropout and not names:
            raise ValueError("train.condition_dropout needs a conditioner to drop; remove it or add one")
        if self.train.objective == "hybrid" and self.model.latent_dim == 0:
            raise ValueError(
                "train.objective = 'hybrid' needs a latent: with model.latent_dim = 0 the GSNN term is the "
                "reconstruction term itself; use train.objective: elbo or a latent_dim >= 1"
            )
        return self

    def dropout_probabilities(self) -> dict[str, float]:
        """``{conditioner: p}`` for every conditioner trained with condition dropout (p > 0), in config order."""
        dropout = self.train.condition_dropout
        probs = {c.instance_name: (dropout.get(c.instance_name, 0.0) if isinstance(dropout, dict) else dropout)
                 for c in self.conditioners}
        return {n: p for n, p in probs.items() if p > 0}

    def absent_conditioners(self) -> list[str]:
        """The conditioners the model learns an "absent" condition for, in config order: those trained with
        condition dropout (p > 0), and those named in ``train.condition_dropout`` with p = 0, which learn it
        only from the items whose data leave their condition out (missing values) and drop nothing at random."""
        dropout = self.train.condition_dropout
        return [c.instance_name for c in self.conditioners
                if (c.instance_name in dropout if isinstance(dropout, dict) else dropout > 0)]

    @classmethod
    def parse(cls, data: Any, *, data_options: bool = True) -> "RunConfig":
        """Validate a plain dict, turning pydantic's error into one ``ConfigError`` line.

        Each conditioner's own config is validated too, by its plugin, and stored with its
        defaults filled in (see :meth:`with_conditioner_defaults`); so are the data set's options
        (:meth:`with_data_option_defaults`), unless ``data_options`` is False: a stored run's are
        checked when its data are loaded, so a run samples where its data set's plugin has changed.
        """
        try:
            config = cls.model_validate(data)
        except ValidationError as err:
            raise config_error(err) from None
        config.check_architecture()
        config = config.with_conditioner_defaults()
        return config.with_data_option_defaults() if data_options else config

    def check_architecture(self) -> None:
        """:class:`condgen.PluginError` naming ``model.arch`` and the registered architectures unless a plugin
        (the toolkit's own: ``mlp``, ``conv``) registers it."""
        try:
            registry().architecture_class(self.model.arch)
        except PluginError as exc:
            raise PluginError(f"model.arch: {exc}") from None

    def with_conditioner_defaults(self) -> "RunConfig":
        """This config with every conditioner's config validated by its plugin and its defaults filled in.

        So a stored run keeps working when a later plugin release changes a default. Raises
        :class:`condgen.PluginError` for a conditioner that is not installed and
        :class:`condgen.ConfigError` naming the conditioner and field for a bad value.
        """
        reg = registry()
        specs = []
        for spec in self.conditioners:
            cls = reg.conditioner_class(spec.name)
            try:
                validated = cls.Config.model_validate(spec.config)
            except ValidationError as err:
                raise config_error(err, prefix=f"conditioner {spec.instance_name!r} config") from None
            specs.append(spec.model_copy(update={"config": validated.model_dump(mode="json", by_alias=True)}))
        return self.model_copy(update={"conditioners": specs})

    def with_data_option_defaults(self) -> "RunConfig":
        """This config with ``data.options`` validated by the data set's options model and its defaults filled
        in, as conditioners' configs are (see :func:`validated_data_options`)."""
        data = validated_data_options(self.data)
        return self if data is self.data else self.model_copy(update={"data": data})


def validated_data_options(data: DataConfig) -> DataConfig:
    """``data`` with its ``options`` validated by its data set's options model (its loader's ``options``, a
    :class:`condgen.DatasetOptions`) and their defaults filled in.

    A data set that is not registered here is left as it is, to :func:`condgen.runs.datasets.load_dataset`,
    which names it. A data set without an options model takes no options. A bad option is a
    :class:`condgen.ConfigError` naming it; a model that fails in another way, a :class:`condgen.PluginError`.
    """
    reg = registry()
    name = data.dataset
    if name not in reg.datasets:
        return data
    model = reg.dataset_options(name)
    if model is None:
        if data.options:
            raise ConfigError(f"data.options: data set {name!r} takes no options, got {sorted(data.options)}; "
                              "remove them (`condgen plugins DATASET` lists a data set's options)")
        return data
    try:
        options = model.model_validate(data.options).model_dump(mode="json", by_alias=True)
    except ValidationError as err:
        raise ConfigError(f"invalid config: {describe_validation_error(err, prefix='data.options')} (the options "
                          f"of data set {name!r}: `condgen plugins {name}` lists them)") from None
    except Exception as exc:  # the options model's own code failed: its plugin's bug, said in one line
        raise PluginError(f"data set {name!r}: its options model {model.__name__} raised {type(exc).__name__}: {exc} "
                          f"(a bug in {reg.owner('dataset', name).describe()})") from None
    return data.model_copy(update={"options": options})


def _load_yaml(text: str) -> Any:
    """YAML, reading ``1e-3`` as the number it looks like (YAML 1.1, and so PyYAML, wants ``1.0e-3``)."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$"), list("-+0123456789.")
    )
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON, YAML or TOML file into a dict (validated later by ``RunConfig.parse``)."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"config file {str(p)!r} is a directory; give the file")
    if not is_file(p, "config file"):
        raise ConfigError(f"config file not found: {str(p)!r}")
    suffix = p.suffix.lower()
    text = read_text(p, "config file")
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            data = _load_yaml(text)
        elif suffix == ".toml":
            data = tomllib.loads(text)
        else:
            raise ConfigError(
                f"config file {str(p)!r} has suffix {suffix!r}; use .json, .yaml, .yml or .toml"
            )
    except ConfigError:
        raise
    except Exception as exc:  # the parsers' own errors carry line numbers
        raise ConfigError(f"cannot parse config file {str(p)!r}: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping at the top, got {type(data).__name__}")
    return data
