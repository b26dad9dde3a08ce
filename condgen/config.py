"""Validated configuration of a run: what to condition on, the model, the data, the training.

Every model here forbids unknown fields, so a typo is an error naming the field rather
than a silently ignored setting. ``RunConfig`` is stored whole in each checkpoint.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError, config_error

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class StrictModel(BaseModel):
    """Base of every config: unknown fields are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ConditionerSpec(StrictModel):
    """One conditioner of a model: its registered name and its own config (checked by the plugin)."""

    name: str = Field(min_length=1)
    config: dict[str, Any] = Field(default_factory=dict)


class ModelConfig(StrictModel):
    """Shape of the CVAE. The defaults are the seed: latent 2, one hidden layer of 512 ReLU units."""

    latent_dim: int = Field(2, ge=1, le=4096)
    hidden: list[int] = Field(default_factory=lambda: [512], description="encoder hidden widths")
    decoder_hidden: Optional[list[int]] = Field(
        None, description="decoder hidden widths; default: the encoder's, reversed"
    )
    activation: Literal["relu", "elu", "gelu", "silu", "tanh", "leaky_relu"] = "relu"
    likelihood: Literal["bernoulli", "gaussian"] = Field(
        "bernoulli", description="bernoulli for data in [0, 1]; gaussian for real values"
    )
    gaussian_std: Optional[float] = Field(
        None, gt=0, description="fixed observation std for gaussian; None learns one per feature"
    )

    @field_validator("hidden", "decoder_hidden")
    @classmethod
    def _positive_widths(cls, v: Optional[list[int]]) -> Optional[list[int]]:
        if v is not None and any(w < 1 for w in v):
            raise ValueError(f"every hidden width must be >= 1, got {v}")
        return v

    @property
    def decoder_widths(self) -> list[int]:
        return list(self.decoder_hidden) if self.decoder_hidden is not None else self.hidden[::-1]


class DataConfig(StrictModel):
    """Which registered data set to train on, and where its files are."""

    dataset: str = "mnist"
    data_dir: Optional[str] = Field(
        None, description="directory of the data files; default: $CONDGEN_DATA_DIR, then download"
    )
    x_field: str = Field("image", description="the data field the model generates")
    train_limit: Optional[int] = Field(None, ge=1, description="use only the first N training items")
    test_limit: Optional[int] = Field(None, ge=1, description="use only the first N test items")

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, v: Optional[str]) -> Optional[str]:
        # stored absolute, so `condgen evaluate` finds the data from any working directory
        return str(Path(v).expanduser().absolute()) if v else v


class TrainConfig(StrictModel):
    """Optimisation. The defaults are the seed: Adam 1e-3, batch 50, 20 epochs."""

    epochs: int = Field(20, ge=1)
    batch_size: int = Field(50, ge=1)
    lr: float = Field(1e-3, gt=0)
    optimizer: Literal["adam", "adamw"] = "adam"
    weight_decay: float = Field(0.0, ge=0)
    lr_schedule: Literal["constant", "cosine"] = "constant"
    seed: int = 0
    device: str = Field("auto", description="cpu, cuda, cuda:N or auto")
    eval_batch_size: int = Field(1000, ge=1)

    @field_validator("device")
    @classmethod
    def _device_name(cls, v: str) -> str:
        if v in ("cpu", "cuda", "auto") or (v.startswith("cuda:") and v[5:].isdigit()):
            return v
        raise ValueError("device must be cpu, cuda, cuda:N or auto")


class RunConfig(StrictModel):
    """Everything that defines a run; saved in every checkpoint and as ``config.json``."""

    conditioners: list[ConditionerSpec] = Field(default_factory=list)
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @field_validator("conditioners")
    @classmethod
    def _unique(cls, v: list[ConditionerSpec]) -> list[ConditionerSpec]:
        names = [s.name for s in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"conditioner {dup[0]!r} is listed more than once")
        return v

    @classmethod
    def parse(cls, data: Any) -> "RunConfig":
        """Validate a plain dict, turning pydantic's error into one ``ConfigError`` line."""
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise config_error(err) from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON, YAML or TOML file into a dict (validated later by ``RunConfig.parse``)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {str(p)!r}")
    suffix = p.suffix.lower()
    text = p.read_text(encoding="utf-8")
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif suffix == ".toml":
            data = tomllib.loads(text)
        else:
            raise ConfigError(
                f"config file {str(p)!r} has suffix {suffix!r}; use .json, .yaml, .yml or .toml"
            )
    except ConfigError:
        raise
    except Exception as exc:  # the parsers' own errors carry line numbers
        raise ConfigError(f"cannot parse config file {str(p)!r}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping at the top, got {type(data).__name__}")
    return data
