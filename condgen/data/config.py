"""Which data set a run trains on, and where its files are: the config a data-set loader receives."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from pydantic import Field, field_validator

from ..common.options import descriptions
from ..common.schema import StrictModel
from .options import DATA_OPTIONS

# each field's description is its flag's help (.options), written once
_DATA = descriptions(DATA_OPTIONS)


class DatasetOptions(StrictModel):
    """Base of a data set's options. Subclass it, add fields with defaults and a ``description`` each, and
    give the class to the loader as its ``options`` attribute (see ``condgen_register_datasets``): the run
    config's ``data.options`` (``--data-option KEY=VALUE``) are validated by it when the config is parsed,
    stored with its defaults filled in, and listed by ``condgen plugins DATASET``. Unknown fields are errors,
    and a number field takes only finite numbers (see :mod:`condgen.common.schema`)."""


class DataConfig(StrictModel):
    """Which registered data set to train on, where its files are, and the data set's own options."""

    dataset: str = Field("mnist", description=_DATA["dataset"])
    data_dir: Optional[str] = Field(None, description=_DATA["data_dir"])
    x_field: str = Field("image", description=_DATA["x_field"])
    train_limit: Optional[int] = Field(None, ge=1, description=_DATA["train_limit"])
    test_limit: Optional[int] = Field(None, ge=1, description=_DATA["test_limit"])
    options: dict[str, Any] = Field(default_factory=dict, description=_DATA["options"])

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, v: Optional[str]) -> Optional[str]:
        # stored absolute, so `condgen evaluate` finds the data from any working directory
        if not v:
            return v
        try:
            return str(Path(v).expanduser().absolute())
        except RuntimeError:  # "~user" for a user this system does not know
            raise ValueError(f"cannot expand {v.split('/')[0]!r}: no such user's home directory") from None
